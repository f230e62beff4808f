"""Backfill speed (issue 20): parallel ListObjectVersions vs one stream, and S3 Inventory
import into SQLite. Prints one JSON document (``--out`` also writes it).

    python benchmarks/backfill_bench.py --versions 200000 --inventory-versions 1000000

The S3 side is moto's server in a child process (its own interpreter, so its CPU does not
share our GIL) behind :class:`latency_proxy.LatencyProxy`, which adds ``--latency`` (100 ms,
about S3's page latency) to every request. Two things about moto are worked around there and
said in the JSON: its versions are written straight into its backend (200k PUTs over HTTP
take minutes), and its ListObjectVersions deep-copies and sorts the whole bucket on every
request (seconds per page at 20k versions), so the child answers listings from one sorted
copy made once, with S3's marker semantics; moto still renders every XML page.
"""

from __future__ import annotations

import argparse
import bisect
import datetime as dt
import gzip
import hashlib
import io
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

ACCOUNT = "123456789012"


# -- the child: moto with data ------------------------------------------------------------
def serve(n_versions: int, bucket: str) -> None:
    os.environ.update(AWS_ACCESS_KEY_ID="t", AWS_SECRET_ACCESS_KEY="t")
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3 import models as s3models
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    backend = s3models.s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    backend.create_bucket(bucket, "us-east-1")
    backend.put_bucket_versioning(bucket, "Enabled")
    rng = random.Random(20)
    # 100 top-level folders, most keys with one version, some with several (overwrites).
    keys = [f"d{i % 100:02d}/part-{i:08d}.bin" for i in range(int(n_versions * 0.8))]
    written = 0
    for key in keys:
        backend.put_object(bucket, key, b"x")
        written += 1
    while written < n_versions:
        backend.put_object(bucket, rng.choice(keys), b"y")
        written += 1

    cache: dict[str, tuple[list, list]] = {}

    def sorted_versions(name: str) -> tuple[list, list]:
        # The data do not change once written: one sorted copy serves every request.
        hit = cache.get(name)
        if hit is None:
            b = backend.get_bucket(name)
            allv = [v for vs in dict.values(b.keys) for v in vs]
            allv.sort(key=lambda r: (r.name, -s3models.unix_time_millis(r.last_modified)))
            last = None
            for v in allv:
                v.is_latest = v.name != last
                last = v.name
            hit = cache[name] = (allv, [v.name for v in allv])
        return hit

    def list_object_versions(
        bucket_name,
        delimiter=None,
        key_marker=None,
        max_keys=1000,
        prefix="",
        version_id_marker=None,
    ):
        allv, names = sorted_versions(bucket_name)
        if delimiter:  # common prefixes only, jumping over each one's keys
            found: list[str] = []
            i = bisect.bisect_left(names, prefix or "")
            while i < len(names) and len(found) < (max_keys or 1000):
                name = names[i]
                if prefix and not name.startswith(prefix):
                    break
                cut = name.find(delimiter, len(prefix or ""))
                if cut < 0:
                    i += 1
                    continue
                cp = name[: cut + len(delimiter)]
                found.append(cp)
                i = bisect.bisect_left(names, cp + "\U0010ffff")
            return [], found, [], None, None
        if key_marker and version_id_marker:
            i = bisect.bisect_left(names, key_marker)
            while i < len(allv) and allv[i].name == key_marker:
                i += 1
                if allv[i - 1].version_id == version_id_marker:
                    break
        elif key_marker:
            i = bisect.bisect_right(names, key_marker)  # S3: keys after the marker
        else:
            i = bisect.bisect_left(names, prefix) if prefix else 0
        out = []
        while i < len(allv) and len(out) < (max_keys or 1000):
            if prefix and not allv[i].name.startswith(prefix):
                break
            out.append(allv[i])
            i += 1
        more = i < len(allv) and (not prefix or allv[i].name.startswith(prefix))
        nk = out[-1].name if more and out else None
        nv = out[-1].version_id if more and out else None
        versions = [v for v in out if isinstance(v, s3models.FakeKey)]
        markers = [v for v in out if not isinstance(v, s3models.FakeKey)]
        return versions, [], markers, nk, nv

    backend.list_object_versions = list_object_versions
    sorted_versions(bucket)
    print(json.dumps({"endpoint": f"http://{host}:{port}", "versions": written}), flush=True)
    sys.stdin.read()  # until the parent closes our stdin
    server.stop()


