"""The extension inside a real ``jupyter server`` process (tests/live_server.py) against moto's
server: start-up warnings, what kernels inherit, a crash (SIGKILL) in the middle of a sync and
clean shutdowns. Everything the product does goes over HTTP; only the seeding of large buckets
writes moto's state in-process, for speed (see ``seed``)."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import pytest
from live_server import LiveServer
from timing import next_second

from infinstor_jlab.index.codec import unpack_version

pytestmark = pytest.mark.timeout(180)

#: Index columns that define its content (``b`` is the bucket's id, ``seq`` an event detail).
ROWS_SQL = "SELECT key, t, r, packed, f FROM versions ORDER BY key, t DESC, r DESC"


# -- helpers ---------------------------------------------------------------------------------
def index_path(index_url: str) -> str:
    return index_url.removeprefix("sqlite:///")


@contextmanager
def read_only(index_url: str) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(f"file:{index_path(index_url)}?mode=ro", uri=True)
    try:
        yield conn
    finally:
        conn.close()


def seed(s3: Any, bucket: str, ops: list[tuple[str, str]]) -> None:
    """Apply ("put" | "delete", key) operations in order. Straight into the state of the moto
    server of this process when its backend is reachable (thousands per second, where moto
    takes ~100 PUTs/s over HTTP on a loaded machine), else over HTTP."""
    try:
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.s3.models import s3_backends

        backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
        backend.get_bucket(bucket)
    except Exception:  # noqa: BLE001 - another moto layout: go through HTTP
        backend = None
    for i, (op, key) in enumerate(ops):
        body = f"{key} #{i}".encode()
        if backend is not None:
            if op == "put":
                backend.put_object(bucket, key, body)
            else:
                backend.delete_object(bucket, key)
        elif op == "put":
            s3.put_object(Bucket=bucket, Key=key, Body=body)
        else:
            s3.delete_object(Bucket=bucket, Key=key)


def history_ops(rng: random.Random, n: int, keys: int) -> list[tuple[str, str]]:
    """n operations over ``keys`` keys in nested folders: overwrites, ~8% deletes (delete
    markers, some on keys that already carry one), re-creation after deletes."""
    names = [f"d{i % 5}/s{i % 3}/{'deep/' if i % 7 == 0 else ''}k{i:05d}.csv" for i in range(keys)]
    ops = [("put", name) for name in names[: n // 3]]
    while len(ops) < n:
        ops.append(("delete" if rng.random() < 0.08 else "put", rng.choice(names)))
    return ops


def cli_path() -> str:
    """The ``infinstor-jlab`` script of this environment."""
    script = Path(sys.executable).with_name("infinstor-jlab")
    return str(script) if script.exists() else (shutil.which("infinstor-jlab") or "infinstor-jlab")


def source_versions(s3: Any, bucket: str) -> tuple[int, int]:
    """(versions and delete markers S3 lists, ListObjectVersions pages)."""
    total = pages = 0
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        pages += 1
        total += len(page.get("Versions", [])) + len(page.get("DeleteMarkers", []))
    return total, pages


def wait_job(server: LiveServer, job_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = server.api("GET", f"syncs/{job_id}")
        if job["done"]:
            assert job["state"] == "done", job
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.05)


def track(server: LiveServer, bucket: str, **body: Any) -> dict[str, Any]:
    doc = server.api("POST", f"buckets/{bucket}/track", json={"enable_versioning": True, **body})
    wait_job(server, doc["sync_job"])
    return doc


def all_pages(server: LiveServer, bucket: str, **params: Any) -> list[dict[str, Any]]:
    pages = []
    token = None
    while True:
        query = dict(params, **({"page_token": token} if token else {}))
        page = server.api("GET", f"buckets/{bucket}/objects", params=query)
        pages.append(page)
        token = page["next_token"]
        if not token:
            return pages


def unsigned(pages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``pages`` with each next_token cut to the position it resumes at (before its
    signature, which differs from one index file to another)."""
    return [
        dict(p, next_token=p["next_token"] and p["next_token"].rpartition(".")[0]) for p in pages
    ]


