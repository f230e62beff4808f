#!/usr/bin/env python3
"""End-to-end benchmark of the REST API: a real ``jupyter server`` process with the extension,
over HTTP with the token, on a synthetic snapshot index.

    python benchmarks/api_bench.py --versions 1000000 --json

prints one JSON object (progress goes to stderr):

* the index is built directly through the index's ingest path with the generator of
  ``benchmarks/index_bench.py`` (two years of history, ~70% distinct keys, nested folders,
  ~5% delete markers; a 20,000-file folder ``datasets/imagenet/train/n01440764/``);
* a ``jupyter server`` subprocess (tests/live_server.py: only this extension, default thread
  pool and ``sqs_wait_seconds``) serves that index; moto's server (in this process) serves
  S3 and SQS;
* **pages**: ``GET /infinstor/buckets/{b}/objects`` for one 1000-entry page, sequentially over
  one keep-alive connection, at random times T: the root (``page_*``) and the deep folder
  (``deep_page_*``), ``--samples`` each (>= 100) after a warm-up;
* **concurrent**: ``--clients`` threads (one ``requests`` session each) list continuously
  while a separate process ingests ``--ingest`` new versions into the same SQLite file in
  10 batches (even batches ``append_versions``, the event path: overwrites, delete markers and
  new keys all over the bucket; odd batches ``merge_listing``, the sync path: new keys under
  ``ingest/bNN/``). Half the requests are random-T pages; half are *watched* queries whose
  answer is checked. Every batch changes several entries of several watched answers, and the
  expected answer of every watched query after exactly k batches (k = 0..10) is computed
  afterwards on a copy of the pre-ingest index. ``concurrent_consistent`` is true when every
  watched answer equals the expected answer after k whole batches for some k (never a
  half-applied batch), no client ever sees an older k after a newer one, and the k fits the
  batches' commit times (an answer requested after a commit shows it; one finished before a
  batch began does not show it);
* **events**: a moto bucket tracked with events through REST; ``--events`` times, put_object
  with boto3 and poll ``GET objects?prefix=<key>`` until the object is listed.

The machine's load is reported with the figures (``details.loadavg_*``, ``details.cpus``):
clients, server, ingest and moto share its cores.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import math
import os
import pickle
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for path in (str(ROOT), str(HERE), str(ROOT / "tests")):
    if path not in sys.path:
        sys.path.insert(0, path)

import index_bench as ib  # benchmarks/index_bench.py: the synthetic history
from live_server import LiveServer  # tests/live_server.py

from infinstor_jlab.index import SqliteSnapshotIndex, VersionEntry

BUCKET = ib.BUCKET
PAGE = 1000
BATCHES = 10
_B64_TO_AWS = bytes.maketrans(b"+/", b"._")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[max(0, math.ceil(q * len(s)) - 1)]


def r3(x: float) -> float:
    return round(x, 3)


# -- the index ---------------------------------------------------------------------------------
def build_index(db: str, n: int, seed: int) -> dict[str, Any]:
    plan = ib.Plan(n)
    index = SqliteSnapshotIndex(db)
    try:
        stats, history = ib.build(index, plan, seed, ib.Profiler(None))
        meta = ib.history_meta(history, plan)
    finally:
        index.close()
    meta.update({"n": n, "seed": seed, "plan": plan.to_json(), "build_s": stats["build_s"]})
    return meta


def prepare_index(args: argparse.Namespace, workdir: Path) -> tuple[str, dict[str, Any]]:
    """The pristine index (kept in --keep DIR for --reuse) and its metadata; returns the path
    of a working copy that the run may change."""
    keep = Path(args.keep) if args.keep else workdir
    keep.mkdir(parents=True, exist_ok=True)
    pristine = keep / "pristine.sqlite"
    meta_path = keep / "pristine-meta.json"
    meta = None
    if args.reuse and pristine.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if (meta.get("n"), meta.get("seed")) != (args.versions, args.seed):
            meta = None
    if meta is None:
        for suffix in ("", "-wal", "-shm"):
            Path(str(pristine) + suffix).unlink(missing_ok=True)
        log(f"building {args.versions:,} versions in {pristine}")
        meta = build_index(str(pristine), args.versions, args.seed)
        conn = sqlite3.connect(pristine)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        meta_path.write_text(json.dumps(meta))
    else:
        log(f"reusing {pristine}")
    work = workdir / "index.sqlite"
    shutil.copyfile(pristine, work)
    return str(work), meta


# -- HTTP helpers -------------------------------------------------------------------------------
def objects_url(server: LiveServer, bucket: str) -> str:
    return server.url("infinstor", "buckets", bucket, "objects")


def digest(doc: dict[str, Any]) -> str:
    """What a listing answers (not the echo of the request): objects, prefixes, next token."""
    part = [doc["objects"], doc["prefixes"], doc["next_token"]]
    return hashlib.sha1(json.dumps(part, sort_keys=True).encode()).hexdigest()


def measure_pages(
    server: LiveServer, meta: dict[str, Any], samples: int, rng: random.Random
) -> dict[str, Any]:
    session = server.session
    url = objects_url(server, BUCKET)
    out: dict[str, Any] = {}
    details: dict[str, Any] = {}
    big_lo = meta["big_full_s"] * 1000
    for name, prefix, lo in (("page", "", ib.START_MS), ("deep_page", ib.BIG_FOLDER, big_lo)):
        for _ in range(5):  # warm-up: connection, statement caches
            session.get(url, params={"prefix": prefix, "at": str(ib.END_MS)}, timeout=30)
        secs: list[float] = []
        sizes: list[int] = []
        nbytes = 0
        for _ in range(samples):
            params = {
                "prefix": prefix,
                "at": str(rng.randint(lo, ib.END_MS)),
                "max_keys": str(PAGE),
            }
            t = time.perf_counter()
            resp = session.get(url, params=params, timeout=30)
            body = resp.content
            secs.append(time.perf_counter() - t)
            nbytes += len(body)
            assert resp.status_code == 200, resp.text
            doc = json.loads(body)
            sizes.append(len(doc["objects"]) + len(doc["prefixes"]))
        out[f"{name}_p50_ms"] = r3(statistics.median(secs) * 1000)
        out[f"{name}_p95_ms"] = r3(pct(secs, 0.95) * 1000)
        details[f"{name}_avg_entries"] = round(statistics.mean(sizes))
        details[f"{name}_max_ms"] = r3(max(secs) * 1000)
        details[f"{name}_requests"] = len(secs)
        details[f"{name}_avg_bytes"] = round(nbytes / samples)
        log(
            f"  {name}: p50 {out[f'{name}_p50_ms']} ms, p95 {out[f'{name}_p95_ms']} ms, "
            f"{details[f'{name}_avg_entries']} entries on average"
        )
    out["_details"] = details
    return out


# -- the concurrent ingest --------------------------------------------------------------------
class Ids:
    """AWS-looking version ids and ETags from a seeded generator."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def vid(self) -> str:
        return base64.b64encode(self.rng.randbytes(24)).translate(_B64_TO_AWS).decode()

    def etag(self) -> str:
        return f'"{self.rng.randbytes(16).hex()}"'


