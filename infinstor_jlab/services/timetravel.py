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
from datetime import datetime
from typing import Any
from urllib.parse import quote

from dateutil.tz import tzutc

from ..index import SnapshotIndex, open_index, prefix_end
from ..index.sqlite import continuation_token
from ..timespec import TimeSpec, parse_time_spec

log = logging.getLogger(__name__)

SNAPSHOT_ENV = "INFINSTOR_SNAPSHOT_TIME"
RUN_PARAM = "infinstor_snapshot_time"
BUCKETS_TAG = "infinstor_buckets"


_UTC = tzutc()


def _utc(ms: int) -> datetime:
    # The tzinfo botocore's parser gives S3 timestamps.
    return datetime.fromtimestamp(ms / 1000.0, tz=_UTC)


def _enc(value: str, encode: bool) -> str:
    # S3's EncodingType=url form (botocore decodes it with unquote_plus).
    return quote(value, safe="/") if encode else value


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

    # -- plumbing ---------------------------------------------------------------------------
    @property
    def index(self) -> SnapshotIndex:
        if self._index is None:
            with self._lock:
                if self._index is None:
                    self._index = open_index(self._index_url)
        return self._index

    def resolve_label(self, name: str) -> TimeSpec:
        label = self.index.get_label(name)
        return TimeSpec(kind="slice" if label.kind == "slice" else "snapshot",
                        start_ms=label.start_ms, end_ms=label.end_ms, text=f"label:/{name}",
                        label=name, label_bucket=label.bucket, label_prefix=label.prefix)

    def resolve_run(self, run_id: str) -> TimeSpec:
        from .core import mlflow_run_time

        return mlflow_run_time(run_id)

    def parse(self, spec: str | int | TimeSpec) -> TimeSpec:
        if isinstance(spec, TimeSpec):
            return spec
        return parse_time_spec(spec, resolver=self)

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
            log.warning("infin_boto3: could not annotate MLflow run %s: %s", run_id, exc)

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

    # -- answers ----------------------------------------------------------------------------
    def list_objects(self, params: dict[str, Any], spec: TimeSpec, *, v2: bool
                     ) -> dict[str, Any]:
        """A ListObjects(V2) response (botocore's parsed shape) for the view."""
        bucket = params["Bucket"]
        prefix = params.get("Prefix") or ""
        delimiter = params.get("Delimiter") or None
        max_keys = int(params.get("MaxKeys", 1000))
        max_keys = max(0, min(max_keys, 1000))
        encode = params.get("EncodingType") == "url"
        token = params.get("ContinuationToken") if v2 else None
        start_after = params.get("StartAfter") if v2 else params.get("Marker")
        if not v2 and start_after and delimiter and start_after.endswith(delimiter) \
                and start_after.startswith(prefix) and start_after != prefix:
            # A V1 marker that is a common prefix: continue after everything under it.
            end = prefix_end(start_after)
            token = continuation_token(end, True) if end is not None else None
            start_after = None
        page = self.index.list_view(
            bucket, end_ms=spec.end_ms, start_ms=spec.start_ms, prefix=prefix,
            delimiter=delimiter, max_keys=max_keys, token=token, start_after=start_after,
        )
        contents = [
            {"Key": _enc(o.key, encode), "LastModified": _utc(o.last_modified_ms),
             "ETag": o.etag, "Size": o.size, "StorageClass": "STANDARD"}
            for o in page.objects
        ]
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

    def version_for_read(self, bucket: str, key: str, spec: TimeSpec) -> str | None:
        """The version id a GetObject/HeadObject must fetch, or None if the key is absent
        in the view."""
        found = self.index.get_version_at(bucket, key, end_ms=spec.end_ms,
                                          start_ms=spec.start_ms)
        return None if found is None else found.version_id
