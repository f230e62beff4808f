"""Ingest a bucket's history from ListObjectVersions into the snapshot index.

A pass lists every version of the bucket page by page and merges each page's complete keys
into the index in one transaction together with the checkpoint (the last complete key), so a
crash or Ctrl-C loses at most the page in flight and the next run resumes after the
checkpoint. Merging is idempotent: re-listing what is already known writes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import InfinstorError, VersioningDisabled
from ..index.base import SnapshotIndex
from ..index.models import VersionEntry
from ..timespec import now_ms
from .s3 import get_versioning, list_versions_page


@dataclass
class SyncProgress:
    bucket: str
    versions_seen: int = 0
    versions_written: int = 0
    pages: int = 0
    started_s: float = field(default_factory=time.monotonic)
    resumed_after: str | None = None
    done: bool = False
    # A parallel pass's partitions (services/backfill.py); 0 of 0 for the single stream.
    partitions_done: int = 0
    partitions_total: int = 0

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self.started_s
        return self.versions_seen / elapsed if elapsed > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "bucket": self.bucket,
            "versions_seen": self.versions_seen,
            "versions_written": self.versions_written,
            "pages": self.pages,
            "rate": round(self.rate, 1),
            "resumed_after": self.resumed_after,
            "done": self.done,
            "partitions_done": self.partitions_done,
            "partitions_total": self.partitions_total,
        }


#: Bucket meta: the time from which the index's answers are complete (set once, when the
#: first full pass ends), and an imported inventory's time (minus its margin), which that
#: pass then makes the start of exactness.
EXACT_SINCE_META = "exact_since_ms"
INVENTORY_THROUGH_META = "inventory_exact_through_ms"


def record_exact_since(index: SnapshotIndex, bucket: str, pass_started_ms: int) -> None:
    """After a full pass: remember from when the index is exact (kept once set)."""
    if index.get_bucket_meta(bucket, EXACT_SINCE_META) is None:
        since = index.get_bucket_meta(bucket, INVENTORY_THROUGH_META) or str(pass_started_ms)
        index.set_bucket_meta(bucket, EXACT_SINCE_META, since)


def exact_since(index: SnapshotIndex, bucket: str) -> int | None:
    raw = index.get_bucket_meta(bucket, EXACT_SINCE_META)
    return int(raw) if raw else None


class SyncInterrupted(InfinstorError):
    status = 503


@dataclass
class SyncResult:
    progress: SyncProgress
    versioning: str
    warnings: list[str]


def versioning_disabled_message(bucket: str) -> str:
    return (
        f"Bucket {bucket!r} does not have versioning enabled, so S3 keeps no history to "
        f"browse. Run `infinstor-jlab track {bucket}` to enable it (history starts then)."
    )


def is_split_listing(entries: list[VersionEntry], latest: list[bool]) -> bool:
    """True when a page lists delete markers apart from versions.

    S3 interleaves a key's versions and delete markers in chain order (newest first), so
    its pages are in key order and a key's IsLatest entry is its first. Some stores list a
    page's versions, then its delete markers (moto) or the other way round (LocalStack):
    key order restarts, or a key's IsLatest entry comes after another entry of that key.
    """
    if any(entries[i].key < entries[i - 1].key for i in range(1, len(entries))):
        return True
    first_seen: set[str] = set()
    for e, is_latest in zip(entries, latest):
        if is_latest and e.key in first_seen:
            return True
        first_seen.add(e.key)
    return False


def order_chains(
    entries: list[VersionEntry], latest: list[bool], *, split_style: bool = False
) -> list[VersionEntry]:
    """Group a page's entries by key (keys ascending) with each key's chain newest first.

    Within a key the listing order is kept (it is the chain order on S3), entries are
    stably ordered by time, and the IsLatest entry leads; a version listed twice is kept
    once. On a split-style store the order of a version and a delete marker in the same
    second is unknowable; versions are put first, the same way whatever the page
    boundaries, so re-runs agree.
    """
    by_key: dict[str, list[tuple[int, VersionEntry, bool]]] = {}
    seen: set[tuple[str, str]] = set()
    for i, e in enumerate(entries):
        if (e.key, e.version_id) in seen:
            continue  # listed twice across pages: one version is one place in its chain
        seen.add((e.key, e.version_id))
        by_key.setdefault(e.key, []).append((i, e, latest[i] if i < len(latest) else False))
    out: list[VersionEntry] = []
    for key in sorted(by_key):
        chain = by_key[key]
        if len(chain) > 1:
            if split_style:
                chain.sort(
                    key=lambda item: (
                        not item[2],
                        -item[1].time_ms,
                        item[1].is_delete_marker,
                        item[0],
                    )
                )
            else:
                chain.sort(key=lambda item: (not item[2], -item[1].time_ms, item[0]))
        out.extend(item[1] for item in chain)
    return out


def register_versioning(client: Any, index: SnapshotIndex, bucket: str) -> tuple[str, list[str]]:
    """Before a pass: refuse a bucket without versioning, record its versioning status in
    the index, and return that status with the warnings the pass reports (suspended)."""
    versioning = get_versioning(client, bucket)
    if versioning is None:
        raise VersioningDisabled(versioning_disabled_message(bucket))
    warnings: list[str] = []
    if versioning == "Suspended":
        warnings.append(
            f"Versioning is suspended on bucket {bucket!r}: new writes overwrite the 'null' "
            "version in place, so their history is lost. Re-enable it with "
            f"`infinstor-jlab track {bucket}`."
        )
    index.register_bucket(bucket, versioning=versioning)
    return versioning, warnings


def sync_bucket(
    client: Any,
    index: SnapshotIndex,
    bucket: str,
    *,
    full: bool = False,
    page_size: int = 1000,
    on_progress: Callable[[SyncProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> SyncResult:
    """One pass over the bucket's versions. Without ``full`` an interrupted pass resumes
    from its checkpoint; with ``full`` the pass starts again from the first key.
    ``should_stop`` is asked after each committed page: a pass stopped that way raises
    :class:`SyncInterrupted`, and the next sync resumes where it stopped."""
    versioning, warnings = register_versioning(client, index, bucket)
    split_style = index.get_listing_style(bucket) == "split"
    checkpoint = None if full else index.get_checkpoint(bucket)
    progress = SyncProgress(bucket=bucket)
    if checkpoint is not None:
        started = checkpoint.started_ms
        key_marker: str | None = checkpoint.key_marker
        progress.resumed_after = key_marker
    else:
        started = now_ms()
        key_marker = None
    after_key = key_marker
    version_id_marker: str | None = None
    held: list[VersionEntry] = []
    held_latest: list[bool] = []

    while True:
        page = list_versions_page(
            client,
            bucket,
            key_marker=key_marker,
            version_id_marker=version_id_marker,
            max_keys=page_size,
        )
        progress.pages += 1
        progress.versions_seen += len(page.entries)
        if not split_style and is_split_listing(page.entries, page.latest):
            split_style = True
            if after_key is not None:
                # Keys merged earlier in this pass took the listing's order as their chain
                # order, which on this store it is not: list them again. The checkpoint goes
                # first, so that a crash in between also starts over.
                index.clear_checkpoint(bucket)
                index.set_listing_style(bucket, "split")
                key_marker = after_key = version_id_marker = None
                held, held_latest = [], []
                progress.resumed_after = None
                # The count is of the bucket's versions: the pages listed again count once.
                progress.versions_seen = progress.pages = 0
                continue
            index.set_listing_style(bucket, "split")
        entries = held + page.entries
        latest = held_latest + page.latest
        if progress.resumed_after is not None:
            # Every key up to and including the checkpoint's is committed. Stores differ on
            # whether KeyMarker alone lists that key (S3 does not; moto lists part of it,
            # and its next pages go on with the rest): merging any of it again would give
            # those versions new places in a chain the index already has complete.
            resumed = progress.resumed_after
            if any(e.key <= resumed for e in entries):
                pairs = [(e, f) for e, f in zip(entries, latest) if e.key > resumed]
                entries, latest = [p[0] for p in pairs], [p[1] for p in pairs]
        if page.truncated and entries:
            # The last key may continue on the next page: hold it back until it is complete.
            last_key = max(e.key for e in entries)
            keep = [i for i, e in enumerate(entries) if e.key != last_key]
            held = [e for i, e in enumerate(entries) if e.key == last_key]
            held_latest = [latest[i] for i, e in enumerate(entries) if e.key == last_key]
            complete = [entries[i] for i in keep]
            complete_latest = [latest[i] for i in keep]
            through: str | None = max((e.key for e in complete), default=None)
        else:
            complete, complete_latest, through = entries, latest, None
            held, held_latest = [], []
        if complete or not page.truncated:
            progress.versions_written += index.merge_listing(
                bucket,
                order_chains(complete, complete_latest, split_style=split_style),
                after_key=after_key,
                through_key=through,
                scan_started_ms=started,
            )
            after_key = through
        if on_progress is not None:
            on_progress(progress)
        if not page.truncated:
            break
        if should_stop is not None and should_stop():
            raise SyncInterrupted(
                f"The sync of {bucket!r} was stopped after {progress.versions_seen:,} versions; "
                "its progress is saved and the next sync resumes from there."
            )
        if page.next_key_marker:
            key_marker = page.next_key_marker
            version_id_marker = page.next_version_id_marker
        else:  # some stores omit the markers: continue after the last entry listed
            key_marker = page.entries[-1].key if page.entries else key_marker
            version_id_marker = page.entries[-1].version_id if page.entries else None
    index.finish_scan(bucket, started)
    record_exact_since(index, bucket, started)
    progress.done = True
    if on_progress is not None:
        on_progress(progress)
    return SyncResult(progress=progress, versioning=versioning, warnings=warnings)
