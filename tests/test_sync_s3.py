"""Ingest from a real HTTP S3 endpoint (moto's server): what a user sees after `sync`, with the
index on SQLite and on a real PostgreSQL (the ``index_url`` fixture below)."""

from __future__ import annotations

import uuid

import pytest
from timing import next_second

from infinstor_jlab.errors import UnknownBucket, VersioningDisabled
from infinstor_jlab.services.sync import sync_bucket
from infinstor_jlab.timespec import format_tm, now_ms, parse_time_spec


@pytest.fixture(params=["sqlite", "postgres"])
def index_url(request, tmp_path) -> str:
    """The service's index: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return "sqlite:///" + str(tmp_path / "index.sqlite")
    pytest.importorskip("psycopg")
    return str(request.getfixturevalue("pg_url"))


WEIRD_KEYS = [
    "plain.txt",
    "with space.txt",
    "plus+sign.csv",
    "percent%20literal.txt",
    "unicodé/日本語.txt",
    "double//slash/x.bin",
    "trailing/slash/",
    "a/b/c/d/deep.json",
]


def listing(service, bucket, spec, prefix="", delimiter=None):
    page_objects, page_prefixes, token = [], [], None
    while True:
        page = service.list_objects(
            bucket,
            spec=parse_time_spec(spec),
            prefix=prefix,
            delimiter=delimiter,
            max_keys=2,
            token=token,
        )
        page_objects += [(o.key, o.version_id) for o in page.objects]
        page_prefixes += page.prefixes
        token = page.next_token
        if token is None:
            return page_objects, page_prefixes


def test_snapshot_shows_the_past_after_overwrites_and_deletes(service, s3, bucket):
    start = next_second()
    v_a1 = s3.put_object(Bucket=bucket, Key="data/a.csv", Body=b"a1")["VersionId"]
    v_b1 = s3.put_object(Bucket=bucket, Key="data/b.csv", Body=b"b1")["VersionId"]
    t0 = next_second()
    v_a2 = s3.put_object(Bucket=bucket, Key="data/a.csv", Body=b"a2")["VersionId"]
    s3.delete_object(Bucket=bucket, Key="data/b.csv")
    v_c1 = s3.put_object(Bucket=bucket, Key="data/sub/c.csv", Body=b"c1")["VersionId"]
    t1 = next_second()
    service.sync(bucket)

    before = listing(service, bucket, format_tm(t0), prefix="data/", delimiter="/")
    assert before == ([("data/a.csv", v_a1), ("data/b.csv", v_b1)], [])
    after = listing(service, bucket, format_tm(t1), prefix="data/", delimiter="/")
    assert after == ([("data/a.csv", v_a2)], ["data/sub/"])
    assert listing(service, bucket, format_tm(start)) == ([], [])
    # A slice shows only the window's arrivals.
    assert listing(service, bucket, f"{format_tm(t0 + 1)}-{format_tm(t1)}") == (
        [("data/a.csv", v_a2), ("data/sub/c.csv", v_c1)],
        [],
    )
    diff = service.diff(
        bucket,
        prefix="",
        from_spec=parse_time_spec(format_tm(t0)),
        to_spec=parse_time_spec(format_tm(t1)),
    )
    assert [(o.key, o.version_id) for o in diff.added] == [("data/sub/c.csv", v_c1)]
    assert [(o.key, o.version_id) for o in diff.deleted] == [("data/b.csv", v_b1)]
    assert [(m.key, m.from_version_id, m.to_version_id) for m in diff.modified] == [
        ("data/a.csv", v_a1, v_a2)
    ]
    history = service.history(bucket, "data/b.csv")
    assert [v.is_delete_marker for v in history] == [True, False]
    assert history[1].version_id == v_b1 and history[0].is_latest


def test_weird_keys_round_trip(service, s3, bucket):
    versions = {
        k: s3.put_object(Bucket=bucket, Key=k, Body=k.encode())["VersionId"] for k in WEIRD_KEYS
    }
    service.sync(bucket)
    objects, _ = listing(service, bucket, "now")
    assert objects == sorted(versions.items(), key=lambda kv: kv[0].encode())
    top, prefixes = listing(service, bucket, "now", delimiter="/")
    assert [k for k, _ in top] == sorted([k for k in WEIRD_KEYS if "/" not in k], key=str.encode)
    assert prefixes == sorted({k.split("/")[0] + "/" for k in WEIRD_KEYS if "/" in k})
    # `//` and a trailing `/` are ordinary characters of a key.
    assert listing(service, bucket, "now", prefix="double/", delimiter="/")[1] == ["double//"]
    assert listing(service, bucket, "now", prefix="trailing/slash/", delimiter="/")[0] == [
        ("trailing/slash/", versions["trailing/slash/"])
    ]


def test_same_second_overwrites_keep_chain_order(service, s3, bucket):
    """Several versions in one second: the newest in the chain (IsLatest) wins, whatever
    order the store lists them in."""
    next_second()
    ids = [
        s3.put_object(Bucket=bucket, Key="k", Body=str(i).encode())["VersionId"] for i in range(4)
    ]
    s3.delete_object(Bucket=bucket, Key="gone")  # a delete marker with no object
    s3.put_object(Bucket=bucket, Key="back", Body=b"1")
    s3.delete_object(Bucket=bucket, Key="back")
    back = s3.put_object(Bucket=bucket, Key="back", Body=b"2")["VersionId"]
    service.sync(bucket)
    objects, _ = listing(service, bucket, "now")
    assert objects == [("back", back), ("k", ids[-1])]
    assert [v.version_id for v in service.history(bucket, "k")] == ids[::-1]


def test_pre_versioning_objects_have_null_version(service, s3):
    name = f"pre-versioning-{uuid.uuid4().hex[:8]}"  # unique: the endpoint may be shared
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="old.txt", Body=b"before")
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=name, Key="new.txt", Body=b"after")
    service.sync(name)
    objects, _ = listing(service, name, "now")
    assert objects[1][0] == "old.txt" and objects[1][1] == "null"


def test_unversioned_bucket_says_how_to_enable(service, s3):
    name = f"plain-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=name)
    with pytest.raises(VersioningDisabled, match=f"infinstor-jlab track {name}"):
        service.sync(name)


def test_suspended_versioning_warns(service, s3, bucket):
    s3.put_object(Bucket=bucket, Key="x", Body=b"1")
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    result = service.sync(bucket)
    assert any("suspended" in w for w in result.warnings)


def test_unknown_bucket(service):
    with pytest.raises(UnknownBucket):
        service.sync("no-such-bucket-here")


def test_resync_is_idempotent_and_incremental(service, s3, bucket):
    for i in range(5):
        s3.put_object(Bucket=bucket, Key=f"f{i}", Body=b"x")
    first = service.sync(bucket)
    assert first.progress.versions_written == 5
    again = service.sync(bucket)
    assert again.progress.versions_written == 0
    s3.put_object(Bucket=bucket, Key="f9", Body=b"new")
    s3.delete_object(Bucket=bucket, Key="f0")
    third = service.sync(bucket)
    # Two new versions; f0's old version may be re-ranked under its same-second marker.
    assert third.progress.versions_written >= 2
    assert service.sync(bucket).progress.versions_written == 0
    objects, _ = listing(service, bucket, "now")
    assert [k for k, _ in objects] == ["f1", "f2", "f3", "f4", "f9"]


def test_small_pages_split_a_key_across_pages(service, s3, bucket):
    """A key whose versions span several ListObjectVersions pages is merged whole."""
    for i in range(7):
        s3.put_object(Bucket=bucket, Key="many", Body=str(i).encode())
    s3.put_object(Bucket=bucket, Key="after", Body=b"x")
    s3.delete_object(Bucket=bucket, Key="many")
    sync_bucket(service.s3(), service.index, bucket, page_size=3)
    assert len(service.history(bucket, "many")) == 8
    assert listing(service, bucket, "now")[0][0][0] == "after"
    assert [o[0] for o in listing(service, bucket, "now")[0]] == ["after"]


def test_permanently_deleted_versions_leave_the_index(service, s3, bucket):
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"1")["VersionId"]
    v2 = s3.put_object(Bucket=bucket, Key="k", Body=b"2")["VersionId"]
    s3.put_object(Bucket=bucket, Key="z", Body=b"z")
    service.sync(bucket)
    s3.delete_object(Bucket=bucket, Key="k", VersionId=v1)
    # The listing no longer has v1, but versions this recent could also be missing
    # because they were written mid-scan; a pass that started later than the prune
    # margin after them does remove them.
    from infinstor_jlab.index.sqlite import PRUNE_MARGIN_MS

    index = service.index
    index.merge_listing(
        bucket, [], after_key=None, through_key="j", scan_started_ms=now_ms(), checkpoint=False
    )
    service.sync(bucket)
    assert [v.version_id for v in service.history(bucket, "k")] == [v2, v1]
    checkpoint_started = now_ms() + PRUNE_MARGIN_MS + 1000
    entries = [e for e in _entries(service, bucket)]
    index.merge_listing(
        bucket,
        entries,
        after_key=None,
        through_key=None,
        scan_started_ms=checkpoint_started,
        checkpoint=False,
    )
    assert [v.version_id for v in service.history(bucket, "k")] == [v2]


def _entries(service, bucket):
    from infinstor_jlab.services.s3 import list_versions_page
    from infinstor_jlab.services.sync import order_chains

    page = list_versions_page(service.s3(), bucket)
    return order_chains(page.entries, page.latest)


def test_a_stopped_sync_keeps_its_progress_and_resumes(service, s3, bucket):
    from infinstor_jlab.services.sync import SyncInterrupted

    for i in range(9):
        s3.put_object(Bucket=bucket, Key=f"k{i}", Body=b"x")
    pages = []

    def stop_after_two_pages():
        pages.append(1)
        return len(pages) >= 2

    with pytest.raises(SyncInterrupted, match="resumes"):
        sync_bucket(
            service.s3(), service.index, bucket, page_size=3, should_stop=stop_after_two_pages
        )
    checkpoint = service.index.get_checkpoint(bucket)
    assert checkpoint is not None and checkpoint.key_marker is not None
    result = sync_bucket(service.s3(), service.index, bucket, page_size=3)
    assert result.progress.resumed_after == checkpoint.key_marker
    assert [k for k, _ in listing(service, bucket, "now")[0]] == [f"k{i}" for i in range(9)]


def test_a_pass_resumed_right_after_a_long_key_leaves_its_chain_whole(
    service, s3, bucket, tmp_path
):
    """The checkpoint is the last complete key. Resuming after one whose versions fill
    several pages: S3 lists nothing of it again; moto lists part of it again (KeyMarker
    alone, then its next pages go on with the rest). Nothing of it may be merged again,
    or those versions take the places of others in its chain."""
    from infinstor_jlab.index import SqliteSnapshotIndex
    from infinstor_jlab.services.sync import SyncInterrupted

    s3.put_object(Bucket=bucket, Key="a", Body=b"a")
    for i in range(7):
        s3.put_object(Bucket=bucket, Key="k", Body=str(i).encode())
    s3.delete_object(Bucket=bucket, Key="k")
    s3.put_object(Bucket=bucket, Key="k", Body=b"last")
    for i in range(5):  # more pages after "k"
        s3.put_object(Bucket=bucket, Key="m", Body=str(i).encode())
    s3.put_object(Bucket=bucket, Key="z", Body=b"z")
    reference = SqliteSnapshotIndex(str(tmp_path / "reference.sqlite"))
    sync_bucket(service.s3(), reference, bucket, page_size=3)
    want = [
        (v.version_id, v.last_modified_ms, v.is_delete_marker)
        for v in reference.history(bucket, "k")
    ]
    assert len(want) == 9 and len({v[0] for v in want}) == 9
    reference.close()

    index = service.index
    with pytest.raises(SyncInterrupted):
        sync_bucket(
            service.s3(),
            index,
            bucket,
            page_size=3,
            should_stop=lambda: index.get_checkpoint(bucket).key_marker == "k",
        )
    assert index.get_checkpoint(bucket).key_marker == "k"
    sync_bucket(service.s3(), index, bucket, page_size=3)
    got = [
        (v.version_id, v.last_modified_ms, v.is_delete_marker) for v in index.history(bucket, "k")
    ]
    assert got == want
    assert [k for k, _ in listing(service, bucket, "now")[0]] == ["a", "k", "m", "z"]


def _markers_first_store(monkeypatch, chains: dict[str, list[tuple[str, bool, int]]]):
    """Serve ``chains`` (key -> [(version id, delete marker, time s)], newest first) the way
    LocalStack lays out ListObjectVersions pages: each page holds the right entries for its
    markers, but lists its delete markers before its versions. A stand-in for this package's
    page reader (the XML layout is the only thing simulated; nothing of botocore is)."""
    from infinstor_jlab.index.models import VersionEntry
    from infinstor_jlab.services import sync
    from infinstor_jlab.services.s3 import VersionPage

    order = [
        (key, vid, dm, t, i == 0)
        for key in sorted(chains)
        for i, (vid, dm, t) in enumerate(chains[key])
    ]

    def page(
        client, bucket, *, key_marker=None, version_id_marker=None, max_keys=1000, prefix=None
    ):
        start = 0
        if key_marker is not None:
            start = next(
                (
                    i + 1
                    for i, e in enumerate(order)
                    if (e[0], e[1]) == (key_marker, version_id_marker)
                ),
                None,
            ) or next((i for i, e in enumerate(order) if e[0] > key_marker), len(order))
        part = order[start : start + max_keys]
        part = [e for e in part if e[2]] + [e for e in part if not e[2]]
        truncated = start + max_keys < len(order)
        last = order[start + max_keys - 1] if truncated else None
        return VersionPage(
            entries=[
                VersionEntry(k, v, t * 1000, 0 if dm else 1, "" if dm else '"e"', dm)
                for k, v, dm, t, _ in part
            ],
            latest=[e[4] for e in part],
            truncated=truncated,
            next_key_marker=last[0] if last else None,
            next_version_id_marker=last[1] if last else None,
        )

    monkeypatch.setattr(sync, "list_versions_page", page)
    monkeypatch.setattr(sync, "get_versioning", lambda client, bucket: "Enabled")


def test_a_store_listing_delete_markers_first_gives_one_history_whatever_the_pages(
    monkeypatch, tmp_path
):
    """On a store that lists each page's delete markers before its versions, the order of
    a version and a delete marker in the same second is not in the listing. Whatever the
    page size, and after an interrupted pass, the index must hold the same chains: the
    layout is recognised (a key's IsLatest entry is not its first) and keys merged before
    it was are listed again."""
    from infinstor_jlab.index import SqliteSnapshotIndex
    from infinstor_jlab.services.sync import SyncInterrupted

    chains = {
        "a": [("a4", False, 3), ("a3", True, 2), ("a2", False, 2), ("a1", True, 2)],
        "b": [("b2", False, 5), ("b1", True, 5)],
        "c": [("c3", False, 7), ("c2", True, 7), ("c1", False, 7)],
        "d": [("d1", False, 1)],
    }
    _markers_first_store(monkeypatch, chains)

    def histories(index):
        return {k: [v.version_id for v in index.history("bkt", k)] for k in chains}

    results = []
    for n, page_size in enumerate((1000, 2, 3, 5)):
        index = SqliteSnapshotIndex(str(tmp_path / f"ix{n}.sqlite"))
        sync_bucket(None, index, "bkt", page_size=page_size)
        results.append(histories(index))
        index.close()
    # interrupted after its first merged page, then resumed
    index = SqliteSnapshotIndex(str(tmp_path / "stopped.sqlite"))
    with pytest.raises(SyncInterrupted):
        sync_bucket(None, index, "bkt", page_size=3, should_stop=lambda: True)
    sync_bucket(None, index, "bkt", page_size=3)
    results.append(histories(index))
    index.close()
    assert all(r == results[0] for r in results), results
    # each chain keeps its IsLatest entry on top and its times newest first
    assert [h[0] for h in results[0].values()] == ["a4", "b2", "c3", "d1"]
    assert sorted(results[0]["a"]) == ["a1", "a2", "a3", "a4"]


def test_forgetting_a_bucket_stops_its_running_sync_so_the_bucket_stays_forgotten(
    service, s3, bucket
):
    """DELETE track?forget=1 while a sync job of the bucket is running (or about to run): the
    job stops, and nothing it was writing brings the bucket back into the index."""
    import threading

    s3.put_object(Bucket=bucket, Key="a", Body=b"x")
    service.sync(bucket)
    # The job's thread has not begun when the bucket is forgotten: it must not start.
    pending: list = []
    job = service.start_sync_job(bucket, full=True, runner=pending.append)
    forgetting = threading.Thread(
        target=service.untrack, args=(bucket,), kwargs={"forget_history": True}
    )
    forgetting.start()
    assert job.stop.wait(10)  # the forget asked the job to stop and now waits for it
    assert forgetting.is_alive()
    pending[0]()  # the job's thread runs only now
    forgetting.join(10)
    assert not forgetting.is_alive() and job.state == "error" and "stopped" in job.error
    with pytest.raises(UnknownBucket):
        service.index.get_bucket(bucket)
    # A job that is listing when the bucket is forgotten stops after its page.
    for i in range(6):
        s3.put_object(Bucket=bucket, Key=f"k{i}", Body=b"x")
    service.track(bucket, enable_versioning_consent=True)
    pages: list = []
    jobs: list = []
    started = threading.Event()
    real_sync = service.sync

    def sync_in_small_pages(name, *, full=False, on_progress=None, should_stop=None):
        def stop_check():
            pages.append(1)
            if len(pages) == 1:  # forget while the pass is between its pages
                threading.Thread(
                    target=service.untrack, args=(bucket,), kwargs={"forget_history": True}
                ).start()
                assert started.wait(10) and jobs[0].stop.wait(10)
            return should_stop()

        return sync_bucket(
            service.s3(),
            service.index,
            name,
            full=full,
            page_size=2,
            on_progress=on_progress,
            should_stop=stop_check,
        )

    service.sync = sync_in_small_pages
    try:
        jobs.append(service.start_sync_job(bucket, full=True))
        started.set()
        assert jobs[0].ended.wait(30) and jobs[0].state == "error"
    finally:
        service.sync = real_sync
    deadline = now_ms() + 10_000
    while now_ms() < deadline:
        try:
            service.index.get_bucket(bucket)
        except UnknownBucket:
            break
    with pytest.raises(UnknownBucket):
        service.index.get_bucket(bucket)
    assert len(pages) == 1  # it stopped after the page it was on
