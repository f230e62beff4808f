"""Parallel ListObjectVersions (services/backfill.py) against moto's real HTTP server: the
index it builds is the one today's single stream builds, whatever the histories, page sizes,
partition splits and SIGKILLs."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infinstor_jlab.index import open_index
from infinstor_jlab.services.backfill import (
    SCAN_META,
    has_partitions,
    split_point,
    sync_bucket_parallel,
)
from infinstor_jlab.services.s3 import make_s3_client
from infinstor_jlab.services.sync import SyncInterrupted, sync_bucket

KEYS = ["a/1", "a/2", "a/b/3", "b/4", "b/5", "c", "c/6", "d/7/8", "e", "f/9", "f/10", "z"]


def _dump(index, bucket: str) -> tuple[list[str], dict[str, list[tuple]]]:
    """What a view of now shows, and every written key's chain as the index holds it."""
    live = [o.key + "@" + o.version_id for o in index.iter_view(bucket, end_ms=2**62)]
    chains = {
        key: [
            (v.version_id, v.last_modified_ms, v.is_delete_marker, v.size, v.etag)
            for v in index.history(bucket, key)
        ]
        for key in sorted(KEYS_SEEN[bucket])
    }
    return live, chains


KEYS_SEEN: dict[str, set[str]] = {}


def _apply(s3, bucket: str, ops: list[tuple[str, bool]]) -> None:
    KEYS_SEEN[bucket] = set()
    for i, (key, delete) in enumerate(ops):
        KEYS_SEEN[bucket].add(key)
        if delete:
            s3.delete_object(Bucket=bucket, Key=key)
        else:
            s3.put_object(Bucket=bucket, Key=key, Body=b"x" * (i % 5))


def _new_bucket(s3) -> str:
    name = f"par-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


@given(
    lo=st.one_of(st.none(), st.text(min_size=0, max_size=6)),
    hi=st.one_of(st.none(), st.text(min_size=1, max_size=6)),
)
def test_a_split_point_lies_strictly_inside_its_range(lo, hi):
    mid = split_point(lo, hi)
    if mid is not None:
        assert lo is None or lo < mid
        assert hi is None or mid < hi
        assert all(0x20 <= ord(c) <= 0x7E for c in mid)


def test_split_points_halve_a_flat_range():
    assert split_point(None, None) is not None
    assert split_point("k/000", "k/999") is not None
    assert split_point("a", "a") is None


def _split_style_index(path: str, bucket: str):
    index = open_index("sqlite:///" + path)
    index.register_bucket(bucket, versioning="Enabled")
    index.set_listing_style(bucket, "split")
    return index


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    ops=st.lists(st.tuples(st.sampled_from(KEYS), st.booleans()), min_size=1, max_size=40),
    page_size=st.integers(min_value=1, max_value=4),
    parallel=st.integers(min_value=2, max_value=6),
)
def test_parallel_sync_builds_the_index_the_single_stream_builds(
    s3_endpoint, s3, ops, page_size, parallel
):
    # Writes come faster than a second apart: same-second versions and delete markers.
    bucket = _new_bucket(s3)
    _apply(s3, bucket, ops)
    tmp = tempfile.mkdtemp()
    try:
        client = make_s3_client(s3_endpoint)
        # moto lists a page's delete markers apart from its versions, so the order of a
        # version and a delete marker within one second is lost; a pass learns that from
        # the first page that shows it, and which page does depends on where the pages
        # break. Given the same knowledge of the store, the two passes build one index.
        single = _split_style_index(os.path.join(tmp, "single.sqlite"), bucket)
        par = _split_style_index(os.path.join(tmp, "parallel.sqlite"), bucket)
        alone = sync_bucket(client, single, bucket, page_size=page_size)
        result = sync_bucket_parallel(client, par, bucket, parallel=parallel, page_size=page_size)
        assert result.progress.done
        # The count shown to the user: each version once, however the streams split.
        assert result.progress.versions_seen == alone.progress.versions_seen
        assert result.progress.partitions_done == result.progress.partitions_total
        assert _dump(par, bucket) == _dump(single, bucket)
        assert not has_partitions(par, bucket)
        assert par.get_bucket(bucket).last_sync_ms is not None
        # A second pass over a complete index writes nothing.
        again = sync_bucket_parallel(client, par, bucket, parallel=parallel, page_size=page_size)
        assert again.progress.versions_written == 0
        assert _dump(par, bucket) == _dump(single, bucket)
        # Learning the style as it goes (a restart when a page shows it) changes neither
        # what is there now nor the count.
        fresh = open_index("sqlite:///" + os.path.join(tmp, "fresh.sqlite"))
        learnt = sync_bucket_parallel(client, fresh, bucket, parallel=parallel, page_size=page_size)
        assert learnt.progress.versions_seen == alone.progress.versions_seen
        assert _dump(fresh, bucket)[0] == _dump(single, bucket)[0]
        for index in (single, par, fresh):
            index.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_a_flat_bucket_is_split_while_it_is_listed(s3_endpoint, s3, tmp_path):
    bucket = _new_bucket(s3)
    _apply(s3, bucket, [(f"k{i:03d}", False) for i in range(120)])
    index = open_index("sqlite:///" + str(tmp_path / "i.sqlite"))
    result = sync_bucket_parallel(
        make_s3_client(s3_endpoint), index, bucket, parallel=4, page_size=3
    )
    # No common prefix to fan out on: the streams split the one range as they go.
    assert result.progress.partitions_total > 2
    assert len(list(index.iter_view(bucket, end_ms=2**62))) == 120
    assert result.progress.versions_seen == 120


