"""Two Jupyter servers (real processes) plus CLI syncs write one index at once, while the
bucket keeps changing; afterwards the index answers exactly what the brute-force model built
from S3's own version listing answers, and labels made at once by both servers are unique.

Runs on the shared PostgreSQL backend (the point of issue 19) and on SQLite (many processes on
one WAL file), so the same test guards both.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid

import brute
import pytest
from live_server import LiveServer

from infinstor_jlab.index import open_index
from infinstor_jlab.services.s3 import iter_version_pages, make_s3_client


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return "sqlite:///" + str(tmp_path / "shared.sqlite")
    url = request.getfixturevalue("pg_url")
    try:
        open_index(url).close()
    except Exception as exc:  # noqa: BLE001 - the PostgreSQL backend is another branch's
        pytest.skip(f"this build has no PostgreSQL index backend yet ({exc})")
    return url


def _truth(bucket: str, written: list[tuple[str, str]]) -> list[brute.Op]:
    """The model's ops: every write in the order this test made it (one writer: the chain
    order of each key), with the time and size S3 gives each version in its listing."""
    client = make_s3_client()
    listed = {
        (e.key, e.version_id): e
        for page in iter_version_pages(client, bucket)
        for e in page.entries
    }
    assert len(listed) == len(written)
    ops = []
    for key, vid in written:
        e = listed[(key, vid)]
        ops.append(brute.Op(key, vid, e.time_ms, e.is_delete_marker, e.size, e.etag))
    return ops


def _cli_sync(index_url: str, bucket: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    return subprocess.Popen(
        [sys.executable, "-m", "infinstor_jlab.cli", "sync", bucket, "--index", index_url],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_servers_and_cli_syncs_agree_with_the_model(
    shared_url, s3, bucket, s3_endpoint, tmp_path
):
    written: list[tuple[str, str]] = []  # (key, version id) in the order S3 applied them
    for i in range(30):
        key = f"d/{i % 12:02d}.csv"
        written.append(
            (key, s3.put_object(Bucket=bucket, Key=key, Body=str(i).encode())["VersionId"])
        )
    servers = [
        LiveServer(
            tmp_path / name,
            index_url=shared_url,
            s3_endpoint=s3_endpoint,
            args=["--InfinstorApp.watch_buckets=0"],
        )
        for name in ("a", "b")
    ]
    try:
        for server in servers:
            server.start()
        for server in servers:
            server.wait_ready(120)
        a, b = servers
        a.api("POST", f"buckets/{bucket}/track", json={"enable_versioning": True})
        # The bucket changes while everyone syncs at once.
        stop = threading.Event()

        def writer() -> None:
            n = 0
            # Overwrites of d/ keys, and e/ keys made and deleted. (moto lists delete
            # markers apart from versions, so a marker between two puts of one key in one
            # second has no place a listing can tell; real S3 interleaves them. Here every
            # marker is its key's latest, so the model's chain order is knowable.)
            while not stop.is_set() and n < 60:
                if n % 4:
                    key = f"d/{n % 9:02d}.csv"
                    resp = s3.put_object(Bucket=bucket, Key=key, Body=uuid.uuid4().bytes)
                    written.append((key, resp["VersionId"]))
                else:
                    key = f"e/{n}.txt"
                    resp = s3.put_object(Bucket=bucket, Key=key, Body=uuid.uuid4().bytes)
                    written.append((key, resp["VersionId"]))
                    resp = s3.delete_object(Bucket=bucket, Key=key)
                    written.append((key, resp["VersionId"]))
                n += 1
                time.sleep(0.01)

        thread = threading.Thread(target=writer)
        thread.start()
        clis = [_cli_sync(shared_url, bucket) for _ in range(2)]
        jobs = [
            srv.api("POST", f"buckets/{bucket}/sync", json={"full": True}, expect=202)
            for srv in servers
        ]
        thread.join()
        for proc in clis:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
            assert "Synced" in out or "already running" in out
        for srv, job in zip(servers, jobs):
            deadline = time.monotonic() + 120
            while not job["done"]:
                assert time.monotonic() < deadline, job
                time.sleep(0.2)
                job = srv.api("GET", f"syncs/{job['id']}")
            assert job["state"] in ("done", "elsewhere"), job
        # Labels at once from both servers: the same name once, different names both.
        results: list[int] = []

        def label(srv: LiveServer, name: str) -> None:
            resp = srv.session.post(
                srv.url("infinstor", "labels"),
                json={"name": name, "bucket": bucket, "prefix": "d/"},
                timeout=120,
            )
            results.append(resp.status_code)

        threads = [
            threading.Thread(target=label, args=(srv, name))
            for srv, name in ((a, "same"), (b, "same"), (a, "mine-a"), (b, "mine-b"))
        ]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert sorted(results) == [201, 201, 201, 409]
        # One last pass after the writes stopped, from the second server.
        job = b.api("POST", f"buckets/{bucket}/sync", json={"full": True}, expect=202)
        while not job["done"]:
            time.sleep(0.2)
            job = b.api("GET", f"syncs/{job['id']}")
        assert job["state"] == "done", job
        listed_a = a.api("GET", "labels")["labels"]
        assert sorted(x["name"] for x in listed_a) == ["mine-a", "mine-b", "same"]
    finally:
        for server in servers:
            server.close()

    ops = _truth(bucket, written)
    index = open_index(shared_url)
    try:
        for key in sorted({op.key for op in ops}):
            assert [
                (v.version_id, v.last_modified_ms, v.is_delete_marker)
                for v in index.history(bucket, key)
            ] == [(op.version_id, op.time_ms, op.is_delete) for op in brute.history(ops, key)], key
        times = sorted({op.time_ms for op in ops})
        for t in [times[0], times[len(times) // 2], times[-1], times[-1] + 1000]:
            want = brute.snapshot(ops, t)
            got = {}
            token = None
            while True:
                page = index.list_view(bucket, end_ms=t, delimiter=None, token=token)
                got.update({o.key: o.version_id for o in page.objects})
                token = page.next_token
                if token is None:
                    break
            assert got == {k: op.version_id for k, op in want.items()}, t
        for key in {op.key for op in ops}:
            assert [v.version_id for v in index.history(bucket, key)] == [
                op.version_id for op in brute.history(ops, key)
            ]
        # Nothing doubled: as many versions in the index as S3 has.
        assert index.get_bucket(bucket).version_count == len(ops)
    finally:
        index.close()
