"""Who may see what: before the index answers for a bucket, this process's own AWS
credentials must be able to read that bucket.

A shared index (PostgreSQL) holds the history of every bucket any user of it tracked. The
index itself cannot know which of those a given user may read, but S3 can: a
``ListObjectVersions`` with ``MaxKeys=1`` under the user's credentials is the cheapest request
that needs exactly the permission a listing from the index reveals (``s3:ListBucketVersions``).
Its answer is cached for a few minutes per (credential identity, endpoint, bucket), so a
sidebar that pages through a folder asks S3 once, not once per page.

The check is on by default when the index is shared and off for a local SQLite file (one
user's own index, where it would only add a request per bucket); ``INFINSTOR_ACCESS_CHECKS``
(``on``/``off``/``auto``) or the server's ``InfinstorApp.access_checks`` decides otherwise.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

from ..errors import AccessDenied, InfinstorError, StorageError, UnknownBucket
from .s3 import call_s3, s3_error_status

ACCESS_CHECKS_ENV = "INFINSTOR_ACCESS_CHECKS"
ACCESS_CHECK_MODES = ("auto", "on", "off")
#: How long an answer of S3 about one (credentials, bucket) is reused. Permissions revoked in
#: IAM reach a running server within this time.
DEFAULT_TTL_S = 300.0


def index_is_shared(index: object) -> bool:
    """Whether an index is shared by several users: anything but a local SQLite file. A
    backend may say so itself with a ``shared`` attribute."""
    shared = getattr(index, "shared", None)
    if isinstance(shared, bool):
        return shared
    from ..index.sqlite import SqliteSnapshotIndex

    return not isinstance(index, SqliteSnapshotIndex)


def access_checks_enabled(index: object, mode: str | None = None) -> bool:
    """``mode`` (else ``$INFINSTOR_ACCESS_CHECKS``, else ``auto``): ``on``, ``off``, or
    ``auto`` = on exactly when the index is shared."""
    chosen = (mode or os.environ.get(ACCESS_CHECKS_ENV) or "auto").strip().lower()
    if chosen not in ACCESS_CHECK_MODES:
        raise StorageError(
            f"{ACCESS_CHECKS_ENV}={chosen!r} is not a choice; use on, off or auto (auto checks "
            "access when the index is shared, on PostgreSQL)."
        )
    if chosen == "auto":
        return index_is_shared(index)
    return chosen == "on"


def credential_identity(client: Any) -> str:
    """Who a boto3 client signs as (its access key id) and where it sends requests: the
    cache key of access answers. Nothing secret: the secret key never leaves botocore."""
    endpoint = str(getattr(getattr(client, "meta", None), "endpoint_url", "") or "")
    try:
        creds = client._request_signer._credentials
        key = creds.get_frozen_credentials().access_key if creds is not None else "anonymous"
    except Exception:  # noqa: BLE001 - an unknown client shape: never share its answers
        key = f"client-{id(client)}"
    return f"{key}@{endpoint}"


class BucketAccess:
    """Cached answers to "may these credentials read this bucket?"."""

    def __init__(
        self,
        client: Callable[[], Any],
        *,
        enabled: bool,
        ttl_s: float = DEFAULT_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self.enabled = enabled
        self.ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        # (identity, bucket) -> (expires at, None if readable else the refusal sentence)
        self._answers: dict[tuple[str, str], tuple[float, str | None]] = {}

    def forget(self) -> None:
        """Drop every cached answer (tests; after a change of credentials)."""
        with self._lock:
            self._answers.clear()

    def refusal(self, bucket: str, client: Any = None) -> str | None:
        """None when the credentials may read ``bucket`` (or checks are off), else the
        sentence that says why not. An S3 that cannot be asked (unreachable, throttling) is
        an error, not a refusal, and is not cached. ``client``: ask with this boto3 client's
        credentials instead of the default one's (a notebook's own client)."""
        if not self.enabled:
            return None
        client = client if client is not None else self._client()
        cache_key = (credential_identity(client), bucket)
        now = self._clock()
        with self._lock:
            cached = self._answers.get(cache_key)
        if cached is not None and cached[0] > now:
            return cached[1]
        answer = self._ask(client, bucket)
        with self._lock:
            self._answers[cache_key] = (now + self.ttl_s, answer)
        return answer

    def _ask(self, client: Any, bucket: str) -> str | None:
        try:
            call_s3(client.list_object_versions, bucket, Bucket=bucket, MaxKeys=1)
        except UnknownBucket:
            return (
                f"Bucket {bucket!r} is not in S3 any more (or these credentials cannot see "
                "it), so its history in the shared index is not shown to them."
            )
        except InfinstorError as exc:
            status = s3_error_status(exc)
            if isinstance(exc, AccessDenied) or status in (401, 403):
                return (
                    f"Your AWS credentials cannot list bucket {bucket!r} "
                    "(s3:ListBucketVersions was refused), so the shared index does not show "
                    "it to you; ask for read access to the bucket, or use credentials that "
                    "have it."
                )
            raise StorageError(
                f"Could not check your access to bucket {bucket!r} with S3 ({exc}); the shared "
                "index answers for a bucket only after S3 confirms you may read it. Try again "
                "when S3 is reachable."
            ) from exc
        return None

    def readable(self, bucket: str) -> bool:
        """Whether the bucket may be shown (an S3 that cannot be asked: not shown)."""
        try:
            return self.refusal(bucket) is None
        except InfinstorError:
            return False

    def require(self, bucket: str) -> None:
        """Raise AccessDenied (HTTP 403) unless the credentials may read ``bucket``."""
        why = self.refusal(bucket)
        if why is not None:
            raise AccessDenied(why)
