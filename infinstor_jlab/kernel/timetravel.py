"""Time-travel reads: S3 API answers built from the snapshot index.

This holds the logic behind ``infinstor_jlab.infin_boto3``: which view a read sees, listing
responses in the exact shapes S3 gives (so code cannot tell the difference), the version a
GetObject/HeadObject must fetch, and the errors S3 would give for a key absent at T.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import warnings
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import quote

from dateutil.tz import tzutc

from ..index import SnapshotIndex, open_index, prefix_end
from ..index.models import BucketRecord, ListPage
from ..services.access import BucketAccess, access_checks_enabled
from ..services.catchup import needs_catch_up, read_again
from ..services.views import ViewResolver
from ..timespec import TimeSpec, second_end_ms

log = logging.getLogger(__name__)

SNAPSHOT_ENV = "INFINSTOR_SNAPSHOT_TIME"
RUN_PARAM = "infinstor_snapshot_time"
BUCKETS_TAG = "infinstor_buckets"
#: Versions under a prefix up to which a read at a time after the bucket's last sync reads
#: the prefix again from S3 first (see ``TimeTravel.ensure_indexed``); beyond it, it warns.
CATCH_UP_MAX_VERSIONS = 100_000


_UTC = tzutc()


def _utc(ms: int) -> datetime:
    # The tzinfo botocore's parser gives S3 timestamps.
    return datetime.fromtimestamp(ms / 1000.0, tz=_UTC)


def _enc(value: str, encode: bool) -> str:
    # S3's EncodingType=url form (botocore decodes it with unquote_plus).
    return quote(value, safe="/") if encode else value


def _mlflow_run_time(run_id: str) -> TimeSpec:
    from ..services.core import mlflow_run_time  # not at import: the kernel side stays light

    return mlflow_run_time(run_id)


class TimeTravel:
    """Process-wide state of time travel: the index, cached spec resolutions, warnings
    already given, and the MLflow runs already annotated. Thread-safe."""

    def __init__(self, index_url: str | None = None) -> None:
        self._index_url = index_url
        self._index: SnapshotIndex | None = None
        self._lock = threading.Lock()
        self._warned: set[str] = set()
        self._logged_runs: dict[str, set[str]] = {}
        self._env_cache: tuple[str, TimeSpec] | None = None
        self._run_cache: dict[str, TimeSpec] = {}
        # Per bucket: (prefix, when its listing began) of the prefixes read again from S3.
        self._caught_up: dict[str, list[tuple[str, int]]] = {}
        self._caught_up_keys: dict[str, dict[str, int]] = {}  # keys read again one by one
        self._catch_up_lock = threading.Lock()
        self._s3_clients: dict[str | None, Any] = {}
        self._horizons: dict[str, int] = {}
        self._owners: dict[str, dict[str, str] | None] = {}
        self._access: BucketAccess | None = None
        self.views = ViewResolver(lambda: self.index, _mlflow_run_time)

    # -- plumbing ---------------------------------------------------------------------------
    @property
    def index(self) -> SnapshotIndex:
        if self._index is None:
            with self._lock:
                if self._index is None:
                    self._index = open_index(self._index_url)
        return self._index

    def parse(self, spec: str | int | TimeSpec) -> TimeSpec:
        return self.views.parse_spec(spec, default_now=False)

    # -- which view a read sees ---------------------------------------------------------------
    def implicit_view(self) -> tuple[TimeSpec | None, str | None]:
        """(view, MLflow run id) for a client without an explicit view: the snapshot named
        by $INFINSTOR_SNAPSHOT_TIME, else the active MLflow run's start time."""
        run_id = self._active_run_id()
        env = os.environ.get(SNAPSHOT_ENV, "").strip()
        if env:
            cached = self._env_cache
            if cached is None or cached[0] != env:
                cached = (env, self.parse(env))
                self._env_cache = cached
            return cached[1], run_id
        if run_id is None:
            return None, None
        spec = self._run_cache.get(run_id)
        if spec is None:
            spec = self._run_start(run_id)
            self._run_cache[run_id] = spec
        return spec, run_id

    @staticmethod
    def _active_run_id() -> str | None:
        mlflow = sys.modules.get("mlflow")
        if mlflow is not None:
            try:
                run = mlflow.active_run()
            except Exception:  # noqa: BLE001 - a tracking hiccup must not break reads
                run = None
            if run is not None:
                return str(run.info.run_id)
        return os.environ.get("MLFLOW_RUN_ID") or None

    @staticmethod
    def _run_start(run_id: str) -> TimeSpec:
        from mlflow.tracking import MlflowClient

        run = MlflowClient().get_run(run_id)
        return TimeSpec(kind="snapshot", end_ms=int(run.info.start_time), text=str(run_id))

    def note_run_read(self, run_id: str, spec: TimeSpec, bucket: str) -> None:
        """Log ``infinstor_snapshot_time`` once per run and tag the buckets it read."""
        with self._lock:
            buckets = self._logged_runs.get(run_id)
            first = buckets is None
            if first:
                buckets = set()
                self._logged_runs[run_id] = buckets
            assert buckets is not None
            if bucket in buckets:
                return
            buckets.add(bucket)
            names = ",".join(sorted(buckets))
        try:
            from mlflow.tracking import MlflowClient

            client = MlflowClient()
            if first:
                value = str(spec.end_ms) if spec.kind == "snapshot" else spec.canonical()
                run = client.get_run(run_id)
                if RUN_PARAM not in run.data.params:
                    client.log_param(run_id, RUN_PARAM, value)
            client.set_tag(run_id, BUCKETS_TAG, names)
        except Exception as exc:  # noqa: BLE001 - annotation is best effort, reads go on
            from ..redact import redact, tracking_uri

            log.warning(
                "infin_boto3: could not annotate MLflow run %s: %s",
                run_id,
                redact(exc, [tracking_uri()]),
            )

    def access_refusal(self, bucket: str, client: Any) -> str | None:
        """Why the notebook's own client may not read ``bucket`` from the index (None: it
        may). Asked with that client's credentials, cached a few minutes; see
        services/access.py. An S3 that cannot be asked refuses too (the shared index never
        answers for a bucket before S3 says the reader may read it)."""
        if self._access is None:
            with self._lock:
                if self._access is None:
                    self._access = BucketAccess(
                        lambda: client, enabled=access_checks_enabled(self.index)
                    )
        try:
            return self._access.refusal(bucket, client)
        except Exception as exc:  # noqa: BLE001 - a read must get S3's error shape, not ours
            return str(exc)

    def tracked(self, bucket: str) -> bool:
        if self.index.has_bucket(bucket):
            return True
        if bucket not in self._warned:
            self._warned.add(bucket)
            warnings.warn(
                f"infin_boto3: bucket {bucket!r} is not in the snapshot index, so reads of "
                f"it see the live bucket. Run `infinstor-jlab track {bucket}` to enable "
                "time travel for it.",
                stacklevel=2,
            )
        return False

    # -- a view later than the last sync ------------------------------------------------------
    def ensure_indexed(
        self,
        bucket: str,
        prefix: str,
        spec: TimeSpec,
        *,
        endpoint_url: str | None = None,
        key: bool = False,
    ) -> None:
        """Before a read answers from the index: make it hold every version under ``prefix``
        (the listing's prefix, or with ``key`` the object's key) up to the view's end.

        The last full sync pass covers everything before it began. A view after that (an
        MLflow run started now) would otherwise miss what was written since, and a later
        re-run of the same view would read more than the run did. So the prefix (for an
        object, its folder when that is small, else the key) is read again from S3 once per
        process and view, after the view's last second is over (S3 lists whole seconds)."""
        horizon = self._horizons.get(bucket)  # a last sync seen before: it only moves on
        if horizon is not None and spec.end_ms < horizon:
            return
        second_end = second_end_ms(spec.end_ms)
        with self._catch_up_lock:
            done = self._caught_up.get(bucket, [])
            if any(prefix.startswith(p) and since >= second_end for p, since in done):
                return
            record = self.index.get_bucket(bucket)
            if record.last_sync_ms is not None:
                self._horizons[bucket] = record.last_sync_ms
            if not needs_catch_up(record, spec):
                return
            keys_done = self._caught_up_keys.setdefault(bucket, {})
            if key and keys_done.get(prefix, -1) >= second_end:
                return
            target: str | None = prefix  # a prefix to read again; None: only the key
            if key:
                folder = prefix[: prefix.rfind("/") + 1]
                target = (
                    folder
                    if self.index.estimate_versions(bucket, folder) <= CATCH_UP_MAX_VERSIONS
                    else None
                )
            elif self.index.estimate_versions(bucket, prefix) > CATCH_UP_MAX_VERSIONS:
                self._warn_stale(
                    record,
                    spec,
                    f"s3://{bucket}/{prefix} holds too many versions to read again from here",
                )
                done.append((prefix, second_end))  # said once; not tried on every read
                self._caught_up[bucket] = done
                return
            try:
                s3 = self._s3(endpoint_url)
                if target is None:
                    started = read_again(s3, self.index, bucket, spec, keys=[prefix])
                else:
                    started = read_again(s3, self.index, bucket, spec, prefix=target)
            except Exception as exc:  # noqa: BLE001 - the read goes on, from the index as is
                self._warn_stale(
                    record, spec, f"reading s3://{bucket}/{target or prefix} again failed ({exc})"
                )
                started = second_end  # given up for this view: not tried on every read
            if target is None:
                keys_done[prefix] = started
            else:
                done.append((target, started))
                self._caught_up[bucket] = done

    def _s3(self, endpoint_url: str | None) -> Any:
        client = self._s3_clients.get(endpoint_url)
        if client is None:
            from ..services.s3 import make_s3_client

            client = make_s3_client(endpoint_url)
            self._s3_clients[endpoint_url] = client
        return client

    def _warn_stale(self, record: BucketRecord, spec: TimeSpec, why: str) -> None:
        bucket = record.name
        if f"stale:{bucket}" in self._warned:
            return
        self._warned.add(f"stale:{bucket}")
        warnings.warn(
            f"infin_boto3: the index holds bucket {bucket!r} up to {record.synced_through()}, "
            f"before this view ({spec.display()}), and {why}: objects written since the "
            "sync are not in the view. Run "
            f"`infinstor-jlab sync {bucket}` (or track it with events) before the run.",
            stacklevel=3,
        )

    # -- answers ----------------------------------------------------------------------------
    def list_objects(
        self,
        params: dict[str, Any],
        spec: TimeSpec,
        *,
        v2: bool,
        owner: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """A ListObjects(V2) response (botocore's parsed shape) for the view."""
        return listing_response(self.index, params, spec, v2=v2, owner=owner)

    def delete_marker_at(self, bucket: str, key: str, spec: TimeSpec) -> str | None:
        """The version id of the delete marker that hides ``key`` in a snapshot view (None:
        the key is absent for another reason, or the view is a slice)."""
        if spec.start_ms is not None:
            return None
        for version in self.index.history(bucket, key):  # newest first
            if version.last_modified_ms <= spec.end_ms:
                return version.version_id if version.is_delete_marker else None
        return None

    def bucket_owner(self, bucket: str, endpoint_url: str | None) -> dict[str, str] | None:
        """The bucket's owner, shown as each object's Owner in listings (objects are owned by
        the bucket owner unless ACLs say otherwise; the index does not keep per-version
        owners). Asked once per bucket; None when S3 will not say (no s3:GetBucketAcl)."""
        if bucket not in self._owners:
            try:
                owner = self._s3(endpoint_url).get_bucket_acl(Bucket=bucket).get("Owner")
            except Exception:  # noqa: BLE001 - a listing must not fail for a cosmetic field
                owner = None
            self._owners[bucket] = dict(owner) if owner else None
        return self._owners[bucket]

    def version_for_read(self, bucket: str, key: str, spec: TimeSpec) -> str | None:
        """The version id a GetObject/HeadObject must fetch, or None if the key is absent
        in the view."""
        found = self.index.get_version_at(bucket, key, end_ms=spec.end_ms, start_ms=spec.start_ms)
        return None if found is None else found.version_id


def listing_response(
    index: SnapshotIndex,
    params: dict[str, Any],
    spec: TimeSpec,
    *,
    v2: bool,
    owner: dict[str, str] | None = None,
    list_page: Callable[[str, str | None, int, str | None, str | None], ListPage] | None = None,
    time_value: Callable[[int], Any] = _utc,
) -> dict[str, Any]:
    """A ListObjects(V2) response (botocore's parsed shape) for the view: the kernel-side
    hooks return it as is, the S3 endpoint writes it as S3's XML. ``list_page(prefix,
    delimiter, max_keys, token, start_after)`` gives the page (default: the index's own
    listing of the view); ``time_value`` turns a version's time (ms) into LastModified."""
    bucket = params["Bucket"]
    prefix = params.get("Prefix") or ""
    delimiter = params.get("Delimiter") or None
    max_keys = int(params.get("MaxKeys", 1000))
    max_keys = max(0, min(max_keys, 1000))
    encode = params.get("EncodingType") == "url"
    token = params.get("ContinuationToken") if v2 else None
    start_after = params.get("StartAfter") if v2 else params.get("Marker")
    if (
        not v2
        and start_after
        and delimiter
        and start_after.startswith(prefix)
        and start_after != prefix
        and start_after[len(prefix) :].find(delimiter)
        == len(start_after) - len(prefix) - len(delimiter)
    ):
        # A V1 marker that is a common prefix of this listing (its first delimiter after
        # the prefix is its end): continue after everything under it. A marker such as
        # 'a//' is not one: it is a key, and the folder 'a/' sorts before it.
        end = prefix_end(start_after)
        token = index.continuation_token(end, True) if end is not None else None
        start_after = None
    if list_page is None:
        page = index.list_view(
            bucket,
            end_ms=spec.end_ms,
            start_ms=spec.start_ms,
            prefix=prefix,
            delimiter=delimiter,
            max_keys=max_keys,
            token=token,
            start_after=start_after,
        )
    else:
        page = list_page(prefix, delimiter, max_keys, token, start_after)
    contents = [
        {
            "Key": _enc(o.key, encode),
            "LastModified": time_value(o.last_modified_ms),
            "ETag": o.etag,
            "Size": o.size,
            "StorageClass": "STANDARD",
        }
        for o in page.objects
    ]
    if owner:  # S3 lists owners in V1 always, in V2 with FetchOwner
        for entry in contents:
            entry["Owner"] = dict(owner)
    resp: dict[str, Any] = {
        "IsTruncated": page.next_token is not None,
        "Name": bucket,
        "Prefix": _enc(prefix, encode),
        "MaxKeys": max_keys,
    }
    if contents:
        resp["Contents"] = contents
    if delimiter:
        resp["Delimiter"] = _enc(delimiter, encode)
    if page.prefixes:
        resp["CommonPrefixes"] = [{"Prefix": _enc(p, encode)} for p in page.prefixes]
    if encode:
        resp["EncodingType"] = "url"
    if v2:
        resp["KeyCount"] = len(contents) + len(page.prefixes)
        if params.get("ContinuationToken"):
            resp["ContinuationToken"] = params["ContinuationToken"]
        if page.next_token:
            resp["NextContinuationToken"] = page.next_token
        if params.get("StartAfter"):
            resp["StartAfter"] = _enc(params["StartAfter"], encode)
    else:
        resp["Marker"] = _enc(params.get("Marker") or "", encode)
        if page.next_token and delimiter:
            last = max([o.key for o in page.objects] + list(page.prefixes))
            resp["NextMarker"] = _enc(last, encode)
    return resp
