"""The storage interface every snapshot-index backend implements.

Callers (services, CLI, handlers, boto3 hooks) depend only on this class; a PostgreSQL backend
slots in by implementing it and registering its URL scheme in :func:`infinstor_jlab.index.open_index`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence

from ..errors import UnknownBucket
from .models import (
    BucketRecord,
    DiffResult,
    EventSource,
    LabelRecord,
    ListPage,
    ObjectVersion,
    SyncCheckpoint,
    Timeline,
    VersionEntry,
)

MAX_KEYS_LIMIT = 1000


class SnapshotIndex(ABC):
    """Per bucket, every known version of every key, in chain order (newest first).

    Queries answer "as of T" (snapshot) or "newest in [T1, T2]" (slice) with S3 ListObjectsV2
    semantics. All times are UTC epoch milliseconds, all bounds inclusive.
    """

    # -- buckets ---------------------------------------------------------------------------
    @abstractmethod
    def register_bucket(self, bucket: str, *, versioning: str | None = None) -> None:
        """Add a bucket (tracked from now) or update its versioning status."""

    @abstractmethod
    def set_tracked(self, bucket: str, tracked: bool) -> None:
        """Whether the bucket is kept current. An untracked bucket keeps its history, which
        stays browsable; it shows ``tracked_ms`` None."""

    @abstractmethod
    def get_bucket(self, bucket: str) -> BucketRecord:
        """Raise UnknownBucket if the bucket is not in the index."""

    def has_bucket(self, bucket: str) -> bool:
        """Whether the bucket is in the index. Every time-travel read asks this, so a backend
        should answer it without computing a BucketRecord's figures."""
        try:
            self.get_bucket(bucket)
        except UnknownBucket:
            return False
        return True

    def estimate_versions(self, bucket: str, prefix: str) -> int:
        """An upper bound on the versions under ``prefix`` (what reading it again from S3
        would cost), quickly; by default the bucket's count."""
        return self.get_bucket(bucket).version_count

    @abstractmethod
    def list_buckets(self) -> list[BucketRecord]: ...

    @abstractmethod
    def forget_bucket(self, bucket: str) -> None: ...

    # -- ingest ----------------------------------------------------------------------------
    @abstractmethod
    def merge_listing(
        self,
        bucket: str,
        entries: Sequence[VersionEntry],
        *,
        after_key: str | None,
        through_key: str | None,
        scan_started_ms: int,
        checkpoint: bool = True,
        keys_only: bool = False,
    ) -> int:
        """Merge the complete version chains of the keys in (after_key, through_key] (None =
        unbounded) from a ListObjectVersions pass, in listing order. Versions the listing no
        longer has (and that are older than the scan) are removed. Idempotent. Returns the
        number of rows written. With ``checkpoint`` the scan's position is saved in the same
        transaction. With ``keys_only`` only the keys present in ``entries`` are merged and
        nothing else in the range is touched (a re-list of a few keys after events)."""

    @abstractmethod
    def append_versions(self, bucket: str, entries: Iterable[VersionEntry]) -> int:
        """Add versions learned one at a time (events, time-ordered inserts). Idempotent by
        version id; a version already known keeps its place and its more precise time."""

    def iter_versions(self, bucket: str, *, batch: int = 10_000) -> Iterator[VersionEntry]:
        """Every version and delete marker of the bucket: keys in byte order, each key's
        chain newest first (the order ``merge_listing`` takes), with each version's time
        precision and sequencer. What ``infinstor-jlab index copy`` reads."""
        raise NotImplementedError(f"{type(self).__name__} cannot enumerate its versions yet.")

    @abstractmethod
    def get_checkpoint(self, bucket: str) -> SyncCheckpoint | None: ...

    @abstractmethod
    def finish_scan(self, bucket: str, scan_started_ms: int) -> None:
        """Clear the checkpoint and record a completed pass."""

    @abstractmethod
    def clear_checkpoint(self, bucket: str) -> None: ...

    @abstractmethod
    def remove_versions(self, bucket: str, versions: Iterable[tuple[str, str]]) -> int:
        """Forget versions permanently deleted from S3, given as (key, version id)."""

    @abstractmethod
    def set_event_source(
        self,
        bucket: str,
        *,
        queue_url: str | None,
        queue_arn: str | None,
        notification_id: str | None,
    ) -> None: ...

    @abstractmethod
    def get_event_source(self, bucket: str) -> EventSource:
        """queue_url, queue_arn, notification_id, last_event_ms, events_applied,
        malformed_events, last_error."""

    @abstractmethod
    def record_events(
        self,
        bucket: str,
        *,
        applied: int = 0,
        malformed: int = 0,
        last_event_ms: int | None = None,
        error: str | None = None,
    ) -> None: ...

    def get_bucket_meta(self, bucket: str, name: str) -> str | None:
        """A small named value kept for the bucket (None if unset): a parallel pass's
        per-partition checkpoints (JSON, ``scan_partitions``), the time from which the index
        is exact (``exact_since_ms``). Forgotten with the bucket.

        This default keeps values in memory only, so a backend that does not override it
        still runs parallel passes but cannot resume one in another process."""
        store: dict[tuple[str, str], str] = self.__dict__.setdefault("_bucket_meta", {})
        self.get_bucket(bucket)  # unknown bucket -> UnknownBucket, as a stored value would
        return store.get((bucket, name))

    def set_bucket_meta(self, bucket: str, name: str, value: str | None) -> None:
        """Set (or with None, remove) a value for :meth:`get_bucket_meta`, durably once
        this returns."""
        store: dict[tuple[str, str], str] = self.__dict__.setdefault("_bucket_meta", {})
        self.get_bucket(bucket)
        if value is None:
            store.pop((bucket, name), None)
        else:
            store[(bucket, name)] = value

    @abstractmethod
    def get_listing_style(self, bucket: str) -> str | None:
        """'split' once the store was seen listing delete markers apart from versions."""

    @abstractmethod
    def set_listing_style(self, bucket: str, style: str) -> None: ...

    # -- queries ---------------------------------------------------------------------------
    @abstractmethod
    def list_view(
        self,
        bucket: str,
        *,
        end_ms: int,
        start_ms: int | None = None,
        prefix: str = "",
        delimiter: str | None = None,
        max_keys: int = MAX_KEYS_LIMIT,
        token: str | None = None,
        start_after: str | None = None,
    ) -> ListPage:
        """One page of the snapshot at ``end_ms`` (or the slice [start_ms, end_ms])."""

    @abstractmethod
    def continuation_token(self, position: str, inclusive: bool) -> str:
        """A page token (signed by this index) that resumes a listing at ``position``, keys
        >= it when ``inclusive``; ``list_view`` refuses any token it did not issue."""

    @abstractmethod
    def iter_view(
        self,
        bucket: str,
        *,
        end_ms: int,
        start_ms: int | None = None,
        prefix: str = "",
    ) -> Iterator[ObjectVersion]:
        """Every object of the view under ``prefix``, recursively, in key order."""

    @abstractmethod
    def get_version_at(
        self, bucket: str, key: str, *, end_ms: int, start_ms: int | None = None
    ) -> ObjectVersion | None:
        """The version of one key visible in the view, or None if absent there."""

    @abstractmethod
    def diff(self, bucket: str, *, prefix: str, from_ms: int, to_ms: int) -> DiffResult: ...

    @abstractmethod
    def history(self, bucket: str, key: str) -> list[ObjectVersion]: ...

    @abstractmethod
    def timeline(
        self,
        bucket: str,
        *,
        prefix: str = "",
        from_ms: int | None = None,
        to_ms: int | None = None,
        bins: int = 100,
    ) -> Timeline: ...

    # -- labels ----------------------------------------------------------------------------
    @abstractmethod
    def insert_label(self, label: LabelRecord) -> None:
        """Raise Conflict if the name is taken."""

    @abstractmethod
    def get_label(self, name: str) -> LabelRecord:
        """Raise UnknownLabel if there is none."""

    @abstractmethod
    def list_labels(self, bucket: str | None = None) -> list[LabelRecord]: ...

    @abstractmethod
    def delete_label(self, name: str) -> None: ...

    @abstractmethod
    def close(self) -> None: ...
