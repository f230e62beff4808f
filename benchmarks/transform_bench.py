#!/usr/bin/env python3
"""Transform throughput: the local executor vs a plain Python loop, and the spark executor's
fixed start-up cost, on moto's S3 server. Prints one JSON document (progress on stderr).

    python benchmarks/transform_bench.py [--objects 2000] [--size 4096] [--rounds 1]
                                         [--no-spark] [--json]

* moto's ``ThreadedMotoServer`` (real HTTP S3 on 127.0.0.1) runs in a child process of its
  own, so neither the loop nor the executor's workers share a GIL with the "remote" store.
  moto is costly: ~5-7 ms of CPU per object (GetObject + PutObject; it closes the connection
  after every response, so each request is also a new TCP connection and server thread),
  more than the client's ~4 ms. On 2 cores that caps any client at ~1.7-2x the loop.
* A versioned bucket gets ``--objects`` small objects (``--size`` bytes each) under ``data/``
  (20 folders) and 10 under ``small/``; it is tracked and synced into a temp index.
* **loop** (``--rounds`` times, each followed by a local run, so both see the same load):
  one process, one thread: for each object of the view's manifest, get_object at
  its exact version id into a temp dir, call the one_object transform (it copies its input to
  ``output_dir``), put_object what it wrote (``loop_objects_per_s``).
* **local**: ``TransformService.start_run`` + ``wait`` with the local executor over the same
  view and the same transform, end to end: resolving the manifest, MLflow run, staging,
  driver, outputs, ``_SUCCESS.json`` (``local_objects_per_s``; ``ratio`` = local / loop,
  target >= 1.5; with several rounds, the median of the rounds' ratios). One warm-up run
  over ``small/`` first (MLflow creates its sqlite schema once per server, not per run).
  Outputs go to an untracked bucket, as the loop's do.
* **spark** (``--no-spark`` skips): the spark executor's wall time from ``start_run`` to
  succeeded over ``small/`` (10 objects) and over no input: its fixed start-up cost; then
  over ``data/`` when that finishes within ``--spark-timeout`` seconds.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

COPY_ONE = """
import os, shutil
def infin_transform_one_object(filename, output_dir, parentdir, **kwargs):
    shutil.copy(filename, os.path.join(output_dir, os.path.basename(filename)))
"""

IN_BUCKET = "transform-bench-in"
OUT_BUCKET = "transform-bench-out"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _moto(conn: Any) -> None:
    """Child process: moto's server until the parent closes the pipe."""
    import logging

    warnings.simplefilter("ignore")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request on stderr
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    conn.send(server.get_host_and_port())
    try:
        conn.recv()
    except EOFError:
        pass
    server.stop()


def machine() -> dict[str, Any]:
    load = os.getloadavg()
    return {
        "cpus": os.cpu_count(),
        "loadavg_1m": round(load[0], 2),
        "loadavg_5m": round(load[1], 2),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def seed(s3: Any, objects: int, size: int) -> None:
    s3.create_bucket(Bucket=IN_BUCKET)
    s3.put_bucket_versioning(Bucket=IN_BUCKET, VersioningConfiguration={"Status": "Enabled"})
    s3.create_bucket(Bucket=OUT_BUCKET)
    keys = [f"data/d{i % 20:02d}/part-{i:05d}.bin" for i in range(objects)]
    keys += [f"small/part-{i:02d}.bin" for i in range(10)]

    def put(key: str) -> None:
        s3.put_object(Bucket=IN_BUCKET, Key=key, Body=os.urandom(size))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, keys))


