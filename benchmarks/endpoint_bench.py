"""S3 endpoint benchmark: GET throughput through the endpoint vs. directly from the same S3
(moto's server), many small objects by concurrent clients (errors, p50/p95), and a 1000-key
ListObjectsV2 page through the endpoint vs. the same store's own page; RSS of the process
that runs the endpoint. One JSON document on stdout.

    python benchmarks/endpoint_bench.py [--big-mb 256] [--small 1000] [--clients 32]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--big-mb", type=int, default=256)
    ap.add_argument("--small", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--list-keys", type=int, default=5000)
    args = ap.parse_args()

    os.environ.update(
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1"
    )
    # moto in a process of its own: it keeps objects in memory, and the RSS measured here
    # is the endpoint's (with the benchmark's clients, which discard what they read).
    import socket
    import subprocess

    import boto3
    from botocore.config import Config

    from infinstor_jlab.endpoint import EndpointServer
    from infinstor_jlab.index import open_index
    from infinstor_jlab.services import InfinstorService
    from infinstor_jlab.services.credentials import CredentialService

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    moto = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    s3_url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.2)
    os.environ["AWS_ENDPOINT_URL"] = s3_url
    pool_cfg = Config(max_pool_connections=args.clients * 2)
    direct = boto3.client("s3", endpoint_url=s3_url, config=pool_cfg)
    bucket = f"bench-{uuid.uuid4().hex[:8]}"
    direct.create_bucket(Bucket=bucket)
    direct.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})

    big = os.urandom(1 << 20) * args.big_mb
    direct.put_object(Bucket=bucket, Key="big.bin", Body=big)
    del big
    with ThreadPoolExecutor(8) as ex:
        list(
            ex.map(
                lambda i: direct.put_object(Bucket=bucket, Key=f"small/{i:05d}", Body=b"x" * 1024),
                range(args.small),
            )
        )
        list(
            ex.map(
                lambda i: direct.put_object(Bucket=bucket, Key=f"list/{i:06d}", Body=b"y"),
                range(args.list_keys),
            )
        )
    time.sleep(1.1)

    tmp = tempfile.mkdtemp()
    index = open_index("sqlite:///" + os.path.join(tmp, "index.sqlite"))
    service = InfinstorService(index, s3_endpoint_url=s3_url)
    service.track(bucket, enable_versioning_consent=True)
    service.sync(bucket)
    creds = CredentialService.for_service(service)
    cred, secret = creds.issue("now", bucket=bucket)
    server = EndpointServer(service, creds.store, port=0)
    ep_url = server.start()
    via = boto3.client(
        "s3",
        endpoint_url=ep_url,
        aws_access_key_id=cred.key_id,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        config=pool_cfg,
    )
    out: dict[str, object] = {"big_mb": args.big_mb, "rss_start_mb": round(rss_mb(), 1)}

    # 1. one big GET, direct vs. through the endpoint (alternating, best of two each)
    peak = {"mb": rss_mb()}
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            peak["mb"] = max(peak["mb"], rss_mb())
            time.sleep(0.05)

    threading.Thread(target=watch, daemon=True).start()

    def read_all(c: object) -> float:
        t = time.perf_counter()
        body = c.get_object(Bucket=bucket, Key="big.bin")["Body"]  # type: ignore[attr-defined]
        n = 0
        for chunk in iter(lambda: body.read(1 << 20), b""):
            n += len(chunk)
        assert n == args.big_mb << 20
        return (n / (1 << 20)) / (time.perf_counter() - t)

    rates_direct, rates_via = [], []
    for _ in range(2):
        rates_direct.append(read_all(direct))
        rates_via.append(read_all(via))
    stop.set()
    out["get_big_direct_mb_s"] = round(max(rates_direct), 1)
    out["get_big_endpoint_mb_s"] = round(max(rates_via), 1)
    out["get_big_ratio"] = round(max(rates_via) / max(rates_direct), 3)
    out["rss_peak_streaming_mb"] = round(peak["mb"], 1)

    # 2. small objects, concurrent clients
    errors = 0
    lat: list[float] = []
    lock = threading.Lock()

    def fetch(i: int) -> None:
        nonlocal errors
        t = time.perf_counter()
        try:
            via.get_object(Bucket=bucket, Key=f"small/{i:05d}")["Body"].read()
        except Exception:  # noqa: BLE001 - counted
            with lock:
                errors += 1
            return
        with lock:
            lat.append((time.perf_counter() - t) * 1000)

    peak["mb"] = rss_mb()
    stop.clear()
    threading.Thread(target=watch, daemon=True).start()
    t = time.perf_counter()
    with ThreadPoolExecutor(args.clients) as ex:
        list(ex.map(fetch, range(args.small)))
    stop.set()
    out["small_objects"] = args.small
    out["small_clients"] = args.clients
    out["small_errors"] = errors
    out["small_p50_ms"] = round(pct(lat, 50), 2)
    out["small_p95_ms"] = round(pct(lat, 95), 2)
    out["small_per_s"] = round(args.small / (time.perf_counter() - t), 1)
    out["rss_peak_clients_mb"] = round(peak["mb"], 1)

    # 3. a 1000-key ListObjectsV2 page: endpoint vs. the store itself
    def page_times(c: object, n: int = 30) -> list[float]:
        times = []
        for _ in range(n):
            t = time.perf_counter()
            r = c.list_objects_v2(Bucket=bucket, Prefix="list/", MaxKeys=1000)  # type: ignore[attr-defined]
            times.append((time.perf_counter() - t) * 1000)
            assert r["KeyCount"] == 1000
        return times

    ep_pages, s3_pages = page_times(via), page_times(direct)
    out["list_versions_in_index"] = index.get_bucket(bucket).version_count
    out["list_page_endpoint_p50_ms"] = round(statistics.median(ep_pages), 2)
    out["list_page_s3_p50_ms"] = round(statistics.median(s3_pages), 2)
    out["ru_maxrss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    server.stop()
    moto.terminate()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