def run_in_kernel(server: LiveServer, kernel_id: str, code: str, timeout: float = 90) -> str:
    """Execute ``code`` in the kernel over its websocket (Jupyter's JSON protocol) and return
    what it printed; fails with the traceback if it raised."""
    import websocket  # websocket-client, a dependency of jupyter_server

    ws = websocket.create_connection(
        f"ws://127.0.0.1:{server.port}/api/kernels/{kernel_id}/channels?token={server.token}",
        timeout=timeout,
    )
    try:
        msg_id = uuid.uuid4().hex
        ws.send(
            json.dumps(
                {
                    "header": {
                        "msg_id": msg_id,
                        "msg_type": "execute_request",
                        "username": "test",
                        "session": uuid.uuid4().hex,
                        "version": "5.3",
                    },
                    "parent_header": {},
                    "metadata": {},
                    "content": {
                        "code": code,
                        "silent": False,
                        "store_history": False,
                        "user_expressions": {},
                        "allow_stdin": False,
                        "stop_on_error": True,
                    },
                    "channel": "shell",
                    "buffers": [],
                }
            )
        )
        out: list[str] = []
        replied = idle = False
        deadline = time.monotonic() + timeout
        while not (replied and idle):
            assert time.monotonic() < deadline, "no answer from the kernel"
            msg = json.loads(ws.recv())
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = msg["header"]["msg_type"]
            content = msg["content"]
            if kind == "stream" and content.get("name") == "stdout":
                out.append(content["text"])
            elif kind == "error":
                raise AssertionError("\n".join(content.get("traceback", [])))
            elif kind == "execute_reply":
                assert content["status"] == "ok", content
                replied = True
            elif kind == "status" and content.get("execution_state") == "idle":
                idle = True
        return "".join(out)
    finally:
        ws.close()


# -- a, b: start-up and kernels --------------------------------------------------------------
@pytest.fixture(scope="module")
def configured(tmp_path_factory, s3_endpoint):
    """A server configured only through --InfinstorApp options: neither INFINSTOR_INDEX_URL
    nor AWS_ENDPOINT_URL is in its environment, so kernels can only get them from it."""
    workdir = tmp_path_factory.mktemp("configured")
    index_url = "sqlite:///" + str(workdir / "index.sqlite")
    server = LiveServer(
        workdir,
        args=[
            f"--InfinstorApp.index_url={index_url}",
            f"--InfinstorApp.s3_endpoint_url={s3_endpoint}",
            "--InfinstorApp.reconcile_interval=0",
            "--InfinstorApp.sqs_wait_seconds=1",
        ],
        env={
            "INFINSTOR_INDEX_URL": None,
            "AWS_ENDPOINT_URL": None,
            "INFINSTOR_SNAPSHOT_TIME": None,
            "MLFLOW_RUN_ID": None,
            "PYTHONWARNINGS": "default",
        },  # warnings shown, whatever the caller's setting
    )
    with server:
        yield server, index_url


def test_start_logs_no_auth_warning(configured):
    server, index_url = configured
    log = server.log_text()
    assert f"infinstor_jlab: snapshot index at {index_url}" in log, log
    assert "infinstor_jlab | extension was successfully loaded" in log, log
    assert "JupyterServerAuthWarning" not in log, log
    assert "without @allow_unauthenticated" not in log, log
    assert "Traceback" not in log, log


def test_kernels_see_the_index_and_the_endpoint(configured, s3_endpoint, s3, bucket):
    server, index_url = configured
    s3.put_object(Bucket=bucket, Key="early.csv", Body=b"a,b\n")
    t1 = next_second()
    s3.put_object(Bucket=bucket, Key="late.csv", Body=b"c,d\n")
    track(server, bucket)
    resp = server.session.post(
        server.url("api", "sessions"),
        json={
            "path": "probe.ipynb",
            "name": "probe.ipynb",
            "type": "notebook",
            "kernel": {"name": "python3"},
        },
        timeout=60,
    )
    assert resp.status_code == 201, resp.text
    session_id, kernel_id = resp.json()["id"], resp.json()["kernel"]["id"]
    try:
        # Unchanged boto3 code: the live client reaches moto only through the exported
        # AWS_ENDPOINT_URL, the time-travelling one reads the exported index.
        code = f"""
import json, os
import boto3
from infinstor_jlab import infin_boto3
live = boto3.client("s3")
past = boto3.client("s3", infinstor_time_spec="{t1}")
keys = lambda c: sorted(o["Key"] for o in c.list_objects_v2(Bucket="{bucket}")["Contents"])
print(json.dumps({{"index": os.environ.get("INFINSTOR_INDEX_URL"),
                  "endpoint": os.environ.get("AWS_ENDPOINT_URL"),
                  "live": keys(live), "past": keys(past)}}))
"""
        doc = json.loads(run_in_kernel(server, kernel_id, code).strip().splitlines()[-1])
    finally:
        server.session.delete(server.url("api", "sessions", session_id), timeout=30)
    assert doc == {
        "index": index_url,
        "endpoint": s3_endpoint,
        "live": ["early.csv", "late.csv"],
        "past": ["early.csv"],
    }


