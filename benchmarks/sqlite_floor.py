#!/usr/bin/env python3
"""What SQLite itself takes for the index's work on this machine: the floors under the
figures of ``index_bench.py`` that miss their targets.

    python benchmarks/index_bench.py --versions 10000000 --keep DIR --skip-s3
    python benchmarks/sqlite_floor.py DIR/index.sqlite --json

reads an index built by the benchmark (never writing to it) and times plain SQL statements on
the same rows, with none of the index's Python around them, into a scratch database beside
it (``--workdir``), with the index's settings (WAL, synchronous=NORMAL, 128 MB cache):

* ``bulk_insert_floor_versions_per_s``: every row, already in key order and already packed,
  inserted with ``executemany`` in 50,000-row transactions into an empty table of the same
  definition; ``bulk_floor_versions_per_s`` adds the time index's ``CREATE INDEX`` (what a
  first scan ends with). Compare ``ingest_versions_per_s``.
* ``incremental_floor_versions_per_s``: 100,000 rows shaped like the benchmark's incremental
  phase (45% new versions of existing keys, 55% new names in existing folders, times after
  everything) inserted with ``executemany`` in 10,000-row transactions into that table:
  random places in a B-tree of N rows. Compare ``incremental_versions_per_s``.
* ``slice_floor_p50_ms``: for >= 50 random windows holding 10,000 versions, reading the
  window from the time index plus looking up, for each key's newest version in it, the row
  that holds its version id, ETag and size (``slice_window_scan_p50_ms`` and
  ``slice_lookups_p50_ms`` separately; picking the newest is left out). Compare
  ``slice_10k_p50_ms``.
* sizes: ``key_bytes_avg`` and ``value_bytes_avg`` (the packed id, ETag, size and flag) and,
  with SQLite's dbstat, the bytes per version of the table and of the time index. A time
  index that finds a slice's keys holds each key once more, so ``two_keys_and_value_bytes``
  is a floor for the payload alone (before B-tree headers and free space). Compare
  ``db_bytes_per_version``.

Progress goes to stderr; ``--json`` prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from typing import Any

PRAGMAS = (
    "journal_mode=WAL",
    "synchronous=NORMAL",
    "cache_size=-131072",
    "temp_store=MEMORY",
    "mmap_size=1099511627776",
)
BULK_BATCH = 50_000
INCREMENTAL_VERSIONS = 100_000
INCREMENTAL_BATCH = 10_000
SLICE_VERSIONS = 10_000


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in PRAGMAS:
        conn.execute(f"PRAGMA {pragma}")
    return conn


def time_index(src: sqlite3.Connection) -> tuple[str, str, int]:
    """(name, CREATE INDEX statement, bucket id) of the benchmark bucket's time index."""
    rows = src.execute(
        "SELECT name, sql FROM sqlite_master WHERE type='index' AND tbl_name='versions' "
        "AND name LIKE 'versions_by_time%'"
    ).fetchall()
    if len(rows) != 1:
        raise SystemExit(f"expected one bucket's time index in the database, found {len(rows)}")
    name, sql = rows[0]
    m = re.search(r"WHERE\s+b\s*=\s*(\d+)", sql)
    if not m:
        raise SystemExit(f"cannot read the bucket of the time index: {sql}")
    return name, sql, int(m.group(1))


def sizes(src: sqlite3.Connection, index_name: str, n: int) -> dict[str, Any]:
    key_avg, value_avg = src.execute(
        "SELECT avg(length(CAST(key AS BLOB))), avg(length(packed)) FROM versions"
    ).fetchone()
    out: dict[str, Any] = {
        "key_bytes_avg": round(key_avg, 1),
        "value_bytes_avg": round(value_avg, 1),
        "two_keys_and_value_bytes": round(2 * key_avg + value_avg, 1),
    }
    try:
        for label, name in (("versions_table", "versions"), ("time_index", index_name)):
            (pages_bytes,) = src.execute(
                "SELECT sum(pgsize) FROM dbstat WHERE name=?", (name,)
            ).fetchone()
            out[f"{label}_bytes_per_version"] = round(pages_bytes / n, 1)
    except sqlite3.OperationalError:  # this SQLite has no dbstat
        out["dbstat"] = "unavailable"
    out["file_bytes_per_version"] = round(
        src.execute("PRAGMA page_count").fetchone()[0]
        * src.execute("PRAGMA page_size").fetchone()[0]
        / n,
        1,
    )
    return out


def bulk(rows: list[tuple], table_sql: str, index_sql: str, path: str) -> dict[str, Any]:
    conn = connect(path)
    conn.execute(table_sql)
    t0 = time.perf_counter()
    for i in range(0, len(rows), BULK_BATCH):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO versions VALUES(?,?,?,?,?,?,?)", rows[i : i + BULK_BATCH])
        conn.execute("COMMIT")
    insert_s = time.perf_counter() - t0
    log(f"bulk: {len(rows):,} rows inserted in {insert_s:.1f} s")
    t0 = time.perf_counter()
    conn.execute(index_sql)
    index_s = time.perf_counter() - t0
    log(f"bulk: time index built in {index_s:.1f} s")
    conn.close()
    return {
        "bulk_insert_floor_versions_per_s": round(len(rows) / insert_s),
        "bulk_time_index_s": round(index_s, 2),
        "bulk_floor_versions_per_s": round(len(rows) / (insert_s + index_s)),
    }


