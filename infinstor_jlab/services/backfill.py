"""A bucket's first sync (or any full pass) as N ListObjectVersions streams at once.

The key space is cut into partitions, each a key range (lo, hi] (None = unbounded): first at
the bucket's top-level common prefixes (one ListObjectVersions with Delimiter), then, while
the pass runs, a stream that runs out of work splits the busiest partition at a KeyMarker
point between where that partition's listing has got to and its end (a big flat range is
halved again and again, like a binary search, without listing it twice).

Within a partition pages are handled exactly as by the single stream (services/sync.py): a
key's versions are merged in one call, in listing order, through the same ``order_chains``,
so the index ends up identical. After each merge the partitions' positions are saved
(``scan_partitions`` bucket meta): a restart resumes every partition where it stopped, and a
merge repeated after a crash writes nothing (merging is idempotent).
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ..errors import InfinstorError
from ..index.base import SnapshotIndex
from ..index.models import VersionEntry
from ..timespec import now_ms
from .s3 import call_s3, list_versions_page, s3_error_code, s3_error_status
from .sync import (
    SyncInterrupted,
    SyncProgress,
    SyncResult,
    is_split_listing,
    order_chains,
    record_exact_since,
    register_versioning,
)

SCAN_META = "scan_partitions"
DEFAULT_PARALLEL = 16
#: Our own answer to S3's SlowDown/503 after botocore's retries gave up: this many more
#: tries with exponential backoff (full jitter) capped at BACKOFF_CAP_S.
BACKOFF_TRIES = 8
BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 20.0
#: Printable ASCII is the alphabet of split points: KeyMarker values every store accepts.
_LOW, _HIGH = 0x20, 0x7E
_BASE = _HIGH - _LOW + 2  # digit 0 = end of string
_DIGITS = 16
#: Probes (each one request) spent narrowing a split point to where the keys are.
SPLIT_PROBES = 12


def split_point(lo: str | None, hi: str | None) -> str | None:
    """A key marker strictly between ``lo`` and ``hi`` (None = either end of the key
    space), about half-way in key order; None when there is no such printable string."""

    def value(s: str) -> int:
        n = 0
        for i in range(_DIGITS):
            d = 0 if i >= len(s) else min(max(ord(s[i]) - _LOW + 1, 1), _BASE - 1)
            n = n * _BASE + d
        return n

    a = 0 if lo is None else value(lo)
    b = _BASE**_DIGITS if hi is None else value(hi)
    m = (a + b) // 2
    digits = []
    for _ in range(_DIGITS):
        digits.append(m % _BASE)
        m //= _BASE
    chars = []
    for d in reversed(digits):
        if d == 0:
            break
        chars.append(chr(d - 1 + _LOW))
    mid = "".join(chars)
    if not mid or (lo is not None and mid <= lo) or (hi is not None and mid >= hi):
        return None
    return mid


@dataclass
class Partition:
    """Keys in (lo, hi]; ``lo`` moves forward as pages are merged (everything up to and
    including it is committed)."""

    lo: str | None
    hi: str | None
    done: bool = False
    # not saved: where the listing has got to, and how many pages it has listed this run
    listed_to: str | None = None
    pages: int = 0
    running: bool = False


def _load(raw: str | None) -> tuple[int, bool, list[Partition]] | None:
    if not raw:
        return None
    doc = json.loads(raw)
    parts = [Partition(lo=p[0], hi=p[1], done=bool(p[2])) for p in doc["parts"]]
    return int(doc["started_ms"]), bool(doc["split_style"]), parts


def _dump(started: int, split_style: bool, parts: list[Partition]) -> str:
    return json.dumps(
        {
            "v": 1,
            "started_ms": started,
            "split_style": split_style,
            "parts": [[p.lo, p.hi, p.done] for p in parts],
        }
    )


def has_partitions(index: SnapshotIndex, bucket: str) -> bool:
    """Whether an interrupted parallel pass of the bucket waits to be resumed."""
    return bool(index.get_bucket_meta(bucket, SCAN_META))


def with_backoff(fn: Callable[[], Any], *, stop: threading.Event | None = None) -> Any:
    """``fn()``, answering S3's SlowDown / 503 (after botocore's own retries) by waiting
    and trying again."""
    for attempt in range(BACKOFF_TRIES + 1):
        try:
            return fn()
        except InfinstorError as exc:
            slow = s3_error_code(exc) in ("SlowDown", "RequestLimitExceeded", "Throttling")
            if attempt == BACKOFF_TRIES or not (slow or s3_error_status(exc) in (500, 503)):
                raise
            delay = random.uniform(0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**attempt))
            if stop is not None and stop.wait(delay):
                raise
            if stop is None:
                time.sleep(delay)
    raise AssertionError("unreachable")


def snap_to_key(client: Any, bucket: str, point: str, *, page_size: int = 1) -> str | None:
    """The first key listed after ``point`` (None: no key after it).

    Partition bounds are always keys that exist: S3 lists the keys after any KeyMarker, but
    some stores (moto) skip the first version at or after a KeyMarker, which loses a version
    when the marker is not itself a key; after a key's own name they skip only a version of
    that key, which belongs to the partition before."""
    page = with_backoff(
        lambda: list_versions_page(client, bucket, key_marker=point, max_keys=page_size)
    )
    return page.entries[0].key if page.entries else None


def plan_partitions(client: Any, bucket: str, *, want: int) -> list[Partition]:
    """Partitions at the bucket's first-level common prefixes (and the second level when
    the first gives fewer than ``want``), from one page of a Delimiter listing each, each
    bound moved to the first key at or after its prefix."""

    def prefixes(prefix: str) -> list[str]:
        params: dict[str, Any] = {"Bucket": bucket, "Delimiter": "/", "MaxKeys": 1000}
        if prefix:
            params["Prefix"] = prefix
        resp = with_backoff(lambda: call_s3(client.list_object_versions, bucket, **params))
        return [p["Prefix"] for p in resp.get("CommonPrefixes", []) if p.get("Prefix")]

    points = prefixes("")
    if 0 < len(points) < want:
        deeper: list[str] = []
        with ThreadPoolExecutor(max_workers=min(16, len(points))) as pool:
            for found in pool.map(prefixes, points):
                deeper.extend(found)
        points = sorted(set(points) | set(deeper))
    if len(points) > want:
        # More would cost probes, and each partition's last page reads up to a page past
        # its end; streams split big partitions as they go anyway.
        step = len(points) / want
        points = [points[int(i * step)] for i in range(want)]
    keys: set[str] = set()
    if points:
        with ThreadPoolExecutor(max_workers=min(16, len(points))) as pool:
            keys = {k for k in pool.map(lambda p: snap_to_key(client, bucket, p), points) if k}
    bounds: list[str | None] = [None, *sorted(keys), None]
    return [Partition(lo=bounds[i], hi=bounds[i + 1]) for i in range(len(bounds) - 1)]


class _Restart(Exception):
    """The store lists delete markers apart from versions: the pass starts over in split
    style (as the single stream does)."""


def sync_bucket_parallel(
    client: Any,
    index: SnapshotIndex,
    bucket: str,
    *,
    parallel: int = DEFAULT_PARALLEL,
    full: bool = False,
    page_size: int = 1000,
    on_progress: Callable[[SyncProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> SyncResult:
    """One pass over the bucket's versions with ``parallel`` streams; the index ends up as
    :func:`~infinstor_jlab.services.sync.sync_bucket` leaves it. An interrupted parallel
    pass resumes (unless ``full``); a single-stream checkpoint is taken over."""
    versioning, warnings = register_versioning(client, index, bucket)
    parallel = max(1, min(int(parallel), 256))
    progress = SyncProgress(bucket=bucket)
    while True:
        try:
            _run_pass(
                client,
                index,
                bucket,
                parallel=parallel,
                full=full,
                page_size=page_size,
                progress=progress,
                on_progress=on_progress,
                should_stop=should_stop,
            )
            break
        except _Restart:
            full = True  # the state was cleared; list everything again in split style
            progress.versions_seen = progress.pages = 0  # the count is of the bucket's versions
    progress.done = True
    if on_progress is not None:
        on_progress(progress)
    return SyncResult(progress=progress, versioning=versioning, warnings=warnings)


def _run_pass(
    client: Any,
    index: SnapshotIndex,
    bucket: str,
    *,
    parallel: int,
    full: bool,
    page_size: int,
    progress: SyncProgress,
    on_progress: Callable[[SyncProgress], None] | None,
    should_stop: Callable[[], bool] | None,
) -> None:
    split_style = index.get_listing_style(bucket) == "split"
    loaded = None if full else _load(index.get_bucket_meta(bucket, SCAN_META))
    if loaded is not None:
        started, saved_split, parts = loaded
        split_style = split_style or saved_split
        progress.resumed_after = None  # per partition: no one key to name
    else:
        checkpoint = None if full else index.get_checkpoint(bucket)
        if checkpoint is not None:
            # A single-stream pass stopped after key_marker: list the rest in parallel.
            started = checkpoint.started_ms
            parts = [Partition(lo=None, hi=checkpoint.key_marker, done=True)]
            parts.append(Partition(lo=checkpoint.key_marker, hi=None))
            progress.resumed_after = checkpoint.key_marker
        else:
            started = now_ms()
            parts = plan_partitions(client, bucket, want=parallel * 2)
        index.set_bucket_meta(bucket, SCAN_META, _dump(started, split_style, parts))
    lock = threading.Lock()
    stop = threading.Event()
    restart = threading.Event()
    failure: list[BaseException] = []
    progress.partitions_total = len(parts)
    progress.partitions_done = sum(p.done for p in parts)

    def save() -> None:
        index.set_bucket_meta(bucket, SCAN_META, _dump(started, split_style, parts))

    def report() -> None:
        progress.partitions_total = len(parts)
        progress.partitions_done = sum(p.done for p in parts)
        if on_progress is not None:
            on_progress(progress)

    def take() -> Partition | None:
        """A partition to list: one nobody lists, else half of the busiest one."""
        with lock:
            for p in parts:
                if not p.done and not p.running:
                    p.running = True
                    return p
            busy = sorted(
                (p for p in parts if p.running and not p.done and p.pages >= 2),
                key=lambda p: -p.pages,
            )
            candidates = [(p, p.listed_to or p.lo, p.hi) for p in busy]
        for p, after, hi in candidates:
            # Halve (after, hi) until a key lies in its upper half: a range open to the
            # end of the key space (or sparse near its end) is narrowed to where keys are.
            key = None
            for _ in range(SPLIT_PROBES):
                mid = split_point(after, hi)
                if mid is None or stop.is_set():
                    break
                key = snap_to_key(client, bucket, mid)  # outside the lock: an S3 request
                if key is not None and (p.hi is None or key < p.hi):
                    break
                key, hi = None, mid  # no key in (mid, hi): the rest lies below mid
            if key is None:
                continue
            with lock:
                after = p.listed_to or p.lo
                if (
                    key is None
                    or p.done
                    or not p.running
                    or (after is not None and key <= after)
                    or (p.hi is not None and key >= p.hi)
                ):
                    continue
                new = Partition(lo=key, hi=p.hi, running=True)
                p.hi = key
                parts.insert(parts.index(p) + 1, new)
                save()
                return new
        return None

    def list_partition(part: Partition) -> None:
        nonlocal split_style
        key_marker: str | None = part.lo
        vid_marker: str | None = None
        held: list[VersionEntry] = []
        held_latest: list[bool] = []
        while True:
            if stop.is_set():
                return
            page = with_backoff(
                lambda km=key_marker, vm=vid_marker: list_versions_page(  # type: ignore[misc]
                    client, bucket, key_marker=km, version_id_marker=vm, max_keys=page_size
                ),
                stop=stop,
            )
            with lock:
                if stop.is_set():
                    return
                progress.pages += 1
                # Count only this partition's versions: a listing runs on past `hi` into
                # the next partition's keys, which that partition counts.
                progress.versions_seen += sum(
                    1
                    for e in page.entries
                    if (part.lo is None or e.key > part.lo)
                    and (part.hi is None or e.key <= part.hi)
                )
                part.pages += 1
                if page.entries:
                    part.listed_to = max(part.listed_to or "", page.entries[-1].key)
                if not split_style and is_split_listing(page.entries, page.latest):
                    # As the single stream: keys merged before took the listing's order as
                    # their chain order, which on this store it is not. The state goes first,
                    # so that a crash in between also starts over.
                    index.set_bucket_meta(bucket, SCAN_META, None)
                    index.set_listing_style(bucket, "split")
                    restart.set()
                    stop.set()
                    return
                lo, hi = part.lo, part.hi
                entries = held + page.entries
                latest = held_latest + page.latest
                # Only this partition's keys, and none already committed (KeyMarker alone
                # lists part of that key on some stores).
                if any(
                    (lo is not None and e.key <= lo) or (hi is not None and e.key > hi)
                    for e in entries
                ):
                    pairs = [
                        (e, f)
                        for e, f in zip(entries, latest)
                        if (lo is None or e.key > lo) and (hi is None or e.key <= hi)
                    ]
                    entries, latest = [p[0] for p in pairs], [p[1] for p in pairs]
                beyond = hi is not None and any(e.key > hi for e in page.entries)
                finished = not page.truncated or beyond
                if not finished and entries:
                    last_key = max(e.key for e in entries)
                    complete = [e for e in entries if e.key != last_key]
                    complete_latest = [f for e, f in zip(entries, latest) if e.key != last_key]
                    held = [e for e in entries if e.key == last_key]
                    held_latest = [f for e, f in zip(entries, latest) if e.key == last_key]
                    through: str | None = max((e.key for e in complete), default=None)
                elif finished:
                    complete, complete_latest, through = entries, latest, hi
                    held, held_latest = [], []
                else:
                    complete, complete_latest, through = [], [], None
                if complete or finished:
                    progress.versions_written += index.merge_listing(
                        bucket,
                        order_chains(complete, complete_latest, split_style=split_style),
                        after_key=lo,
                        through_key=through,
                        scan_started_ms=started,
                        checkpoint=False,
                    )
                    if finished:
                        part.done = True
                    else:
                        part.lo = through
                    save()
                report()
                if finished:
                    return
            if should_stop is not None and should_stop():
                stop.set()
                return
            if page.next_key_marker:
                key_marker, vid_marker = page.next_key_marker, page.next_version_id_marker
            elif page.entries:  # some stores omit the markers
                key_marker, vid_marker = page.entries[-1].key, page.entries[-1].version_id

    def worker() -> None:
        try:
            while not stop.is_set():
                part = take()
                if part is None:
                    with lock:
                        if all(p.done for p in parts):
                            return
                    time.sleep(0.05)  # wait for a busy partition to become splittable
                    continue
                try:
                    list_partition(part)
                finally:
                    with lock:
                        part.running = False
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            with lock:
                failure.append(exc)
            stop.set()

    threads = [
        threading.Thread(target=worker, name=f"infinstor-list-{i}", daemon=True)
        for i in range(parallel)
    ]
    for t in threads:
        t.start()
    try:
        for t in threads:
            while t.is_alive():
                t.join(0.2)
    except BaseException:
        stop.set()  # Ctrl-C: the streams stop after their page; what is merged is saved
        for t in threads:
            t.join()
        raise
    if restart.is_set():
        raise _Restart()
    if failure:
        raise failure[0]
    if not all(p.done for p in parts):
        raise SyncInterrupted(
            f"The sync of {bucket!r} was stopped after {progress.versions_seen:,} versions; "
            "its progress is saved and the next sync resumes from there."
        )
    index.finish_scan(bucket, started)
    record_exact_since(index, bucket, started)
    index.set_bucket_meta(bucket, SCAN_META, None)
