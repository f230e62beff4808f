"""The PostgreSQL index as a team shares it: the schema made on first open and reopened as is,
a second opener seeing the first one's writes at once, S3's byte order of keys, readers that do
not wait for a writer, and URLs that never show a password. Answers in general are checked on
both backends by test_index_properties.py."""

from __future__ import annotations

import threading

import pytest

pytest.importorskip("psycopg")

import psycopg

from infinstor_jlab.errors import BadRequest, Conflict, IndexUnavailable
from infinstor_jlab.index import LabelRecord, VersionEntry, open_index
from infinstor_jlab.index.postgres import SCHEMA_VERSION, PostgresSnapshotIndex

B = "team-bucket"


def entry(key: str, vid: str, t: int, *, delete: bool = False) -> VersionEntry:
    return VersionEntry(key, vid, t, 0 if delete else 7, "" if delete else f'"{"ab" * 16}"', delete)


def label(name: str) -> LabelRecord:
    return LabelRecord(name, B, "", "snapshot", None, 5000, "tm1", "f" * 64, 1, 7, "", 1)


def test_open_index_routes_postgres_urls_and_makes_the_schema(pg_url):
    idx = open_index(pg_url)
    try:
        assert isinstance(idx, PostgresSnapshotIndex)
        with psycopg.connect(pg_url) as conn:
            meta = dict(conn.execute("SELECT k, v FROM index_meta").fetchall())
            assert meta["schema_version"] == str(SCHEMA_VERSION)
            assert len(meta["page_token_secret"]) == 64
            collation = conn.execute(
                "SELECT collation_name FROM information_schema.columns "
                "WHERE table_name='versions' AND column_name='key'"
            ).fetchone()[0]
            assert collation == "C"
    finally:
        idx.close()
    # postgres:// is libpq's other spelling
    other = open_index("postgres://" + pg_url.split("://", 1)[1])
    other.close()


def test_reopening_keeps_data_schema_and_token_secret(pg_url):
    first = open_index(pg_url)
    first.register_bucket(B, versioning="Enabled")
    first.merge_listing(
        B,
        [entry("a", "v1", 1000), entry("b", "v2", 1000), entry("c", "v3", 1000)],
        after_key=None,
        through_key=None,
        scan_started_ms=10**13,
    )
    page = first.list_view(B, end_ms=2000, max_keys=1)
    first.close()
    again = open_index(pg_url)  # the second open finds everything in place (no error, no reset)
    try:
        rest = again.list_view(B, end_ms=2000, max_keys=5, token=page.next_token)
        assert [o.key for o in rest.objects] == ["b", "c"]
    finally:
        again.close()


def test_a_second_index_on_the_same_database_sees_writes_at_once(pg_url):
    one, two = open_index(pg_url), open_index(pg_url)
    try:
        one.register_bucket(B, versioning="Enabled")
        assert [b.name for b in two.list_buckets()] == [B]
        one.append_versions(B, [entry("k", "v1", 1000)])
        assert [o.version_id for o in two.history(B, "k")] == ["v1"]
        one.insert_label(label("pinned"))
        assert two.get_label("pinned").end_ms == 5000
        # labels are unique across every server on the database
        with pytest.raises(Conflict):
            two.insert_label(label("pinned"))
        # page tokens of one are valid in the other (one secret per database)
        one.append_versions(B, [entry("l", "v2", 1000)])
        token = one.list_view(B, end_ms=2000, max_keys=1).next_token
        assert [o.key for o in two.list_view(B, end_ms=2000, token=token).objects] == ["l"]
    finally:
        one.close()
        two.close()


def test_keys_are_listed_in_s3_byte_order(pg_url):
    # UTF-8 byte order: '!' (0x21) < '/' (0x2f) < 'A' < 'a' < 'é' (0xc3 0xa9) < '日' (0xe6)
    # < U+10FFFF (0xf4); a locale's collation would put them otherwise.
    keys = ["a/x", "a!x", "A", "a", "é", "日本", "\U0010ffff", "Z", "a x", "a/", "ab"]
    idx = open_index(pg_url)
    try:
        idx.register_bucket(B)
        idx.merge_listing(
            B,
            sorted(entry(k, f"v{i}", 1000) for i, k in enumerate(keys)),
            after_key=None,
            through_key=None,
            scan_started_ms=10**13,
        )
        want = sorted(keys, key=lambda k: k.encode("utf-8"))
        assert want == sorted(keys)  # Python's code-point order is the same
        assert [o.key for o in idx.iter_view(B, end_ms=2000)] == want
        got, token = [], None
        while True:
            page = idx.list_view(B, end_ms=2000, max_keys=2, token=token)
            got += [o.key for o in page.objects]
            token = page.next_token
            if token is None:
                break
        assert got == want
        top = idx.list_view(B, end_ms=2000, delimiter="/")
        assert top.prefixes == ["a/"]
        assert [o.key for o in top.objects] == [k for k in want if "/" not in k]
    finally:
        idx.close()