# -- c: SIGKILL in the middle of a sync ------------------------------------------------------
def test_restart_in_the_middle_of_a_sync_loses_and_duplicates_nothing(
    tmp_path, s3_endpoint, s3, bucket
):
    seed_value = int(os.environ.get("INFINSTOR_TEST_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed_value)
    why = f"(INFINSTOR_TEST_SEED={seed_value})"
    index_url = "sqlite:///" + str(tmp_path / "index.sqlite")
    fresh_url = "sqlite:///" + str(tmp_path / "fresh.sqlite")
    args = ["--InfinstorApp.reconcile_interval=0", "--InfinstorApp.sqs_wait_seconds=1"]
    server = LiveServer(tmp_path / "a", index_url=index_url, s3_endpoint=s3_endpoint, args=args)
    fresh = LiveServer(tmp_path / "f", index_url=fresh_url, s3_endpoint=s3_endpoint, args=args)
    try:
        server.start().wait_ready()
        track(server, bucket)  # an empty bucket: the index holds the bucket and no version
        # ~3,000 versions (three 1000-entry ListObjectVersions pages) written in three
        # different seconds; moto takes about a second per page.
        ops = history_ops(rng, 3000, keys=1100)
        times = []
        for part in (ops[:1200], ops[1200:2200], ops[2200:]):
            seed(s3, bucket, part)
            times.append(next_second())
        with read_only(index_url) as conn:
            assert conn.execute("SELECT count(*) FROM versions").fetchone() == (0,)

        job = server.api("POST", f"buckets/{bucket}/sync", json={"full": True}, expect=202)
        deadline = time.monotonic() + 60
        while True:
            state = server.api("GET", f"syncs/{job['id']}")
            if state["versions_seen"] > 0:
                break
            assert not state["done"], state
            assert time.monotonic() < deadline, state
            time.sleep(0.01)
        delay = rng.uniform(0.0, 0.8)
        time.sleep(delay)
        assert not server.api("GET", f"syncs/{job['id']}")["done"], f"finished first {why}"
        server.kill()
        with read_only(index_url) as conn:
            partial = conn.execute("SELECT count(*) FROM versions").fetchone()[0]
            marker, started = conn.execute(
                "SELECT scan_key_marker, scan_started_ms FROM buckets"
            ).fetchone()
        assert started is not None and marker, f"the pass was not interrupted {why}"

        # The uninterrupted reference, built by the CLI in a fresh index while the server
        # restarts (and a second server starts on that index, to compare REST answers).
        from infinstor_jlab.index import open_index

        open_index(fresh_url).close()  # the schema exists before two processes open it
        cli = subprocess.Popen(
            [cli_path(), "sync", bucket, "--index", fresh_url, "--endpoint-url", s3_endpoint],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        server.start()
        fresh.start()
        server.wait_ready()
        job = server.api("POST", f"buckets/{bucket}/sync", json={}, expect=202)
        resumed = wait_job(server, job["id"])
        assert resumed["resumed_after"] == marker, (resumed, marker, why)
        out, _ = cli.communicate(timeout=120)
        assert cli.returncode == 0, out
        fresh.wait_ready()

        with read_only(index_url) as a, read_only(fresh_url) as f:
            rows = a.execute(ROWS_SQL).fetchall()
            expected = f.execute(ROWS_SQL).fetchall()
            stored = Counter(
                (key, unpack_version(packed)[0])
                for key, packed in a.execute("SELECT key, packed FROM versions")
            )
            duplicates = [kv for kv, n in stored.items() if n > 1]
        listed, pages = source_versions(s3, bucket)
        assert pages >= 3 and len(expected) == listed, (pages, len(expected), listed)
        assert partial < len(expected), why
        assert not duplicates, (duplicates[:5], why)
        assert rows == expected, (len(rows), len(expected), why)

        queries: list[dict[str, Any]] = []
        for at in times:
            queries.append({"at": str(at)})
            queries.append({"at": str(at), "delimiter": ""})
            queries.append({"at": str(at), "prefix": "d1/s1/", "max_keys": "37"})
        queries.append({"slice": f"{times[0] + 1}/{times[1]}", "delimiter": ""})
        for params in queries:
            # Each index signs its page tokens with its own secret: compare where they resume.
            got = unsigned(all_pages(server, bucket, **params))
            assert got == unsigned(all_pages(fresh, bucket, **params)), (params, why)
        assert (
            sum(
                len(p["objects"])
                for p in all_pages(server, bucket, at=str(times[-1]), delimiter="")
            )
            > 500
        )
    finally:
        server.close()
        fresh.close()


# -- d: clean shutdown -----------------------------------------------------------------------
SHUTDOWN_CASES = [
    pytest.param(signal.SIGTERM, False, id="sigterm-watcher"),
    pytest.param(signal.SIGINT, False, id="sigint-watcher"),
    pytest.param(signal.SIGTERM, True, id="sigterm-during-sync"),
]


@pytest.mark.parametrize(("sig", "with_sync"), SHUTDOWN_CASES)
def test_shutdown_is_prompt_and_leaves_a_sound_index(
    tmp_path, s3_endpoint, s3, bucket, sig, with_sync
):
    index_url = "sqlite:///" + str(tmp_path / "index.sqlite")
    # The default SQS long-poll (10 s): a receive is in flight when the signal arrives.
    server = LiveServer(
        tmp_path,
        index_url=index_url,
        s3_endpoint=s3_endpoint,
        args=["--InfinstorApp.reconcile_interval=30"],
    )
    try:
        server.start()
        s3.put_object(Bucket=bucket, Key="before.txt", Body=b"1")
        if with_sync:
            # ~12,000 versions: moto takes well over 15 s to list them all.
            big = f"big-{uuid.uuid4().hex[:10]}"
            s3.create_bucket(Bucket=big)
            s3.put_bucket_versioning(Bucket=big, VersioningConfiguration={"Status": "Enabled"})
            seed(s3, big, history_ops(random.Random(7), 12_000, keys=9_000))
        server.wait_ready()
        track(server, bucket, events=True)
        # The watcher runs: an event makes a new object visible.
        s3.put_object(Bucket=bucket, Key="by-event.txt", Body=b"2")
        deadline = time.monotonic() + 30
        while not server.api("GET", f"buckets/{bucket}/objects", params={"prefix": "by-event.txt"})[
            "objects"
        ]:
            assert time.monotonic() < deadline, server.log_text()
            time.sleep(0.1)
        if with_sync:
            # One stream: the signal lands while a page is being listed and merged (a
            # parallel first sync on moto spends long planning over 12,000 versions).
            job = server.api("POST", f"buckets/{big}/track", json={"parallel": 1})
            deadline = time.monotonic() + 60
            while server.api("GET", f"syncs/{job['sync_job']}")["versions_seen"] == 0:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        time.sleep(random.uniform(0.2, 1.5))
        started = time.monotonic()
        server.send_signal(sig)
        try:
            code = server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            pytest.fail(f"still running 15 s after {sig!r}:\n{server.log_text()[-3000:]}")
        took = time.monotonic() - started
        log = server.log_text()
        assert code in (0, -sig, 128 + sig), (code, log)
        assert "Traceback" not in log, log
        if sig == signal.SIGTERM:
            assert "received signal 15" in log, log
        print(f"{sig!r} exit after {took:.2f} s")
    finally:
        server.close()

    with closing(sqlite3.connect(index_path(index_url))) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    from infinstor_jlab.index import open_index

    index = open_index(index_url)
    try:
        keys = [o.key for o in index.iter_view(bucket, end_ms=int(time.time() * 1000))]
        assert keys == ["before.txt", "by-event.txt"]
    finally:
        index.close()
