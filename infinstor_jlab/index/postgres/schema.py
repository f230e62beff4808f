"""The PostgreSQL index's schema and its migrations (versioned by ``SCHEMA_VERSION`` in
``index_meta``), and the page-token secret kept there.

Layout (design "a" of the feasibility review, /work/shared/reviews/postgres-asof.md):

* ``versions``: one row per version, unique btree ``(b, key, t DESC, r DESC) INCLUDE
  (packed, f)``: per key the chain newest first, so "the newest version of the first key at or
  after K as of T" is one index-only descent, and a listing page is a loose index scan (one
  such descent per entry, jumping past each rolled-up folder) in one recursive statement.
  ``t`` is the version's time in ms, ``r`` orders versions that share a millisecond (0 the
  newest of such a group, -1 the one before it, ...), as in the SQLite index; ``packed`` is
  ``codec.pack_version`` (id, size, ETag, delete flag in one value), ``f`` the flags.
* ``versions_by_time (b, t)``: the bucket's first and last times (two descents) and
  timelines without reading the chains. ``buckets.version_count`` is the bucket's number of
  rows, adjusted by every write in its transaction by exactly the rows it adds and removes
  (counting them took ~0.4 s at 1M versions, and the sidebar polls a bucket's figures).
* Keys are ``COLLATE "C"``: S3 orders keys by their UTF-8 bytes, and so does "C".
* Listings are index-only scans only where the visibility map says a page is all-visible:
  the first full scan ends with a VACUUM, and autovacuum vacuums after inserts of 2% of the
  table (not the default 20%), which also repairs a VACUUM that an autovacuum ANALYZE
  running at the same time kept from marking the last pages (the review's pitfall).
"""

from __future__ import annotations

import secrets
from typing import Any

SCHEMA_VERSION = 1

# Serialises schema creation and migration between processes opening one database at once.
SCHEMA_LOCK_ID = 0x1F57_0001

_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS index_meta(k text PRIMARY KEY, v text NOT NULL)",
    """CREATE TABLE IF NOT EXISTS buckets(
        id bigserial PRIMARY KEY,
        name text COLLATE "C" NOT NULL UNIQUE,
        tracked_ms bigint,
        versioning text,
        last_sync_ms bigint,
        scan_key_marker text COLLATE "C",
        scan_started_ms bigint,
        listing_style text,
        queue_url text,
        queue_arn text,
        notification_id text,
        last_event_ms bigint,
        events_applied bigint NOT NULL DEFAULT 0,
        malformed_events bigint NOT NULL DEFAULT 0,
        last_error text,
        version_count bigint NOT NULL DEFAULT 0
    )""",
    """CREATE TABLE IF NOT EXISTS versions(
        b bigint NOT NULL,
        key text COLLATE "C" NOT NULL,
        t bigint NOT NULL,
        r integer NOT NULL,
        packed bytea NOT NULL,
        f smallint NOT NULL,
        seq text
    ) WITH (autovacuum_vacuum_insert_scale_factor = 0.02)""",
    (
        "CREATE UNIQUE INDEX IF NOT EXISTS versions_chain ON versions"
        "(b, key, t DESC, r DESC) INCLUDE (packed, f)"
    ),
    # (f included: timelines count versions and delete markers from the index alone)
    "CREATE INDEX IF NOT EXISTS versions_by_time ON versions(b, t) INCLUDE (f)",
    """CREATE TABLE IF NOT EXISTS labels(
        name text COLLATE "C" PRIMARY KEY,
        bucket text COLLATE "C" NOT NULL,
        prefix text COLLATE "C" NOT NULL,
        kind text NOT NULL,
        start_ms bigint,
        end_ms bigint NOT NULL,
        spec text NOT NULL,
        fingerprint text NOT NULL,
        object_count bigint NOT NULL,
        total_bytes bigint NOT NULL,
        description text NOT NULL,
        created_ms bigint NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS labels_by_bucket ON labels(bucket, name)",
    # Who made each label (a shared index has many users; empty for older labels).
    "ALTER TABLE labels ADD COLUMN IF NOT EXISTS created_by text NOT NULL DEFAULT ''",
    # Small named values per bucket (a parallel pass's per-partition checkpoints, the time
    # from which the index is exact), forgotten with the bucket.
    """CREATE TABLE IF NOT EXISTS bucket_meta(
        b bigint NOT NULL REFERENCES buckets(id) ON DELETE CASCADE,
        name text NOT NULL,
        v text NOT NULL,
        PRIMARY KEY (b, name)
    )""",
    # keys.prefix_end in SQL: the smallest string above every string starting with p (the
    # listing's jump past a rolled-up folder). Code points, skipping surrogates, as Python.
    """CREATE OR REPLACE FUNCTION infinstor_prefix_end(p text) RETURNS text
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
    DECLARE
        s text := p;
        c integer;
    BEGIN
        WHILE length(s) > 0 LOOP
            c := ascii(right(s, 1));
            IF c < 1114111 THEN
                c := c + 1;
                IF c BETWEEN 55296 AND 57343 THEN
                    c := 57344;
                END IF;
                RETURN left(s, -1) || chr(c);
            END IF;
            s := left(s, -1);
        END LOOP;
        RETURN NULL;
    END $$""",
]


def create_or_migrate(cur: Any) -> tuple[int, bytes]:
    """Create the schema or bring it to SCHEMA_VERSION inside the caller's transaction
    (PostgreSQL DDL is transactional: a crash leaves the old schema whole). Returns the
    stored schema version (greater than SCHEMA_VERSION: written by a newer release, left
    alone) and the page-token secret."""
    cur.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_ID,))
    cur.execute("SELECT to_regclass('index_meta') IS NOT NULL")
    exists = cur.fetchone()[0]
    version = SCHEMA_VERSION
    if exists:
        cur.execute("SELECT v FROM index_meta WHERE k='schema_version'")
        row = cur.fetchone()
        version = int(row[0]) if row else SCHEMA_VERSION
    if version > SCHEMA_VERSION:
        return version, b""
    for statement in _SCHEMA:
        cur.execute(statement)
    _migrate(cur, version)
    cur.execute(
        "INSERT INTO index_meta(k, v) VALUES('schema_version', %s) ON CONFLICT (k) DO NOTHING",
        (str(SCHEMA_VERSION),),
    )
    cur.execute(
        "INSERT INTO index_meta(k, v) VALUES('page_token_secret', %s) ON CONFLICT (k) DO NOTHING",
        (secrets.token_hex(32),),
    )
    cur.execute("SELECT v FROM index_meta WHERE k='page_token_secret'")
    return version, bytes.fromhex(cur.fetchone()[0])


def _migrate(cur: Any, version: int) -> None:
    """Steps from each older schema version to the next go here (none yet: 1 is the first)."""
    if version < SCHEMA_VERSION:  # pragma: no cover - no older schema exists yet
        raise AssertionError(f"no migration from schema {version}")
    cur.execute("UPDATE index_meta SET v=%s WHERE k='schema_version'", (str(SCHEMA_VERSION),))
