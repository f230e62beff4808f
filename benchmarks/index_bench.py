#!/usr/bin/env python3
"""Benchmark of the SQLite snapshot index on a synthetic bucket history.

    python benchmarks/index_bench.py --versions 2000000 --json

builds a synthetic history of N versions directly through the index's ingest path and prints
one JSON object of figures (progress goes to stderr):

* the history spans two years; ~70% of versions are distinct keys, keys are nested 3-5 folder
  levels deep, ~5% of versions are delete markers, some overwrites land in the same second;
* fixed features: loose files at the bucket root (3,000), one folder with 2,000 subfolders
  (``home/``), one level-4 folder of 20,000 files (``datasets/imagenet/train/n01440764/``) and
  one prefix of 100,000 keys (``logs/``); below N = 1,000,000 they shrink proportionally, with
  floors that keep every measured page a full 1000-entry page;
* bulk ingest is ``merge_listing`` fed in ListObjectVersions order (keys ascending, each key's
  versions newest first) in ~50,000-entry batches cut at key boundaries; incremental ingest is
  ``append_versions`` of 100,000 newer versions in batches of 10,000;
* every latency is measured with ``time.perf_counter`` at >= 50 random times T (``--samples``)
  and reported as p50/p95 (nearest rank);
* ``vs_list_object_versions`` runs moto's ThreadedMotoServer, builds a ~5,000-version bucket with
  boto3 and compares answering one recursive snapshot listing by paging ListObjectVersions and
  reconstructing it (what s3-pit-restore does) with the index's ``iter_view``; both answers are
  asserted identical.

The synthetic data is generated lazily, batch by batch, in key order; it is deterministic for a
given ``--seed``. ``--keep DIR`` keeps the database (and a small metadata file) in DIR;
``--reuse`` then skips the build on the next run (``--profile PREFIX`` writes one cProfile file
per phase, e.g. to find where query time goes; profiling slows everything down).
"""

from __future__ import annotations

import argparse
import base64
import bisect
import cProfile
import gc
import json
import logging
import math
import os
import random
import resource
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

try:
    from infinstor_jlab.index import SqliteSnapshotIndex, VersionEntry
except ImportError:  # running from a source tree: benchmarks/ sits next to infinstor_jlab/
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from infinstor_jlab.index import SqliteSnapshotIndex, VersionEntry

BUCKET = "bench-bucket"
DAY_S = 86_400
SPAN_S = 2 * 365 * DAY_S
END_S = 1_790_000_000  # 2026-09-21T13:33:20Z: the newest synthetic version
START_S = END_S - SPAN_S
START_MS = START_S * 1000
END_MS = END_S * 1000 + 999

DISTINCT_KEY_FRACTION = 0.70
DELETE_MARKER_P = 0.19  # per non-first version (never two markers in a row): ~5% of versions
SAME_SECOND_P = 0.05  # an overwrite in the same second as the version before it
BULK_BATCH = 50_000
INCREMENTAL_VERSIONS = 100_000
INCREMENTAL_BATCH = 10_000
PAGE = 1000

BIG_FOLDER = "datasets/imagenet/train/n01440764/"
WIDE_FOLDER = "home/"
HUGE_PREFIX = "logs/"
ROOT_FILE_STEM = "root-file-"

_B64_TO_AWS = bytes.maketrans(b"+/", b"._")
# defaults of VersionEntry fields after (key, version_id, time_ms, size, etag, is_delete_marker,
# precise), so the fast tuple construction below keeps working if the record grows
_EXTRA = tuple(VersionEntry._field_defaults.get(f) for f in VersionEntry._fields[7:])
_WORDS = (
    "raw",
    "processed",
    "images",
    "models",
    "checkpoints",
    "reports",
    "exports",
    "tmp",
    "features",
    "train",
    "val",
    "test",
    "input",
    "output",
    "daily",
    "archive",
    "shared",
    "experiments",
    "runs",
    "notebooks",
    "tables",
    "metrics",
)
_FILE_STEMS = ("part", "img", "chunk", "data", "shard", "frame", "sample", "record", "doc")
_EXTS = ("parquet", "csv", "json", "jpg", "png", "npy", "txt", "pt", "gz", "avro")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(values)
    return s[max(0, math.ceil(q * len(s)) - 1)]


def ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux


# -- the synthetic history ------------------------------------------------------------------


