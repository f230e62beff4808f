"""Indexes written by an older version of infinstor_jlab keep working: opening one migrates it
to the current schema automatically, in one transaction, and it gives the same answers.

Schema 1 (before per-bucket time indexes) is captured here verbatim as its code wrote it. A
file in that schema is made by creating its tables with that DDL and filling them with the
rows the current code writes (the row formats of ``folders``, ``buckets`` and ``labels`` did
not change since; ``versions`` rows are unpacked into the columns vid, size and etag that
schemas 1-3 kept, see ``old_version_rows``).
"""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
import sys
from unittest import mock

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import brute
from brute import Op

from infinstor_jlab.errors import BadRequest
from infinstor_jlab.index import SCHEMA_VERSION, LabelRecord, SqliteSnapshotIndex
from infinstor_jlab.index import sqlite as sqlite_mod
from infinstor_jlab.index.codec import unpack_version
from infinstor_jlab.index.sqlite import schema as sqlite_schema

# infinstor_jlab/index/sqlite.py _SCHEMA at SCHEMA_VERSION = 1 (commit 90b24b6).
SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS buckets(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    tracked_ms INTEGER,
    versioning TEXT,
    last_sync_ms INTEGER,
    scan_key_marker TEXT,
    scan_started_ms INTEGER,
    listing_style TEXT,
    queue_url TEXT,
    queue_arn TEXT,
    notification_id TEXT,
    last_event_ms INTEGER,
    events_applied INTEGER NOT NULL DEFAULT 0,
    malformed_events INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    generation INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS versions(
    b INTEGER NOT NULL,
    key TEXT NOT NULL,
    t INTEGER NOT NULL,
    r INTEGER NOT NULL,
    vid BLOB NOT NULL,
    size INTEGER NOT NULL,
    etag BLOB NOT NULL,
    f INTEGER NOT NULL,
    seq TEXT,
    PRIMARY KEY(b, key, t DESC, r DESC)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS versions_by_time ON versions(b, t, f);
CREATE TABLE IF NOT EXISTS folders(
    b INTEGER NOT NULL,
    prefix TEXT NOT NULL,
    first_t INTEGER NOT NULL,
    last_t INTEGER NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY(b, prefix)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS labels(
    name TEXT PRIMARY KEY,
    bucket TEXT NOT NULL,
    prefix TEXT NOT NULL,
    kind TEXT NOT NULL,
    start_ms INTEGER,
    end_ms INTEGER NOT NULL,
    spec TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    object_count INTEGER NOT NULL,
    total_bytes INTEGER NOT NULL,
    description TEXT NOT NULL,
    created_ms INTEGER NOT NULL
) WITHOUT ROWID;
"""

BASE_MS = 1_763_632_800_000
FAR_FUTURE_MS = 10**13
ETAG = '"' + "ab" * 16 + '"'
TABLES = ("buckets", "versions", "folders", "labels")
# versions in schemas 1-3, as schema 1 defines it (schema 4 packs vid, size and etag into
# one column), under the name a copy is built with
VERSIONS_V3 = (
    SCHEMA_V1[SCHEMA_V1.index("CREATE TABLE IF NOT EXISTS versions(") :]
    .split(";")[0]
    .replace("IF NOT EXISTS versions(", "versions_v3(", 1)
)


def old_version_rows(conn: sqlite3.Connection, schema: str) -> list[tuple]:
    """``schema``.versions rows (current layout) as schemas 1-3 stored them."""
    out = []
    for b, key, t, r, packed, f, seq in conn.execute(
        f"SELECT b, key, t, r, packed, f, seq FROM {schema}.versions"
    ):
        vid, size, etag, is_delete = unpack_version(packed)
        assert is_delete == bool(f & 1)
        out.append((b, key, t, r, vid, size, etag, f, seq))
    return out


def history(seed: int, n: int) -> list[Op]:
    """A random history in chain order: puts, overwrites (some in the same second) and
    delete markers over nested folders."""
    rng = random.Random(seed)
    keys = [f"{a}/{b}/f{i}.csv" for a in "xyz" for b in ("p", "q", "r s") for i in range(12)]
    keys += [f"top{i}.txt" for i in range(8)]
    ops: list[Op] = []
    last: dict[str, int] = {}
    t = BASE_MS
    for i in range(n):
        t += rng.choice((0, 0, 1000, 1000, 7000, 60_000))
        key = rng.choice(keys)
        prev = last.get(key)
        is_delete = prev is not None and rng.random() < 0.2
        ops.append(
            Op(
                key,
                f"v{i:05d}-{seed}",
                t,
                is_delete,
                0 if is_delete else i + 1,
                "" if is_delete else ETAG,
            )
        )
        last[key] = t
    return ops


def build_current(path: str, buckets: dict[str, list[Op]], finished: set[str]) -> None:
    idx = SqliteSnapshotIndex(path)
    try:
        for name, ops in buckets.items():
            idx.register_bucket(name, versioning="Enabled")
            entries = brute.listing_entries(ops)
            half = len(entries) // 2
            through = entries[half][0]
            first = [e for e in entries if e.key <= through]
            rest = [e for e in entries if e.key > through]
            idx.merge_listing(
                name, first, after_key=None, through_key=through, scan_started_ms=FAR_FUTURE_MS
            )
            idx.merge_listing(
                name, rest, after_key=through, through_key=None, scan_started_ms=FAR_FUTURE_MS
            )
            if name in finished:
                idx.finish_scan(name, FAR_FUTURE_MS)
        idx.insert_label(
            LabelRecord(
                "lbl",
                "one",
                "x/",
                "snapshot",
                None,
                BASE_MS + 10**6,
                "tm...",
                "f" * 64,
                3,
                42,
                "d",
                BASE_MS,
            )
        )
    finally:
        idx.close()


def write_v1_copy(source: str, path: str) -> None:
    """The same rows in a file with schema 1's DDL, as schema 1's code left it."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(SCHEMA_V1)
        conn.execute("INSERT INTO meta(k, v) VALUES('schema_version', '1')")
        conn.execute("ATTACH DATABASE ? AS src", (source,))
        conn.execute("BEGIN")
        for table in TABLES:
            if table == "versions":
                conn.executemany(
                    "INSERT INTO main.versions VALUES(?,?,?,?,?,?,?,?,?)",
                    old_version_rows(conn, "src"),
                )
                continue
            # schema 1's columns only (later schemas added some to buckets)
            cols = ", ".join(row[1] for row in conn.execute(f"PRAGMA main.table_info({table})"))
            conn.execute(f"INSERT INTO main.{table}({cols}) SELECT {cols} FROM src.{table}")
        conn.execute("COMMIT")
        conn.execute("DETACH DATABASE src")
    finally:
        conn.close()


def write_v3_copy(source: str, path: str) -> None:
    """The same index as schema 3's code left it: versions with the columns vid, size and
    etag, and the same per-bucket time indexes over it."""
    shutil.copyfile(source, path)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN")
        indexes = conn.execute(
            "SELECT sql FROM sqlite_master WHERE type='index' "
            "AND tbl_name='versions' AND sql IS NOT NULL"
        ).fetchall()
        rows = old_version_rows(conn, "main")
        conn.execute(VERSIONS_V3)
        conn.executemany("INSERT INTO versions_v3 VALUES(?,?,?,?,?,?,?,?,?)", rows)
        conn.execute("DROP TABLE versions")
        conn.execute("ALTER TABLE versions_v3 RENAME TO versions")
        for (sql,) in indexes:
            conn.execute(sql)
        conn.execute("UPDATE meta SET v='3' WHERE k='schema_version'")
        conn.execute("COMMIT")
    finally:
        conn.close()


def write_v2_copy(source: str, path: str) -> None:
    """The same index as schema 2's code left it: without buckets.skip_gen and large_gen and
    the timeline_hours table (schema 2 had everything else of schema 3)."""
    write_v3_copy(source, path)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("ALTER TABLE buckets DROP COLUMN skip_gen")
        conn.execute("ALTER TABLE buckets DROP COLUMN large_gen")
        conn.execute("DROP TABLE timeline_hours")
        conn.execute("DELETE FROM meta WHERE k='timeline_rollup_ms'")
        conn.execute("UPDATE meta SET v='2' WHERE k='schema_version'")
    finally:
        conn.close()


def token_position(token: str | None) -> str | None:
    """Where a page token resumes (its signed payload): each index file signs with its own
    secret, so two indexes agree on positions, not on signatures."""
    return None if token is None else token.rpartition(".")[0]


def answers(idx: SqliteSnapshotIndex, bucket: str, ops: list[Op]) -> dict:
    times = sorted({op.time_ms for op in ops})
    probes = [times[0] - 1, *times[:: max(1, len(times) // 12)], times[-1] + 1]
    out: dict = {"bucket": repr(idx.get_bucket(bucket))}
    for key in sorted({op.key for op in ops}):
        out[("history", key)] = [repr(o) for o in idx.history(bucket, key)]
    for i, t in enumerate(probes):
        out[("snap", t)] = [repr(o) for o in idx.iter_view(bucket, end_ms=t)]
        for prefix in ("", "x/", "y/q/"):
            page = idx.list_view(bucket, end_ms=t, prefix=prefix, delimiter="/", max_keys=7)
            out[("page", t, prefix)] = (
                [repr(o) for o in page.objects],
                page.prefixes,
                token_position(page.next_token),
            )
        for t2 in probes[i : i + 4]:
            out[("slice", t, t2)] = [repr(o) for o in idx.iter_view(bucket, start_ms=t, end_ms=t2)]
            page = idx.list_view(bucket, start_ms=t, end_ms=t2, delimiter="/")
            out[("slice-page", t, t2)] = ([repr(o) for o in page.objects], page.prefixes)
        out[("diff", t)] = idx.diff(bucket, prefix="", from_ms=probes[0], to_ms=t).to_json()
    for prefix in ("", "z/"):
        tl = idx.timeline(bucket, prefix=prefix, bins=9)
        out[("timeline", prefix)] = (tl.start_ms, tl.end_ms, tl.bin_ms, tl.created, tl.deleted)
    return out


def all_answers(idx: SqliteSnapshotIndex, buckets: dict[str, list[Op]]) -> dict:
    out = {name: answers(idx, name, ops) for name, ops in buckets.items()}
    # The same slices through the time-index plan (with the time index where it exists).
    with mock.patch.object(SqliteSnapshotIndex, "_slice_by_time", lambda *a, **k: True):
        out["by_time"] = {name: answers(idx, name, ops) for name, ops in buckets.items()}
    out["labels"] = [repr(label) for label in idx.list_labels()]
    return out


def index_names(path: str) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {
            row[0]
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type='index' AND sql IS NOT NULL"
            )
        }
    finally:
        conn.close()


def timeline_hours(path: str) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(
            "SELECT b, h, created, deleted FROM timeline_hours "
            "WHERE created OR deleted ORDER BY b, h"
        ).fetchall()
    finally:
        conn.close()


def schema_version(path: str) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT v FROM meta WHERE k='schema_version'").fetchone()[0])
    finally:
        conn.close()


@pytest.fixture
def files(tmp_path):
    buckets = {"one": history(1, 400), "two": history(2, 250), "three": history(3, 60)}
    current = str(tmp_path / "current.sqlite")
    build_current(current, buckets, finished={"one", "three"})
    old = str(tmp_path / "old.sqlite")
    write_v1_copy(current, old)
    return buckets, current, old


def test_an_index_in_schema_1_is_migrated_on_open_and_answers_the_same(files):
    buckets, current, old = files
    assert schema_version(old) == 1 and "versions_by_time" in index_names(old)
    ref = SqliteSnapshotIndex(current)
    migrated = SqliteSnapshotIndex(old)
    try:
        want = all_answers(ref, buckets)
        assert all_answers(migrated, buckets) == want
        # ... and what the brute-force model says
        for name, ops in buckets.items():
            for key in want[name]:
                if key[0] == "snap":
                    model = brute.view(ops, key[1])
                    got = [(o.key, o.version_id) for o in migrated.iter_view(name, end_ms=key[1])]
                    assert got == [(k, model[k].version_id) for k in sorted(model)]
        # it keeps working for writes: an event and a re-listing land in both alike
        for idx in (ref, migrated):
            idx.append_versions(
                "two", [brute.to_entry(Op("x/p/new.csv", "vnew", BASE_MS + 10**9, False, 5, ETAG))]
            )
            idx.finish_scan("two", FAR_FUTURE_MS)
        assert all_answers(migrated, buckets) == all_answers(ref, buckets)
    finally:
        ref.close()
        migrated.close()
    assert schema_version(old) == SCHEMA_VERSION
    assert timeline_hours(old) == timeline_hours(current) != []
    names = index_names(old)
    assert "versions_by_time" not in names
    # every bucket with versions has its time index (schema 1 kept one for all of them)
    conn = sqlite3.connect(old)
    ids = [row[0] for row in conn.execute("SELECT id FROM buckets ORDER BY id")]
    conn.close()
    assert {sqlite_mod.time_index_name(b) for b in ids} <= names


def test_an_index_in_schema_2_is_migrated_on_open_and_answers_the_same(files, tmp_path):
    buckets, current, _ = files
    old = str(tmp_path / "v2.sqlite")
    write_v2_copy(current, old)
    assert schema_version(old) == 2
    ref, migrated = SqliteSnapshotIndex(current), SqliteSnapshotIndex(old)
    try:
        assert all_answers(migrated, buckets) == all_answers(ref, buckets)
        # listings as of an early time skip folders, and go on doing so correctly after a
        # write that moves a folder's first version time back
        for idx in (ref, migrated):
            idx.append_versions(
                "two",
                [brute.to_entry(Op("x/p/early.csv", "vearly", BASE_MS - 10**6, False, 5, ETAG))],
            )
        assert all_answers(migrated, buckets) == all_answers(ref, buckets)
        assert [o.key for o in migrated.iter_view("two", end_ms=BASE_MS - 1)] == ["x/p/early.csv"]
    finally:
        ref.close()
        migrated.close()
    assert schema_version(old) == SCHEMA_VERSION
    # the timeline rows the migration counted are those the writes kept up to date
    assert timeline_hours(old) == timeline_hours(current) != []
    conn = sqlite3.connect(old)
    try:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(buckets)")}
        assert {"skip_gen", "large_gen"} <= columns
    finally:
        conn.close()


def versions_columns(path: str) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [row[1] for row in conn.execute("PRAGMA table_info(versions)")]
    finally:
        conn.close()


def test_an_index_in_schema_3_is_migrated_on_open_and_answers_the_same(files, tmp_path, caplog):
    buckets, current, _ = files
    old = str(tmp_path / "v3.sqlite")
    write_v3_copy(current, old)
    assert schema_version(old) == 3 and "vid" in versions_columns(old)
    timed_before = {n for n in index_names(old) if n.startswith("versions_by_time_")}
    assert len(timed_before) == 2  # buckets "one" and "three" finished their first scan
    ref = SqliteSnapshotIndex(current)
    assert "Upgrading" not in caplog.text
    migrated = SqliteSnapshotIndex(old)
    # the wait is explained before it starts
    assert f"Upgrading the index at {old} from schema 3 to {SCHEMA_VERSION}" in caplog.text
    try:
        assert all_answers(migrated, buckets) == all_answers(ref, buckets)
        # writes go on landing alike: an event, a re-listing of a key, a permanent delete
        for idx in (ref, migrated):
            idx.append_versions(
                "one", [brute.to_entry(Op("x/p/new.csv", "vnew", BASE_MS + 10**9, False, 5, ETAG))]
            )
            ops = buckets["two"]
            key = ops[0].key
            chain = [e for e in brute.listing_entries(ops) if e.key == key]
            idx.merge_listing(
                "two",
                chain,
                after_key=None,
                through_key=None,
                scan_started_ms=FAR_FUTURE_MS,
                keys_only=True,
            )
            idx.remove_versions(
                "three", [(buckets["three"][0].key, buckets["three"][0].version_id)]
            )
        assert all_answers(migrated, buckets) == all_answers(ref, buckets)
    finally:
        ref.close()
        migrated.close()
    assert schema_version(old) == SCHEMA_VERSION
    assert versions_columns(old) == ["b", "key", "t", "r", "packed", "f", "seq"]
    assert {n for n in index_names(old) if n.startswith("versions_by_time_")} == timed_before
    assert timeline_hours(old) == timeline_hours(current) != []


def test_a_migration_that_fails_halfway_leaves_the_old_index_whole(files, monkeypatch):
    buckets, current, old = files

    def boom(conn, b):
        raise sqlite3.OperationalError("disk I/O error (simulated)")

    monkeypatch.setattr(sqlite_schema, "_create_time_index", boom)  # where _migrate finds it
    with pytest.raises(sqlite3.OperationalError):
        SqliteSnapshotIndex(old)
    assert schema_version(old) == 1 and "versions_by_time" in index_names(old)
    monkeypatch.undo()
    ref, migrated = SqliteSnapshotIndex(current), SqliteSnapshotIndex(old)
    try:
        assert all_answers(migrated, buckets) == all_answers(ref, buckets)
    finally:
        ref.close()
        migrated.close()


def test_a_newer_schema_is_refused_with_a_sentence(tmp_path):
    path = str(tmp_path / "future.sqlite")
    SqliteSnapshotIndex(path).close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("UPDATE meta SET v=? WHERE k='schema_version'", (str(SCHEMA_VERSION + 1),))
    conn.close()
    with pytest.raises(BadRequest, match="newer"):
        SqliteSnapshotIndex(path)
