#!/usr/bin/env python3
"""infinstor_jlab transform driver: the same script runs locally, under spark-submit and on EMR.

It is staged to S3 next to the manifest and the cleaned code, and depends only on boto3 (and
pyspark with --spark), never on infinstor_jlab or the snapshot index: a job reads exactly the
object versions the manifest lists.

    driver.py --manifest s3://b/stage/manifest.jsonl --code s3://b/stage/code.py
              --output s3://b/out/ --run-id RUN --entry-point infin_transform_one_object
              [--kwargs JSON] [--workers N | --spark] [--progress]

Output goes to <output>/<run id>/. ``_SUCCESS.json`` (counts, manifest fingerprint) is written
last and only when every object succeeded; otherwise ``_FAILURES.json`` lists each failure
with its traceback and the driver exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import posixpath
import shutil
import sys
import tempfile
import time
import traceback
from typing import Any

ONE_OBJECT = "infin_transform_one_object"
DIR_BY_DIR = "infin_transform_dir_by_dir"
ALL_OBJECTS = "infin_transform_all_objects"
CSV_TO_PD = "infin_transform_csv_to_pd"
SCRIPT = "script"
PROGRESS_PREFIX = "INFINSTOR_PROGRESS "


def _s3():
    import boto3

    return boto3.client("s3")


def split_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri}")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def read_text(uri: str) -> str:
    if uri.startswith("s3://"):
        bucket, key = split_uri(uri)
        return _s3().get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
    with open(uri, encoding="utf-8") as fh:
        return fh.read()


def load_manifest(uri: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(header, objects): the first JSON line is the header with the fingerprint."""
    lines = [line for line in read_text(uri).splitlines() if line.strip()]
    header = json.loads(lines[0])
    objects = [json.loads(line) for line in lines[1:]]
    return header, objects


def relative_key(key: str, prefix: str) -> str:
    rel = key[len(prefix):] if prefix and key.startswith(prefix) else key
    # Keys are data, not paths: keep them inside the task's input directory.
    parts = [p for p in rel.split("/") if p not in ("", ".", "..")]
    return "/".join(parts) or "_"


