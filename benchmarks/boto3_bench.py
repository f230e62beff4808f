"""Time-travel boto3 vs plain boto3 on moto's server. Prints one JSON object.

    python benchmarks/boto3_bench.py [--objects 1200] [--reps 200] [--json]

* ``get_object_ratio``: get_object through time travel (index lookup + pinned VersionId)
  divided by a plain get_object with the same VersionId (target <= 1.05).
* ``list_page_ratio``: a 1000-key list_objects_v2 page through time travel (served from the
  index) divided by the live page from S3 (target < 1: time travel is faster).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import warnings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--objects", type=int, default=1200)
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    work = tempfile.mkdtemp(prefix="boto3-bench-")
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": endpoint,
            "INFINSTOR_INDEX_URL": f"sqlite:///{work}/index.sqlite",
        }
    )
    import boto3

    from infinstor_jlab.index import open_index
    from infinstor_jlab.services import InfinstorService

    try:
        plain = boto3.client("s3")
        bucket = "boto3-bench"
        plain.create_bucket(Bucket=bucket)
        plain.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        body = os.urandom(64 * 1024)
        for i in range(args.objects):
            plain.put_object(Bucket=bucket, Key=f"data/part-{i:05d}.bin", Body=body)
        print(f"seeded {args.objects} objects", file=sys.stderr)
        InfinstorService(open_index(), s3_endpoint_url=endpoint).sync(bucket)

        from infinstor_jlab import infin_boto3

        travel = infin_boto3.client(at="now")
        key = "data/part-00007.bin"
        version_id = plain.head_object(Bucket=bucket, Key=key)["VersionId"]

        def timed(fn, reps):
            samples = []
            for _ in range(reps):
                t = time.perf_counter()
                fn()
                samples.append(time.perf_counter() - t)
            return statistics.median(samples) * 1000

        def plain_get():
            plain.get_object(Bucket=bucket, Key=key, VersionId=version_id)["Body"].read()

        def travel_get():
            travel.get_object(Bucket=bucket, Key=key)["Body"].read()

        for fn in (plain_get, travel_get):  # warm up connections and caches
            timed(fn, 10)
        # Interleave the two so drift in the server affects both alike.
        plain_ms, travel_ms = [], []
        for _ in range(5):
            plain_ms.append(timed(plain_get, args.reps // 5))
            travel_ms.append(timed(travel_get, args.reps // 5))
        get_plain = statistics.median(plain_ms)
        get_travel = statistics.median(travel_ms)
        assert travel.get_object(Bucket=bucket, Key=key)["Body"].read() == body

        def plain_list():
            plain.list_objects_v2(Bucket=bucket, Prefix="data/", MaxKeys=1000)

        def travel_list():
            travel.list_objects_v2(Bucket=bucket, Prefix="data/", MaxKeys=1000)

        live_page = plain.list_objects_v2(Bucket=bucket, Prefix="data/", MaxKeys=1000)
        tt_page = travel.list_objects_v2(Bucket=bucket, Prefix="data/", MaxKeys=1000)
        assert [o["Key"] for o in live_page["Contents"]] == [o["Key"] for o in tt_page["Contents"]]
        list_reps = max(5, args.reps // 20)
        list_plain = timed(plain_list, list_reps)
        list_travel = timed(travel_list, list_reps)
        result = {
            "objects": args.objects,
            "get_object_plain_ms": round(get_plain, 3),
            "get_object_time_travel_ms": round(get_travel, 3),
            "get_object_ratio": round(get_travel / get_plain, 3),
            "list_page_live_ms": round(list_plain, 2),
            "list_page_time_travel_ms": round(list_travel, 2),
            "list_page_ratio": round(list_travel / list_plain, 4),
        }
    finally:
        server.stop()
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
