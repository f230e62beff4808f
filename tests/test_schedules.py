"""Schedules (issue 22, section 3): incremental windows over arrivals, exactly once across
server restarts and failed runs; cron; one runner per schedule; REST and CLI adapters. Real
moto over HTTP, real MLflow (sqlite store), the local executor."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections import Counter

import pytest

from infinstor_jlab.errors import BadRequest, NotFound
from infinstor_jlab.timespec import now_ms, wait_past_second
from infinstor_jlab.transforms.cron import Cron
from infinstor_jlab.transforms.executors import LocalExecutor
from infinstor_jlab.transforms.schedules import ScheduleService, ScheduleStore
from infinstor_jlab.transforms.service import TransformService
from infinstor_jlab.transforms.store import TransformStore

# Copies each object under its key (so one output per input key and version processed).
COPY_KEYS = """
import os, shutil
def infin_transform_one_object(filename, output_dir, parentdir, **kwargs):
    dest = os.path.join(output_dir, os.path.basename(filename))
    shutil.copy(filename, dest)
"""


def _ms(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=dt.timezone.utc).timestamp() * 1000)


# -- cron -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "after", "expected"),
    [
        ("0 2 * * *", "2026-12-07 01:59:30", "2026-12-07 02:00:00"),
        ("0 2 * * *", "2026-12-07 02:00:00", "2026-12-08 02:00:00"),
        ("*/15 * * * *", "2026-12-07 10:07:00", "2026-12-07 10:15:00"),
        ("30 9 * * mon-fri", "2026-12-05 12:00:00", "2026-12-07 09:30:00"),  # Sat -> Mon
        ("0 0 1 * *", "2026-12-15 00:00:00", "2027-01-01 00:00:00"),
        ("@hourly", "2026-12-07 10:59:59", "2026-12-07 11:00:00"),
        ("0 12 13 * 5", "2026-12-01 00:00:00", "2026-12-04 12:00:00"),  # Friday or the 13th
        ("0 0 29 2 *", "2026-03-01 00:00:00", "2028-02-29 00:00:00"),
    ],
)
def test_cron_next_firing(expr, after, expected):
    assert Cron.parse(expr).next_after(_ms(after)) == _ms(expected)


@pytest.mark.parametrize(
    "expr", ["", "* * * *", "61 * * * *", "*/0 * * * *", "0 25 * * *", "x * * * *", "5-1 * * * *"]
)
def test_bad_cron_says_what_to_write(expr):
    with pytest.raises(BadRequest, match="five fields"):
        Cron.parse(expr)


# -- incremental windows, exactly once --------------------------------------------------------


def _services(service, tmp_path):
    """A "server": its transform service and schedule service over the same files (a new
    call is a restarted server)."""
    store = TransformStore(str(tmp_path / "index.sqlite"))
    transforms = TransformService(
        service, store, str(tmp_path / "runs"), executors={"local": LocalExecutor(workers=2)}
    )
    transforms.recover()
    return transforms, ScheduleService(transforms, ScheduleStore(str(tmp_path / "index.sqlite")))


def _outputs(s3, bucket, prefix):
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for p in pages for o in p.get("Contents", [])]


def _processed(s3, bucket, schedules, name):
    """Input keys processed by the schedule's succeeded windows, with how many times."""
    seen: Counter[str] = Counter()
    for win in schedules.store.windows(name):
        if win.state != "succeeded":
            continue
        for key in _outputs(s3, bucket, f"out/{win.run_id}/"):
            base = key.rsplit("/", 1)[1]
            if not base.startswith("_"):
                seen[base] += 1
    return seen


