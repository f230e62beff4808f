"""The SQLite index's schema and its migrations (versioned by ``SCHEMA_VERSION``), the
per-bucket time index, the timeline rollup and the page-token secret kept in ``meta``."""

from __future__ import annotations

import secrets
import sqlite3

from ..codec import (
    pack_version,
)
from . import rows as _rows
from .rows import (
    F_DELETE,
)

SCHEMA_VERSION = 5

# The versions table's definition after its name (also used by the schema 3 -> 4 migration).
_VERSIONS_COLUMNS = """(
    b INTEGER NOT NULL,
    key TEXT NOT NULL,
    t INTEGER NOT NULL,
    r INTEGER NOT NULL,
    packed BLOB NOT NULL,
    f INTEGER NOT NULL,
    seq TEXT,
    PRIMARY KEY(b, key, t DESC, r DESC)
) WITHOUT ROWID"""

_SCHEMA = f"""
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
    generation INTEGER NOT NULL DEFAULT 0,
    skip_gen INTEGER NOT NULL DEFAULT 0,
    large_gen INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS versions{_VERSIONS_COLUMNS};
CREATE TABLE IF NOT EXISTS folders(
    b INTEGER NOT NULL,
    prefix TEXT NOT NULL,
    first_t INTEGER NOT NULL,
    last_t INTEGER NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY(b, prefix)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS timeline_hours(
    b INTEGER NOT NULL,
    h INTEGER NOT NULL,
    created INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    PRIMARY KEY(b, h)
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
    created_ms INTEGER NOT NULL,
    created_by TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;
"""


def time_index_name(b: int) -> str:
    return f"versions_by_time_{int(b)}"


def _create_time_index(conn: sqlite3.Connection, b: int) -> None:
    b = int(b)  # a literal in the DDL: a partial index serves only queries that say b=<b>
    conn.execute(f"CREATE INDEX IF NOT EXISTS {time_index_name(b)} ON versions(t, f) WHERE b={b}")


def _fill_timeline_hours(conn: sqlite3.Connection, b: int, width: int) -> None:
    """Count a bucket's timeline_hours from scratch, through its time index (in time order:
    one pass, no sort)."""
    b = int(b)
    conn.execute("DELETE FROM timeline_hours WHERE b=?", (b,))
    conn.execute(
        "INSERT INTO timeline_hours(b, h, created, deleted) "
        f"SELECT {b}, t / {width}, sum((f & 1) = 0), sum(f & 1) FROM versions "
        f"INDEXED BY {time_index_name(b)} WHERE b={b} GROUP BY t / {width}"
    )


def _migrate(conn: sqlite3.Connection, version: int) -> None:
    """Bring an index written by an older version up to SCHEMA_VERSION, inside the caller's
    write transaction (SQLite DDL is transactional: a crash leaves the old schema whole)."""
    if version == 1:
        # The shared time index becomes one partial index per bucket that has versions.
        conn.execute("DROP INDEX IF EXISTS versions_by_time")
        for (b,) in conn.execute("SELECT id FROM buckets ORDER BY id").fetchall():
            if conn.execute("SELECT 1 FROM versions WHERE b=? LIMIT 1", (b,)).fetchone():
                _create_time_index(conn, b)
        version = 2
    if version == 2:
        conn.execute("ALTER TABLE buckets ADD COLUMN skip_gen INTEGER NOT NULL DEFAULT 0")
        conn.execute("ALTER TABLE buckets ADD COLUMN large_gen INTEGER NOT NULL DEFAULT 0")
        width = _rollup_width(conn)
        for (b,) in conn.execute("SELECT id FROM buckets ORDER BY id").fetchall():
            if conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type='index' AND name=?", (time_index_name(b),)
            ).fetchone():
                _fill_timeline_hours(conn, b, width)
        version = 3
    if version == 3:
        # Every row is rewritten with vid, size and etag packed into one value; the table
        # is copied in its own order (appends), and the time indexes built again over it.
        timed = [
            b
            for (b,) in conn.execute("SELECT id FROM buckets ORDER BY id").fetchall()
            if conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type='index' AND name=?", (time_index_name(b),)
            ).fetchone()
        ]
        conn.execute(f"CREATE TABLE versions_packed{_VERSIONS_COLUMNS}")
        conn.create_function(
            "infinstor_pack",
            4,
            lambda vid, size, etag, f: pack_version(vid, size, etag, bool(f & F_DELETE)),
            deterministic=True,
        )
        conn.execute(
            "INSERT INTO versions_packed(b, key, t, r, packed, f, seq) "
            "SELECT b, key, t, r, infinstor_pack(vid, size, etag, f), f, seq FROM versions "
            "ORDER BY b, key, t DESC, r DESC"
        )
        conn.execute("DROP TABLE versions")
        conn.execute("ALTER TABLE versions_packed RENAME TO versions")
        for b in timed:
            _create_time_index(conn, b)
        version = 4
    if version == 4:
        # Labels record who made them (a shared index has many users); older ones: unknown.
        columns = {row[1] for row in conn.execute("PRAGMA table_info(labels)")}
        if "created_by" not in columns:  # a table made by this version's _SCHEMA has it
            conn.execute("ALTER TABLE labels ADD COLUMN created_by TEXT NOT NULL DEFAULT ''")
        version = 5
    conn.execute("UPDATE meta SET v=? WHERE k='schema_version'", (str(version),))


def _rollup_width(conn: sqlite3.Connection) -> int:
    """The index's timeline_hours width, recorded the first time it is asked for."""
    conn.execute(
        "INSERT OR IGNORE INTO meta(k, v) VALUES('timeline_rollup_ms', ?)",
        (str(_rows.TIMELINE_ROLLUP_MS),),
    )
    return int(conn.execute("SELECT v FROM meta WHERE k='timeline_rollup_ms'").fetchone()[0])


def _token_secret(conn: sqlite3.Connection) -> bytes:
    """The index's page-token secret, made the first time the index is opened (kept in
    ``meta``, so tokens stay valid across restarts and for every process on the file)."""
    conn.execute(
        "INSERT OR IGNORE INTO meta(k, v) VALUES('page_token_secret', ?)", (secrets.token_hex(32),)
    )
    row = conn.execute("SELECT v FROM meta WHERE k='page_token_secret'").fetchone()
    return bytes.fromhex(row[0])


def time_index_of(conn: sqlite3.Connection, b: int) -> str | None:
    """The bucket's time index, if its first full scan has built it."""
    name = time_index_name(b)
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type='index' AND name=?", (name,)
    ).fetchone()
    return name if row else None


def time_index_ends(
    conn: sqlite3.Connection, b: int, time_index: str
) -> tuple[int | None, int | None]:
    """The bucket's first and last version times (None, None without versions): the
    first and last rows of its time index, exact also after versions were pruned."""
    ends = [
        conn.execute(
            f"SELECT t FROM versions INDEXED BY {time_index} WHERE b={int(b)} "
            f"ORDER BY t {order} LIMIT 1"
        ).fetchone()
        for order in ("ASC", "DESC")
    ]
    return (ends[0][0] if ends[0] else None, ends[1][0] if ends[1] else None)
