"""S3 endpoint benchmark: GET throughput through the endpoint vs. directly from the same S3
(moto's server), many small objects by concurrent clients (errors, p50/p95), and a 1000-key
ListObjectsV2 page through the endpoint at 1M versions vs. the store's own page; RSS of the
endpoint's process (`infinstor-jlab endpoint serve`, its own process as in production) while
streaming and with 32 clients, and optionally while streaming a 2 GB object. One JSON
document on stdout.

    python benchmarks/endpoint_bench.py [--big-mb 256] [--small 1000] [--clients 32]
        [--list-versions 1000000] [--stream-gb 2]

The 1M-version bucket is built directly in the index (through its ingest path,
``merge_listing`` + ``finish_scan``, as benchmarks/index_bench.py does): moto cannot hold or
list a million versions on this machine in reasonable time. Listings through the endpoint
come from the index alone, so its page time is the same as for a bucket of that size in S3;
the store's own page time is moto's for a 1000-key page of a bucket of ``--list-keys`` keys.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import io
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)


def rss_mb(pid: int | str = "self") -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


class Peak:
    mb = 0.0


@contextlib.contextmanager
def peak_rss(pid: int) -> Iterator[Peak]:
    """The peak VmRSS of a process, sampled every 20 ms while in the block."""
    peak = Peak()
    peak.mb = rss_mb(pid)
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            peak.mb = max(peak.mb, rss_mb(pid))
            time.sleep(0.02)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        stop.set()
        thread.join()


class RandomStream(io.RawIOBase):
    """`size` bytes (a repeated random MiB) read on demand: a 2 GB upload without 2 GB here."""

    def __init__(self, size: int) -> None:
        self.left = size
        self.block = os.urandom(1 << 20)

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = min(len(b), self.left, len(self.block))
        b[:n] = self.block[:n]
        self.left -= n
        return n


def build_versions(index: Any, bucket: str, n: int, per_key: int = 4) -> float:
    """`n` versions (keys list/0000000..., `per_key` versions each, one a minute) straight
    through the index's ingest path; returns the time (ms) in the middle of the history."""
    from infinstor_jlab.index import VersionEntry

    index.register_bucket(bucket, versioning="Enabled")
    t0 = 1_767_225_600_000  # 2026-01-01
    keys = n // per_key
    scan = t0 + 10 * 365 * 86_400_000
    after: str | None = None
    batch: list[Any] = []
    for i in range(keys):
        key = f"list/{i:07d}"
        for v in range(per_key - 1, -1, -1):  # newest first, as ListObjectVersions
            t = t0 + (v * keys + i) * 60_000 // per_key
            batch.append(
                VersionEntry(key, f"v{i:07d}-{v}", t, 100 + v, f'"{i:024x}{v:08x}"', False)
            )
        if len(batch) >= 50_000 or i == keys - 1:
            through = None if i == keys - 1 else key
            index.merge_listing(
                bucket, batch, after_key=after, through_key=through, scan_started_ms=scan
            )
            after, batch = through, []
    index.finish_scan(bucket, scan)
    return t0 + keys * 60_000 // 2


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--big-mb", type=int, default=256)
    ap.add_argument("--small", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--list-keys", type=int, default=5000, help="keys in moto for its own page")
    ap.add_argument("--list-versions", type=int, default=1_000_000)
    ap.add_argument("--stream-gb", type=float, default=0, help="also stream an object this big")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    os.environ.update(
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1"
    )
    # moto in a process of its own (it keeps objects in memory), the endpoint in another.
    import boto3
    from boto3.s3.transfer import TransferConfig
    from botocore.config import Config

    from infinstor_jlab.index import open_index
    from infinstor_jlab.services import InfinstorService
    from infinstor_jlab.services.credentials import CredentialService
    from infinstor_jlab.timespec import format_tm

    def free_port() -> int:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])

    port = free_port()
    moto = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    serve: subprocess.Popen[str] | None = None
    try:
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
        if args.stream_gb:
            size = int(args.stream_gb * (1 << 30))
            direct.upload_fileobj(
                io.BufferedReader(RandomStream(size), 1 << 20),
                bucket,
                "huge.bin",
                Config=TransferConfig(multipart_chunksize=64 << 20, max_concurrency=2),
            )
        with ThreadPoolExecutor(8) as ex:
            list(
                ex.map(
                    lambda i: direct.put_object(
                        Bucket=bucket, Key=f"small/{i:05d}", Body=b"x" * 1024
                    ),
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
        index_url = "sqlite:///" + os.path.join(tmp, "index.sqlite")
        index = open_index(index_url)
        service = InfinstorService(index, s3_endpoint_url=s3_url)
        service.track(bucket, enable_versioning_consent=True)
        service.sync(bucket)
        t = time.perf_counter()
        list_bucket = f"list-{uuid.uuid4().hex[:8]}"
        mid_ms = build_versions(index, list_bucket, args.list_versions)
        build_s = time.perf_counter() - t

        serve = subprocess.Popen(
            [sys.executable, "-m", "infinstor_jlab.cli", "--index", index_url, "endpoint",
             "serve", "--port", "0"],
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")),
        )  # fmt: skip
        assert serve.stderr is not None
        line = ""
        while "http://" not in line:
            line = serve.stderr.readline()
            if not line and serve.poll() is not None:
                raise SystemExit("endpoint serve did not start")
        ep_url = line.split(" on ", 1)[1].split(" ", 1)[0]
        creds = CredentialService.for_service(service)
        cred, secret = creds.issue("now", bucket=bucket)

        def via_client(key_id: str, key_secret: str) -> Any:
            return boto3.client(
                "s3",
                endpoint_url=ep_url,
                aws_access_key_id=key_id,
                aws_secret_access_key=key_secret,
                region_name="us-east-1",
                config=pool_cfg,
            )

        via = via_client(cred.key_id, secret)
        out: dict[str, object] = {
            "big_mb": args.big_mb,
            "endpoint_rss_start_mb": round(rss_mb(serve.pid), 1),
        }

        # 1. one big GET, direct vs. through the endpoint (alternating, best of rounds each)
        def read_all(c: Any, key: str, size: int) -> float:
            t = time.perf_counter()
            body = c.get_object(Bucket=bucket, Key=key)["Body"]
            n = 0
            for chunk in iter(lambda: body.read(1 << 20), b""):
                n += len(chunk)
            assert n == size, (n, size)
            return (n / (1 << 20)) / (time.perf_counter() - t)

        via.get_object(Bucket=bucket, Key="small/00000")["Body"].read()  # warm both up
        direct.get_object(Bucket=bucket, Key="small/00000")["Body"].read()
        rates_direct, rates_via = [], []
        with peak_rss(serve.pid) as peak:
            for _ in range(args.rounds):
                rates_direct.append(read_all(direct, "big.bin", args.big_mb << 20))
                rates_via.append(read_all(via, "big.bin", args.big_mb << 20))
        out["get_big_direct_mb_s"] = [round(r, 1) for r in rates_direct]
        out["get_big_endpoint_mb_s"] = [round(r, 1) for r in rates_via]
        out["get_big_ratio"] = round(max(rates_via) / max(rates_direct), 3)
        out["get_big_ratio_median"] = round(
            statistics.median(rates_via) / statistics.median(rates_direct), 3
        )
        out["endpoint_rss_peak_streaming_mb"] = round(peak.mb, 1)
        if args.stream_gb:
            with peak_rss(serve.pid) as peak:
                rate = read_all(via, "huge.bin", int(args.stream_gb * (1 << 30)))
            out["stream_gb"] = args.stream_gb
            out["stream_endpoint_mb_s"] = round(rate, 1)
            out["endpoint_rss_peak_stream_gb_mb"] = round(peak.mb, 1)

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

        with peak_rss(serve.pid) as peak:
            t = time.perf_counter()
            with ThreadPoolExecutor(args.clients) as ex:
                list(ex.map(fetch, range(args.small)))
            elapsed = time.perf_counter() - t
        out["small_objects"] = args.small
        out["small_clients"] = args.clients
        out["small_errors"] = errors
        out["small_p50_ms"] = round(pct(lat, 50), 2)
        out["small_p95_ms"] = round(pct(lat, 95), 2)
        out["small_per_s"] = round(args.small / elapsed, 1)
        out["endpoint_rss_peak_clients_mb"] = round(peak.mb, 1)

        # 3. a 1000-key ListObjectsV2 page: through the endpoint at 1M versions (a view in
        # the middle of the history, pages from random keys on), and moto's own page
        lcred, lsecret = creds.issue(format_tm(mid_ms), bucket=list_bucket)
        lvia = via_client(lcred.key_id, lsecret)
        keys = args.list_versions // 4
        rng = random.Random(7)

        def page_times(c: Any, b: str, n: int, count: int, start: bool) -> list[float]:
            times = []
            for _ in range(n):
                kw: dict[str, Any] = {"Bucket": b, "Prefix": "list/", "MaxKeys": 1000}
                if start:
                    kw["StartAfter"] = f"list/{rng.randrange(keys - 2000):07d}"
                t = time.perf_counter()
                r = c.list_objects_v2(**kw)
                times.append((time.perf_counter() - t) * 1000)
                assert r["KeyCount"] == count, r["KeyCount"]
            return times

        page_times(lvia, list_bucket, 5, 1000, True)  # warm the index's caches
        ep_pages = page_times(lvia, list_bucket, 50, 1000, True)
        s3_pages = page_times(direct, bucket, 20, 1000, False)

        def raw_page_times(c: Any, b: str, n: int, start: bool) -> list[float]:
            """The same pages as signed HTTP GETs on one kept-alive connection, the body
            read but not parsed: the server's page time without botocore's XML parsing
            (~20-40 ms of a 1000-key page on this machine)."""
            urls = []
            for _ in range(n):
                params: dict[str, Any] = {"Bucket": b, "Prefix": "list/", "MaxKeys": 1000}
                if start:
                    params["StartAfter"] = f"list/{rng.randrange(keys - 2000):07d}"
                urls.append(c.generate_presigned_url("list_objects_v2", Params=params))
            where = urlsplit(urls[0])
            conn = http.client.HTTPConnection(where.hostname, where.port)
            times = []
            for url in urls:
                parts = urlsplit(url)
                t = time.perf_counter()
                conn.request("GET", f"{parts.path}?{parts.query}")
                resp = conn.getresponse()
                body = resp.read()
                times.append((time.perf_counter() - t) * 1000)
                assert resp.status == 200 and body.count(b"<Key>") == 1000, resp.status
            conn.close()
            return times

        v4 = Config(signature_version="s3v4")
        lvia_v4 = boto3.client(
            "s3",
            endpoint_url=ep_url,
            aws_access_key_id=lcred.key_id,
            aws_secret_access_key=lsecret,
            region_name="us-east-1",
            config=v4,
        )
        direct_v4 = boto3.client("s3", endpoint_url=s3_url, config=v4)
        ep_raw = raw_page_times(lvia_v4, list_bucket, 50, True)
        s3_raw = raw_page_times(direct_v4, bucket, 20, False)
        out["list_versions_in_index"] = index.get_bucket(list_bucket).version_count
        out["list_index_build_s"] = round(build_s, 1)
        out["list_page_endpoint_http_p50_ms"] = round(statistics.median(ep_raw), 2)
        out["list_page_endpoint_http_p95_ms"] = round(pct(ep_raw, 95), 2)
        out["list_page_s3_http_p50_ms"] = round(statistics.median(s3_raw), 2)
        out["list_page_endpoint_boto3_p50_ms"] = round(statistics.median(ep_pages), 2)
        out["list_page_s3_boto3_p50_ms"] = round(statistics.median(s3_pages), 2)
        out["list_page_s3_keys_in_bucket"] = args.list_keys + args.small + 1
        print(json.dumps(out, indent=1))
    finally:
        if serve is not None:
            serve.terminate()
            serve.wait(10)
        moto.terminate()
        moto.wait(10)


if __name__ == "__main__":
    main()