@pytest.fixture
def mlflow_env(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///" + str(tmp_path / "mlflow.db"))
    monkeypatch.chdir(tmp_path)


def test_three_batches_across_a_restart_and_a_failure_each_exactly_once(
    service, s3, bucket, tmp_path, mlflow_env
):
    service.track(bucket, enable_versioning_consent=True)
    service.sync(bucket)
    transforms, schedules = _services(service, tmp_path)
    transforms.save_revision("copy", COPY_KEYS)
    created = schedules.create(
        {
            "name": "nightly",
            "transform": "copy",
            "bucket": bucket,
            "prefix": "in/",
            "every_minutes": 60,
            "if_new_data": True,
            "settle_s": 0,
            "output_uri": f"s3://{bucket}/out/",
        }
    )
    assert created.start_ms <= now_ms()

    # Batch 1: three arrivals.
    for name in ("a", "b", "c"):
        s3.put_object(Bucket=bucket, Key=f"in/{name}", Body=name.encode())
    s3.put_object(Bucket=bucket, Key="elsewhere/x", Body=b"not under the prefix")
    wait_past_second(now_ms())
    (w1,) = schedules.run_due(only="nightly", force=True)
    assert (w1.state, w1.objects, w1.seq) == ("succeeded", 3, 1)
    # Not due again for an hour: a plain pass starts nothing.
    assert schedules.run_due(only="nightly") == []

    # Batch 2 arrives; the server restarts (a new process over the same index).
    s3.put_object(Bucket=bucket, Key="in/d", Body=b"d")
    s3.put_object(Bucket=bucket, Key="in/a", Body=b"a, rewritten")
    transforms.close()
    transforms, schedules = _services(service, tmp_path)
    wait_past_second(now_ms())
    (w2,) = schedules.run_due(only="nightly", force=True)
    assert (w2.state, w2.objects) == ("succeeded", 2)
    assert w2.start_ms == w1.end_ms + 1

    # Batch 3 arrives, and its run dies with the server (a local run stops with it).
    s3.put_object(Bucket=bucket, Key="in/e", Body=b"e")
    wait_past_second(now_ms())
    (w3,) = schedules.tick(only="nightly", force=True)
    assert w3.state == "running" and w3.objects == 1
    transforms.close()  # the server stops mid-run
    transforms, schedules = _services(service, tmp_path)
    # Another arrival before the retry: the retried window covers both.
    s3.put_object(Bucket=bucket, Key="in/f", Body=b"f")
    wait_past_second(now_ms())
    (w4,) = schedules.run_due(only="nightly", force=True)
    history = {w.seq: w for w in schedules.store.windows("nightly")}
    assert history[3].state == "failed" and "server stopped" in history[3].error
    assert (w4.state, w4.objects, w4.attempt) == ("succeeded", 2, 2)
    assert w4.start_ms == w3.start_ms  # the failed window's arrivals are retried, not skipped

    # Nothing new: an if-new-data pass records an empty window and starts no run.
    wait_past_second(now_ms())
    assert schedules.run_due(only="nightly", force=True) == []
    assert schedules.store.windows("nightly", 1)[0].state == "empty"

    seen = _processed(s3, bucket, schedules, "nightly")
    # a (twice: two versions, each once), b, c, d, e, f: every arrival exactly once.
    assert seen == Counter({"a": 2, "b": 1, "c": 1, "d": 1, "e": 1, "f": 1})
    # Each run is tagged with its schedule and window in MLflow.
    import mlflow

    tags = mlflow.tracking.MlflowClient().get_run(w4.run_id).data.tags
    assert tags["infinstor.schedule"] == "nightly"
    assert tags["infinstor.schedule_window"].startswith("4:")
    transforms.close()


def test_one_runner_per_schedule(service, bucket, tmp_path, mlflow_env):
    """Two runners over one index: the second finds the schedule claimed and leaves it."""
    service.track(bucket, enable_versioning_consent=True)
    transforms, first = _services(service, tmp_path)
    transforms.save_revision("copy", COPY_KEYS)
    first.create(
        {
            "name": "s",
            "transform": "copy",
            "bucket": bucket,
            "every_minutes": 5,
            "output_uri": f"s3://{bucket}/out/",
        }
    )
    second = ScheduleService(transforms, ScheduleStore(str(tmp_path / "index.sqlite")))
    now = now_ms()
    assert first.store.claim("s", first.owner, now)
    assert not second.store.claim("s", second.owner, now)
    assert second.tick(force=True) == []
    # A claim that is not renewed lapses (its runner died): the other may take over.
    assert second.store.claim("s", second.owner, now + 11 * 60 * 1000)
    transforms.close()


def test_schedule_definitions_are_checked(service, bucket, tmp_path, mlflow_env):
    service.track(bucket, enable_versioning_consent=True)
    transforms, schedules = _services(service, tmp_path)
    transforms.save_revision("copy", COPY_KEYS)
    good = {
        "name": "ok",
        "transform": "copy",
        "bucket": bucket,
        "cron": "0 2 * * *",
        "output_uri": f"s3://{bucket}/out/",
    }
    for change, message in [
        ({"name": "bad name!"}, "not a valid schedule name"),
        ({"transform": "nope"}, "nope"),
        ({"bucket": "untracked-bucket"}, "not tracked"),
        ({"cron": None}, "Say when it runs"),
        ({"every_minutes": 5}, "Say when it runs"),
        ({"cron": "every day"}, "five fields"),
        ({"mode": "sometimes"}, "mode must be"),
        ({"executor": "gpu"}, "Unknown executor"),
        ({"output_uri": "/tmp/out"}, "S3 URI"),
        ({"start": "2026-01-01/2026-02-01"}, "not a slice"),
    ]:
        with pytest.raises((BadRequest, NotFound), match=message):
            schedules.create({**good, **change})
    sched = schedules.create(good)
    assert sched.next_ms == Cron.parse("0 2 * * *").next_after(sched.created_ms)
    with pytest.raises(Exception, match="exists already"):
        schedules.create(good)
    assert schedules.set_paused("ok", True).paused
    assert schedules.tick() == []
    schedules.delete("ok")
    with pytest.raises(NotFound):
        schedules.get("ok")
    transforms.close()


def test_schedules_live_in_a_shared_postgresql_index(service, bucket, tmp_path, mlflow_env, pg_url):
    service.track(bucket, enable_versioning_consent=True)
    store = TransformStore(str(tmp_path / "index.sqlite"))
    transforms = TransformService(service, store, str(tmp_path / "runs"))
    transforms.save_revision("copy", COPY_KEYS)
    a = ScheduleService(transforms, ScheduleStore(pg_url))
    b = ScheduleService(transforms, ScheduleStore(pg_url))
    a.create(
        {
            "name": "team",
            "transform": "copy",
            "bucket": bucket,
            "every_minutes": 10,
            "output_uri": f"s3://{bucket}/out/",
        }
    )
    assert [s["name"] for s in b.list()] == ["team"]
    now = now_ms()
    assert a.store.claim("team", a.owner, now)
    assert not b.store.claim("team", b.owner, now)
    a.store.release("team", a.owner)
    assert b.store.claim("team", b.owner, now)
    transforms.close()


# -- the CLI ----------------------------------------------------------------------------------


def test_cli_creates_lists_and_runs_due_schedules(service, s3, bucket, tmp_path, s3_endpoint):
    """`schedules run-due` is what cron/systemd calls when no server runs: it fires what is
    due, waits for the runs and records the windows."""
    service.track(bucket, enable_versioning_consent=True)
    service.sync(bucket)
    env = dict(
        os.environ,
        MLFLOW_TRACKING_URI="sqlite:///" + str(tmp_path / "mlflow.db"),
        INFINSTOR_INDEX_URL="sqlite:///" + str(tmp_path / "index.sqlite"),
        AWS_ENDPOINT_URL=s3_endpoint,
    )
    transforms, _ = _services(service, tmp_path)
    transforms.save_revision("copy", COPY_KEYS)
    transforms.close()

    def cli(*args, check=True):
        proc = subprocess.run(
            [sys.executable, "-m", "infinstor_jlab.cli", *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=300,
            check=False,
        )
        if check:
            assert proc.returncode == 0, proc.stderr
        return proc

    start = now_ms()
    cli(
        "schedules",
        "create",
        "hourly",
        "--transform",
        "copy",
        "--bucket",
        bucket,
        "--prefix",
        "in/",
        "--every",
        "60",
        "--settle",
        "0",
        "--start",
        str(start),
        "--output",
        f"s3://{bucket}/out/",
    )
    s3.put_object(Bucket=bucket, Key="in/one", Body=b"1")
    wait_past_second(now_ms())
    listed = json.loads(cli("schedules", "list", "--json").stdout)
    assert [s["name"] for s in listed["schedules"]] == ["hourly"]
    # Not due yet (every 60 min): run-due does nothing; `run` fires now.
    assert "Nothing was due" in cli("schedules", "run-due").stdout
    out = cli("schedules", "run", "hourly").stdout
    assert "succeeded" in out and "1 object" in out
    shown = json.loads(cli("schedules", "show", "hourly", "--json").stdout)
    assert [w["state"] for w in shown["windows"]] == ["succeeded"]
    bad = cli("schedules", "create", "x", "--transform", "copy", "--bucket", bucket, check=False)
    assert bad.returncode == 1 and "Say when it runs" in bad.stderr