def test_a_stopped_parallel_sync_resumes_each_partition(s3_endpoint, s3, tmp_path):
    bucket = _new_bucket(s3)
    ops = [(f"{p}/{i}", i % 7 == 3) for p in "abcdef" for i in range(15)] + [("a/1", False)]
    _apply(s3, bucket, ops)
    client = make_s3_client(s3_endpoint)
    single = open_index("sqlite:///" + str(tmp_path / "s.sqlite"))
    sync_bucket(client, single, bucket)
    index = open_index("sqlite:///" + str(tmp_path / "p.sqlite"))
    asked = 0

    def stop_soon() -> bool:
        nonlocal asked
        asked += 1
        return asked > 5

    with pytest.raises(SyncInterrupted, match="resumes"):
        sync_bucket_parallel(client, index, bucket, parallel=3, page_size=2, should_stop=stop_soon)
    assert has_partitions(index, bucket)
    saved = index.get_bucket_meta(bucket, SCAN_META)
    assert saved and '"parts"' in saved
    result = sync_bucket_parallel(client, index, bucket, parallel=3, page_size=2)
    assert result.progress.done
    assert _dump(index, bucket) == _dump(single, bucket)


def test_the_cli_takes_parallel_and_refuses_a_bad_count(s3_endpoint, s3, tmp_path):
    bucket = _new_bucket(s3)
    _apply(s3, bucket, [("x/1", False), ("y/2", False)])
    env = dict(os.environ, AWS_ENDPOINT_URL=s3_endpoint)
    index = "sqlite:///" + str(tmp_path / "cli.sqlite")
    cmd = [sys.executable, "-m", "infinstor_jlab.cli", "--index", index]
    bad = subprocess.run(
        [*cmd, "sync", bucket, "--parallel", "0"],
        check=False,
        env=env,
        capture_output=True,
        text=True,
    )
    assert bad.returncode != 0 and "--parallel takes a number of streams" in bad.stderr
    ok = subprocess.run(
        [*cmd, "track", bucket, "--yes", "--parallel", "4"],
        check=False,
        env=env,
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr
    assert "2 versions listed" in ok.stdout


_KILLABLE = textwrap.dedent(
    """
    import sys
    from infinstor_jlab.index import open_index
    from infinstor_jlab.services.backfill import sync_bucket_parallel
    from infinstor_jlab.services.s3 import make_s3_client

    endpoint, index_url, bucket = sys.argv[1:4]
    index = open_index(index_url)
    sync_bucket_parallel(make_s3_client(endpoint), index, bucket, parallel=4, page_size=2)
    print("finished")
    """
)


def test_sigkill_at_random_points_loses_and_doubles_nothing(s3_endpoint, s3, tmp_path):
    bucket = _new_bucket(s3)
    rng = random.Random(20)
    keys = [f"{p}/{i:02d}" for p in "abcd" for i in range(25)] + [f"flat{i:03d}" for i in range(60)]
    ops = [(k, False) for k in keys] + [(rng.choice(keys), rng.random() < 0.3) for _ in range(140)]
    _apply(s3, bucket, ops)
    client = make_s3_client(s3_endpoint)
    single = open_index("sqlite:///" + str(tmp_path / "single.sqlite"))
    sync_bucket(client, single, bucket)
    url = "sqlite:///" + str(tmp_path / "killed.sqlite")
    script = tmp_path / "killable.py"
    script.write_text(_KILLABLE)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    kills = 0
    for _ in range(5):
        proc = subprocess.Popen(
            [sys.executable, str(script), s3_endpoint, url, bucket],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        time.sleep(rng.uniform(1.2, 2.6))  # past the imports, somewhere in the listing
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.communicate()
    final = subprocess.run(
        [sys.executable, str(script), s3_endpoint, url, bucket],
        check=False,
        env=env,
        capture_output=True,
        text=True,
    )
    assert final.returncode == 0, final.stderr
    assert kills >= 1
    index = open_index(url)
    assert _dump(index, bucket) == _dump(single, bucket)
    assert not has_partitions(index, bucket)


def test_slow_down_answers_are_retried_and_the_index_is_whole(s3_endpoint, s3, tmp_path):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from latency_proxy import LatencyProxy

    bucket = _new_bucket(s3)
    _apply(s3, bucket, [(f"{p}/{i}", i == 2) for p in "ab" for i in range(5)])
    single = open_index("sqlite:///" + str(tmp_path / "s.sqlite"))
    sync_bucket(make_s3_client(s3_endpoint), single, bucket)
    proxy = LatencyProxy(s3_endpoint, delay_s=0.0, slow_down_every=4)
    try:
        index = open_index("sqlite:///" + str(tmp_path / "p.sqlite"))
        sync_bucket_parallel(make_s3_client(proxy.start()), index, bucket, parallel=4, page_size=2)
    finally:
        proxy.stop()
    assert proxy.slowed > 0
    assert _dump(index, bucket) == _dump(single, bucket)


def test_a_terminal_sees_a_progress_bar_with_partitions(s3_endpoint, s3, tmp_path):
    import pty

    bucket = _new_bucket(s3)
    _apply(s3, bucket, [(f"{p}/{i}", False) for p in "abc" for i in range(4)])
    env = dict(os.environ, AWS_ENDPOINT_URL=s3_endpoint, COLUMNS="120")
    index = "sqlite:///" + str(tmp_path / "tty.sqlite")
    cmd = [sys.executable, "-m", "infinstor_jlab.cli", "--index", index]
    out = b""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the CLI on a terminal
        os.execvpe(cmd[0], [*cmd, "track", bucket, "--yes", "--parallel", "3"], env)
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    text = out.decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 0, text
    assert "versions" in text and "partitions" in text and "/s" in text


def test_ctrl_c_stops_the_streams_and_the_next_sync_resumes(s3_endpoint, s3, tmp_path):
    bucket = _new_bucket(s3)
    keys = [f"{p}/{i:02d}" for p in "abcdef" for i in range(30)]
    _apply(s3, bucket, [(k, False) for k in keys] + [(k, True) for k in keys[::7]])
    client = make_s3_client(s3_endpoint)
    single = open_index("sqlite:///" + str(tmp_path / "single.sqlite"))
    sync_bucket(client, single, bucket)
    url = "sqlite:///" + str(tmp_path / "int.sqlite")
    script = tmp_path / "interruptible.py"
    script.write_text(
        _KILLABLE.replace(
            "sync_bucket_parallel(make_s3_client(endpoint), index, bucket, parallel=4, page_size=2)",
            "try:\n    sync_bucket_parallel(make_s3_client(endpoint), index, bucket, parallel=4, "
            "page_size=2)\nexcept KeyboardInterrupt:\n    print('interrupted')\n    sys.exit(130)",
        )
    )
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    proc = subprocess.Popen(
        [sys.executable, str(script), s3_endpoint, url, bucket],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.8)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    index = open_index(url)
    if proc.returncode == 130:  # stopped mid-pass (or while planning): the rest is resumed
        assert "interrupted" in out
    else:
        assert proc.returncode == 0, err
    sync_bucket_parallel(client, index, bucket, parallel=4, page_size=2)
    assert _dump(index, bucket) == _dump(single, bucket)
