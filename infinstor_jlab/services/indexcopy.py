"""Moving in: copy a whole snapshot index from one URL to another (SQLite <-> PostgreSQL, or
SQLite -> SQLite), then prove the copy by fingerprints.

What is copied: every tracked bucket (versioning, tracked or not, its event queue, its listing
style, and every version and delete marker in chain order with its time precision and
sequencer; its last completed pass, so "exact from" stays what it was), every label (with who
made it), and the transforms with their revisions and runs. What is not: view credentials
(their secrets derive from a master key that belongs to the source; issue new ones on the
destination) and event counters.

Verification, per bucket: a SHA-256 over (key, version id, time, delete marker) of the whole
history, in chain order, read back from both indexes, plus the version counts; per label: its
view's fingerprint recomputed on the destination equals the one the label pinned.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..errors import BadRequest, Conflict, UnknownLabel
from ..fingerprint import fingerprint
from ..index.base import SnapshotIndex
from ..index.models import VersionEntry
from ..timespec import now_ms
from .views import label_spec

#: Versions merged into the destination per call (one transaction each).
COPY_BATCH = 20_000


@dataclass
class CopyProgress:
    bucket: str = ""
    versions_done: int = 0
    versions_total: int = 0
    done: bool = False


@dataclass
class CopyReport:
    source: str
    destination: str
    buckets: list[dict[str, Any]] = field(default_factory=list)
    labels: list[dict[str, Any]] = field(default_factory=list)
    transforms: int = 0
    transform_runs: int = 0
    versions: int = 0

    @property
    def ok(self) -> bool:
        return all(b["match"] for b in self.buckets) and all(x["match"] for x in self.labels)

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "destination": self.destination,
            "ok": self.ok,
            "versions": self.versions,
            "buckets": self.buckets,
            "labels": self.labels,
            "transforms": self.transforms,
            "transform_runs": self.transform_runs,
            "not_copied": ["view credentials (issue new ones on the destination)"],
        }


def history_fingerprint(entries: Iterable[VersionEntry]) -> tuple[str, int]:
    """(SHA-256 over every version's key, id, time and kind, in the order given; count)."""
    h = hashlib.sha256()
    count = 0
    for e in entries:
        line = [e.key, e.version_id, e.time_ms, bool(e.is_delete_marker)]
        h.update((json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n").encode())
        count += 1
    return "sha256:" + h.hexdigest(), count


def _batches(entries: Iterator[VersionEntry], size: int) -> Iterator[list[VersionEntry]]:
    """Lists of whole chains of about ``size`` versions (a key's chain is never split:
    ``merge_listing`` takes complete chains of the keys in its range)."""
    out: list[VersionEntry] = []
    for e in entries:
        if len(out) >= size and out[-1].key != e.key:
            yield out
            out = []
        out.append(e)
    if out:
        yield out


def refuse_non_empty(dst: SnapshotIndex, where: str) -> None:
    buckets = dst.list_buckets()
    labels = dst.list_labels()
    if buckets or labels:
        raise BadRequest(
            f"The destination index at {where} is not empty ({len(buckets)} bucket(s), "
            f"{len(labels)} label(s)). Copy into a new, empty index, or add --force to replace "
            "the history of the copied buckets there (labels of the same name must be the same "
            "view; others there are kept)."
        )


def copy_index(
    src: SnapshotIndex,
    dst: SnapshotIndex,
    *,
    source: str,
    destination: str,
    force: bool = False,
    on_progress: Callable[[CopyProgress], None] | None = None,
    copy_transforms: Callable[[], tuple[int, int]] | None = None,
) -> CopyReport:
    """Copy ``src`` into ``dst`` and verify. ``source``/``destination`` name them in messages
    (without passwords). ``copy_transforms`` copies the transform store and returns (revisions,
    runs)."""
    if not force:
        refuse_non_empty(dst, destination)
    report = CopyReport(source=source, destination=destination)
    records = src.list_buckets()
    progress = CopyProgress(versions_total=sum(r.version_count for r in records))
    for record in records:
        progress.bucket = record.name
        dst.register_bucket(record.name, versioning=record.versioning)
        dst.set_tracked(record.name, record.tracked_ms is not None)
        style = src.get_listing_style(record.name)
        if style:
            dst.set_listing_style(record.name, style)
        source_events = src.get_event_source(record.name)
        if source_events.get("queue_url"):
            dst.set_event_source(
                record.name,
                queue_url=source_events.get("queue_url"),
                queue_arn=source_events.get("queue_arn"),
                notification_id=source_events.get("notification_id"),
            )
        # Everything already in the destination's bucket that the source lacks goes: the copy
        # is the source's history (only with --force can there be anything).
        started = now_ms() + 3_600_000
        after: str | None = None
        for batch in _batches(src.iter_versions(record.name), COPY_BATCH):
            dst.merge_listing(
                record.name,
                batch,
                after_key=after,
                through_key=batch[-1].key,
                scan_started_ms=started,
                checkpoint=False,
            )
            after = batch[-1].key
            progress.versions_done += len(batch)
            if on_progress is not None:
                on_progress(progress)
        dst.merge_listing(
            record.name,
            [],
            after_key=after,
            through_key=None,
            scan_started_ms=started,
            checkpoint=False,
        )
        if record.last_sync_ms is not None:
            dst.finish_scan(record.name, record.last_sync_ms)
    for label in src.list_labels():
        try:
            there = dst.get_label(label.name)
        except UnknownLabel:
            dst.insert_label(label)
        else:
            if (there.bucket, there.prefix, there.fingerprint) != (
                label.bucket,
                label.prefix,
                label.fingerprint,
            ):
                raise Conflict(
                    f"The destination already has a label {label.name!r} for another view; "
                    "labels are immutable: delete it there, or copy into an empty index."
                )
    if copy_transforms is not None:
        report.transforms, report.transform_runs = copy_transforms()
    progress.done = True
    if on_progress is not None:
        on_progress(progress)
    report.versions = progress.versions_done
    _verify(src, dst, report)
    return report


def _verify(src: SnapshotIndex, dst: SnapshotIndex, report: CopyReport) -> None:
    for record in src.list_buckets():
        want, want_n = history_fingerprint(src.iter_versions(record.name))
        got, got_n = history_fingerprint(dst.iter_versions(record.name))
        report.buckets.append(
            {
                "bucket": record.name,
                "versions": want_n,
                "copied_versions": got_n,
                "fingerprint": want,
                "copied_fingerprint": got,
                "match": want == got and want_n == got_n,
            }
        )
    for label in src.list_labels():
        spec = label_spec(label)
        pairs = (
            (o.key, o.version_id)
            for o in dst.iter_view(
                label.bucket, end_ms=spec.end_ms, start_ms=spec.start_ms, prefix=label.prefix
            )
        )
        got = fingerprint(pairs, presorted=True)
        report.labels.append(
            {
                "label": label.name,
                "fingerprint": label.fingerprint,
                "copied_fingerprint": got,
                "match": got == label.fingerprint,
            }
        )