def plain_loop(s3: Any, manifest_jsonl: str, out_prefix: str) -> tuple[float, int]:
    """The same work in one process, one thread: (seconds, outputs)."""
    namespace: dict[str, Any] = {}
    exec(compile(COPY_ONE, "transform.py", "exec"), namespace)  # noqa: S102
    fn = namespace["infin_transform_one_object"]
    objects = [json.loads(line) for line in manifest_jsonl.splitlines()[1:] if line.strip()]
    work = tempfile.mkdtemp(prefix="transform-bench-loop-")
    outputs = 0
    started = time.perf_counter()
    try:
        out_dir = os.path.join(work, "output")
        os.makedirs(out_dir)
        for obj in objects:
            path = os.path.join(work, "input", *obj["key"].split("/"))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            body = s3.get_object(Bucket=obj["bucket"], Key=obj["key"], VersionId=obj["version_id"])[
                "Body"
            ]
            with open(path, "wb") as fh:
                shutil.copyfileobj(body, fh)
            fn(path, out_dir, os.path.dirname(path))
            for name in os.listdir(out_dir):
                out = os.path.join(out_dir, name)
                with open(out, "rb") as fh:
                    s3.put_object(Bucket=OUT_BUCKET, Key=out_prefix + name, Body=fh)
                os.remove(out)
                outputs += 1
        return time.perf_counter() - started, outputs
    finally:
        shutil.rmtree(work, ignore_errors=True)


def count_keys(s3: Any, bucket: str, prefix: str) -> int:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sum(len(p.get("Contents", [])) for p in pages)


