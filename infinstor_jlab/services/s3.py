"""boto3 access to S3: client creation and ListObjectVersions pages in chain order.

botocore's parsed ListObjectVersions response splits versions and delete markers into two
lists, losing the order S3 gives them (per key, newest first, interleaved). We keep it by
parsing the raw XML in a ``before-parse`` event handler — botocore's documented extension
point — and returning our ordered entries through ``customized_response_dict``.
"""

from __future__ import annotations

import os
import socket
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus, urlsplit

from ..errors import AccessDenied, BadRequest, InfinstorError, StorageError, UnknownBucket
from ..index.models import VersionEntry
from ..redact import safe_uri
from ..timespec import parse_s3_timestamp

ENDPOINT_ENV = "AWS_ENDPOINT_URL"
_ORDERED_KEY = "InfinstorOrderedEntries"


def make_s3_client(
    endpoint_url: str | None = None, *, max_pool_connections: int = 10, session: Any = None
) -> Any:
    """An S3 client from boto3's normal credential chain (or ``session``'s credentials);
    ``AWS_ENDPOINT_URL`` (read by boto3 itself) or an explicit endpoint selects an
    S3-compatible store."""
    import boto3
    from botocore.config import Config

    kwargs: dict[str, Any] = {
        "config": Config(
            retries={"max_attempts": 8, "mode": "adaptive"},
            max_pool_connections=max_pool_connections,
        ),
    }
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
    with aws_configuration_errors(endpoint_url):
        session = session or boto3.session.Session()
        if not session.region_name and not os.environ.get("AWS_DEFAULT_REGION"):
            kwargs["region_name"] = "us-east-1"
        client = session.client("s3", **kwargs)
    client.meta.events.register("before-parse.s3.ListObjectVersions", _capture_ordered_versions)
    # The service's own reads are always of exact versions: never time travel, even in a
    # kernel that imported infin_boto3.
    client._infinstor_internal = True
    return client


@contextmanager
def aws_configuration_errors(endpoint_url: str | None = None) -> Iterator[None]:
    """boto3's complaints about its own configuration (a missing profile, a malformed region
    or endpoint), raised while making a client, as one sentence that says what to fix."""
    from botocore.exceptions import BotoCoreError, InvalidRegionError, ProfileNotFound

    try:
        yield
    except ProfileNotFound as exc:
        raise StorageError(
            f"The AWS profile {exc.kwargs.get('profile', '')!r} is not configured; set "
            "AWS_PROFILE to a profile in ~/.aws/config (or unset it)."
        ) from None
    except InvalidRegionError as exc:
        raise StorageError(
            f"{exc.kwargs.get('region_name', '')!r} is not a valid AWS region; set "
            "AWS_DEFAULT_REGION to a region such as us-east-1."
        ) from None
    except ValueError as exc:
        if "endpoint" not in str(exc).lower():
            raise
        shown = endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or ""
        raise StorageError(
            f"{shown!r} is not a valid S3 endpoint URL; give one such as "
            "http://127.0.0.1:9000 (--endpoint-url or AWS_ENDPOINT_URL)."
        ) from None
    except BotoCoreError as exc:
        raise StorageError(f"The AWS configuration cannot be used: {exc}") from None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _capture_ordered_versions(
    response_dict: dict[str, Any], customized_response_dict: dict[str, Any], **_: Any
) -> None:
    if response_dict.get("status_code", 500) >= 300:
        return
    body = response_dict.get("body") or b""
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return  # let botocore report the malformed response
    url_encoded = False
    for child in root:
        if _local(child.tag) == "EncodingType" and (child.text or "").strip() == "url":
            url_encoded = True
    entries: list[VersionEntry] = []
    latest: list[bool] = []
    classes: list[str] = []
    for child in root:
        kind = _local(child.tag)
        if kind not in ("Version", "DeleteMarker"):
            continue
        fields = {_local(el.tag): (el.text or "") for el in child}
        key = fields.get("Key", "")
        if url_encoded:
            key = unquote_plus(key)
        time_ms, precise = parse_s3_timestamp(fields.get("LastModified", ""))
        entries.append(
            VersionEntry(
                key=key,
                version_id=fields.get("VersionId") or "null",
                time_ms=time_ms,
                size=int(fields.get("Size") or 0),
                etag=fields.get("ETag", ""),
                is_delete_marker=kind == "DeleteMarker",
                precise=precise,
            )
        )
        latest.append(fields.get("IsLatest", "").strip().lower() == "true")
        classes.append(fields.get("StorageClass", "").strip())
    customized_response_dict[_ORDERED_KEY] = entries
    customized_response_dict["InfinstorLatest"] = latest
    customized_response_dict["InfinstorStorageClasses"] = classes
    markers = {}
    for child in root:
        name = _local(child.tag)
        if name in ("NextKeyMarker", "NextVersionIdMarker", "IsTruncated"):
            text = child.text or ""
            if name == "NextKeyMarker" and url_encoded:
                text = unquote_plus(text)
            markers[name] = text
    customized_response_dict["InfinstorMarkers"] = markers
    # botocore parses the body again after this hook, through its model: for 1000 versions
    # that costs more CPU than the rest of a page's work together (and parallel listing
    # streams share one interpreter). What we read is removed; the markers and
    # CommonPrefixes stay for it.
    for child in [c for c in root if _local(c.tag) in ("Version", "DeleteMarker")]:
        root.remove(child)
    response_dict["body"] = ET.tostring(root)


