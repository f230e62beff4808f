"""The listing page cache never serves a page from before a commit it could have seen."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading

from infinstor_jlab.services.pagecache import PageCache


def _db(tmp_path):
    path = str(tmp_path / "x.sqlite")
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t(v INTEGER)")
    conn.execute("INSERT INTO t VALUES(0)")
    return path, conn


def test_commits_from_this_and_other_processes_invalidate(tmp_path):
    path, writer = _db(tmp_path)
    cache = PageCache(path)
    value = {"v": 0}
    calls = []

    def compute() -> str:
        calls.append(1)
        return json.dumps(value)

    assert cache.get_or_compute("k", compute) == '{"v": 0}'
    assert cache.get_or_compute("k", compute) == '{"v": 0}'
    assert len(calls) == 1  # served from the cache
    value["v"] = 1
    writer.execute("UPDATE t SET v=1")  # another connection of this process commits
    assert cache.get_or_compute("k", compute) == '{"v": 1}'
    value["v"] = 2
    subprocess.run(
        [
            sys.executable,
            "-c",
            (
                f"import sqlite3; c=sqlite3.connect({path!r}); "
                "c.execute('UPDATE t SET v=2'); c.commit()"
            ),
        ],
        check=True,
    )
    assert cache.get_or_compute("k", compute) == '{"v": 2}'
    assert len(calls) == 3


def test_a_page_computed_across_a_commit_is_not_kept(tmp_path):
    path, writer = _db(tmp_path)
    cache = PageCache(path)
    started = threading.Event()
    release = threading.Event()

    def slow() -> str:
        started.set()
        release.wait(5)
        return "before"

    result = []
    th = threading.Thread(target=lambda: result.append(cache.get_or_compute("k", slow)))
    th.start()
    started.wait(5)
    writer.execute("UPDATE t SET v=5")
    assert cache.get_or_compute("other", lambda: "x") == "x"  # this thread sees the commit
    release.set()
    th.join()
    assert result == ["before"]
    assert cache.get_or_compute("k", lambda: "after") == "after"


def test_the_cache_is_bounded(tmp_path):
    path, _ = _db(tmp_path)
    cache = PageCache(path, max_entries=3, max_bytes=1000)
    for i in range(10):
        cache.get_or_compute(i, lambda i=i: "x" * 100 + str(i))
    assert len(cache._entries) == 3
    cache.get_or_compute("big", lambda: "y" * 600)  # over a quarter of the budget: not kept
    assert "big" not in cache._entries


def test_listing_shows_a_sync_at_once(service, s3, bucket):
    s3.put_object(Bucket=bucket, Key="a.txt", Body=b"1")
    service.sync(bucket)
    spec = service.parse_spec("tm99990101000000")
    first = json.loads(service.list_objects_json(bucket, spec=spec))
    assert [o["key"] for o in first["objects"]] == ["a.txt"]
    s3.put_object(Bucket=bucket, Key="b.txt", Body=b"2")
    service.sync(bucket)
    again = json.loads(service.list_objects_json(bucket, spec=spec))
    assert [o["key"] for o in again["objects"]] == ["a.txt", "b.txt"]