def start_child(n_versions: int, bucket: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(n_versions), "--bucket", bucket],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    line = proc.stdout.readline() if proc.stdout else ""
    return proc, json.loads(line)["endpoint"]


# -- parallel vs one stream ---------------------------------------------------------------
def bench_listing(n_versions: int, latency: float, parallel: int, tmp: str) -> dict:
    from latency_proxy import LatencyProxy

    from infinstor_jlab.index import open_index
    from infinstor_jlab.services.backfill import sync_bucket_parallel
    from infinstor_jlab.services.s3 import make_s3_client
    from infinstor_jlab.services.sync import sync_bucket

    os.environ.update(
        AWS_ACCESS_KEY_ID="t", AWS_SECRET_ACCESS_KEY="t", AWS_DEFAULT_REGION="us-east-1"
    )
    bucket = "bench-" + uuid.uuid4().hex[:8]
    t0 = time.monotonic()
    child, endpoint = start_child(n_versions, bucket)
    generate_s = time.monotonic() - t0
    proxy = LatencyProxy(endpoint, delay_s=latency)
    url = proxy.start()
    try:
        out: dict = {
            "versions": n_versions,
            "latency_ms": latency * 1000,
            "generate_s": round(generate_s, 1),
        }
        single = open_index("sqlite:///" + os.path.join(tmp, "single.sqlite"))
        t, c = time.monotonic(), time.process_time()
        r1 = sync_bucket(make_s3_client(url), single, bucket)
        s1, cpu1 = time.monotonic() - t, time.process_time() - c
        par = open_index("sqlite:///" + os.path.join(tmp, "parallel.sqlite"))
        t, c = time.monotonic(), time.process_time()
        r2 = sync_bucket_parallel(
            make_s3_client(url, max_pool_connections=parallel + 4), par, bucket, parallel=parallel
        )
        s2, cpu2 = time.monotonic() - t, time.process_time() - c
        assert single.get_bucket(bucket).version_count == par.get_bucket(bucket).version_count
        one = n_versions / s1
        many = n_versions / s2
        out.update(
            {
                "one_stream": {
                    "seconds": round(s1, 2),
                    "versions_per_s": round(one),
                    "pages": r1.progress.pages,
                },
                f"{parallel}_streams": {
                    "seconds": round(s2, 2),
                    "versions_per_s": round(many),
                    "pages": r2.progress.pages,
                    "partitions": r2.progress.partitions_total,
                },
                "speedup": round(many / one, 2),
                # Our own CPU per version (XML parse, chain order, SQLite merge) in this
                # process: the ceiling of one process against S3, whose servers are not ours.
                "client_cpu_us_per_version": {
                    "one_stream": round(cpu1 / n_versions * 1e6, 1),
                    "parallel": round(cpu2 / n_versions * 1e6, 1),
                },
                "client_bound_versions_per_s": round(n_versions / cpu2),
                "moto_server_note": "moto renders each 1000-version page in ~0.35 s of CPU in "
                "one interpreter; with 2 shared cores that, not the 100 ms latency, bounds "
                "the parallel figure here",
                "aws_estimate_one_stream": {
                    "assumed_versions_per_s": 3300,
                    "10M_hours": round(10e6 / 3300 / 3600, 2),
                    "1B_days": round(1e9 / 3300 / 86400, 2),
                },
                "aws_estimate_parallel_at_measured_speedup": {
                    "10M_minutes": round(10e6 / (3300 * many / one) / 60, 1),
                    "1B_hours": round(1e9 / (3300 * many / one) / 3600, 1),
                },
                "requests_through_proxy": proxy.requests,
            }
        )
        single.close()
        par.close()
        return out
    finally:
        proxy.stop()
        if child.stdin:
            child.stdin.close()
        child.wait(timeout=60)