@dataclass
class VersionPage:
    """Entries in the order of the XML; ``latest[i]`` is the IsLatest flag of ``entries[i]``
    and ``storage_classes[i]`` its storage class ("" for delete markers and stores that do
    not say)."""

    entries: list[VersionEntry]
    latest: list[bool]
    truncated: bool
    next_key_marker: str | None
    next_version_id_marker: str | None
    storage_classes: list[str] = field(default_factory=list)


def list_versions_page(
    client: Any,
    bucket: str,
    *,
    key_marker: str | None = None,
    version_id_marker: str | None = None,
    prefix: str | None = None,
    max_keys: int = 1000,
) -> VersionPage:
    params: dict[str, Any] = {"Bucket": bucket, "MaxKeys": max_keys, "EncodingType": "url"}
    if key_marker:
        params["KeyMarker"] = key_marker
        if version_id_marker:
            params["VersionIdMarker"] = version_id_marker
    if prefix:
        params["Prefix"] = prefix
    resp = call_s3(client.list_object_versions, bucket, **params)
    entries = resp.get(_ORDERED_KEY)
    if entries is None:
        raise StorageError(
            "The S3 client was not made by infinstor_jlab.services.s3.make_s3_client, so "
            "the ordered ListObjectVersions hook is missing."
        )
    markers = resp.get("InfinstorMarkers", {})
    truncated = str(markers.get("IsTruncated", resp.get("IsTruncated", False))).lower() == "true"
    return VersionPage(
        entries=entries,
        latest=resp.get("InfinstorLatest", [False] * len(entries)),
        truncated=truncated,
        next_key_marker=markers.get("NextKeyMarker") or None,
        next_version_id_marker=markers.get("NextVersionIdMarker") or None,
        storage_classes=resp.get("InfinstorStorageClasses", [""] * len(entries)),
    )


def iter_version_pages(
    client: Any, bucket: str, *, prefix: str | None = None, max_keys: int = 1000
) -> Iterator[VersionPage]:
    """Every ListObjectVersions page under ``prefix``, following S3's key/version markers.
    The caller may stop early (stop iterating) once it has seen what it needs."""
    key_marker: str | None = None
    vid_marker: str | None = None
    while True:
        page = list_versions_page(
            client,
            bucket,
            prefix=prefix,
            key_marker=key_marker,
            version_id_marker=vid_marker,
            max_keys=max_keys,
        )
        yield page
        if not page.truncated:
            return
        key_marker, vid_marker = page.next_key_marker, page.next_version_id_marker


def call_s3(fn: Any, bucket: str, **params: Any) -> Any:
    """Call a boto3 operation, turning the failures a user can fix into sentences."""
    from botocore.exceptions import (
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        PartialCredentialsError,
    )

    try:
        return fn(**params)
    except ClientError as exc:
        raise translate_client_error(exc, bucket) from exc
    except (NoCredentialsError, PartialCredentialsError) as exc:
        raise StorageError(_no_credentials_message(_endpoint_of(fn))) from exc
    except EndpointConnectionError as exc:
        endpoint = _endpoint_of(fn) or exc.kwargs.get("endpoint_url", "unknown")
        raise StorageError(
            f"The S3 endpoint {safe_uri(endpoint)} does not answer (nothing listens there, or "
            "the network is down: a local store or a demo that stopped?). Start it again, or "
            "check AWS_ENDPOINT_URL (--endpoint-url) and your network."
        ) from exc


def _endpoint_of(fn: Any) -> str | None:
    """The endpoint URL of the client a bound boto3 operation belongs to."""
    meta = getattr(getattr(fn, "__self__", None), "meta", None)
    return getattr(meta, "endpoint_url", None)


