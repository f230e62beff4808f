"""The service layer: every user-facing operation, with no CLI or Tornado in sight.

The CLI, the REST handlers and the kernel-side boto3 hooks are thin adapters over
:class:`InfinstorService`.
"""

from __future__ import annotations

import mimetypes
import os
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..errors import (
    BadRequest,
    BadTimeSpec,
    Conflict,
    InfinstorError,
    NotFound,
    UnknownBucket,
    UnknownLabel,
)
from ..fingerprint import fingerprint
from ..index.base import MAX_KEYS_LIMIT, SnapshotIndex
from ..index.models import (
    BucketRecord,
    DiffResult,
    LabelRecord,
    ListPage,
    ObjectVersion,
    Timeline,
)
from ..redact import redact, safe_uri, tracking_uri
from ..timespec import TimeSpec, now_ms, parse_time_spec, wait_past_second
from ..tracking import open_client as open_tracking_client
from .access import BucketAccess, access_checks_enabled
from .backfill import has_partitions, sync_bucket_parallel
from .catchup import needs_catch_up, read_again
from .coordination import RunningSync, SyncBusy, current_user, open_coordination
from .events import disable_events, enable_events, make_sqs_client
from .inventory import ImportResult, import_inventory
from .jobs import JobBoard
from .pagecache import PageCache
from .s3 import call_s3, enable_versioning, get_versioning, make_s3_client, s3_error_status
from .sync import SyncInterrupted, SyncProgress, SyncResult, exact_since, sync_bucket
from .views import ViewResolver, label_spec, refuse_future

MAX_FINISHED_JOBS = 200
# How long forgetting a bucket waits for its running sync to stop (it stops after a page).
STOP_SYNC_TIMEOUT_S = 120.0
# Every label listing carries each label's description: keep them notes, not documents.
MAX_LABEL_DESCRIPTION = 10_000

PREVIEWABLE_TEXT = {
    "application/json",
    "text/csv",
    "application/x-ndjson",
    "application/xml",
    "application/yaml",
    "application/x-yaml",
}


def _folder_holding(within: str, prefix: str, delimiter: str | None) -> str | None:
    """In a listing of ``prefix`` (a proper prefix of ``within``), the common prefix that
    holds every key under ``within``, if the delimiter already occurs in ``within`` past
    ``prefix``; None when the keys under ``within`` group as in a listing of ``within``.
    A delimiter of several characters that could start inside ``within`` and end past it
    has no such answer from a listing of ``within``: that is refused."""
    if not delimiter:
        return None
    at = within.find(delimiter, len(prefix))
    if at >= 0:
        return within[: at + len(delimiter)]
    for i in range(max(len(prefix), len(within) - len(delimiter) + 1), len(within)):
        if delimiter.startswith(within[i:]):
            raise BadRequest(
                f"With delimiter {delimiter!r} this listing of the label's view cannot be "
                f"told apart; list the label's prefix {within!r} or one under it."
            )
    return None


@dataclass
class SyncJob:
    id: str
    bucket: str
    full: bool
    started_ms: int
    progress: SyncProgress
    state: str = "running"  # running | done | error | elsewhere
    error: str | None = None
    finished_ms: int | None = None
    warnings: list[str] = field(default_factory=list)
    # state "elsewhere": another server of the team runs this bucket's sync (who, since when)
    elsewhere: RunningSync | None = None
    # Set to stop the pass after its current page (forgetting the bucket); ``ended`` is set
    # when the job's thread is done with the index.
    stop: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)
    ended: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        doc = self.progress.to_json()
        doc.update(
            {
                "id": self.id,
                "bucket": self.bucket,
                "full": self.full,
                "state": self.state,
                "done": self.state != "running",
                "error": self.error,
                "started_ms": self.started_ms,
                "finished_ms": self.finished_ms,
                "warnings": self.warnings,
                "running_elsewhere": self.elsewhere.to_json() if self.elsewhere else None,
            }
        )
        return doc


LABEL_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.\-_]{1,254}$")
# What a HeadObject of one version answers when that version is not there (HEAD answers carry
# no error code, only the status).
_HEAD_VERSION_GONE = {
    404: "S3 has no such version of this key (HTTP 404).",
    400: "S3 does not know this version id (HTTP 400).",
    405: "This version id is a delete marker in S3 (HTTP 405).",
}