def make_batches(
    meta: dict[str, Any], total: int, rng: random.Random
) -> tuple[list[tuple[str, list[VersionEntry]]], int]:
    """BATCHES batches of total/BATCHES versions, all newer than the history (times in ms,
    increasing). Returns the batches (kind, entries) and the time after the last one."""
    plan = meta["plan"]
    per = total // BATCHES
    ids = Ids(rng)
    t = ib.END_MS + 1000
    sample: list[str] = meta["key_sample"]
    root_files = [f"{ib.ROOT_FILE_STEM}{i:05d}.csv" for i in range(min(800, plan["root_files"]))]
    big = [
        f"{ib.BIG_FOLDER}n01440764_{i:06d}.JPEG" for i in range(min(900, plan["big_folder_files"]))
    ]
    batches: list[tuple[str, list[VersionEntry]]] = []
    for b in range(BATCHES):
        entries: list[VersionEntry] = []
        if b % 2 == 1:
            # The sync path: a listing of new keys, in ListObjectVersions order (keys
            # ascending, each key's versions newest first), times in whole seconds.
            prefix = f"ingest/b{b:02d}/"
            keys = [
                f"{prefix}f{f:03d}/part-{k:04d}.parquet"
                for f in range(100)
                for k in range(max(1, per // 200))
            ]
            for key in sorted(keys):
                t1 = (t // 1000 + 1) * 1000
                t2 = t1 + 1000 * rng.randrange(0, 3)
                t = t2 + rng.randrange(0, 50)
                entries.append(
                    VersionEntry(
                        key, ids.vid(), t2, rng.randrange(1 << 20), ids.etag(), False, False
                    )
                )
                entries.append(
                    VersionEntry(
                        key, ids.vid(), t1, rng.randrange(1 << 20), ids.etag(), False, False
                    )
                )
            batches.append(("merge", entries))
            continue

        # The event path: times in ms, several changes on every watched page.
        changes: list[tuple[str, bool]] = [
            (key, key.endswith("5.csv")) for key in rng.sample(root_files, 6)
        ]
        changes.append((rng.choice(root_files), True))
        changes += [(key, rng.random() < 0.1) for key in rng.sample(big, 33)]
        changes += [
            (f"{ib.WIDE_FOLDER}user-{j:05d}b{b:02d}/data.csv", False)
            for j in rng.sample(range(min(400, plan["wide_subfolders"])), 2)
        ]
        while len(changes) < per:
            key = rng.choice(sample)
            r = rng.random()
            if r >= 0.5:
                key = f"{key[: key.rfind('/') + 1]}new-{b:02d}-{len(changes):06d}.dat"
            changes.append((key, 0.45 <= r < 0.5))
        for key, marker in changes:
            t += rng.randrange(1, 1500)
            size = 0 if marker else rng.randrange(1 << 24)
            entries.append(
                VersionEntry(key, ids.vid(), t, size, "" if marker else ids.etag(), marker, True)
            )
        batches.append(("append", entries))
    return batches, t


def apply_batch(index: SqliteSnapshotIndex, kind: str, entries: list[VersionEntry]) -> int:
    if kind == "append":
        return index.append_versions(BUCKET, entries)
    prefix = entries[0].key[: entries[0].key.index("/", len("ingest/")) + 1]
    return index.merge_listing(
        BUCKET,
        entries,
        after_key=prefix,
        through_key=entries[-1].key,
        scan_started_ms=entries[0].time_ms,
        checkpoint=False,
    )


def ingest_worker(batches_path: str, db: str, pause: float) -> int:
    """``--ingest-worker``: apply the batches to the index file, one transaction each,
    reporting each batch's wall-clock start and commit on stdout."""
    with open(batches_path, "rb") as fh:
        batches = pickle.load(fh)
    index = SqliteSnapshotIndex(db)
    try:
        print(json.dumps({"ready": time.time()}), flush=True)
        for i, (kind, entries) in enumerate(batches):
            start = time.time()
            written = apply_batch(index, kind, entries)
            end = time.time()
            print(
                json.dumps(
                    {
                        "batch": i,
                        "kind": kind,
                        "start": start,
                        "end": end,
                        "written": written,
                        "versions": len(entries),
                    }
                ),
                flush=True,
            )
            time.sleep(pause)
    finally:
        index.close()
    return 0


def watched_queries(
    meta: dict[str, Any], after_ms: int, rng: random.Random
) -> list[dict[str, str]]:
    now = str(after_ms)
    big_lo = meta["big_full_s"] * 1000
    queries = [
        {"at": now},
        {"at": now, "prefix": ib.BIG_FOLDER},
        {"at": now, "prefix": ib.WIDE_FOLDER},
        {"at": now, "prefix": "ingest/"},
        *(
            {"at": now, "prefix": f"ingest/b{b:02d}/", "delimiter": ""}
            for b in range(1, BATCHES, 2)
        ),
        *({"at": str(rng.randint(ib.START_MS, ib.END_MS))} for _ in range(2)),
        {"at": str(rng.randint(big_lo, ib.END_MS)), "prefix": ib.BIG_FOLDER},
        {"at": str(rng.randint(ib.START_MS, ib.END_MS)), "prefix": ib.WIDE_FOLDER},
    ]
    for q in queries:
        q["max_keys"] = str(PAGE)
    return queries


def expected_answers(
    db_copy: str, batches: list[tuple[str, list[VersionEntry]]], queries: list[dict[str, str]]
) -> list[list[str]]:
    """expected[k][q]: the digest of query q's answer after exactly k batches."""
    index = SqliteSnapshotIndex(db_copy)
    try:

        def answers() -> list[str]:
            out = []
            for q in queries:
                delimiter = q.get("delimiter", "/") or None
                page = index.list_view(
                    BUCKET,
                    end_ms=int(q["at"]),
                    prefix=q.get("prefix", ""),
                    delimiter=delimiter,
                    max_keys=int(q["max_keys"]),
                )
                out.append(digest(json.loads(json.dumps(page.to_json()))))
            return out

        expected = [answers()]
        for kind, entries in batches:
            apply_batch(index, kind, entries)
            expected.append(answers())
    finally:
        index.close()
    return expected


def measure_concurrent(
    server: LiveServer,
    db: str,
    workdir: Path,
    meta: dict[str, Any],
    args: argparse.Namespace,
    rng: random.Random,
) -> dict[str, Any]:
    import requests

    batches, after = make_batches(meta, args.ingest, rng)
    after_ms = after + 3_600_000
    queries = watched_queries(meta, after_ms, rng)
    batches_path = workdir / "batches.pickle"
    with open(batches_path, "wb") as fh:
        pickle.dump(batches, fh)
    # A consistent copy of the pre-ingest index, for the expected answers afterwards.
    copy = str(workdir / "expected.sqlite")
    src = sqlite3.connect(db)
    dst = sqlite3.connect(copy)
    src.backup(dst)
    dst.close()
    src.close()

    url = objects_url(server, BUCKET)
    stop = threading.Event()
    records: list[list[tuple]] = [[] for _ in range(args.clients)]
    big_lo = meta["big_full_s"] * 1000

    def client(cid: int) -> None:
        crng = random.Random(args.seed * 1000 + cid)
        session = requests.Session()
        session.headers.update(server.session.headers)
        mine = records[cid]
        while not stop.is_set():
            if crng.random() < 0.5:
                qi = crng.randrange(len(queries))
                params = queries[qi]
            else:
                qi = -1
                if crng.random() < 0.5:
                    params = {"at": str(crng.randint(ib.START_MS, ib.END_MS))}
                else:
                    params = {"prefix": ib.BIG_FOLDER, "at": str(crng.randint(big_lo, ib.END_MS))}
            wall = time.time()
            t = time.perf_counter()
            try:
                resp = session.get(url, params=params, timeout=60)
                body = resp.content
                dt = time.perf_counter() - t
                status = resp.status_code
            except Exception as exc:  # noqa: BLE001 - counted as an error
                dt = time.perf_counter() - t
                mine.append((qi, wall, time.time(), dt, repr(exc), None))
                continue
            end = time.time()
            d = digest(json.loads(body)) if status == 200 and qi >= 0 else None
            mine.append((qi, wall, end, dt, status, d))
        session.close()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(args.clients)]
    load_before = os.getloadavg()
    for th in threads:
        th.start()
    time.sleep(args.baseline)  # listing before the ingest begins
    worker = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--ingest-worker",
            str(batches_path),
            db,
            "--ingest-pause",
            str(args.ingest_pause),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    commits: list[dict[str, Any]] = []
    assert worker.stdout is not None
    for line in worker.stdout:
        doc = json.loads(line)
        if "batch" in doc:
            commits.append(doc)
            log(
                f"  batch {doc['batch']} ({doc['kind']}) committed in "
                f"{doc['end'] - doc['start']:.2f} s"
            )
    worker.wait()
    assert worker.returncode == 0 and len(commits) == BATCHES, commits
    time.sleep(1.0)  # and after it ends
    stop.set()
    for th in threads:
        th.join(120)
    load_after = os.getloadavg()

    log("  computing the expected answers after each batch ...")
    expected = expected_answers(copy, batches, queries)
    states: list[dict[str, list[int]]] = [{} for _ in queries]
    for k, row in enumerate(expected):
        for qi, d in enumerate(row):
            states[qi].setdefault(d, []).append(k)
    # How many batches each watched query can tell apart (a sanity check of the design).
    distinct = [len(s) for s in states]

    all_lat: list[float] = []
    errors = 0
    inconsistent = 0
    non_monotonic = 0
    out_of_time = 0
    watched = 0
    seen_k: set[int] = set()
    ingest_start = commits[0]["start"]
    ingest_end = commits[-1]["end"]
    during: list[float] = []
    before: list[float] = []
    for mine in records:
        lo = 0
        for qi, wall, end, dt, status, d in mine:
            all_lat.append(dt)
            if ingest_start <= end and wall <= ingest_end:
                during.append(dt)
            elif end < ingest_start:
                before.append(dt)
            if status != 200:
                errors += 1
                continue
            if qi < 0:
                continue
            watched += 1
            ks = states[qi].get(d)
            if ks is None:
                inconsistent += 1
                continue
            # Commit times: batches committed before the request was sent must show;
            # batches begun after the answer arrived must not.
            need = sum(1 for c in commits if c["end"] < wall)
            allow = sum(1 for c in commits if c["start"] < end)
            fitting = [k for k in ks if need <= k <= allow]
            if not fitting:
                out_of_time += 1
                fitting = ks
            if max(fitting) < lo:
                non_monotonic += 1
            else:
                lo = max(lo, min(k for k in fitting if k >= lo))
            seen_k.add(min(fitting))
    consistent = inconsistent == 0 and non_monotonic == 0 and out_of_time == 0
    res = {
        "concurrent_max_ms": r3(max(during) * 1000),
        "concurrent_errors": errors,
        "concurrent_consistent": consistent,
        "_details": {
            "concurrent_clients": args.clients,
            "concurrent_requests": len(all_lat),
            "concurrent_requests_during_ingest": len(during),
            "concurrent_p50_ms": r3(statistics.median(during) * 1000),
            "concurrent_p95_ms": r3(pct(during, 0.95) * 1000),
            "concurrent_p99_ms": r3(pct(during, 0.99) * 1000),
            "concurrent_over_500ms": sum(1 for x in during if x > 0.5),
            "concurrent_before_ingest_requests": len(before),
            "concurrent_before_ingest_p50_ms": r3(statistics.median(before) * 1000)
            if before
            else None,
            "concurrent_before_ingest_max_ms": r3(max(before) * 1000) if before else None,
            "concurrent_max_ms_whole_run": r3(max(all_lat) * 1000),
            "concurrent_throughput_rps": round(len(during) / (ingest_end - ingest_start), 1),
            "watched_answers": watched,
            "watched_queries": len(queries),
            "watched_states_per_query": distinct,
            # the smallest k each answer allows: answers moved through the batches
            "k_lower_bounds_seen": sorted(seen_k),
            "inconsistent_answers": inconsistent,
            "non_monotonic_answers": non_monotonic,
            "answers_out_of_commit_order": out_of_time,
            "ingest_versions": sum(len(e) for _, e in batches),
            "ingest_batches": [
                {
                    "kind": c["kind"],
                    "versions": c["versions"],
                    "written": c["written"],
                    "commit_s": r3(c["end"] - c["start"]),
                }
                for c in commits
            ],
            "ingest_s": r3(ingest_end - ingest_start),
            "loadavg_before_concurrent": [round(x, 2) for x in load_before],
            "loadavg_after_concurrent": [round(x, 2) for x in load_after],
        },
    }
    log(
        f"  {len(during)} requests during the ingest: max {res['concurrent_max_ms']} ms, "
        f"p95 {res['_details']['concurrent_p95_ms']} ms, errors {errors}, "
        f"consistent {consistent} (k lower bounds seen {sorted(seen_k)})"
    )
    return res


# -- events -------------------------------------------------------------------------------------
def measure_events(
    server: LiveServer, endpoint: str, count: int, rng: random.Random
) -> dict[str, Any]:
    import boto3

    s3 = boto3.client("s3", endpoint_url=endpoint)
    bucket = f"api-bench-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="seed.txt", Body=b"0")
    doc = server.api(
        "POST", f"buckets/{bucket}/track", json={"enable_versioning": True, "events": True}
    )
    deadline = time.monotonic() + 60
    while not server.api("GET", f"syncs/{doc['sync_job']}")["done"]:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    url = objects_url(server, bucket)
    lat: list[float] = []
    timeouts = 0
    time.sleep(1.0)
    for i in range(count):
        key = f"incoming/{i:03d}-{uuid.uuid4().hex[:8]}.csv"
        t = time.perf_counter()
        s3.put_object(Bucket=bucket, Key=key, Body=f"{i}\n".encode())
        while True:
            page = server.session.get(
                url, params={"prefix": key, "delimiter": ""}, timeout=30
            ).json()
            if page["objects"]:
                lat.append(time.perf_counter() - t)
                break
            if time.perf_counter() - t > 30:
                timeouts += 1
                break
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.5))
    res = {
        "event_visible_p50_s": r3(statistics.median(lat)) if lat else None,
        "event_visible_p95_s": r3(pct(lat, 0.95)) if lat else None,
        "_details": {
            "events": count,
            "event_timeouts": timeouts,
            "event_visible_max_s": r3(max(lat)) if lat else None,
        },
    }
    log(f"  events: p50 {res['event_visible_p50_s']} s, p95 {res['event_visible_p95_s']} s")
    return res


