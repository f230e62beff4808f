"""Many writers on one PostgreSQL database (a real server): one sync per bucket (advisory
lock; a dead holder releases it; a second "sync now" reports the running one), and S3
events applied and counted once however many consumers receive them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from infinstor_jlab.errors import Conflict
from infinstor_jlab.services.coordination import (
    Coordination,
    PgCoordination,
    SyncBusy,
    current_user,
    open_coordination,
)
from infinstor_jlab.services.events import S3Event, apply_events


def test_one_sync_per_bucket_and_who_holds_it(pg_url):
    first, second = PgCoordination(pg_url), PgCoordination(pg_url)
    assert first.running_sync("b1") is None
    with first.sync_lock("b1", full=True):
        running = second.running_sync("b1")
        assert running is not None
        assert running.holder == current_user() and running.pid == os.getpid()
        assert running.full is True
        with pytest.raises(SyncBusy) as busy, second.sync_lock("b1", full=False):
            pytest.fail("a second sync of the bucket started")
        assert isinstance(busy.value, Conflict) and busy.value.status == 409
        assert "is already running: started by" in busy.value.message
        assert "no second sync was started" in busy.value.message
        with second.sync_lock("b2", full=False):  # other buckets do not wait
            assert second.running_sync("b2") is not None
    assert second.running_sync("b1") is None
    with second.sync_lock("b1", full=False):
        pass


def test_a_holder_that_dies_releases_the_lock(pg_url):
    """A CLI killed mid-sync (SIGKILL: no cleanup runs) leaves its sync_runs row behind, but
    its connection, and with it the lock, is gone: the next sync starts."""
    script = textwrap.dedent(
        f"""
        import sys, time
        from infinstor_jlab.services.coordination import PgCoordination
        with PgCoordination({pg_url!r}).sync_lock("bk", full=True):
            print("locked", flush=True)
            time.sleep(600)
        """
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        coord = PgCoordination(pg_url)
        running = coord.running_sync("bk")
        assert running is not None and running.pid == proc.pid
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 10
        while coord.running_sync("bk") is not None:  # the server notices the dead session
            assert time.monotonic() < deadline, "the dead holder's lock was not released"
            time.sleep(0.05)
        with coord.sync_lock("bk", full=False):
            running = PgCoordination(pg_url).running_sync("bk")
            assert running is not None and running.pid == os.getpid()  # the new holder's row
    finally:
        if proc.poll() is None:
            proc.kill()


def test_second_servers_sync_now_reports_the_running_sync(pg_url, service, s3, bucket):
    """The service's "sync now" on a shared database: the job says who runs the sync and
    since when, and nothing else starts."""
    service.track(bucket, enable_versioning_consent=True)
    service.coordination = PgCoordination(pg_url)
    other = PgCoordination(pg_url)
    with other.sync_lock(bucket, full=True):
        job = service.start_sync_job(bucket)
        assert job.state == "elsewhere" and job.ended.is_set()
        doc = job.to_json()
        assert doc["done"] is True and doc["error"] is None
        assert doc["running_elsewhere"]["holder"] == current_user()
        assert doc["running_elsewhere"]["full"] is True
        assert "already running" in doc["warnings"][0]
        assert service.bucket_status(bucket)["sync_elsewhere"]["pid"] == os.getpid()
        with pytest.raises(SyncBusy):
            service.sync(bucket)
    job = service.start_sync_job(bucket)
    assert job.ended.wait(60)
    assert job.state == "done", job.error
    assert service.bucket_status(bucket)["sync_elsewhere"] is None


def _event(bucket: str, key: str, name: str, vid: str, seq: str, t: int) -> S3Event:
    return S3Event(bucket, key, name, t, vid, seq, 0 if "Removed" in name else 3, '"e"')


def test_events_are_applied_and_counted_once_by_several_consumers(pg_url, service, bucket):
    service.index.register_bucket(bucket, versioning="Enabled")
    t = 1_800_000_000_000
    batch = [
        _event(bucket, "k", "ObjectCreated:Put", "v1", "0001", t),
        _event(bucket, "k", "ObjectCreated:Put", "v2", "0002", t + 1),
        _event(bucket, "j", "ObjectCreated:Put", "w1", "0003", t + 2),
    ]
    consumers = [PgCoordination(pg_url) for _ in range(3)]
    counts: list[int] = []
    go = threading.Barrier(len(consumers))

    def consume(coord: PgCoordination) -> None:
        go.wait()
        counts.append(apply_events(None, service.index, list(batch), coord))

    threads = [threading.Thread(target=consume, args=(c,)) for c in consumers]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(counts) == [0, 0, 3]
    assert service.index.get_event_source(bucket)["events_applied"] == 3
    assert [v.version_id for v in service.index.history(bucket, "k")] == ["v2", "v1"]

    # v1 is permanently deleted; a late duplicate of its create must not bring it back.
    removal = _event(bucket, "k", "ObjectRemoved:Delete", "v1", "0004", t + 3)
    assert apply_events(None, service.index, [removal], consumers[0]) == 1
    assert apply_events(None, service.index, [batch[0]], consumers[1]) == 0
    assert [v.version_id for v in service.index.history(bucket, "k")] == ["v2"]
    assert service.index.get_event_source(bucket)["events_applied"] == 4


def test_local_index_keeps_todays_behaviour(service):
    coord = open_coordination(service.index)
    assert type(coord) is Coordination and coord.shared is False
    with coord.sync_lock("b", full=True), coord.sync_lock("b", full=True):
        pass  # no cross-process lock: the process's own job list keeps one sync per bucket
    assert coord.running_sync("b") is None


@pytest.fixture(params=["postgresql", "sqlite"])
def any_index_url(request, tmp_path) -> str:
    if request.param == "postgresql":
        return request.getfixturevalue("pg_url")
    return "sqlite:///" + str(tmp_path / "index.sqlite")


def test_same_label_name_at_once_one_wins_the_other_gets_409(
    any_index_url, s3_endpoint, s3, bucket
):
    index_url = any_index_url
    """Two servers (two services, each with its own connection to one index) create the
    same label name at the same moment: one label exists, the other caller gets Conflict."""
    from infinstor_jlab.errors import Conflict
    from infinstor_jlab.index import open_index
    from infinstor_jlab.services import InfinstorService

    s3.put_object(Bucket=bucket, Key="d/a.csv", Body=b"1")
    services = [InfinstorService(open_index(index_url), s3_endpoint_url=s3_endpoint) for _ in "ab"]
    services[0].track(bucket, enable_versioning_consent=True)
    services[0].sync(bucket)
    spec = services[0].parse_spec("now")
    go = threading.Barrier(2)
    outcomes: list[object] = []

    def create(svc: InfinstorService, who: str) -> None:
        go.wait()
        try:
            outcomes.append(svc.create_label("shared", bucket, "d/", spec, created_by=who))
        except Conflict as exc:
            outcomes.append(exc)

    threads = [
        threading.Thread(target=create, args=(svc, who))
        for svc, who in zip(services, ["alice", "bob"])
    ]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    conflicts = [o for o in outcomes if isinstance(o, Conflict)]
    made = [o for o in outcomes if not isinstance(o, Conflict)]
    assert len(conflicts) == 1 and len(made) == 1
    assert conflicts[0].status == 409 and "already exists" in conflicts[0].message
    stored = services[1].get_label("shared")
    assert stored.created_by == made[0].created_by in ("alice", "bob")
    assert stored.to_json()["created_by"] == stored.created_by
    # Without a name given (the CLI), the OS or JupyterHub user is recorded.
    assert services[0].create_label("mine", bucket, "d/", spec).created_by == current_user()
    for svc in services:
        svc.index.close()


def test_cli_sync_on_a_shared_index_reports_the_running_sync(pg_url, s3_endpoint, bucket, capsys):
    """A second writer's `infinstor-jlab sync` while a server's sync holds the bucket."""
    from infinstor_jlab.cli import main
    from infinstor_jlab.index import open_index
    from infinstor_jlab.services import InfinstorService

    index = open_index(pg_url)
    server = InfinstorService(index, s3_endpoint_url=s3_endpoint)
    server.track(bucket, enable_versioning_consent=True)
    assert isinstance(server.coordination, PgCoordination)
    try:
        with server.coordination.sync_lock(bucket, full=True):
            assert main(["sync", bucket, "--index", pg_url]) == 0
            out = capsys.readouterr()[0]
            assert f"A full sync of {bucket!r} is already running: started by" in out
            assert "Synced" not in out
        assert main(["sync", bucket, "--index", pg_url]) == 0
        assert "Synced" in capsys.readouterr()[0]
    finally:
        index.close()