def test_readers_do_not_wait_for_a_writer(pg_url):
    idx = open_index(pg_url)
    try:
        idx.register_bucket(B)
        idx.append_versions(B, [entry("k", "v1", 1000)])
        # Another server holds a write transaction on the bucket's rows.
        with psycopg.connect(pg_url) as writer:
            writer.execute("SELECT id FROM buckets WHERE name=%s FOR UPDATE", (B,))
            writer.execute("UPDATE versions SET t=t")
            done = threading.Event()
            result: list[object] = []

            def read() -> None:
                result.append([o.key for o in idx.iter_view(B, end_ms=2000)])
                result.append(idx.get_bucket(B).version_count)
                done.set()

            threading.Thread(target=read, daemon=True).start()
            assert done.wait(10), "a reader waited for a writer"
            assert result == [["k"], 1]
            writer.rollback()
    finally:
        idx.close()


def test_concurrent_appends_of_one_bucket_lose_nothing(pg_url):
    indexes = [open_index(pg_url) for _ in range(2)]
    try:
        indexes[0].register_bucket(B)

        def write(n: int) -> None:
            for i in range(25):
                indexes[n].append_versions(B, [entry(f"k{i % 5}", f"w{n}-{i}", 1000 + i)])

        threads = [threading.Thread(target=write, args=(n,)) for n in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert indexes[1].get_bucket(B).version_count == 50
        for k in range(5):
            times = [o.last_modified_ms for o in indexes[0].history(B, f"k{k}")]
            assert len(times) == 10 and times == sorted(times, reverse=True)
    finally:
        for idx in indexes:
            idx.close()


def test_a_newer_schema_is_refused_with_a_sentence(pg_url):
    open_index(pg_url).close()
    with psycopg.connect(pg_url) as conn:
        conn.execute("UPDATE index_meta SET v='999' WHERE k='schema_version'")
    with pytest.raises(BadRequest, match="schema version 999.*newer"):
        open_index(pg_url)


def test_an_unreachable_server_is_a_sentence_without_the_password(pg_server):
    url = f"postgresql://someone:s3cr3t-pw@127.0.0.1:{pg_server.port}/no_such_db?connect_timeout=5"
    with pytest.raises(IndexUnavailable) as err:
        open_index(url)
    message = str(err.value)
    assert "s3cr3t-pw" not in message
    assert "Cannot open the index" in message and "PGPASSWORD" in message


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_bucket_meta_is_durable_for_another_opener_and_forgotten_with_the_bucket(
    backend, pg_url, tmp_path
):
    # A parallel pass's partition checkpoints must survive its process (a SIGKILL, then a
    # rerun elsewhere resumes them), and must not outlive a forgotten bucket.
    url = pg_url if backend == "postgres" else "sqlite:///" + str(tmp_path / "i.sqlite")
    first = open_index(url)
    first.register_bucket(B, versioning="Enabled")
    first.set_bucket_meta(B, "scan_partitions", '{"parts": 3}')
    first.set_bucket_meta(B, "exact_since_ms", "1000")
    first.set_bucket_meta(B, "exact_since_ms", "2000")
    first.close()
    second = open_index(url)
    try:
        assert second.get_bucket_meta(B, "scan_partitions") == '{"parts": 3}'
        assert second.get_bucket_meta(B, "exact_since_ms") == "2000"
        second.set_bucket_meta(B, "scan_partitions", None)
        assert second.get_bucket_meta(B, "scan_partitions") is None
        second.forget_bucket(B)
        second.register_bucket(B, versioning="Enabled")
        assert second.get_bucket_meta(B, "exact_since_ms") is None
    finally:
        second.close()