def incremental_rows(
    sample: list[str], b: int, after_ms: int, value_len: int, rng: random.Random
) -> list[tuple]:
    out = []
    t = after_ms
    for i in range(INCREMENTAL_VERSIONS):
        t += rng.randrange(0, 1500)
        key = rng.choice(sample)
        r = rng.random()
        if r >= 0.45:
            key = f"{key[: key.rfind('/') + 1]}new-{after_ms}-{i:06d}.dat"
        dm = 0.40 <= r < 0.45
        out.append((b, key, t, 0, rng.randbytes(value_len), 1 if dm else 0, None))
    return out


def incremental(path: str, rows: list[tuple]) -> int:
    conn = connect(path)
    t0 = time.perf_counter()
    for i in range(0, len(rows), INCREMENTAL_BATCH):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT OR IGNORE INTO versions VALUES(?,?,?,?,?,?,?)", rows[i : i + INCREMENTAL_BATCH]
        )
        conn.execute("COMMIT")
    secs = time.perf_counter() - t0
    conn.close()
    return round(len(rows) / secs)


def slices(path: str, index_name: str, b: int, windows: int, rng: random.Random) -> dict[str, Any]:
    conn = connect(path)
    lo_t, hi_t = conn.execute(
        f"SELECT min(t), max(t) FROM versions INDEXED BY {index_name} WHERE b={b}"
    ).fetchone()
    conn.execute("CREATE TEMP TABLE w(key TEXT, t INTEGER, r INTEGER)")
    scan_ms: list[float] = []
    lookup_ms: list[float] = []
    objects: list[int] = []
    while len(scan_ms) < windows:
        start = rng.randint(lo_t, hi_t)
        row = conn.execute(
            f"SELECT t FROM versions INDEXED BY {index_name} WHERE b={b} AND t >= ? "
            f"ORDER BY t LIMIT 1 OFFSET {SLICE_VERSIONS - 1}",
            (start,),
        ).fetchone()
        if row is None:
            continue
        end = row[0]
        t0 = time.perf_counter()
        window = conn.execute(
            f"SELECT key, t, r FROM versions INDEXED BY {index_name} "
            f"WHERE b={b} AND t BETWEEN ? AND ?",
            (start, end),
        ).fetchall()
        scan = time.perf_counter() - t0
        newest: dict[str, tuple[int, int]] = {}
        for key, t, r in window:
            if key not in newest or (t, r) > newest[key]:
                newest[key] = (t, r)
        conn.execute("DELETE FROM w")
        conn.executemany(
            "INSERT INTO w VALUES(?,?,?)", [(k, t, r) for k, (t, r) in sorted(newest.items())]
        )
        t0 = time.perf_counter()
        found = conn.execute(
            f"SELECT v.packed FROM w CROSS JOIN versions v ON v.b={b} AND v.key=w.key "
            "AND v.t=w.t AND v.r=w.r"
        ).fetchall()
        lookups = time.perf_counter() - t0
        assert len(found) == len(newest), (len(found), len(newest))
        scan_ms.append(scan * 1000)
        lookup_ms.append(lookups * 1000)
        objects.append(len(newest))
    conn.close()
    total = [a + c for a, c in zip(scan_ms, lookup_ms)]
    return {
        "slice_floor_p50_ms": round(statistics.median(total), 3),
        "slice_window_scan_p50_ms": round(statistics.median(scan_ms), 3),
        "slice_lookups_p50_ms": round(statistics.median(lookup_ms), 3),
        "slice_lookup_us": round(
            1000 * statistics.median(lookup_ms) / statistics.median(objects), 2
        ),
        "slice_avg_objects": round(statistics.mean(objects)),
        "slice_windows": windows,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("db", help="an index.sqlite built by index_bench.py --keep DIR")
    ap.add_argument("--json", action="store_true", help="print only the JSON object on stdout")
    ap.add_argument("--workdir", help="scratch directory (default: a temporary one)")
    ap.add_argument("--windows", type=int, default=50, help="slice windows to time (>= 50)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    if not os.path.exists(args.db):
        ap.error(f"{args.db} does not exist; build one with index_bench.py --keep DIR")
    rng = random.Random(args.seed)
    src = sqlite3.connect(f"file:{args.db}?mode=ro", uri=True)
    (table_sql,) = src.execute(
        "SELECT sql FROM sqlite_master WHERE type='table' AND name='versions'"
    ).fetchone()
    index_name, index_sql, b = time_index(src)
    (n,) = src.execute("SELECT count(*) FROM versions").fetchone()
    log(f"{args.db}: {n:,} versions")
    result: dict[str, Any] = {"versions": n}
    result.update(sizes(src, index_name, n))
    t0 = time.perf_counter()
    rows = src.execute(
        "SELECT b, key, t, r, packed, f, seq FROM versions ORDER BY b, key, t DESC, r DESC"
    ).fetchall()
    (max_t,) = src.execute(
        f"SELECT max(t) FROM versions INDEXED BY {index_name} WHERE b={b}"
    ).fetchone()
    src.close()
    log(f"read {len(rows):,} rows in {time.perf_counter() - t0:.1f} s")
    sample = [rows[i][1] for i in rng.sample(range(len(rows)), min(50_000, len(rows)))]
    value_len = round(result["value_bytes_avg"])
    workdir = args.workdir or tempfile.mkdtemp(prefix="sqlite-floor-")
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, "floor.sqlite")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    try:
        result.update(bulk(rows, table_sql, index_sql, path))
        del rows
        result["incremental_floor_versions_per_s"] = incremental(
            path, incremental_rows(sample, b, max_t + 1000, value_len, rng)
        )
        log(f"incremental: {result['incremental_floor_versions_per_s']:,}/s")
        result.update(slices(path, index_name, b, max(50, args.windows), rng))
        log(f"slice: {result['slice_floor_p50_ms']} ms p50")
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