class Plan:
    """Sizes of the history's parts for N versions."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.keys = round(n * DISTINCT_KEY_FRACTION)
        s = min(1.0, n / 1_000_000)
        self.root_files = max(1500, round(3000 * s))
        self.wide_subfolders = max(1200, round(2000 * s))
        self.big_files = max(2000, round(20_000 * s))
        self.huge_keys = max(10_000, round(100_000 * s))
        fixed = self._fixed()
        if fixed > 0.4 * self.keys:  # tiny runs: keep the generic tree the bulk of the bucket
            f = 0.4 * self.keys / fixed
            self.root_files = max(1, int(self.root_files * f))
            self.wide_subfolders = max(1, int(self.wide_subfolders * f))
            self.big_files = max(1, int(self.big_files * f))
            self.huge_keys = max(1, int(self.huge_keys * f))
        self.generic_keys = self.keys - self._fixed()
        if self.generic_keys < 1:
            raise SystemExit("--versions is too small for this benchmark")
        self.top_dirs = max(8, min(200, self.generic_keys // 40_000))

    @property
    def wide_files(self) -> int:
        return sum(1 + i % 3 for i in range(self.wide_subfolders))

    def _fixed(self) -> int:
        return self.root_files + self.wide_files + self.big_files + self.huge_keys

    def to_json(self) -> dict[str, int]:
        return {
            "keys": self.keys,
            "root_files": self.root_files,
            "wide_subfolders": self.wide_subfolders,
            "big_folder_files": self.big_files,
            "huge_prefix_keys": self.huge_keys,
            "generic_keys": self.generic_keys,
            "top_level_folders": self.top_dirs,
        }


def split(n: int, k: int, rng: random.Random) -> list[int]:
    """n into k skewed positive parts (fewer parts when n < k)."""
    k = max(1, min(k, n))
    weights = [rng.expovariate(1.0) + 0.05 for _ in range(k)]
    total = sum(weights)
    parts = [1 + int((n - k) * w / total) for w in weights]
    for _ in range(n - sum(parts)):
        parts[rng.randrange(k)] += 1
    return parts


class History:
    """The synthetic bucket, generated lazily in key order (``batches``).

    Exactly ``plan.n`` versions in ``plan.keys`` keys. Also records what the measurements need:
    creation times in the big and the wide folder, and a sample of keys for incremental ingest.
    """

    def __init__(self, plan: Plan, seed: int) -> None:
        self.plan = plan
        self.rng = random.Random(seed)
        self.rem_keys = plan.keys
        self.rem_extra = plan.n - plan.keys
        self.big_created: list[int] = []
        self.wide_created: list[int] = []
        self.key_sample: list[str] = []
        self.sample_p = min(1.0, 50_000 / plan.keys)
        self.delete_markers = 0
        self.same_second = 0
        self.key_chars = 0

    def _extra_versions(self) -> int:
        """Versions beyond the first for the next key: ~25% of keys get 1 + geometric (mean
        1.7) more; the probability adapts so that the total lands on exactly N."""
        rk, rem = self.rem_keys, self.rem_extra
        if rem <= 0:
            return 0
        if rk <= 1:
            return rem
        rnd = self.rng.random
        q = (rem / rk) / 1.714
        extra = 0
        if rnd() < q:
            extra = 1
            while rnd() < 0.4165:
                extra += 1
        if q > 1:
            extra += int(q)
        return min(extra, rem)

    def keys(self) -> Iterator[tuple[str, int]]:
        """(key, creation time in s) in key order."""
        sections: list[Callable[[], Iterator[tuple[str, int]]]] = [
            self._big_folder,  # datasets/
            self._wide_folder,  # home/
            self._huge_prefix,  # logs/
            self._generic,  # proj-NNN/
            self._root_files,  # root-file-NNNNN.csv
        ]
        for section in sections:
            yield from section()

    def batches(self, data_rng: random.Random, target: int) -> Iterator[list[VersionEntry]]:
        """VersionEntry lists of ~target entries cut at key boundaries, in ListObjectVersions
        order (keys ascending, each key's versions newest first). AWS-style 32-char version
        ids over [A-Za-z0-9._], '"<32 hex>"' ETags, times in whole seconds."""
        rng = self.rng
        rnd = rng.random
        drnd = data_rng.random
        new = tuple.__new__
        ve = VersionEntry
        sample = self.key_sample
        sample_p = self.sample_p
        buf = 0x10000
        vids = etags = ""
        o = 32 * buf  # offset into vids/etags; refilled when used up
        out: list[VersionEntry] = []
        append = out.append
        for key, t0 in self.keys():
            self.key_chars += len(key)
            if rnd() < sample_p:
                sample.append(key)
            extra = self._extra_versions()
            self.rem_keys -= 1
            self.rem_extra -= extra
            if o + 32 * (extra + 1) > 32 * buf:
                need = max(buf, extra + 1)
                vids = (
                    base64.b64encode(data_rng.randbytes(24 * need))
                    .translate(_B64_TO_AWS)
                    .decode("ascii")
                )
                etags = data_rng.randbytes(16 * need).hex()
                buf, o = need, 0
            if extra == 0:
                t = t0 * 1000
                append(
                    new(
                        ve,
                        (
                            key,
                            vids[o : o + 32],
                            t,
                            int(2.0 ** (4 + 26 * drnd())),
                            f'"{etags[o : o + 32]}"',
                            False,
                            False,
                            *_EXTRA,
                        ),
                    )
                )
                o += 32
            else:
                room = END_S - t0
                times = sorted(t0 + int(room * rnd() ** 2) for _ in range(extra))
                chain = [(t0, False)]
                prev_t, prev_dm = t0, False
                for t in times:
                    if rnd() < SAME_SECOND_P:
                        t = prev_t
                        self.same_second += 1
                    dm = (not prev_dm) and rnd() < DELETE_MARKER_P
                    chain.append((t, dm))
                    prev_t, prev_dm = t, dm
                for t, dm in reversed(chain):
                    if dm:
                        self.delete_markers += 1
                        append(
                            new(ve, (key, vids[o : o + 32], t * 1000, 0, "", True, False, *_EXTRA))
                        )
                    else:
                        append(
                            new(
                                ve,
                                (
                                    key,
                                    vids[o : o + 32],
                                    t * 1000,
                                    int(2.0 ** (4 + 26 * drnd())),
                                    f'"{etags[o : o + 32]}"',
                                    False,
                                    False,
                                    *_EXTRA,
                                ),
                            )
                        )
                    o += 32
            if len(out) >= target:
                yield out
                out = []
                append = out.append
        if out:
            yield out
        assert self.rem_keys == 0 and self.rem_extra == 0, (self.rem_keys, self.rem_extra)

    # sections, each in key order and under its own prefix
    def _big_folder(self) -> Iterator[tuple[str, int]]:
        """One level-4 folder of many files, written over the whole history."""
        rng = self.rng
        lo = START_S + SPAN_S // 20
        for i in range(self.plan.big_files):
            t0 = rng.randint(lo, END_S)
            self.big_created.append(t0)
            yield f"{BIG_FOLDER}n01440764_{i:06d}.JPEG", t0

    def _wide_folder(self) -> Iterator[tuple[str, int]]:
        """One folder with many subfolders of 1-3 files each."""
        rng = self.rng
        names = ("data.csv", "notes.txt", "profile.json")
        for i in range(self.plan.wide_subfolders):
            base = rng.randint(START_S, END_S - DAY_S)
            self.wide_created.append(base)
            for name in names[: 1 + i % 3]:
                yield f"{WIDE_FOLDER}user-{i:05d}/{name}", base + rng.randrange(DAY_S)

    def _huge_prefix(self) -> Iterator[tuple[str, int]]:
        """Service logs: logs/svc-NN/YYYY-MM-DD/part-NNNNN.log.gz, written day by day."""
        rng = self.rng
        services = 10
        days = SPAN_S // DAY_S
        per_service = split(self.plan.huge_keys, services, random.Random(rng.random()))
        for svc, count in enumerate(per_service):
            per_day = [count // days + (1 if d < count % days else 0) for d in range(days)]
            for d, m in enumerate(per_day):
                day_s = START_S + d * DAY_S
                date = time.strftime("%Y-%m-%d", time.gmtime(day_s))
                times = sorted(day_s + rng.randrange(DAY_S) for _ in range(m))
                for j in range(m):
                    yield f"{HUGE_PREFIX}svc-{svc:02d}/{date}/part-{j:05d}.log.gz", times[j]

    def _root_files(self) -> Iterator[tuple[str, int]]:
        rng = self.rng
        for i in range(self.plan.root_files):
            yield f"{ROOT_FILE_STEM}{i:05d}.csv", rng.randint(START_S, END_S)

    def _generic(self) -> Iterator[tuple[str, int]]:
        rng = self.rng
        sizes = split(self.plan.generic_keys, self.plan.top_dirs, rng)
        for i, n in enumerate(sizes):
            base = START_S + int(SPAN_S * rng.random() ** 0.8)
            window = int((END_S - base) * (0.2 + 0.8 * rng.random()))
            yield from self._dir(f"proj-{i:03d}/", 1, n, base, window)

    def _dir(
        self, path: str, depth: int, n: int, base: int, window: int
    ) -> Iterator[tuple[str, int]]:
        """A folder at ``depth`` holding n keys; files sit 3-5 folder levels deep."""
        rng = self.rng
        leaf = depth >= 5 or (depth >= 3 and n <= rng.choice((20, 60, 200, 600, 2000, 6000)))
        if leaf:
            stem = rng.choice(_FILE_STEMS)
            ext = rng.choice(_EXTS)
            times = [base + int(window * rng.random()) for _ in range(n)]
            if rng.random() < 0.5:
                times.sort()  # written in name order, as pipelines do
            width = max(5, len(str(n)))
            for j in range(n):
                yield f"{path}{stem}-{j:0{width}d}.{ext}", times[j]
            return
        files = rng.randint(0, min(10, n // 4)) if depth >= 3 else 0
        children: list[tuple[str, int]] = []
        if files:
            ext = rng.choice(_EXTS)
            children += [(f"{rng.choice(_FILE_STEMS)}-{j:03d}.{ext}", -1) for j in range(files)]
        for j, m in enumerate(split(n - files, rng.randint(2, 10), rng)):
            children.append((f"{rng.choice(_WORDS)}-{j:02d}/", m))
        children.sort()
        for name, m in children:
            if m < 0:
                yield path + name, base + int(window * rng.random())
            else:
                cb = base + int(window * 0.7 * rng.random())
                cw = int((base + window - cb) * (0.1 + 0.9 * rng.random()))
                yield from self._dir(path + name, depth + 1, m, cb, cw)


# -- measurement helpers --------------------------------------------------------------------


class Profiler:
    def __init__(self, prefix: str | None) -> None:
        self.prefix = prefix

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        if not self.prefix:
            yield
            return
        prof = cProfile.Profile()
        prof.enable()
        try:
            yield
        finally:
            prof.disable()
            prof.dump_stats(f"{self.prefix}.{name}.prof")


def timed(fn: Callable[..., Any], *args: Any) -> tuple[float, Any]:
    t = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t, out


PHASE_BUDGET_S = 240.0  # --phase-budget-s
MIN_SAMPLES_OVER_BUDGET = 10
SAMPLE_COUNTS: dict[str, int] = {}  # phases that ran out of budget: samples actually taken


def latencies(
    name: str, times: list[Any], fn: Callable[[Any], Any], size: Callable[[Any], int]
) -> tuple[list[float], list[int]]:
    """Time fn at every T (after one warm-up call). A phase that exceeds the time budget
    stops after MIN_SAMPLES_OVER_BUDGET samples; SAMPLE_COUNTS records it."""
    fn(times[0])  # warm-up (caches, first-use statements)
    secs: list[float] = []
    sizes: list[int] = []
    start = time.perf_counter()
    for t in times:
        dt, out = timed(fn, t)
        secs.append(dt)
        sizes.append(size(out))
        if (
            time.perf_counter() - start > PHASE_BUDGET_S
            and len(secs) >= MIN_SAMPLES_OVER_BUDGET
            and len(secs) < len(times)
        ):
            SAMPLE_COUNTS[name] = len(secs)
            log(
                f"  {name}: over the {PHASE_BUDGET_S:.0f} s budget, stopping at {len(secs)} samples"
            )
            break
    log(
        f"  {name}: p50 {ms(statistics.median(secs))} ms, p95 {ms(pct(secs, 0.95))} ms, "
        f"{statistics.mean(sizes):.0f} entries on average"
    )
    return secs, sizes


def index_code() -> dict[str, Any]:
    """Which index code ran: the package's location, a hash of the index package's sources
    (infinstor_jlab/index/**.py), and, when it sits in a git checkout, the commit and whether
    infinstor_jlab/index has uncommitted changes."""
    import hashlib
    import subprocess

    import infinstor_jlab.index as mod

    package = os.path.dirname(os.path.abspath(mod.__file__))
    digest = hashlib.sha1()
    for folder, _dirs, files in sorted(os.walk(package)):
        for name in sorted(files):
            if name.endswith(".py"):
                with open(os.path.join(folder, name), "rb") as f:
                    digest.update(f.read())
    info: dict[str, Any] = {"module": package, "index_py_sha1": digest.hexdigest()}
    root = os.path.dirname(os.path.dirname(package))
    try:
        head = subprocess.run(
            ["git", "-C", root, "rev-parse", "--short", "HEAD"],
            check=False,
            capture_output=True,
            text=True,
            timeout=10,
        )
        if head.returncode == 0:
            info["git_head"] = head.stdout.strip()
            st = subprocess.run(
                ["git", "-C", root, "status", "--porcelain", "--", "infinstor_jlab/index"],
                check=False,
                capture_output=True,
                text=True,
                timeout=10,
            )
            info["index_dirty"] = bool(st.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def calibrate() -> dict[str, float]:
    """Machine speed, to compare runs on different hosts: a pure-Python loop and SQLite point
    lookups (one read transaction, 100k-row WITHOUT ROWID table) in microseconds per op."""
    t = time.perf_counter()
    s = 0
    for i in range(2_000_000):
        s += i
    py_ns = (time.perf_counter() - t) / 2_000_000 * 1e9
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("CREATE TABLE k(key TEXT PRIMARY KEY, v INTEGER) WITHOUT ROWID")
    keys = [f"proj-{i % 97:03d}/raw-{i % 13:02d}/part-{i:07d}.parquet" for i in range(100_000)]
    conn.executemany("INSERT INTO k VALUES(?, 1)", ((k,) for k in keys))
    probe = random.Random(0).sample(keys, 20_000)
    conn.execute("BEGIN")
    t = time.perf_counter()
    for k in probe:
        conn.execute("SELECT v FROM k WHERE key=?", (k,)).fetchone()
    lookup_us = (time.perf_counter() - t) / len(probe) * 1e6
    conn.close()
    return {
        "python_loop_ns_per_iter": round(py_ns, 1),
        "sqlite_point_lookup_us": round(lookup_us, 2),
    }


def page_len(page: Any) -> int:
    return len(page.objects) + len(page.prefixes)


def db_size(path: str) -> int:
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    finally:
        conn.close()
    total = os.path.getsize(path)
    if os.path.exists(path + "-wal"):
        total += os.path.getsize(path + "-wal")
    return total


# -- phases ---------------------------------------------------------------------------------


def build(
    index: SqliteSnapshotIndex, plan: Plan, seed: int, prof: Profiler
) -> tuple[dict[str, Any], History]:
    index.register_bucket(BUCKET, versioning="Enabled")
    history = History(plan, seed)
    data_rng = random.Random(seed + 1)
    scan_started = (END_S + 100 * 365 * DAY_S) * 1000  # far in the future
    ingest_s = 0.0
    written = 0
    entries_total = 0
    after_key: str | None = None
    t_build = time.perf_counter()
    gen = history.batches(data_rng, BULK_BATCH)
    batch = next(gen, None)
    last_log = t_build
    with prof.phase("ingest"):
        while batch is not None:
            nxt = next(gen, None)  # generated before the call, so it is not timed
            through = None if nxt is None else batch[-1][0]
            t = time.perf_counter()
            written += index.merge_listing(
                BUCKET,
                batch,
                after_key=after_key,
                through_key=through,
                scan_started_ms=scan_started,
            )
            ingest_s += time.perf_counter() - t
            entries_total += len(batch)
            after_key = through
            batch = nxt
            now = time.perf_counter()
            if now - last_log > 10:
                log(
                    f"  ingested {entries_total:,} versions "
                    f"({entries_total / ingest_s:,.0f}/s in merge_listing)"
                )
                last_log = now
        # The end of the first full scan builds the bucket's time index: part of the ingest.
        t = time.perf_counter()
        index.finish_scan(BUCKET, scan_started)
        finish_s = time.perf_counter() - t
        ingest_s += finish_s
    build_s = time.perf_counter() - t_build
    assert entries_total == plan.n, (entries_total, plan.n)
    assert written == plan.n, (written, plan.n)
    log(
        f"built {plan.n:,} versions in {build_s:.1f} s ({ingest_s:.1f} s in merge_listing "
        f"and finish_scan, {finish_s:.1f} s of it in finish_scan)"
    )
    return {
        "build_s": round(build_s, 2),
        "ingest_s": round(ingest_s, 2),
        "finish_scan_s": round(finish_s, 2),
        "generate_s": round(build_s - ingest_s, 2),
        "ingest_versions_per_s": round(plan.n / ingest_s),
    }, history


def history_meta(history: History, plan: Plan) -> dict[str, Any]:
    big = sorted(history.big_created)
    wide = sorted(history.wide_created)
    return {
        "delete_markers": history.delete_markers,
        "same_second_overwrites": history.same_second,
        "avg_key_chars": round(history.key_chars / plan.keys, 1),
        # times (s) from which the big folder holds >= ~1000 live files and the wide folder
        # >= ~1000 live subfolders (with a margin for delete markers)
        "big_full_s": big[min(len(big) - 1, int(PAGE * 1.25))],
        "wide_full_s": wide[min(len(wide) - 1, int(PAGE * 1.25))],
        "key_sample": history.key_sample,
    }


def measure_queries(
    index: SqliteSnapshotIndex,
    meta: dict[str, Any],
    samples: int,
    rng: random.Random,
    prof: Profiler,
) -> dict[str, Any]:
    res: dict[str, Any] = {}
    details: dict[str, Any] = {}

    def rand_times(lo_ms: int, hi_ms: int) -> list[int]:
        return [rng.randint(lo_ms, hi_ms) for _ in range(samples)]

    def root_page(t: int) -> Any:
        return index.list_view(BUCKET, end_ms=t, delimiter="/", max_keys=PAGE)

    log("root pages at random T ...")
    with prof.phase("root_page"):
        secs, sizes = latencies("root page", rand_times(START_MS, END_MS), root_page, page_len)
    res["root_page_p50_ms"], res["root_page_p95_ms"] = (
        ms(statistics.median(secs)),
        ms(pct(secs, 0.95)),
    )
    details["root_page_avg_entries"] = round(statistics.mean(sizes))

    with prof.phase("early_root_page"):
        secs, sizes = latencies(
            "early root page", rand_times(START_MS, START_MS + SPAN_S * 100), root_page, page_len
        )
    res["early_root_page_p50_ms"] = ms(statistics.median(secs))
    res["early_root_page_p95_ms"] = ms(pct(secs, 0.95))
    details["early_root_page_avg_entries"] = round(statistics.mean(sizes))

    def deep_page(t: int) -> Any:
        return index.list_view(BUCKET, end_ms=t, prefix=BIG_FOLDER, delimiter="/", max_keys=PAGE)

    with prof.phase("deep_page"):
        secs, sizes = latencies(
            "deep page", rand_times(meta["big_full_s"] * 1000, END_MS), deep_page, page_len
        )
    res["deep_page_p50_ms"], res["deep_page_p95_ms"] = (
        ms(statistics.median(secs)),
        ms(pct(secs, 0.95)),
    )
    details["deep_page_avg_entries"] = round(statistics.mean(sizes))
    # the same pages serialised as the REST API sends them (decodes every id and ETag)
    secs, _ = latencies(
        "deep page + to_json",
        rand_times(meta["big_full_s"] * 1000, END_MS),
        lambda t: deep_page(t).to_json(),
        lambda j: len(j["objects"]) + len(j["prefixes"]),
    )
    details["deep_page_to_json_p50_ms"] = ms(statistics.median(secs))
    details["deep_page_to_json_p95_ms"] = ms(pct(secs, 0.95))

    def prefix_page(t: int) -> Any:
        return index.list_view(BUCKET, end_ms=t, prefix=WIDE_FOLDER, delimiter="/", max_keys=PAGE)

    with prof.phase("prefix_page"):
        secs, sizes = latencies(
            "prefix page", rand_times(meta["wide_full_s"] * 1000, END_MS), prefix_page, page_len
        )
    res["prefix_page_p50_ms"], res["prefix_page_p95_ms"] = (
        ms(statistics.median(secs)),
        ms(pct(secs, 0.95)),
    )
    details["prefix_page_avg_entries"] = round(statistics.mean(sizes))

    log("enumerating the big prefix ...")

    def enumerate_prefix() -> int:
        return len(list(index.iter_view(BUCKET, end_ms=END_MS, prefix=HUGE_PREFIX)))

    enumerate_prefix()
    runs = []
    with prof.phase("enumerate"):
        for _ in range(5):
            runs.append(timed(enumerate_prefix))
    secs_e = statistics.median(r[0] for r in runs)
    n_keys = runs[0][1]
    res["enumerate_keys_per_s"] = round(n_keys / secs_e)
    details["enumerate_keys"] = n_keys
    details["enumerate_ms"] = ms(secs_e)
    log(f"  {n_keys:,} keys in {ms(secs_e)} ms: {res['enumerate_keys_per_s']:,}/s")

    def enumerate_with_ids() -> int:  # reading every version id and ETag too
        it = index.iter_view(BUCKET, end_ms=END_MS, prefix=HUGE_PREFIX)
        return len([(o.key, o.version_id, o.etag) for o in it])

    secs_i = statistics.median(timed(enumerate_with_ids)[0] for _ in range(3))
    details["enumerate_with_ids_keys_per_s"] = round(n_keys / secs_i)

    # Slice windows holding ~10,000 versions, found from a fine timeline (public API).
    log("slices of ~10k versions ...")
    tl = index.timeline(BUCKET, from_ms=START_MS, to_ms=END_MS, bins=100_000)
    counts = [c + d for c, d in zip(tl.created, tl.deleted)]
    cum = [0]
    for c in counts:
        cum.append(cum[-1] + c)
    total = cum[-1]
    windows: list[tuple[int, int]] = []
    if total > 10_000:
        hi_start = bisect.bisect_left(cum, total - 10_000)  # a start bin that leaves room
        for _ in range(samples):
            b0 = rng.randrange(0, max(1, hi_start))
            b1 = bisect.bisect_left(cum, cum[b0] + 10_000)  # first bin edge with >= 10k inside
            t1 = tl.start_ms + b0 * tl.bin_ms
            t2 = min(END_MS, tl.start_ms + b1 * tl.bin_ms - 1)
            windows.append((t1, t2))

        def slice_view(w: tuple[int, int]) -> list[Any]:
            return list(index.iter_view(BUCKET, start_ms=w[0], end_ms=w[1]))

        with prof.phase("slice"):
            secs_s, sizes_s = latencies("slice", windows, slice_view, len)
        windows = windows[: len(secs_s)]
        res["slice_10k_p50_ms"] = ms(statistics.median(secs_s))
        res["slice_10k_p95_ms"] = ms(pct(secs_s, 0.95))
        details["slice_avg_objects"] = round(statistics.mean(sizes_s))
        # versions actually inside the windows (bin-resolution estimate is a little above 10k)
        details["slice_avg_window_versions"] = round(
            statistics.mean(
                sum(
                    counts[
                        (w[0] - tl.start_ms) // tl.bin_ms : (w[1] - tl.start_ms) // tl.bin_ms + 1
                    ]
                )
                for w in windows
            )
        )
        log(f"  slice windows held ~{details['slice_avg_window_versions']} versions")

    log("timeline ...")
    with prof.phase("timeline"):
        secs_t, _ = latencies(
            "timeline",
            list(range(samples)),
            lambda _: index.timeline(BUCKET, bins=200),
            lambda tl: len(tl.created),
        )
    reps = len(secs_t)
    res["timeline_p50_ms"] = ms(statistics.median(secs_t))
    details["timeline_reps"] = reps
    # What changed in the whole bucket over one day (diff T -> T + 1 day), at random T.
    days = [rng.randint(START_MS, END_MS - DAY_S * 1000) for _ in range(10)]
    secs_d, sizes_d = latencies(
        "diff",
        days,
        lambda t: index.diff(BUCKET, prefix="", from_ms=t, to_ms=t + DAY_S * 1000),
        lambda d: len(d.added) + len(d.deleted) + len(d.modified),
    )
    details["diff_1day_p50_ms"] = ms(statistics.median(secs_d))
    details["diff_1day_avg_changes"] = round(statistics.mean(sizes_d))
    # The bucket's figures (the sidebar's status poll) and the check every time-travel read
    # makes: neither may grow with the bucket.
    secs_b = [timed(index.get_bucket, BUCKET)[0] for _ in range(samples)]
    details["bucket_record_p50_ms"] = ms(statistics.median(secs_b))
    secs_h = [timed(index.has_bucket, BUCKET)[0] for _ in range(samples)]
    details["has_bucket_p50_ms"] = ms(statistics.median(secs_h))
    res["_details"] = details
    return res


def measure_incremental(
    index: SqliteSnapshotIndex,
    meta: dict[str, Any],
    last_ms: int,
    rng: random.Random,
    prof: Profiler,
) -> tuple[dict[str, Any], int]:
    """100,000 time-ordered versions newer than everything: overwrites and delete markers of
    existing keys, and new keys in existing folders, as events would report them."""
    sample: list[str] = meta["key_sample"]
    t = last_ms + 1000
    vids = (
        base64.b64encode(rng.randbytes(24 * INCREMENTAL_VERSIONS))
        .translate(_B64_TO_AWS)
        .decode("ascii")
    )
    etags = rng.randbytes(16 * INCREMENTAL_VERSIONS).hex()
    entries: list[VersionEntry] = []
    stamp = int(t)
    for i in range(INCREMENTAL_VERSIONS):
        t += rng.randrange(0, 1500)
        r = rng.random()
        key = rng.choice(sample)
        if r >= 0.45:
            key = f"{key[: key.rfind('/') + 1]}new-{stamp}-{i:06d}.dat"
        dm = 0.40 <= r < 0.45
        o = 32 * i
        entries.append(
            VersionEntry(
                key,
                vids[o : o + 32],
                t,
                0 if dm else rng.randrange(1 << 24),
                "" if dm else f'"{etags[o : o + 32]}"',
                dm,
                True,
            )
        )
    secs = 0.0
    written = 0
    with prof.phase("incremental"):
        for i in range(0, len(entries), INCREMENTAL_BATCH):
            chunk = entries[i : i + INCREMENTAL_BATCH]
            dt, n = timed(index.append_versions, BUCKET, chunk)
            secs += dt
            written += n
    assert written == INCREMENTAL_VERSIONS, written
    rate = round(INCREMENTAL_VERSIONS / secs)
    log(f"incremental: {INCREMENTAL_VERSIONS:,} versions in {secs:.2f} s ({rate:,}/s)")
    return {"incremental_versions_per_s": rate}, t


# -- ListObjectVersions (what s3-pit-restore does) vs the index -------------------------------


def _pit_listing(s3: Any, bucket: str, t_ms: int) -> list[tuple[str, str]]:
    """Page through every version and delete marker; per key keep the newest one at or before
    T (the first listed among same-second ties); a delete marker means absent."""
    best: dict[str, tuple[int, int, str, bool]] = {}
    order = 0
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for kind, dm in (("Versions", False), ("DeleteMarkers", True)):
            for v in page.get(kind, ()):
                order += 1
                t = int(v["LastModified"].timestamp() * 1000)
                if t > t_ms:
                    continue
                cur = best.get(v["Key"])
                if cur is None or t > cur[0]:
                    best[v["Key"]] = (t, order, v["VersionId"], dm)
    return sorted((k, b[2]) for k, b in best.items() if not b[3])


def measure_vs_list_object_versions(
    samples: int, s3_samples: int, rng: random.Random, workdir: str, prof: Profiler
) -> dict[str, Any]:
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    # moto accepts any credentials; never let boto3 pick up real ones for this endpoint
    for k, v in (
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_SESSION_TOKEN", "testing"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ):
        os.environ[k] = v
    os.environ.pop("AWS_PROFILE", None)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    log(f"moto server at {endpoint}; creating ~5,000 versions ...")
    try:
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        bucket = "bench-pit"
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        keys = [
            f"{d}/{sub}/file-{i:04d}.csv"
            for d in ("alpha", "beta", "gamma")
            for sub in ("x", "y", "z", "w")
            for i in range(125)
        ]  # 1,500 keys
        krng = random.Random(rng.random())
        rounds: list[tuple[str, list[str]]] = [("put", keys)]
        rounds += [
            ("put", krng.sample(keys, 1200)),
            ("put", krng.sample(keys, 1000)),
            ("delete", krng.sample(keys, 300)),
            ("put", krng.sample(keys, 700)),
            ("delete", krng.sample(keys, 200)),
            ("put", krng.sample(keys, 100)),
        ]
        boundaries: list[float] = []

        def op(kind: str, key: str) -> None:
            if kind == "put":
                s3.put_object(Bucket=bucket, Key=key, Body=os.urandom(krng.randint(0, 64)))
            else:
                s3.delete_object(Bucket=bucket, Key=key)

        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(4) as pool:
            for kind, ks in rounds:
                # each key at most once per round; rounds a second apart, so a key's versions
                # and delete markers never share a second (boto3's parsed response splits them
                # into two lists, and the reconstruction must not depend on their interleaving)
                list(pool.map(op, [kind] * len(ks), ks))
                time.sleep(1.1)
                boundaries.append(time.time())
        n_versions = sum(len(ks) for _, ks in rounds)
        t_lo = int(boundaries[0] * 1000)
        t_hi = int(boundaries[-1] * 1000)

        # (b) the index: ingest through the project's sync if it is there
        index = SqliteSnapshotIndex(os.path.join(workdir, "pit.sqlite"))
        via = "merge_listing (own conversion)"
        try:
            from infinstor_jlab.services.s3 import make_s3_client
            from infinstor_jlab.services.sync import sync_bucket

            sync_bucket(make_s3_client(endpoint), index, bucket)
            via = "infinstor_jlab.services.sync.sync_bucket"
        except ImportError:
            _ingest_boto3(s3, index, bucket)
        log(f"  ingested {n_versions:,} versions via {via}")

        times = [rng.randint(t_lo, t_hi) for _ in range(max(samples, s3_samples))]

        def from_index(t: int) -> list[tuple[str, str]]:
            return [(o.key, o.version_id) for o in index.iter_view(bucket, end_ms=t)]

        a_secs: list[float] = []
        for t in times[:s3_samples]:
            dt, expected = timed(_pit_listing, s3, bucket, t)
            a_secs.append(dt)
            got = from_index(t)
            if got != expected:  # not an assert: must hold under python -O too
                raise AssertionError(
                    f"index and ListObjectVersions disagree at T={t}: "
                    f"{len(got)} vs {len(expected)} objects"
                )
        from_index(times[0])
        with prof.phase("vs_list_object_versions"):
            b_secs = [timed(from_index, t)[0] for t in times[:samples]]
        answer = len(from_index(times[0]))
        index.close()
    finally:
        server.stop()
    a, b = statistics.median(a_secs), statistics.median(b_secs)
    log(f"  ListObjectVersions+reconstruct p50 {ms(a)} ms vs index p50 {ms(b)} ms: {a / b:,.0f}x")
    return {
        "vs_list_object_versions": round(a / b, 1),
        "_details": {
            "pit_versions": n_versions,
            "pit_answer_objects": answer,
            "pit_list_object_versions_p50_ms": ms(a),
            "pit_index_p50_ms": ms(b),
            "pit_index_p95_ms": ms(pct(b_secs, 0.95)),
            "pit_list_samples": len(a_secs),
            "pit_ingest_via": via,
        },
    }


def _ingest_boto3(s3: Any, index: SqliteSnapshotIndex, bucket: str) -> None:
    """Fallback: ListObjectVersions pages -> VersionEntry chains -> one merge_listing."""
    index.register_bucket(bucket, versioning="Enabled")
    rows = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for kind, dm in (("Versions", False), ("DeleteMarkers", True)):
            for v in page.get(kind, ()):
                rows.append(
                    VersionEntry(
                        v["Key"],
                        v["VersionId"],
                        int(v["LastModified"].timestamp() * 1000),
                        0 if dm else v["Size"],
                        "" if dm else v["ETag"],
                        dm,
                    )
                )
    rows.sort(key=lambda e: (e.key, -e.time_ms))  # stable: same-second ties keep list order
    index.merge_listing(
        bucket, rows, after_key=None, through_key=None, scan_started_ms=int(time.time() * 1000)
    )


# -- main -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--versions", type=int, default=200_000, help="N, versions to build")
    ap.add_argument("--json", action="store_true", help="print only the JSON object on stdout")
    ap.add_argument("--keep", metavar="DIR", help="keep the database in DIR")
    ap.add_argument(
        "--reuse",
        action="store_true",
        help="with --keep: reuse a database built there before (same N and seed)",
    )
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--samples", type=int, default=50, help="random T per latency (>= 50)")
    ap.add_argument(
        "--s3-samples",
        type=int,
        default=10,
        help="ListObjectVersions reconstructions to time (each lists everything)",
    )
    ap.add_argument(
        "--phase-budget-s",
        type=float,
        default=240.0,
        help="a latency phase slower than this stops after 10 samples",
    )
    ap.add_argument("--skip-s3", action="store_true", help="skip vs_list_object_versions")
    ap.add_argument("--skip-incremental", action="store_true")
    ap.add_argument(
        "--backend",
        choices=["sqlite", "postgres", "both"],
        default="sqlite",
        help="which index to measure; 'both' reports each under its own name",
    )
    ap.add_argument(
        "--pg-url",
        metavar="URL",
        help="PostgreSQL database to build in (emptied first); default: start a throwaway "
        "server with tests/pg_server.py",
    )
    ap.add_argument(
        "--profile",
        metavar="PREFIX",
        help="write PREFIX.<phase>.prof cProfile files (slows everything down)",
    )
    args = ap.parse_args(argv)
    if args.reuse and not args.keep:
        ap.error("--reuse needs --keep DIR")
    if args.backend != "sqlite":
        return main_backends(args)

    global PHASE_BUDGET_S
    PHASE_BUDGET_S = args.phase_budget_s
    t_all = time.perf_counter()
    plan = Plan(args.versions)
    prof = Profiler(args.profile)
    workdir = args.keep or tempfile.mkdtemp(prefix="index-bench-")
    os.makedirs(workdir, exist_ok=True)
    db = os.path.join(workdir, "index.sqlite")
    meta_path = os.path.join(workdir, "bench-meta.json")
    out: dict[str, Any] = {"versions": plan.n}
    details: dict[str, Any] = {
        "plan": plan.to_json(),
        "seed": args.seed,
        "db": db,
        "index_code": index_code(),
    }
    try:
        reuse = False
        if args.reuse and os.path.exists(db) and os.path.exists(meta_path):
            with open(meta_path) as f:
                meta = json.load(f)
            reuse = meta.get("n") == plan.n and meta.get("seed") == args.seed
        if not reuse:
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(db + suffix):
                    os.remove(db + suffix)
            log(f"building {plan.n:,} versions in {db} ({plan.to_json()})")
            index = SqliteSnapshotIndex(db)
            build_res, history = build(index, plan, args.seed, prof)
            out.update(
                {
                    "build_s": build_res["build_s"],
                    "ingest_versions_per_s": build_res["ingest_versions_per_s"],
                }
            )
            details.update({k: build_res[k] for k in ("ingest_s", "finish_scan_s", "generate_s")})
            meta = history_meta(history, plan)
            meta.update({"n": plan.n, "seed": args.seed, "last_ms": END_MS, "incremental": 0})
            del history
            gc.collect()
            index.close()
        else:
            log(f"reusing {db}")
            out.update({"build_s": None, "ingest_versions_per_s": None})
        size = db_size(db)
        out["db_bytes_per_version"] = round(size / plan.n, 1)
        details["db_bytes"] = size
        details.update(
            {k: meta[k] for k in ("delete_markers", "same_second_overwrites", "avg_key_chars")}
        )
        if meta.get("incremental"):
            details["note"] = "reused database already holds incremental versions"
        if args.keep:
            with open(meta_path, "w") as f:
                json.dump(meta, f)

        # The build's writes, out to disk before the latencies are measured (see os.sync()
        # after the incremental phase).
        os.sync()
        index = SqliteSnapshotIndex(db)  # a fresh connection, as a server process would have
        rng = random.Random(args.seed + 2)
        q = measure_queries(index, meta, max(1, args.samples), rng, prof)
        details.update(q.pop("_details"))
        out.update(q)

        if not args.skip_incremental:
            inc, last = measure_incremental(index, meta, meta["last_ms"], rng, prof)
            out.update(inc)
            meta["last_ms"] = last
            meta["incremental"] = meta.get("incremental", 0) + INCREMENTAL_VERSIONS
            if args.keep:
                with open(meta_path, "w") as f:
                    json.dump(meta, f)
        index.close()
        # The incremental phase leaves hundreds of MB of dirty pages that the kernel writes
        # back ~30 s later, on one of this machine's two cores, in the middle of the next
        # phase's measurements (pit listing p50 2.86 ms at 10M versions with that, 2.27 ms
        # without): written out here, outside any measurement.
        os.sync()

        out["peak_rss_mb"] = peak_rss_mb()  # the index's phases; moto's server comes next
        if not args.skip_s3:
            pit_dir = tempfile.mkdtemp(prefix="index-bench-pit-")
            try:
                s = measure_vs_list_object_versions(
                    max(1, args.samples), args.s3_samples, rng, pit_dir, prof
                )
            finally:
                shutil.rmtree(pit_dir, ignore_errors=True)
            details.update(s.pop("_details"))
            out.update(s)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    details["peak_rss_mb_incl_moto"] = peak_rss_mb()
    out["peak_rss_mb"] = out.get("peak_rss_mb") or details["peak_rss_mb_incl_moto"]
    if SAMPLE_COUNTS:
        details["samples_cut_by_budget"] = dict(SAMPLE_COUNTS)
    details["calibration"] = calibrate()
    details["total_s"] = round(time.perf_counter() - t_all, 1)
    out["details"] = details
    text = json.dumps(out, indent=None if args.json else 2)
    print(text)
    return 0


def pg_bytes(index: Any) -> int:
    with index._pool.connection() as conn:
        row = conn.execute("SELECT pg_total_relation_size('versions')").fetchone()
    return int(row[0])


def measure_postgres(args: argparse.Namespace, plan: Plan, prof: Profiler) -> dict[str, Any]:
    """Build and query the index on PostgreSQL: a throwaway server (Debian's binaries via
    tests/pg_server.py: fsync off, default shared_buffers) unless --pg-url names one."""
    from infinstor_jlab.index.postgres import PostgresSnapshotIndex

    server = None
    url = args.pg_url
    if url is None:
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "tests"))
        from pg_server import PostgresServer, find_pg_bin

        bin_dir = find_pg_bin()
        if bin_dir is None:
            raise SystemExit("PostgreSQL is not installed (apt-get install postgresql)")
        server = PostgresServer(bin_dir)
        server.start()
        url = server.new_database()
    out: dict[str, Any] = {"versions": plan.n}
    try:
        index = PostgresSnapshotIndex(url)
        with index._pool.connection() as conn:  # an empty index
            conn.execute("TRUNCATE versions, labels, buckets CASCADE")
        log(f"building {plan.n:,} versions in PostgreSQL")
        build_res, history = build(index, plan, args.seed, prof)
        out["build_s"] = build_res["build_s"]
        out["ingest_versions_per_s"] = build_res["ingest_versions_per_s"]
        meta = history_meta(history, plan)
        del history
        gc.collect()
        size = pg_bytes(index)
        out["db_bytes_per_version"] = round(size / plan.n, 1)
        index.close()
        index = PostgresSnapshotIndex(url)  # fresh connections, as a server process has
        rng = random.Random(args.seed + 2)
        q = measure_queries(index, meta, max(1, args.samples), rng, prof)
        details = q.pop("_details")
        details["db_bytes"] = size
        details["server"] = "tests/pg_server.py (fsync off)" if server else "--pg-url"
        out.update(q)
        out["details"] = details
        index.close()
    finally:
        if server is not None:
            server.stop()
    return out


def main_backends(args: argparse.Namespace) -> int:
    """--backend postgres|both: the issue's figures per backend (build, pages, enumeration,
    slices, timeline, bytes per version) from one run; the SQLite-only phases (incremental,
    ListObjectVersions) are left to --backend sqlite."""
    global PHASE_BUDGET_S
    PHASE_BUDGET_S = args.phase_budget_s
    t_all = time.perf_counter()
    plan = Plan(args.versions)
    prof = Profiler(args.profile)
    out: dict[str, Any] = {"versions": plan.n, "seed": args.seed, "plan": plan.to_json()}
    if args.backend == "both":
        workdir = tempfile.mkdtemp(prefix="index-bench-")
        try:
            db = os.path.join(workdir, "index.sqlite")
            index = SqliteSnapshotIndex(db)
            build_res, history = build(index, plan, args.seed, prof)
            meta = history_meta(history, plan)
            del history
            gc.collect()
            index.close()
            res: dict[str, Any] = {
                "build_s": build_res["build_s"],
                "ingest_versions_per_s": build_res["ingest_versions_per_s"],
                "db_bytes_per_version": round(db_size(db) / plan.n, 1),
            }
            index = SqliteSnapshotIndex(db)
            q = measure_queries(
                index, meta, max(1, args.samples), random.Random(args.seed + 2), prof
            )
            index.close()
            q.pop("_details")
            res.update(q)
            out["sqlite"] = res
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    out["postgres"] = measure_postgres(args, plan, prof)
    out["index_code"] = index_code()
    out["calibration"] = calibrate()
    out["total_s"] = round(time.perf_counter() - t_all, 1)
    print(json.dumps(out, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