# -- main -------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--versions", type=int, default=1_000_000)
    ap.add_argument("--json", action="store_true", help="one line of JSON on stdout")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--samples", type=int, default=200, help="requests per page kind (>= 100)")
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--ingest", type=int, default=100_000, help="versions ingested concurrently")
    ap.add_argument("--ingest-pause", type=float, default=0.3, help="seconds between batches")
    ap.add_argument(
        "--baseline",
        type=float,
        default=3.0,
        help="seconds the clients list before the ingest starts",
    )
    ap.add_argument("--events", type=int, default=30)
    ap.add_argument("--keep", metavar="DIR", help="keep the pristine index in DIR")
    ap.add_argument("--reuse", action="store_true", help="with --keep: reuse its index")
    ap.add_argument("--ingest-worker", nargs=2, metavar=("BATCHES", "DB"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.ingest_worker:
        return ingest_worker(args.ingest_worker[0], args.ingest_worker[1], args.ingest_pause)
    if args.reuse and not args.keep:
        ap.error("--reuse needs --keep DIR")
    if args.samples < 100:
        ap.error("--samples must be at least 100")

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.pop("AWS_PROFILE", None)
    from moto.server import ThreadedMotoServer

    t_all = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="api-bench-"))
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    out: dict[str, Any] = {"versions": args.versions}
    details: dict[str, Any] = {"cpus": os.cpu_count(), "loadavg_start": list(os.getloadavg())}
    server = None
    try:
        db, meta = prepare_index(args, workdir)
        details["build_s"] = meta.get("build_s")
        details["plan"] = meta["plan"]
        server = LiveServer(
            workdir / "server",
            index_url="sqlite:///" + db,
            s3_endpoint=endpoint,
            args=["--InfinstorApp.reconcile_interval=0"],
        )
        t = time.perf_counter()
        server.start().wait_ready()
        details["server_start_s"] = r3(time.perf_counter() - t)
        rng = random.Random(args.seed + 3)
        log(f"pages over HTTP ({args.samples} requests each) ...")
        res = measure_pages(server, meta, args.samples, rng)
        details.update(res.pop("_details"))
        out.update(res)
        log(f"{args.clients} clients while {args.ingest:,} versions are ingested ...")
        res = measure_concurrent(server, db, workdir, meta, args, rng)
        details.update(res.pop("_details"))
        out.update(res)
        log(f"event to visible ({args.events} objects) ...")
        res = measure_events(server, endpoint, args.events, rng)
        details.update(res.pop("_details"))
        out.update(res)
        log_text = server.log_text()
        details["server_log_errors"] = sum(
            1 for line in log_text.splitlines() if line.startswith("[E ")
        )
    finally:
        if server is not None:
            server.close()
        moto.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    details["loadavg_end"] = list(os.getloadavg())
    details["total_s"] = round(time.perf_counter() - t_all, 1)
    details["targets_10M"] = {
        "page_p50_ms": 15,
        "page_p95_ms": 40,
        "concurrent_max_ms": 500,
        "event_visible_p50_s": 2,
    }
    out["details"] = details
    print(json.dumps(out, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
