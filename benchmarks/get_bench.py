#!/usr/bin/env python3
"""Benchmark of taking a view home and of putting a folder back, on moto.

    python benchmarks/get_bench.py --json

prints one JSON object (progress goes to stderr):

* moto's server runs in a process of its own on a loopback port; the bucket gets ``--files``
  files (default 2,000) under ``data/``, sizes log-uniform between ``--min-size`` (1 KB) and
  ``--max-size`` (8 MB), a fixed seed; the bucket is tracked and synced into a temp index and
  a label pins the live prefix;
* **get**: in each of ``--rounds`` rounds, ``aws s3 cp --recursive s3://b/data/ DIR`` (awscli
  from PyPI, its default 10 concurrent requests) and ``infinstor-jlab get label:/L DIR``
  (``--parallel``, default 10 to match) run one after the other as processes of their own,
  each into a fresh folder, then the same ``get`` again with nothing changed
  (``rerun_s``), then ``infinstor-jlab verify DIR``. Both copies are compared (same files,
  same bytes). ``get_vs_aws`` is aws's time over get's (>= 1 means get is at least as fast);
  ``rerun_fraction`` the rerun's time over the first get's;
* **restore**: a ``--restore-keys`` folder (default 10,000 keys of 1 KB) at T, then a third
  overwritten, a third deleted and as many new keys added; synced; ``infinstor-jlab restore
  --to T --yes`` as a process; ``changes_per_s`` is the plan's copies and delete markers over
  the command's wall time (the re-check's listing, the label, the copies, and the listing of
  the check); ``one_listing_s`` is one ListObjectVersions pass over the folder afterwards, on
  its own. ``--skip-get`` runs only the restore.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

MOTO = """
import sys, time
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()
server.stop()
"""


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


CPU: dict[str, float] = {}


def timed(argv: list[str], env: dict[str, str]) -> float:
    before = os.times()
    started = time.monotonic()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    took = time.monotonic() - started
    after = os.times()
    CPU["last"] = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    if proc.returncode != 0:
        raise SystemExit(f"{argv[:3]} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return took


def tree(root: Path) -> dict[str, int]:
    out = {}
    for path in root.rglob("*"):
        if path.is_file() and path.name != "infinstor-manifest.json":
            out[path.relative_to(root).as_posix()] = path.stat().st_size
    return out


def same_bytes(a: Path, b: Path, names: list[str]) -> bool:
    return all((a / n).read_bytes() == (b / n).read_bytes() for n in names)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--min-size", type=int, default=1024)
    parser.add_argument("--max-size", type=int, default=8 * 1024 * 1024)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--parallel", type=int, default=10)
    parser.add_argument("--restore-keys", type=int, default=10_000)
    parser.add_argument("--skip-get", action="store_true", help="only the restore benchmark")
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--json", action="store_true", help="(the output is always JSON)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="get-bench-"))
    moto = subprocess.Popen(
        [sys.executable, "-c", MOTO],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        port = int(moto.stdout.readline())  # type: ignore[union-attr]
        endpoint = f"http://127.0.0.1:{port}"
        env = dict(os.environ)
        env.update(
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_DEFAULT_REGION="us-east-1",
            AWS_ENDPOINT_URL=endpoint,
            INFINSTOR_INDEX_URL="sqlite:///" + str(work / "index.sqlite"),
            PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
        )
        env.pop("AWS_PROFILE", None)
        os.environ.update({k: env[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")})
        import boto3

        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        cli = [sys.executable, "-m", "infinstor_jlab.cli"]
        aws = shutil.which("aws", path=str(Path(sys.executable).parent)) or shutil.which("aws")
        if aws is None:
            raise SystemExit("aws (awscli from PyPI) is not installed: pip install awscli")
        result: dict[str, Any] = {"files": args.files, "details": {"cpus": os.cpu_count()}}

        # -- get ------------------------------------------------------------------------
        if not args.skip_get:
            result["get"] = get_rounds(args, s3, cli, aws, env, work, result)

        # -- restore --------------------------------------------------------------------
        n = args.restore_keys
        if n:
            result["restore"] = restore_round(n, s3, cli, env)
        print(json.dumps(result, indent=1))
        return 0
    finally:
        if moto.stdin:
            moto.stdin.close()
        moto.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


def get_rounds(
    args: argparse.Namespace,
    s3: Any,
    cli: list[str],
    aws: str,
    env: dict[str, str],
    work: Path,
    result: dict[str, Any],
) -> list[dict[str, Any]]:
    bucket = f"get-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    rng = random.Random(args.seed)
    lo, hi = math.log(args.min_size), math.log(args.max_size)
    sizes = [int(math.exp(rng.uniform(lo, hi))) for _ in range(args.files)]
    blob = os.urandom(args.max_size)

    def put(i: int) -> None:
        key = f"data/part-{i // 100:02d}/file-{i:05d}.bin"
        s3.put_object(Bucket=bucket, Key=key, Body=blob[: sizes[i]])

    log(f"uploading {args.files} files, {sum(sizes) / 1e6:,.0f} MB")
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, range(args.files)))
    result["total_bytes"] = sum(sizes)
    # One listing stream: moto copies every object under a listing's prefix, bodies and
    # all, for each ListObjectVersions call, and 16 at once over these ~1.9 GB took 23 GB.
    timed([*cli, "track", bucket, "--yes", "--parallel", "1"], env)
    timed([*cli, "label", "create", "bench", f"s3://{bucket}/data/", "--at", "now"], env)
    rounds = []
    for r in range(args.rounds):
        aws_dir, get_dir = work / f"aws-{r}", work / f"get-{r}"
        log(f"round {r + 1}: aws s3 cp --recursive")
        aws_s = timed(
            [aws, "s3", "cp", "--recursive", "--quiet", f"s3://{bucket}/data/", str(aws_dir)],
            env,
        )
        aws_cpu = CPU["last"]
        log(f"round {r + 1}: infinstor-jlab get")
        get_s = timed(
            [*cli, "get", "label:/bench", str(get_dir), "--parallel", str(args.parallel)],
            env,
        )
        get_cpu = CPU["last"]
        rerun_s = timed([*cli, "get", "label:/bench", str(get_dir)], env)
        verify_s = timed([*cli, "verify", str(get_dir)], env)
        a, g = tree(aws_dir), tree(get_dir)
        sample = sorted(a)[:: max(1, len(a) // 50)]
        rounds.append(
            {
                "aws_s": round(aws_s, 2),
                "get_s": round(get_s, 2),
                "rerun_s": round(rerun_s, 2),
                "verify_s": round(verify_s, 2),
                "get_vs_aws": round(aws_s / get_s, 3),
                "aws_cpu_s": round(aws_cpu, 2),
                "get_cpu_s": round(get_cpu, 2),
                "rerun_fraction": round(rerun_s / get_s, 4),
                "same_files": a == g and same_bytes(aws_dir, get_dir, sample),
            }
        )
        log(json.dumps(rounds[-1]))
        shutil.rmtree(aws_dir)
        shutil.rmtree(get_dir)
    return rounds


def restore_round(n: int, s3: Any, cli: list[str], env: dict[str, str]) -> dict[str, Any]:
    rb = f"restore-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=rb)
    s3.put_bucket_versioning(Bucket=rb, VersioningConfiguration={"Status": "Enabled"})
    body = b"x" * 1024

    def key(i: int) -> str:
        return f"tables/t{i // 1000:02d}/k{i:06d}.csv"

    log(f"restore: {n} keys at T")
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: s3.put_object(Bucket=rb, Key=key(i), Body=body), range(n)))
    t = (int(time.time()) + 1) * 1000 - 1
    time.sleep(max(0.0, t / 1000 - time.time()) + 0.05)
    third = n // 3

    def change(i: int) -> None:
        if i < third:
            s3.put_object(Bucket=rb, Key=key(i), Body=b"overwritten")
        elif i < 2 * third:
            s3.delete_object(Bucket=rb, Key=key(i))
        else:
            s3.put_object(Bucket=rb, Key=key(n + i - 2 * third), Body=b"new")

    log("restore: overwrite, delete and add a third each")
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(change, range(3 * third)))
    time.sleep(1.1)
    timed([*cli, "track", rb, "--yes"], env)
    from infinstor_jlab.timespec import format_tm

    started = time.monotonic()
    proc = subprocess.run(
        [*cli, "restore", f"s3://{rb}/tables/", "--to", format_tm(t), "--yes", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    took = time.monotonic() - started
    if proc.returncode not in (0, 1):
        raise SystemExit(f"restore failed ({proc.returncode}): {proc.stderr[-2000:]}")
    doc = json.loads(proc.stdout)
    changes = len(doc["plan"]["copy"]) + len(doc["plan"]["delete"])
    out: dict[str, Any] = {
        "keys": n,
        "copies": len(doc["plan"]["copy"]),
        "delete_markers": len(doc["plan"]["delete"]),
        "seconds": round(took, 2),
        "changes_per_s": round(changes / took, 1),
        "ok": doc["ok"],
        "check_matches": doc["check"]["matches"],
    }
    log(json.dumps(out))
    # What one ListObjectVersions pass over the restored folder costs on its own (a
    # restore makes two: the re-check before acting and the check after). moto's memory
    # grows by gigabytes over such listings: a moto that dies here leaves the figures above.
    listed = time.monotonic()
    try:
        pages = s3.get_paginator("list_object_versions").paginate(Bucket=rb, Prefix="tables/")
        out["versions_after"] = sum(
            len(p.get("Versions", [])) + len(p.get("DeleteMarkers", [])) for p in pages
        )
        out["one_listing_s"] = round(time.monotonic() - listed, 2)
    except Exception as exc:  # noqa: BLE001 - a figure of its own, not the benchmark's
        out["one_listing_error"] = str(exc)[:200]
    log(json.dumps(out))
    return out


if __name__ == "__main__":
    sys.exit(main())