def plan_tasks(entry_point: str, objects: list[dict[str, Any]], prefix: str,
               parallelism: int) -> list[list[dict[str, Any]]]:
    if not objects:
        return [[]]
    if entry_point == ONE_OBJECT:
        size = max(1, len(objects) // max(1, parallelism * 4))
        return [objects[i:i + size] for i in range(0, len(objects), size)]
    if entry_point == DIR_BY_DIR:
        by_dir: dict[str, list[dict[str, Any]]] = {}
        for obj in objects:
            by_dir.setdefault(posixpath.dirname(relative_key(obj["key"], prefix)), []).append(obj)
        return list(by_dir.values())
    return [objects]


def run_task(task: dict[str, Any]) -> dict[str, Any]:
    """Download a task's objects at their exact versions, run the entry point, upload what
    it wrote. Never raises: failures are returned with their tracebacks."""
    s3 = _s3()
    objects = task["objects"]
    prefix = task["prefix"]
    entry_point = task["entry_point"]
    result: dict[str, Any] = {"objects": len(objects), "ok": 0, "failed": [], "outputs": 0}
    work = tempfile.mkdtemp(prefix="infinstor-task-")
    input_dir = os.path.join(work, "input")
    output_dir = os.path.join(work, "output")
    os.makedirs(input_dir)
    os.makedirs(output_dir)
    try:
        local: dict[str, str] = {}
        for obj in objects:
            path = os.path.join(input_dir, *relative_key(obj["key"], prefix).split("/"))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            try:
                extra = {"VersionId": obj["version_id"]} if obj.get("version_id") else {}
                s3.download_file(obj["bucket"], obj["key"], path, ExtraArgs=extra)
                local[obj["key"]] = path
            except Exception as exc:  # noqa: BLE001 - reported per object
                result["failed"].append({"key": obj["key"], "error": f"download: {exc}",
                                         "traceback": traceback.format_exc()})
        namespace: dict[str, Any] = {"__name__": "infinstor_transform"}
        code = task["code"]
        kwargs = task["kwargs"]
        if entry_point == SCRIPT:
            env_before = {k: os.environ.get(k) for k in ("INPUT_DIR", "OUTPUT_DIR")}
            os.environ["INPUT_DIR"], os.environ["OUTPUT_DIR"] = input_dir, output_dir
            try:
                exec(compile(code, "transform.py", "exec"), {"__name__": "__main__"})  # noqa: S102
                result["ok"] = len(local)
            except Exception as exc:  # noqa: BLE001
                result["failed"].append({"key": "*", "error": repr(exc),
                                         "traceback": traceback.format_exc()})
            finally:
                for k, v in env_before.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v
        else:
            exec(compile(code, "transform.py", "exec"), namespace)  # noqa: S102
            fn = namespace[entry_point]
            if entry_point == ONE_OBJECT:
                for key, path in local.items():
                    parent = os.path.dirname(path)
                    try:
                        fn(path, output_dir, parent, **kwargs)
                        result["ok"] += 1
                    except Exception as exc:  # noqa: BLE001
                        result["failed"].append({"key": key, "error": repr(exc),
                                                 "traceback": traceback.format_exc()})
            else:
                try:
                    if entry_point == DIR_BY_DIR:
                        dirs = sorted({os.path.dirname(p) for p in local.values()}) or [input_dir]
                        for d in dirs:
                            fn(input_dir, output_dir, d, **kwargs)
                    elif entry_point == ALL_OBJECTS:
                        fn(input_dir, output_dir, **kwargs)
                    elif entry_point == CSV_TO_PD:
                        import pandas as pd

                        frames = [pd.read_csv(p) for k, p in sorted(local.items())
                                  if k.lower().endswith(".csv")]
                        df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
                        out = fn(df, **kwargs)
                        if out is not None and hasattr(out, "to_csv"):
                            out.to_csv(os.path.join(output_dir, "output.csv"), index=False)
                    result["ok"] = len(local)
                except Exception as exc:  # noqa: BLE001
                    result["failed"].append({"key": "*", "error": repr(exc),
                                             "traceback": traceback.format_exc()})
        out_bucket, out_key = split_uri(task["output"])
        for root, _dirs, files in os.walk(output_dir):
            for name in files:
                path = os.path.join(root, name)
                rel = os.path.relpath(path, output_dir).replace(os.sep, "/")
                s3.upload_file(path, out_bucket, posixpath.join(out_key, rel))
                result["outputs"] += 1
    except Exception as exc:  # noqa: BLE001 - the whole task failed
        result["failed"].append({"key": "*", "error": repr(exc),
                                 "traceback": traceback.format_exc()})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="infinstor_jlab transform driver")
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--code", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--entry-point", required=True)
    parser.add_argument("--kwargs", default="{}")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--spark", action="store_true")
    parser.add_argument("--progress", action="store_true")
    args = parser.parse_args(argv)

    started = time.time()
    header, objects = load_manifest(args.manifest)
    code = read_text(args.code)
    kwargs = json.loads(args.kwargs)
    output = args.output.rstrip("/") + "/" + args.run_id + "/"
    prefix = header.get("prefix", "")
    parallelism = max(1, args.workers)
    spark = None
    if args.spark:
        from pyspark.sql import SparkSession

        spark = SparkSession.builder.appName(f"infinstor-{args.run_id}").getOrCreate()
        parallelism = max(parallelism, spark.sparkContext.defaultParallelism)
    groups = plan_tasks(args.entry_point, objects, prefix, parallelism)
    tasks = [{"objects": g, "prefix": prefix, "entry_point": args.entry_point, "code": code,
              "kwargs": kwargs, "output": output} for g in groups]
    total = len(objects)
    done = 0
    results: list[dict[str, Any]] = []

    def progress() -> None:
        if args.progress:
            print(PROGRESS_PREFIX + json.dumps({"done": done, "total": total}), flush=True)

    progress()
    if spark is not None:
        results = spark.sparkContext.parallelize(tasks, len(tasks)).map(run_task).collect()
        done = total
        progress()
    elif parallelism > 1 and len(tasks) > 1:
        import multiprocessing

        with multiprocessing.get_context("spawn").Pool(min(parallelism, len(tasks))) as pool:
            for res in pool.imap_unordered(run_task, tasks):
                results.append(res)
                done += res["objects"]
                progress()
    else:
        for task in tasks:
            res = run_task(task)
            results.append(res)
            done += res["objects"]
            progress()

    failed = [f for r in results for f in r["failed"]]
    summary = {
        "run_id": args.run_id,
        "objects": total,
        "succeeded": sum(r["ok"] for r in results),
        "failed": len(failed),
        "outputs": sum(r["outputs"] for r in results),
        "fingerprint": header.get("fingerprint"),
        "entry_point": args.entry_point,
        "started": started,
        "finished": time.time(),
    }
    out_bucket, out_key = split_uri(output)
    s3 = _s3()
    if failed:
        for f in failed:
            print(f"FAILED {f['key']}: {f['error']}\n{f['traceback']}", file=sys.stderr)
        s3.put_object(Bucket=out_bucket, Key=out_key + "_FAILURES.json",
                      Body=json.dumps({**summary, "failures": failed}, indent=1).encode())
    else:
        # Written last: its presence means every object of the manifest went through.
        s3.put_object(Bucket=out_bucket, Key=out_key + "_SUCCESS.json",
                      Body=json.dumps(summary, indent=1).encode())
    print(json.dumps(summary), flush=True)
    if spark is not None:
        spark.stop()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
