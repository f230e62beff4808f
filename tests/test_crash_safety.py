"""Kill an ingest with SIGKILL at random points and re-run: the index must end identical to
an uninterrupted ingest (nothing lost, nothing duplicated)."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

SYNC_SCRIPT = """
import sys
from infinstor_jlab.index import open_index
from infinstor_jlab.services.s3 import make_s3_client
from infinstor_jlab.services.sync import sync_bucket
index = open_index(sys.argv[1])
sync_bucket(make_s3_client(), index, sys.argv[2], page_size=int(sys.argv[3]))
print("done")
"""


def dump(path: str) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(
            "SELECT key, t, r, packed, f FROM versions ORDER BY key, t DESC, r DESC"
        ).fetchall()
        # Folder time bounds drive subtree skipping and must match exactly; the folders' n
        # counts rows written (re-ranked rows of a resumed pass count again) and only
        # decides which folders are large enough to consider skipping, so it is left out.
        folders = conn.execute(
            "SELECT prefix, first_t, last_t FROM folders ORDER BY prefix"
        ).fetchall()
        checkpoint = conn.execute("SELECT scan_key_marker, scan_started_ms FROM buckets").fetchall()
        # the whole-bucket timeline's counts per hour (the rows that count nothing are left)
        hours = conn.execute(
            "SELECT h, created, deleted FROM timeline_hours WHERE created OR deleted ORDER BY h"
        ).fetchall()
    finally:
        conn.close()
    return [rows, folders, checkpoint, hours]


def run_sync(index_path: str, bucket: str, page_size: int, kill_after: float | None) -> bool:
    """Run one sync in a child process; SIGKILL it after ``kill_after`` s. True if it
    finished by itself."""
    env = dict(os.environ)
    env["PYTHONWARNINGS"] = "ignore"
    proc = subprocess.Popen(
        [sys.executable, "-c", SYNC_SCRIPT, "sqlite:///" + index_path, bucket, str(page_size)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    if kill_after is None:
        _out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
        return True
    try:
        proc.wait(timeout=kill_after)
        return True
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return False


@pytest.fixture
def history_bucket(s3, bucket) -> str:
    # The first keys: one deleted before a kept one, so the very first page shows whether
    # the store lists delete markers apart from versions (moto does) before any kill.
    s3.put_object(Bucket=bucket, Key="a0", Body=b"x")
    s3.delete_object(Bucket=bucket, Key="a0")
    s3.put_object(Bucket=bucket, Key="a1", Body=b"x")
    rng = random.Random(7)
    keys = [f"d{rng.randint(0, 3)}/f{i:03d}.txt" for i in range(60)]
    for i in range(140):
        key = rng.choice(keys)
        if rng.random() < 0.12:
            s3.delete_object(Bucket=bucket, Key=key)
        else:
            s3.put_object(Bucket=bucket, Key=key, Body=str(i).encode())
    return bucket


def test_killed_ingest_resumes_to_identical_index(s3, history_bucket, tmp_path):
    reference = str(tmp_path / "reference.sqlite")
    run_sync(reference, history_bucket, 4, None)
    expected = dump(reference)
    listed = 0
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=history_bucket):
        listed += len(page.get("Versions", [])) + len(page.get("DeleteMarkers", []))
    assert len(expected[0]) == listed > 100
    # How long a whole run takes once the interpreter's caches are warm (the first run also
    # compiles bytecode, and kill times drawn from it would mostly land after the end).
    durations = []
    for i in range(2):
        started = time.monotonic()
        run_sync(str(tmp_path / f"warm-{i}.sqlite"), history_bucket, 4, None)
        durations.append(time.monotonic() - started)
    duration = min(durations)

    rng = random.Random(12345)
    kills = 0
    for attempt in range(4):
        path = str(tmp_path / f"killed-{attempt}.sqlite")
        # Kill one to three times at random points, then let it finish. A child that ends
        # before its kill time gets a new, earlier one: every attempt kills at least once.
        wanted = rng.randint(1, 3)
        done = 0
        scale = 1.0
        for _ in range(12):
            # Anywhere from interpreter start-up to near the end of an uninterrupted run.
            if run_sync(path, history_bucket, 4, rng.uniform(0.1, 0.95) * duration * scale):
                scale *= 0.7
            else:
                done += 1
                if done == wanted:
                    break
        kills += done
        run_sync(path, history_bucket, 4, None)
        got = dump(path)
        for part, (g, e) in enumerate(zip(got, expected)):
            if g != e:
                missing = [r for r in e if r not in g][:5]
                extra = [r for r in g if r not in e][:5]
                raise AssertionError(
                    f"attempt {attempt} part {part}: missing {missing} extra {extra}"
                )
    assert kills >= 4, "the child finished before most kills; the test proved little"


def interrupt_cli_sync(
    bucket: str, path: str, *, after: float, poll: float
) -> tuple[subprocess.Popen, bytes, bytes]:
    """Run ``infinstor-jlab sync`` in a child and send it SIGINT ``after`` seconds once it is
    running our code (it has created the index file)."""
    env = dict(os.environ)
    env["PYTHONWARNINGS"] = "ignore"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "infinstor_jlab.cli",
            "sync",
            bucket,
            "--index",
            "sqlite:///" + path,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while not os.path.exists(path) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(poll)
    if after:
        time.sleep(after)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    return proc, out, err


def test_ctrl_c_in_the_cli_keeps_progress(history_bucket, tmp_path):
    path = str(tmp_path / "cli.sqlite")
    proc, out, err = interrupt_cli_sync(history_bucket, path, after=0.3, poll=0.02)
    if proc.returncode == 130:
        assert b"run `infinstor-jlab sync" in err
    else:
        # It finished first (the signal may land during interpreter exit): it must have said so.
        assert b"Synced" in out, (proc.returncode, out.decode(), err.decode()[-3000:])
    run_sync(path, history_bucket, 1000, None)
    reference = str(tmp_path / "reference.sqlite")
    run_sync(reference, history_bucket, 1000, None)
    assert dump(path)[0] == dump(reference)[0]


def test_ctrl_c_as_the_cli_opens_the_index_says_how_to_resume(history_bucket, tmp_path):
    # The signal lands while the index is being opened and the S3 client made, before any
    # listing: the answer is the same as during the listing (it was a bare "Interrupted.").
    path = str(tmp_path / "early.sqlite")
    proc, out, err = interrupt_cli_sync(history_bucket, path, after=0, poll=0.001)
    if proc.returncode == 130:
        assert f"run `infinstor-jlab sync {history_bucket}` to resume".encode() in err, err
    else:
        assert b"Synced" in out, (proc.returncode, out.decode(), err.decode()[-3000:])