# -- inventory import ----------------------------------------------------------------------
def _inventory_rows(n: int, source: str) -> list[tuple]:
    """(bucket, key, version id, is latest, is delete marker, size, epoch s, etag): 80% of
    the rows first versions of distinct keys, the rest a second (latest) version of the
    first keys; whole seconds, never two versions of a key in one second."""
    base = int(dt.datetime(2026, 1, 1, tzinfo=dt.UTC).timestamp())
    n_keys = int(n * 0.8)
    overwritten = n - n_keys
    rows = []
    for i in range(n):
        k = i if i < n_keys else i - n_keys
        second = i >= n_keys
        rows.append(
            (
                source,
                f"d{k % 100:02d}/part-{k:08d}.bin",
                uuid.UUID(int=i + 1).hex,
                second or k >= overwritten,
                False,
                1234 + (i % 1000),
                base + k * 3 + (1 if second else 0),
                hashlib.md5(str(i).encode()).hexdigest(),
            )
        )
    random.Random(1).shuffle(rows)  # an inventory has no order
    return rows


def write_inventory(s3, dest: str, source: str, n: int, fmt: str, files: int) -> str:
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = f"inv/{source}/all-versions/"
    stamp = "2026-01-02T00-00Z"
    rows = _inventory_rows(n, source)
    per = (len(rows) + files - 1) // files
    entries = []
    for f in range(files):
        part = rows[f * per : (f + 1) * per]
        if fmt == "CSV":
            buf = io.StringIO()
            for r in part:
                is_latest = r[3]
                t = dt.datetime.fromtimestamp(r[6], dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
                buf.write(
                    f'"{r[0]}","{r[1]}","{r[2]}","{str(is_latest).lower()}","false",'
                    f'"{r[5]}","{t}","{r[7]}","STANDARD"\n'
                )
            body = gzip.compress(buf.getvalue().encode(), compresslevel=1)
            ext = "csv.gz"
        else:
            table = pa.table(
                {
                    "bucket": [r[0] for r in part],
                    "key": [r[1] for r in part],
                    "version_id": [r[2] for r in part],
                    "is_latest": [r[3] for r in part],
                    "is_delete_marker": [False] * len(part),
                    "size": pa.array([r[5] for r in part], pa.int64()),
                    "last_modified_date": pa.array(
                        [r[6] * 1000 for r in part], pa.timestamp("ms", tz="UTC")
                    ),
                    "e_tag": [r[7] for r in part],
                    "storage_class": ["STANDARD"] * len(part),
                }
            )
            out = io.BytesIO()
            pq.write_table(table, out)
            body = out.getvalue()
            ext = "parquet"
        key = f"{folder}data/{uuid.uuid4()}.{ext}"
        s3.put_object(Bucket=dest, Key=key, Body=body)
        entries.append(
            {"key": key, "size": len(body), "MD5checksum": hashlib.md5(body).hexdigest()}
        )
    fields = "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, ETag, StorageClass"
    schema = (
        fields
        if fmt == "CSV"
        else (
            "message s3.inventory { required binary bucket (STRING); required binary key (STRING); "
            "optional binary version_id (STRING); optional boolean is_latest; optional boolean "
            "is_delete_marker; optional int64 size; optional int64 last_modified_date "
            "(TIMESTAMP(MILLIS,true)); optional binary e_tag (STRING); optional binary "
            "storage_class (STRING);}"
        )
    )
    manifest = json.dumps(
        {
            "sourceBucket": source,
            "destinationBucket": f"arn:aws:s3:::{dest}",
            "version": "2016-11-30",
            "creationTimestamp": str(
                int(dt.datetime(2026, 1, 2, tzinfo=dt.UTC).timestamp() * 1000)
            ),
            "fileFormat": fmt,
            "fileSchema": schema,
            "files": entries,
        }
    ).encode()
    s3.put_object(Bucket=dest, Key=f"{folder}{stamp}/manifest.json", Body=manifest)
    s3.put_object(
        Bucket=dest,
        Key=f"{folder}{stamp}/manifest.checksum",
        Body=hashlib.md5(manifest).hexdigest().encode(),
    )
    return f"s3://{dest}/{folder}"


def bench_inventory_child(fmt: str, n: int, files: int) -> None:
    """In a process of its own, so that its peak RSS is the import's."""
    import boto3

    from infinstor_jlab.index import open_index
    from infinstor_jlab.services.inventory import import_inventory
    from infinstor_jlab.services.s3 import make_s3_client

    os.environ.update(
        AWS_ACCESS_KEY_ID="t", AWS_SECRET_ACCESS_KEY="t", AWS_DEFAULT_REGION="us-east-1"
    )
    endpoint = os.environ["BENCH_ENDPOINT"]
    where = os.environ.get("BENCH_WHERE")
    if not where:  # the writing step: a process of its own, so its memory is not counted
        s3 = boto3.client("s3", endpoint_url=endpoint)
        dest = "dest-" + uuid.uuid4().hex[:8]
        s3.create_bucket(Bucket=dest)
        t = time.monotonic()
        where = write_inventory(s3, dest, "huge-bucket", n, fmt, files)
        print(json.dumps({"where": where, "write_s": round(time.monotonic() - t, 1)}))
        return
    write_s = float(os.environ["BENCH_WRITE_S"])
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with tempfile.TemporaryDirectory() as tmp:
        index = open_index("sqlite:///" + os.path.join(tmp, "i.sqlite"))
        t = time.monotonic()
        result = import_inventory(make_s3_client(endpoint), index, "huge-bucket", where)
        seconds = time.monotonic() - t
        count = index.get_bucket("huge-bucket").version_count
        index.close()
    print(
        json.dumps(
            {
                "format": fmt,
                "versions": result.versions,
                "indexed": count,
                "files": files,
                "write_report_s": round(write_s, 1),
                "import_s": round(seconds, 2),
                "versions_per_s": round(result.versions / seconds),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                "rss_before_import_mb": round(rss_before / 1024),
            }
        )
    )


def bench_inventory(fmt: str, n: int, files: int) -> dict:
    child, endpoint = start_child(0, "unused-" + uuid.uuid4().hex[:6])
    cmd = [sys.executable, __file__, "--inventory-child", fmt, "--inventory-versions", str(n)]
    cmd += ["--files", str(files)]
    env = dict(os.environ, BENCH_ENDPOINT=endpoint, PYTHONPATH=str(HERE.parent))
    try:
        # Writing the report and importing it are two processes: the import's peak RSS is
        # its own.
        written = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
        step = json.loads(written.stdout.strip().splitlines()[-1])
        env.update(BENCH_WHERE=step["where"], BENCH_WRITE_S=str(step["write_s"]))
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        if child.stdin:
            child.stdin.close()
        child.wait(timeout=60)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--versions", type=int, default=200_000)
    ap.add_argument("--latency", type=float, default=0.1)
    ap.add_argument("--parallel", type=int, default=16)
    ap.add_argument("--inventory-versions", type=int, default=1_000_000)
    ap.add_argument("--files", type=int, default=4)
    ap.add_argument("--skip-listing", action="store_true")
    ap.add_argument("--skip-inventory", action="store_true")
    ap.add_argument("--out")
    ap.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--bucket", help=argparse.SUPPRESS)
    ap.add_argument("--inventory-child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve is not None:
        serve(args.serve, args.bucket)
        return
    if args.inventory_child:
        bench_inventory_child(args.inventory_child, args.inventory_versions, args.files)
        return
    doc: dict = {
        "benchmark": "backfill",
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "note": "2 cores shared with other work"},
        "moto_notes": [
            "versions written straight into moto's backend in its own process",
            (
                "moto's ListObjectVersions answered from one sorted copy (S3 marker "
                "semantics); it deep-copies the whole bucket per request otherwise "
                "(4.8 s per page at 20k)"
            ),
        ],
    }
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_listing:
            doc["listing"] = bench_listing(args.versions, args.latency, args.parallel, tmp)
    if not args.skip_inventory:
        doc["inventory"] = [
            bench_inventory(fmt, args.inventory_versions, args.files) for fmt in ("CSV", "PARQUET")
        ]
    text = json.dumps(doc, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