def timed_run(
    svc: Any, input_spec: dict[str, Any], executor: str, timeout: float
) -> dict[str, Any]:
    """start_run -> succeeded, wall time; the driver's own summary from _SUCCESS.json."""
    started = time.perf_counter()
    run = svc.start_run(
        "copy", input_spec=input_spec, output_uri=f"s3://{OUT_BUCKET}/out/", executor=executor
    )
    try:
        done = svc.wait(run.id, timeout=timeout)
    except TimeoutError:
        svc.cancel(run.id)
        return {
            "state": "timeout",
            "seconds": round(time.perf_counter() - started, 2),
            "timeout_s": timeout,
        }
    seconds = time.perf_counter() - started
    if done.state != "succeeded":
        raise RuntimeError(
            f"{executor} run {run.id} {done.state}: {done.error}\n{svc.log(run.id)[-4000:]}"
        )
    s3 = svc.service.s3()
    summary = json.loads(
        s3.get_object(Bucket=OUT_BUCKET, Key=f"out/{run.id}/_SUCCESS.json")["Body"].read()
    )
    outputs = count_keys(s3, OUT_BUCKET, f"out/{run.id}/") - 1
    if outputs != summary["objects"]:
        raise RuntimeError(
            f"{executor} run {run.id}: {outputs} outputs for {summary['objects']} objects"
        )
    return {
        "state": done.state,
        "seconds": round(seconds, 3),
        "objects": summary["objects"],
        "driver_seconds": round(summary["finished"] - summary["started"], 3),
        "tasks": summary.get("tasks"),
        "io_threads": summary.get("io_threads"),
        "objects_per_s": round(summary["objects"] / seconds, 1) if summary["objects"] else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--objects", type=int, default=2000)
    parser.add_argument("--size", type=int, default=4096, help="bytes per object")
    parser.add_argument(
        "--workers", type=int, default=0, help="LocalExecutor workers (0: the executor's default)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="loop + local executor pairs (the median ratio is reported)",
    )
    parser.add_argument("--no-spark", action="store_true", help="skip the spark executor")
    parser.add_argument("--spark-master", default="local[*]")
    parser.add_argument(
        "--spark-timeout",
        type=float,
        default=180.0,
        help="give up on the spark run over all objects after this long",
    )
    parser.add_argument("--json", action="store_true", help="compact JSON")
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    moto = ctx.Process(target=_moto, args=(child,), daemon=True)
    moto.start()
    host, port = parent.recv()
    endpoint = f"http://{host}:{port}"
    work = tempfile.mkdtemp(prefix="transform-bench-")
    old_cwd = os.getcwd()
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": endpoint,
            "MLFLOW_TRACKING_URI": f"sqlite:///{work}/mlflow.db",
        }
    )
    os.environ.pop("AWS_PROFILE", None)
    os.chdir(work)  # MLflow's sqlite store keeps artifacts under ./mlruns
    result: dict[str, Any] = {
        "objects": args.objects,
        "object_bytes": args.size,
        "machine_before": machine(),
    }
    try:
        import boto3

        from infinstor_jlab.index import open_index
        from infinstor_jlab.services import InfinstorService
        from infinstor_jlab.transforms.executors import LocalExecutor, SparkExecutor
        from infinstor_jlab.transforms.service import TransformService
        from infinstor_jlab.transforms.store import TransformStore

        s3 = boto3.client("s3")
        seed(s3, args.objects, args.size)
        log(f"seeded {args.objects} + 10 objects of {args.size} bytes")
        index_url = f"sqlite:///{work}/index.sqlite"
        service = InfinstorService(open_index(index_url), s3_endpoint_url=endpoint)
        service.track(IN_BUCKET, enable_versioning_consent=True)
        service.sync(IN_BUCKET)
        local = LocalExecutor(workers=args.workers) if args.workers else LocalExecutor()
        executors: dict[str, Any] = {"local": local}
        spark = SparkExecutor(master=args.spark_master)
        if not args.no_spark:
            ok, why = spark.available()
            if ok:
                executors["spark"] = spark
            else:
                result["spark"] = {"skipped": why}
        svc = TransformService(
            service, TransformStore(f"{work}/index.sqlite"), f"{work}/runs", executors=executors
        )
        svc.save_revision("copy", COPY_ONE)
        data = {"type": "view", "bucket": IN_BUCKET, "prefix": "data/", "at": "now"}
        small = {"type": "view", "bucket": IN_BUCKET, "prefix": "small/", "at": "now"}

        manifest = svc.resolve_input(data)
        assert len(manifest.objects) == args.objects, len(manifest.objects)
        log("local executor: warm-up over small/ ...")
        result["local_warmup_small"] = timed_run(svc, small, "local", 300)
        rounds = []
        for rnd in range(args.rounds):
            log(f"round {rnd + 1}/{args.rounds}: plain loop ...")
            loop_s, loop_outputs = plain_loop(s3, manifest.to_jsonl(), f"loop{rnd}/")
            assert loop_outputs == args.objects
            loop = {"seconds": round(loop_s, 3), "objects_per_s": round(args.objects / loop_s, 1)}
            log(f"plain loop: {loop}")
            log(f"round {rnd + 1}/{args.rounds}: local executor over data/ ...")
            local_run = {"workers": local.workers, **timed_run(svc, data, "local", 900)}
            log(f"local executor: {local_run}")
            rounds.append(
                {
                    "loop": loop,
                    "local": local_run,
                    "ratio": round(local_run["objects_per_s"] / loop["objects_per_s"], 3),
                    "loadavg_1m": round(os.getloadavg()[0], 2),
                }
            )
        result["rounds"] = rounds
        result["loop_objects_per_s"] = statistics.median(r["loop"]["objects_per_s"] for r in rounds)
        result["local_objects_per_s"] = statistics.median(
            r["local"]["objects_per_s"] for r in rounds
        )
        result["local_workers"] = local.workers
        result["local_io_threads"] = rounds[0]["local"]["io_threads"]
        # Each round's ratio compares a loop and a local run made back to back.
        result["ratio"] = round(statistics.median(r["ratio"] for r in rounds), 3)
        result["ratio_target"] = 1.5

        if "spark" in executors:
            out: dict[str, Any] = {"master": args.spark_master}
            log("spark executor over no input ...")
            out["empty_input"] = timed_run(svc, {"type": "no-input-data"}, "spark", 300)
            log(f"spark, no input: {out['empty_input']}")
            log("spark executor over small/ (10 objects) ...")
            out["small_10"] = timed_run(svc, small, "spark", 300)
            log(f"spark, 10 objects: {out['small_10']}")
            out["startup_seconds"] = min(out["empty_input"]["seconds"], out["small_10"]["seconds"])
            log(f"spark executor over data/ (timeout {args.spark_timeout:.0f}s) ...")
            out["all"] = timed_run(svc, data, "spark", args.spark_timeout)
            log(f"spark, all: {out['all']}")
            out["objects_per_s"] = out["all"].get("objects_per_s")
            result["spark"] = out
        result["machine_after"] = machine()
        service.index.close()
    finally:
        os.chdir(old_cwd)
        parent.send("stop")
        moto.join(10)
        if moto.is_alive():
            moto.terminate()
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