def _is_aws(endpoint: str) -> bool:
    host = (urlsplit(endpoint).hostname or "").lower()
    return host.endswith((".amazonaws.com", ".amazonaws.com.cn"))


def _answers(endpoint: str, timeout_s: float = 1.0) -> bool:
    """Whether something accepts connections at the endpoint's host and port."""
    parts = urlsplit(endpoint)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=timeout_s):
            return True
    except OSError:
        return False


def _no_credentials_message(endpoint: str | None) -> str:
    """botocore looks for credentials before it connects, so "no credentials" is what a
    stopped local store (a demo that ended) or a shell without AWS_ENDPOINT_URL report too;
    say which of those it is."""
    how = "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile via AWS_PROFILE, or an instance role"
    if endpoint and not _is_aws(endpoint):
        shown = safe_uri(endpoint)
        if not _answers(endpoint):
            return (
                f"The S3 endpoint {shown} does not answer (nothing listens there now: a local "
                "store or a demo that stopped?), and no AWS credentials were found for it. "
                "Start it again, or point AWS_ENDPOINT_URL (--endpoint-url) at a running one "
                "and set its credentials."
            )
        return f"No AWS credentials were found for the S3 endpoint {shown}; set them ({how})."
    return (
        "No AWS credentials were found, and no S3 endpoint is set, so this went to AWS S3. "
        f"For AWS, configure credentials the usual boto3 way ({how}); for an S3-compatible "
        "store (such as the demo's local one) set AWS_ENDPOINT_URL and its credentials: "
        "`infinstor-jlab demo` prints the exports another shell needs."
    )


def s3_error_status(exc: BaseException) -> int | None:
    """The HTTP status of the S3 answer behind an error from ``call_s3`` (None: S3 did not
    answer, e.g. the endpoint was unreachable or there were no credentials)."""
    from botocore.exceptions import ClientError

    cause = exc.__cause__ if not isinstance(exc, ClientError) else exc
    if isinstance(cause, ClientError):
        return int(cause.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)) or None
    return None


def s3_error_code(exc: BaseException) -> str:
    """The S3 error code behind an error from ``call_s3`` ("" when S3 did not answer)."""
    from botocore.exceptions import ClientError

    cause = exc.__cause__ if not isinstance(exc, ClientError) else exc
    if isinstance(cause, ClientError):
        return str(cause.response.get("Error", {}).get("Code", ""))
    return ""


def translate_client_error(exc: Any, bucket: str) -> InfinstorError:
    code = exc.response.get("Error", {}).get("Code", "")
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    if code in ("NoSuchBucket",) or (status == 404 and code in ("404", "NotFound")):
        return UnknownBucket(
            f"Bucket {bucket!r} does not exist (or is not visible with these credentials)."
        )
    if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"):
        return StorageError(f"S3 rejected the credentials ({code}); refresh or fix them.")
    if code == "403" or (status == 403 and not code):
        # A HEAD answer has no body: wrong credentials and missing permissions look alike.
        return AccessDenied(
            f"Access to bucket {bucket!r} was denied (HTTP 403): the credentials in use are "
            "not valid, or lack s3:ListBucket, s3:ListBucketVersions and s3:GetObjectVersion "
            "on it."
        )
    if code in ("AccessDenied", "AllAccessDisabled") or status == 403:
        return AccessDenied(
            f"Access to bucket {bucket!r} was denied; the credentials in use need "
            "s3:ListBucketVersions, s3:GetObjectVersion and s3:GetBucketVersioning on it."
        )
    if code in ("InvalidBucketName", "InvalidArgument", "KeyTooLongError", "InvalidRequest"):
        message = exc.response.get("Error", {}).get("Message", "") or code
        return BadRequest(f"S3 rejected the request for bucket {bucket!r}: {message}")
    message = exc.response.get("Error", {}).get("Message", "") or str(exc)
    return StorageError(f"S3 error on bucket {bucket!r}: {code or status} {message}".strip())


def get_versioning(client: Any, bucket: str) -> str | None:
    """'Enabled', 'Suspended', or None (never enabled)."""
    resp = call_s3(client.get_bucket_versioning, bucket, Bucket=bucket)
    return resp.get("Status") or None


def enable_versioning(client: Any, bucket: str) -> None:
    call_s3(
        client.put_bucket_versioning,
        bucket,
        Bucket=bucket,
        VersioningConfiguration={"Status": "Enabled"},
    )