RunResolver = Callable[[str], TimeSpec]


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket[/prefix]`` -> (bucket, prefix). A bare bucket name is accepted too."""
    text = uri.strip()
    if text.startswith("s3://"):
        text = text[5:]
    elif "://" in text:
        raise BadRequest(f"{uri!r} is not an S3 URI; write it as s3://BUCKET/PREFIX.")
    bucket, _, prefix = text.partition("/")
    check_bucket_name(bucket)
    return bucket, prefix


def check_bucket_name(bucket: str) -> None:
    if not bucket or not _BUCKET_RE.match(bucket):
        raise BadRequest(
            f"{bucket!r} is not a valid bucket name; write the URI as s3://BUCKET/PREFIX."
        )


def _require_existing_tracking_store(run_id: str) -> None:
    """Looking a run up must not create a tracking store: with no MLFLOW_TRACKING_URI, MLflow
    falls back to a local store in the working directory and would create an empty one there
    (a stray mlflow.db, and a "no such run" that hides the real mistake)."""
    import mlflow

    uri = mlflow.get_tracking_uri()
    path: str | None = None
    if uri.startswith("sqlite:///"):
        path = uri[len("sqlite:///") :] or None
        if path is not None and uri.startswith("sqlite:////"):
            path = "/" + path.lstrip("/")
    elif uri.startswith("file:"):
        path = uri[len("file:") :].removeprefix("//") or None
    elif "://" not in uri:
        path = uri
    if path is None or path == ":memory:" or os.path.exists(path):
        return
    raise BadTimeSpec(
        f"run:/{run_id} needs the MLflow tracking store that holds the run, and there is none "
        f"at {safe_uri(uri)}; set MLFLOW_TRACKING_URI (e.g. sqlite:///path/to/mlflow.db or "
        "http://host:5000)."
    )


def mlflow_run_time(run_id: str) -> TimeSpec:
    """``run:/<id>``: the run's recorded slice (``infinstor_slice_start``/``_end``), else its
    ``infinstor_snapshot_time`` param, else (a run that logged neither, e.g. one that read no
    S3 yet) its start time; a transform run whose input was no view is refused."""
    try:
        import mlflow.tracking  # noqa: F401
    except ImportError as exc:
        raise BadTimeSpec("run:/ specs need MLflow: pip install mlflow.") from exc
    _require_existing_tracking_store(run_id)
    try:
        client = open_tracking_client()
    except InfinstorError as exc:  # a store MLflow refuses; the spec routes answer 400
        raise BadTimeSpec(f"run:/{run_id} cannot be looked up: {exc.message}") from exc
    try:
        run = client.get_run(run_id)
    except Exception as exc:
        why = redact(exc, [tracking_uri()])
        code = getattr(exc, "get_http_status_code", None)
        if callable(code) and code() >= 500:  # the store failed (unreachable, ...), not the id
            raise BadTimeSpec(
                f"MLflow could not look run {run_id!r} up in the tracking store "
                f"{safe_uri(tracking_uri())} ({why}); check that it is reachable and "
                "MLFLOW_TRACKING_URI is right."
            ) from exc
        raise BadTimeSpec(f"MLflow has no run {run_id!r} ({why}).") from exc
    params = run.data.params
    start, end = params.get("infinstor_slice_start"), params.get("infinstor_slice_end")
    if start or end:
        # A transform over a slice records its bounds; resolving such a run to one instant
        # would silently read a different dataset.
        if not (start and end and start.isdigit() and end.isdigit()):
            raise BadTimeSpec(
                f"run:/{run_id} records an incomplete slice (infinstor_slice_start={start!r}, "
                f"infinstor_slice_end={end!r}); give the slice explicitly as START/END."
            )
        return TimeSpec(kind="slice", start_ms=int(start), end_ms=int(end), text=f"run:/{run_id}")
    value = params.get("infinstor_snapshot_time")
    if value:
        spec = parse_time_spec(value)
        return spec
    if params.get("transform_name"):
        # A transform run with neither: its input was no bucket view (an MLflow run's
        # artifacts or nothing), so no time reproduces it.
        raise BadTimeSpec(
            f"run:/{run_id} is a transform run whose input was not a bucket view "
            f"({params.get('input_spec', 'no input')[:200]}); it names no time to read at."
        )
    return TimeSpec(kind="snapshot", end_ms=int(run.info.start_time), text=f"run:/{run_id}")


@dataclass
class VerifyReport:
    name: str
    fingerprint: str
    index_fingerprint: str
    object_count: int
    index_object_count: int
    s3_checked: int = 0
    s3_missing: list[dict[str, str]] = field(default_factory=list)
    s3_changed: list[dict[str, str]] = field(default_factory=list)

    @property
    def index_matches(self) -> bool:
        return self.fingerprint == self.index_fingerprint

    @property
    def ok(self) -> bool:
        return self.index_matches and not self.s3_missing and not self.s3_changed

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ok": self.ok,
            "fingerprint": self.fingerprint,
            "index_fingerprint": self.index_fingerprint,
            "index_matches": self.index_matches,
            "object_count": self.object_count,
            "index_object_count": self.index_object_count,
            "s3_checked": self.s3_checked,
            "s3_missing": self.s3_missing,
            "s3_changed": self.s3_changed,
        }


class InfinstorService:
    """Holds the index and an S3 client factory; one instance per process."""

    def __init__(
        self,
        index: SnapshotIndex,
        *,
        s3_endpoint_url: str | None = None,
        s3_client_factory: Callable[[], Any] | None = None,
        run_resolver: RunResolver | None = None,
        access_checks: str | bool | None = None,
    ) -> None:
        self.index = index
        self._endpoint = s3_endpoint_url or None
        self._factory = s3_client_factory
        # Who may see what (services/access.py): on by default for a shared index; a bool,
        # or on/off/auto (None: $INFINSTOR_ACCESS_CHECKS, else auto).
        enabled = (
            access_checks
            if isinstance(access_checks, bool)
            else access_checks_enabled(index, access_checks)
        )
        self.access = BucketAccess(self.s3, enabled=enabled)
        # What servers sharing the index agree on: one sync per bucket, events once.
        self.coordination = open_coordination(index)
        # The one view resolver (REST, CLI, transforms and the kernel side all use one).
        self.views = ViewResolver(
            lambda: self.index, run_resolver or mlflow_run_time, access=self.access.require
        )
        self._local = threading.local()
        self._jobs: dict[str, SyncJob] = {}
        self._jobs_lock = threading.Lock()
        path = getattr(index, "path", None)
        self.page_cache = PageCache(path) if isinstance(path, str) and path != ":memory:" else None
        self.watcher: Any = None  # a BucketWatcher, when something keeps buckets current
        self.jobs = JobBoard()  # restores and downloads started over REST
        self._stopping = threading.Event()

    def stop(self) -> None:
        """Ask running syncs to stop after their current page (progress stays saved)."""
        self._stopping.set()

    # -- plumbing ---------------------------------------------------------------------------
    def s3(self) -> Any:
        """A per-thread S3 client (boto3 clients are thread-safe, but their creation is not
        cheap and sessions are not)."""
        client = getattr(self._local, "s3", None)
        if client is None:
            client = self._factory() if self._factory else make_s3_client(self._endpoint)
            self._local.s3 = client
        return client

    def sqs(self) -> Any:
        client = getattr(self._local, "sqs", None)
        if client is None:
            client = make_sqs_client(self._endpoint)
            self._local.sqs = client
        return client

    def parse_spec(self, text: str | int | None, *, default_now: bool = True) -> TimeSpec:
        return self.views.parse_spec(text, default_now=default_now)

    def require_access(self, bucket: str) -> None:
        """Raise AccessDenied (403) unless this process's AWS credentials may read the
        bucket (when access checks are on): asked before any answer from the index."""
        self.access.require(bucket)

    # -- buckets ----------------------------------------------------------------------------
    def versioning_status(self, bucket: str) -> str | None:
        check_bucket_name(bucket)
        return get_versioning(self.s3(), bucket)

    def track(self, bucket: str, *, enable_versioning_consent: bool, events: bool = False) -> str:
        """Enable versioning (with consent) and register the bucket; with ``events`` also
        route its S3 event notifications to an SQS queue. Returns the versioning status the
        bucket had before."""
        check_bucket_name(bucket)
        client = self.s3()
        before = get_versioning(client, bucket)
        if before != "Enabled":
            if not enable_versioning_consent:
                raise BadRequest(
                    f"Tracking bucket {bucket!r} enables S3 versioning on it (history starts "
                    "then; versioned buckets keep every overwritten object, which costs "
                    "storage). Confirm to go ahead."
                )
            enable_versioning(client, bucket)
        self.index.register_bucket(bucket, versioning="Enabled")
        self.index.set_tracked(bucket, True)
        if events:
            enable_events(client, self.sqs(), self.index, bucket)
            if self.watcher is not None:
                self.watcher.ensure(bucket)
        return before or "Disabled"

    def untrack(self, bucket: str, *, forget_history: bool = False) -> None:
        """Remove what track added (the queue and our notification entry) and stop keeping
        the bucket current. Versioning stays on: turning it off would not bring back storage
        and would lose future history. The history indexed so far stays browsable (a sync
        brings it up to date once); with ``forget_history`` it leaves the index too."""
        check_bucket_name(bucket)
        self.require_access(bucket)
        self.index.get_bucket(bucket)
        if self.watcher is not None:
            self.watcher.forget(bucket)
        if self.index.get_event_source(bucket).get("queue_url"):
            disable_events(self.s3(), self.sqs(), self.index, bucket)
        if forget_history:
            # A sync still running would write the bucket back after it is forgotten.
            self._stop_sync_jobs(bucket)
            self.index.forget_bucket(bucket)
        else:
            self.index.set_tracked(bucket, False)

    def bucket_status(self, bucket: str) -> dict[str, Any]:
        self.require_access(bucket)
        record = self.index.get_bucket(bucket)
        source = self.index.get_event_source(bucket)
        doc = record.to_json()
        last_event = source.get("last_event_ms")
        doc.update(
            {
                "tracked": record.tracked_ms is not None,
                "events": bool(source.get("queue_url")),
                "last_event_ms": last_event,
                "lag_ms": (now_ms() - int(last_event)) if last_event else None,
                "events_applied": source.get("events_applied", 0),
                "malformed_events": source.get("malformed_events", 0),
                "last_error": source.get("last_error"),
                "pending_messages": self.watcher.pending(bucket) if self.watcher else None,
                "sync_job": self.running_job_id(bucket),
                # From when the index's answers are complete (a first full pass's start, or
                # an imported inventory's time once the gap since it was closed).
                "exact_since_ms": exact_since(self.index, bucket),
            }
        )
        if self.coordination.shared:
            running = self.coordination.running_sync(bucket)
            doc["sync_elsewhere"] = running.to_json() if running else None
        return doc

    def list_buckets(self) -> list[dict[str, Any]]:
        """Buckets the credentials can see, plus every bucket in the index that they may read,
        with their state."""
        names: dict[str, dict[str, Any]] = {}
        error: str | None = None
        try:
            resp = call_s3(self.s3().list_buckets, "*")
            for b in resp.get("Buckets", []):
                names[b["Name"]] = {"name": b["Name"], "tracked": False}
        except InfinstorError as exc:
            error = exc.message
        for record in self.index.list_buckets():
            # A shared index holds buckets of other users: one these credentials may not
            # read is not shown (unless S3's own bucket list names it; then only its name).
            if not self.access.readable(record.name):
                continue
            names[record.name] = self.bucket_status(record.name)
        out = [names[n] for n in sorted(names)]
        if error:
            for doc in out:
                doc.setdefault("list_error", error)
        return out

    # -- sync jobs --------------------------------------------------------------------------
    def _stop_sync_jobs(self, bucket: str, timeout_s: float = STOP_SYNC_TIMEOUT_S) -> None:
        """Stop the bucket's running sync jobs after their current page and wait for them."""
        with self._jobs_lock:
            running = [
                j for j in self._jobs.values() if j.bucket == bucket and not j.ended.is_set()
            ]
        for job in running:
            job.stop.set()
        for job in running:
            if not job.ended.wait(timeout_s):
                raise Conflict(
                    f"The sync of {bucket!r} did not stop within {timeout_s:.0f} s; try again "
                    "when it has ended."
                )

    def running_job_id(self, bucket: str) -> str | None:
        with self._jobs_lock:
            for job in self._jobs.values():
                if job.bucket == bucket and job.state == "running":
                    return job.id
        return None

    def start_sync_job(
        self,
        bucket: str,
        *,
        full: bool = False,
        runner: Callable[[Callable[[], None]], Any] | None = None,
        parallel: int = 1,
    ) -> SyncJob:
        """Start a sync in the background (``runner`` submits a callable; by default a
        daemon thread of its own, so a long pass never holds a request thread or shutdown).
        A sync already running for the bucket is returned instead of a second."""
        check_bucket_name(bucket)
        self.require_access(bucket)
        self.index.get_bucket(bucket)
        existing = self.running_job_id(bucket)
        if existing is not None:
            return self._jobs[existing]
        elsewhere = self.coordination.running_sync(bucket)
        if elsewhere is not None:
            # Another server of the team syncs it: say so, start nothing.
            return self._remember(self._elsewhere_job(bucket, full, elsewhere))
        job = SyncJob(
            id=uuid.uuid4().hex,
            bucket=bucket,
            full=full,
            started_ms=now_ms(),
            progress=SyncProgress(bucket=bucket),
        )
        self._remember(job)

        def on_progress(p: SyncProgress) -> None:
            job.progress = p

        def run() -> None:
            try:
                if job.stop.is_set():  # stopped before its thread began
                    raise SyncInterrupted(f"The sync of {bucket!r} was stopped before it began.")
                # parallel only when asked for: callers may wrap sync with its old signature
                extra: dict[str, Any] = {"parallel": parallel} if parallel != 1 else {}
                result = self.sync(
                    bucket,
                    full=full,
                    on_progress=on_progress,
                    should_stop=job.stop.is_set,
                    **extra,
                )
                job.warnings = result.warnings
                job.state = "done"
            except SyncBusy as exc:  # another server took the lock first
                job.elsewhere = exc.running
                job.warnings = [exc.message]
                job.state = "elsewhere"
            except InfinstorError as exc:
                job.error = exc.message
                job.state = "error"
            except Exception as exc:  # noqa: BLE001 - reported on the job, logged by caller
                job.error = f"Sync failed unexpectedly: {exc!r}"
                job.state = "error"
            finally:
                job.finished_ms = now_ms()
                job.ended.set()

        if runner is None:
            threading.Thread(target=run, name=f"infinstor-sync-{bucket}", daemon=True).start()
        else:
            runner(run)
        return job

    def _remember(self, job: SyncJob) -> SyncJob:
        with self._jobs_lock:
            # Keep the most recent finished jobs for status queries, not every job ever run.
            finished = [j for j in self._jobs.values() if j.state != "running"]
            for old in finished[:-MAX_FINISHED_JOBS]:
                self._jobs.pop(old.id, None)
            self._jobs[job.id] = job
        return job

    @staticmethod
    def _elsewhere_job(bucket: str, full: bool, running: RunningSync) -> SyncJob:
        job = SyncJob(
            id=uuid.uuid4().hex,
            bucket=bucket,
            full=full,
            started_ms=running.started_ms,
            progress=SyncProgress(bucket=bucket),
            state="elsewhere",
            warnings=[running.describe()],
            elsewhere=running,
        )
        job.finished_ms = now_ms()
        job.ended.set()
        return job

    def get_sync_job(self, job_id: str) -> SyncJob:
        job = self._jobs.get(job_id)
        if job is None:
            raise NotFound(
                f"There is no sync job {job_id!r}; POST buckets/{{bucket}}/sync starts one."
            )
        return job

    # -- objects ----------------------------------------------------------------------------
    def resolve_object(
        self,
        bucket: str,
        key: str,
        *,
        spec: TimeSpec | None = None,
        version_id: str | None = None,
        within: str | None = None,
    ) -> ObjectVersion:
        """The version of ``key`` in the view (or the given version id), from the index;
        ``within`` (a label's prefix): a key outside it is not in the label's view."""
        if not key:
            raise BadRequest("An object key is required.")
        self.require_access(bucket)
        if within and not key.startswith(within) and spec is not None:
            name = f"label {spec.label!r}" if spec.label else "the label's view"
            raise NotFound(
                f"s3://{bucket}/{key} is not in {name}, which holds only s3://{bucket}/{within}."
            )
        if version_id:
            for v in self.index.history(bucket, key):
                if v.version_id == version_id:
                    if v.is_delete_marker:
                        raise NotFound(
                            f"Version {version_id} of s3://{bucket}/{key} is a "
                            "delete marker; it has no content."
                        )
                    return v
            raise NotFound(f"The index knows no version {version_id!r} of s3://{bucket}/{key}.")
        spec = spec or self.parse_spec("now")
        found = self.index.get_version_at(bucket, key, end_ms=spec.end_ms, start_ms=spec.start_ms)
        if found is None:
            raise NotFound(f"s3://{bucket}/{key} does not exist {spec.display()}.")
        return found

    def open_object(
        self,
        version: ObjectVersion,
        bucket: str,
        *,
        byte_range: str | None = None,
        client: Any = None,
    ) -> Any:
        """A streaming body of exactly that version (botocore StreamingBody). ``client``: an
        S3 client to use instead of this thread's (many threads may share one)."""
        # "null" is S3's id of the version written while versioning was off; S3 serves it
        # by that id, while leaving VersionId out would fetch whatever is latest now.
        params: dict[str, Any] = {
            "Bucket": bucket,
            "Key": version.key,
            "VersionId": version.version_id,
        }
        if byte_range:
            params["Range"] = byte_range
        try:
            return call_s3((client or self.s3()).get_object, bucket, **params)
        except UnknownBucket as exc:
            raise NotFound(
                f"Version {version.version_id} of s3://{bucket}/{version.key} is no longer in "
                "S3 (removed by a lifecycle rule or a permanent delete)."
            ) from exc
        except InfinstorError as exc:
            if "NoSuchVersion" in exc.message or "NoSuchKey" in exc.message:
                raise NotFound(
                    f"Version {version.version_id} of s3://{bucket}/{version.key} is no longer "
                    "in S3 (removed by a lifecycle rule or a permanent delete)."
                ) from exc
            raise

    @staticmethod
    def content_type_for(key: str) -> str:
        guessed, _ = mimetypes.guess_type(key)
        if key.lower().endswith((".csv", ".tsv")):
            return "text/csv"
        if key.lower().endswith((".jsonl", ".ndjson")):
            return "application/x-ndjson"
        return guessed or "application/octet-stream"

    def preview_object(
        self, version: ObjectVersion, bucket: str, *, max_bytes: int
    ) -> tuple[bytes, str, bool]:
        """(at most max_bytes of content, content type the UI can show, truncated?)."""
        ctype = self.content_type_for(version.key)
        resp = self.open_object(version, bucket, byte_range=f"bytes=0-{max(0, max_bytes - 1)}")
        body = resp["Body"].read(max_bytes)
        truncated = version.size > len(body)
        if not (ctype.startswith(("text/", "image/")) or ctype in PREVIEWABLE_TEXT):
            try:
                body.decode("utf-8")
                ctype = "text/plain"
            except UnicodeDecodeError:
                ctype = "application/octet-stream"
        return body, ctype, truncated

    def sync(
        self,
        bucket: str,
        *,
        full: bool = False,
        on_progress: Callable[[SyncProgress], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        parallel: int = 1,
    ) -> SyncResult:
        """A pass over the bucket's versions; ``parallel`` > 1 lists that many partitions
        at once (services/backfill.py), and an interrupted parallel pass is always resumed
        in parallel (with at least one stream)."""
        check_bucket_name(bucket)

        def stopping() -> bool:
            return self._stopping.is_set() or (should_stop is not None and should_stop())

        # On a shared index one process syncs a bucket at a time (SyncBusy: who does).
        with self.coordination.sync_lock(bucket, full=full):
            if parallel > 1 or (
                not full and self.index.has_bucket(bucket) and has_partitions(self.index, bucket)
            ):
                # One connection per stream (the per-thread client's pool holds 10).
                client = (
                    self._factory()
                    if self._factory
                    else make_s3_client(self._endpoint, max_pool_connections=max(10, parallel + 4))
                )
                return sync_bucket_parallel(
                    client,
                    self.index,
                    bucket,
                    parallel=parallel,
                    full=full,
                    on_progress=on_progress,
                    should_stop=stopping,
                )
            return sync_bucket(
                self.s3(),
                self.index,
                bucket,
                full=full,
                on_progress=on_progress,
                should_stop=stopping,
            )

    def import_inventory(
        self,
        bucket: str,
        location: str,
        *,
        on_progress: Callable[[SyncProgress], None] | None = None,
    ) -> ImportResult:
        """Backfill the bucket's index from an all-versions S3 Inventory report
        (services/inventory.py); a sync afterwards closes the gap since the report."""
        check_bucket_name(bucket)
        return import_inventory(self.s3(), self.index, bucket, location, on_progress=on_progress)

    # -- queries ----------------------------------------------------------------------------
    def list_objects(
        self,
        bucket: str,
        *,
        spec: TimeSpec,
        prefix: str = "",
        delimiter: str | None = "/",
        max_keys: int = MAX_KEYS_LIMIT,
        token: str | None = None,
        start_after: str | None = None,
        within: str | None = None,
    ) -> ListPage:
        """One page of the view; ``within`` (a label's prefix) keeps the page to the keys
        under it, as the label pins them: a broader prefix lists only the label's part of
        it, a prefix beside it is an error."""
        self.require_access(bucket)
        if not 1 <= max_keys <= MAX_KEYS_LIMIT:
            raise BadRequest(f"max_keys must be between 1 and {MAX_KEYS_LIMIT}.")
        if within and not prefix.startswith(within):
            if not within.startswith(prefix):
                name = f"label {spec.label!r}" if spec.label else "the label's view"
                raise BadRequest(
                    f"s3://{bucket}/{prefix} is outside {name}, which holds only "
                    f"s3://{bucket}/{within}; list that prefix or one under it."
                )
            folder = _folder_holding(within, prefix, delimiter)
            if folder is not None:
                # Every key of the label lies under this one folder of the listing: the
                # page is that folder, if the label's view holds anything there.
                probe = self.index.list_view(
                    bucket,
                    end_ms=spec.end_ms,
                    start_ms=spec.start_ms,
                    prefix=within,
                    delimiter=None,
                    max_keys=1,
                    token=token,
                    start_after=start_after,
                )
                return ListPage(
                    objects=[], prefixes=[folder] if probe.objects else [], next_token=None
                )
            # No delimiter between the two prefixes: the keys under ``within`` group exactly
            # as they do in a listing of ``within`` itself.
            prefix = within
        return self.index.list_view(
            bucket,
            end_ms=spec.end_ms,
            start_ms=spec.start_ms,
            prefix=prefix,
            delimiter=delimiter,
            max_keys=max_keys,
            token=token,
            start_after=start_after,
        )

    def list_objects_json(
        self,
        bucket: str,
        *,
        spec: TimeSpec,
        prefix: str = "",
        delimiter: str | None = "/",
        max_keys: int = MAX_KEYS_LIMIT,
        token: str | None = None,
        start_after: str | None = None,
        within: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> str:
        """One page as JSON text (with ``extra`` fields), from the page cache when nothing
        was committed since the same page was last asked for."""

        def compute() -> str:
            return self.list_objects(
                bucket,
                spec=spec,
                prefix=prefix,
                delimiter=delimiter,
                max_keys=max_keys,
                token=token,
                start_after=start_after,
                within=within,
            ).to_json_text(extra)

        if self.page_cache is None:
            return compute()
        key = (
            bucket,
            spec.kind,
            spec.start_ms,
            spec.end_ms,
            prefix,
            delimiter,
            max_keys,
            token,
            start_after,
            within,
            repr(sorted((extra or {}).items())),
        )
        return self.page_cache.get_or_compute(key, compute)

    def iter_objects(
        self, bucket: str, *, spec: TimeSpec, prefix: str = ""
    ) -> Iterator[ObjectVersion]:
        self.require_access(bucket)
        return self.index.iter_view(
            bucket, end_ms=spec.end_ms, start_ms=spec.start_ms, prefix=prefix
        )

    def diff(
        self, bucket: str, *, prefix: str, from_spec: TimeSpec, to_spec: TimeSpec
    ) -> DiffResult:
        if from_spec.is_slice or to_spec.is_slice:
            raise BadTimeSpec("diff compares two snapshots; give two single times, not slices.")
        self.require_access(bucket)
        return self.index.diff(
            bucket, prefix=prefix, from_ms=from_spec.end_ms, to_ms=to_spec.end_ms
        )

    def history(self, bucket: str, key: str) -> list[ObjectVersion]:
        self.require_access(bucket)
        versions = self.index.history(bucket, key)
        if not versions:
            raise NotFound(f"The index knows no version of s3://{bucket}/{key}.")
        return versions

    def timeline(
        self,
        bucket: str,
        *,
        prefix: str = "",
        from_ms: int | None = None,
        to_ms: int | None = None,
        bins: int = 100,
    ) -> Timeline:
        self.require_access(bucket)
        return self.index.timeline(bucket, prefix=prefix, from_ms=from_ms, to_ms=to_ms, bins=bins)

    # -- labels -----------------------------------------------------------------------------
    def list_labels(self, bucket: str | None = None) -> list[LabelRecord]:
        """Labels, without those of buckets these credentials may not read."""
        if bucket is not None:
            self.require_access(bucket)
            return self.index.list_labels(bucket)
        return [x for x in self.index.list_labels(None) if self.access.readable(x.bucket)]

    def get_label(self, name: str) -> LabelRecord:
        label = self.index.get_label(name)
        self.require_access(label.bucket)
        return label

    def delete_label(self, name: str) -> None:
        self.get_label(name)
        self.index.delete_label(name)

    def view_fingerprint(self, bucket: str, prefix: str, spec: TimeSpec) -> tuple[str, int, int]:
        count = 0
        total = 0
        pairs = []
        for obj in self.iter_objects(bucket, spec=spec, prefix=prefix):
            pairs.append((obj.key, obj.version_id))
            count += 1
            total += obj.size
        return fingerprint(pairs, presorted=True), count, total

    def create_label(
        self,
        name: str,
        bucket: str,
        prefix: str,
        spec: TimeSpec,
        *,
        description: str = "",
        on_catch_up: Callable[[str], None] | None = None,
        on_progress: Callable[[SyncProgress], None] | None = None,
        created_by: str | None = None,
        indexed: bool = False,
    ) -> LabelRecord:
        """Pin a view under a new name. Two users creating the same name at once: the
        index's unique name decides, the second gets Conflict (409). ``created_by``: the
        Jupyter user (REST); by default the OS (or JupyterHub) user of this process.
        ``indexed``: the caller has just read the prefix into the index with a listing that
        began after the view's last second (a restore's re-check), so no catch-up is needed."""
        if not LABEL_NAME_RE.match(name or ""):
            raise BadRequest(
                f"{name!r} is not a valid label name: use 1-128 letters, digits, '.', '_' or "
                "'-', starting with a letter or digit."
            )
        if len(description) > MAX_LABEL_DESCRIPTION:
            raise BadRequest(
                f"The description has {len(description):,} characters; a label's description "
                f"holds at most {MAX_LABEL_DESCRIPTION:,} (keep long notes in a file the label "
                "covers)."
            )
        self.require_access(bucket)
        record = self.index.get_bucket(bucket)  # unknown bucket -> friendly 404
        try:
            self.index.get_label(name)
        except UnknownLabel:
            pass
        else:
            raise Conflict(
                f"A label named {name!r} already exists; labels are immutable, so pick another "
                "name (or delete the old label first)."
            )
        refuse_future(spec)
        if not indexed:
            self.index_through(
                bucket,
                prefix,
                spec,
                record=record,
                on_catch_up=on_catch_up,
                on_progress=on_progress,
            )
        fp, count, total = self.view_fingerprint(bucket, prefix, spec)
        label = LabelRecord(
            name=name,
            bucket=bucket,
            prefix=prefix,
            kind=spec.kind,
            start_ms=spec.start_ms,
            end_ms=spec.end_ms,
            spec=spec.canonical(),
            fingerprint=fp,
            object_count=count,
            total_bytes=total,
            description=description,
            created_ms=now_ms(),
            created_by=created_by or current_user(),
        )
        self.index.insert_label(label)
        return label

    def index_through(
        self,
        bucket: str,
        prefix: str,
        spec: TimeSpec,
        *,
        record: BucketRecord | None = None,
        on_catch_up: Callable[[str], None] | None = None,
        on_progress: Callable[[SyncProgress], None] | None = None,
    ) -> None:
        """Make the index hold every version under ``prefix`` up to the end of ``spec``,
        before something pins that view (a label, a transform's input manifest).

        Everything created before the last full pass started is in the index; a view at a
        later time could otherwise pin content that misses versions not indexed yet (and
        "drift" once a sync brings them). So the prefix is read from S3 again, once the
        view's last second is over: S3 lists whole seconds, and a version written later in
        that second would be listed with a time inside the view."""
        record = record or self.index.get_bucket(bucket)
        if not needs_catch_up(record, spec):
            return
        since = record.synced_through()
        if on_catch_up is not None:
            on_catch_up(
                f"Reading s3://{bucket}/{prefix} again from S3 first: the index holds "
                f"it up to {since}, before {spec.display()}."
            )
        try:
            if prefix:
                read_again(self.s3(), self.index, bucket, spec, prefix=prefix)
            else:
                # A fresh pass: resuming an interrupted one would list only the keys after
                # its checkpoint, and count as complete from when that pass began.
                wait_past_second(spec.end_ms)
                self.sync(bucket, full=True, on_progress=on_progress)
        except InfinstorError as exc:
            raise type(exc)(
                f"The index holds s3://{bucket} only up to {since}, and reading "
                f"s3://{bucket}/{prefix} again for the view {spec.display()} failed: {exc} "
                "Sync the bucket once S3 is reachable, or pick an earlier time."
            ) from exc

    def verify_label(self, name: str, *, check_s3: bool = True, workers: int = 8) -> VerifyReport:
        label = self.get_label(name)
        spec = label_spec(label)
        objects = list(self.iter_objects(label.bucket, spec=spec, prefix=label.prefix))
        index_fp = fingerprint(((o.key, o.version_id) for o in objects), presorted=True)
        report = VerifyReport(
            name=name,
            fingerprint=label.fingerprint,
            index_fingerprint=index_fp,
            object_count=label.object_count,
            index_object_count=len(objects),
        )
        if not check_s3:
            return report
        client = self.s3()

        # Only an answer about the version itself is drift. An endpoint, credentials or
        # bucket problem means nothing could be checked: an error, not "missing" objects.
        def cannot_check(exc: InfinstorError) -> InfinstorError:
            return type(exc)(f"Cannot check label {name!r} against S3: {exc}")

        try:
            call_s3(client.head_bucket, label.bucket, Bucket=label.bucket)
        except InfinstorError as exc:
            raise cannot_check(exc) from exc
        failed = threading.Event()

        def head(obj: ObjectVersion) -> tuple[ObjectVersion, str | None, str | None]:
            if failed.is_set():
                return obj, None, None  # the report is abandoned; do not wait on S3
            try:
                resp = call_s3(
                    client.head_object,
                    label.bucket,
                    Bucket=label.bucket,
                    Key=obj.key,
                    VersionId=obj.version_id,
                )
            except InfinstorError as exc:
                # HEAD answers carry no error code: 404 (no such version or key), 400 (a
                # version id this store does not know) and 405 (the id is now a delete
                # marker) say the version is not there.
                status = s3_error_status(exc)
                if status in _HEAD_VERSION_GONE:
                    return obj, "missing", _HEAD_VERSION_GONE[status]
                failed.set()
                raise cannot_check(exc) from exc
            etag = resp.get("ETag", "")
            if obj.etag and etag and etag != obj.etag:
                return obj, "changed", etag
            return obj, None, None

        with ThreadPoolExecutor(max_workers=workers) as pool:
            for obj, problem, detail in pool.map(head, objects):
                report.s3_checked += 1
                if problem == "missing":
                    report.s3_missing.append(
                        {"key": obj.key, "version_id": obj.version_id, "error": detail or ""}
                    )
                elif problem == "changed":
                    report.s3_changed.append(
                        {
                            "key": obj.key,
                            "version_id": obj.version_id,
                            "etag": obj.etag,
                            "s3_etag": detail or "",
                        }
                    )
        return report
