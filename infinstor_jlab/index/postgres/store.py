"""``PostgresSnapshotIndex``: a connection pool (psycopg 3), the public index API, and the
statements over the layout described in :mod:`infinstor_jlab.index.postgres.schema`.

The chain logic (merging a listed chain with the stored one, placing event versions) is the
SQLite index's own pure-Python code (``index.sqlite.chains``), so both backends give the same
answers; only the storage differs. Writers of one bucket take its ``buckets`` row lock (one
writer per bucket at a time, as SQLite's one writer); readers never wait on them (MVCC).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from ...errors import BadRequest, Conflict, IndexUnavailable, UnknownBucket, UnknownLabel
from ...redact import redact, safe_uri
from ...timespec import now_ms
from ..base import MAX_KEYS_LIMIT, SnapshotIndex
from ..codec import (
    encode_etag,
    encode_etags,
    encode_version_id,
    encode_version_ids,
    pack_versions,
    version_id_of_packed,
    version_id_prefix,
)
from ..keys import _encode_token, prefix_end, start_position
from ..models import (
    BucketRecord,
    DiffResult,
    EventSource,
    LabelRecord,
    ListPage,
    ModifiedEntry,
    ObjectVersion,
    SyncCheckpoint,
    Timeline,
    VersionEntry,
)
from ..sqlite import rows as _rows
from ..sqlite.chains import _FolderStats, insert_position, merge_chain, refine
from ..sqlite.rows import F_DELETE, F_PRECISE, Row, _packed_row, _to_version, _unpacked
from .schema import SCHEMA_VERSION, create_or_migrate

_log = logging.getLogger("infinstor_jlab.index.postgres")

_NO_START = -(1 << 62)

_STAGE_DDL = (
    (
        'CREATE TEMP TABLE IF NOT EXISTS stage_up(key text COLLATE "C", t bigint, r integer, '
        "packed bytea, f smallint, seq text) ON COMMIT DELETE ROWS"
    ),
    (
        'CREATE TEMP TABLE IF NOT EXISTS stage_del(key text COLLATE "C", t bigint, r integer) '
        "ON COMMIT DELETE ROWS"
    ),
)


def _one(cur: psycopg.Cursor[Any]) -> tuple[Any, ...]:
    """The row a statement that always returns one (an aggregate, a locked row) returned."""
    row = cur.fetchone()
    assert row is not None
    return tuple(row)


def _bound(pos: str, inclusive: bool) -> str:
    """An inclusive lower (or exclusive upper) bound on keys, free of NUL: PostgreSQL text
    cannot hold U+0000, and no stored key does. The strings above ``a`` are exactly those at
    or above ``a + chr(1)``; a bound ``a + chr(0) + ...`` separates keys like ``a + chr(1)``."""
    i = pos.find("\x00")
    if i >= 0:
        return pos[:i] + "\x01"
    return pos if inclusive else pos + "\x01"


def _page_sql(bounded: bool, delimited: bool) -> str:
    """One listing page as a loose index scan: each step is one descent of versions_chain to
    the newest row as of T of the first key at or after ``nxt``; ``nxt`` is the key's
    successor, or past the folder (prefix_end) when the key rolled up into one. ``n`` counts
    the entries listed so far; the walk stops one entry past the page (is there more?)."""
    step = (
        "SELECT key, t, packed, f FROM versions WHERE b = %(b)s AND key >= {lo}"
        + (" AND key < %(hi)s" if bounded else "")
        + " AND t <= %(end)s ORDER BY key, t DESC, r DESC LIMIT 1"
    )
    cp = (
        "CASE WHEN x.f & 1 = 0 AND x.t >= %(start)s AND strpos(substr(x.key, %(plen)s + 1), "
        "%(delim)s) > 0 THEN left(x.key, %(plen)s + strpos(substr(x.key, %(plen)s + 1), "
        "%(delim)s) - 1 + %(dlen)s) END"
        if delimited
        else "NULL::text"
    )
    derived = f"CROSS JOIN LATERAL (SELECT x.f & 1 = 0 AND x.t >= %(start)s AS vis, {cp} AS cp) d"
    nxt = "CASE WHEN d.cp IS NULL THEN x.key || chr(1) ELSE infinstor_prefix_end(d.cp) END"
    return (
        "WITH RECURSIVE walk(key, t, packed, f, vis, cp, nxt, n) AS ("
        f" SELECT x.key, x.t, x.packed, x.f, d.vis, d.cp, {nxt}, d.vis::int"
        f" FROM ({step.format(lo='%(lo)s')}) x {derived}"
        " UNION ALL"
        f" SELECT x.key, x.t, x.packed, x.f, d.vis, d.cp, {nxt}, w.n + d.vis::int"
        f" FROM walk w CROSS JOIN LATERAL ({step.format(lo='w.nxt')}) x {derived}"
        " WHERE w.n <= %(max)s AND w.nxt IS NOT NULL"
        ") SELECT key, t, packed, cp FROM walk WHERE vis"
    )


_PAGE_SQL = {(b, d): _page_sql(b, d) for b in (False, True) for d in (False, True)}

_LABEL_COLS = (
    "name, bucket, prefix, kind, start_ms, end_ms, spec, fingerprint, object_count, "
    "total_bytes, description, created_ms, created_by"
)


class PostgresSnapshotIndex(SnapshotIndex):
    """The snapshot index in a PostgreSQL database (a team's shared index)."""

    #: Several users share it: access checks are on by default (services/access.py).
    shared = True

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 10) -> None:
        self.url = url  # passed to libpq unchanged; shown only through safe_uri
        self._token_secret = b""
        try:
            with psycopg.connect(url) as conn, conn.cursor() as cur:
                version, self._token_secret = create_or_migrate(cur)
        except psycopg.Error as exc:
            raise IndexUnavailable(
                f"Cannot open the index at {safe_uri(url)} "
                f"({redact(str(exc).strip(), [url])}). Check that PostgreSQL is running "
                "there and that this user may connect and create tables (the password comes "
                "from PGPASSWORD or ~/.pgpass)."
            ) from exc
        if version > SCHEMA_VERSION:
            raise BadRequest(
                f"The index at {safe_uri(url)} has schema version {version}, written by a newer "
                f"infinstor_jlab (this one reads up to {SCHEMA_VERSION}); upgrade "
                "infinstor_jlab or point --index at another database."
            )
        self._pool = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            open=True,
            configure=self._configure,
            name="infinstor-index",
        )

    @staticmethod
    def _configure(conn: psycopg.Connection[Any]) -> None:
        conn.prepare_threshold = 2
        with conn.transaction():
            for ddl in _STAGE_DDL:
                conn.execute(ddl)

    def close(self) -> None:
        self._pool.close()

    # -- connections ------------------------------------------------------------------------
    @contextmanager
    def _read(self) -> Iterator[psycopg.Cursor[Any]]:
        """One read-only snapshot: every statement inside sees one committed state."""
        with self._pool.connection() as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            with conn.cursor() as cur:
                yield cur

    @contextmanager
    def _write(self) -> Iterator[psycopg.Cursor[Any]]:
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            yield cur

    def _bucket_id(self, cur: psycopg.Cursor[Any], bucket: str, *, lock: bool = False) -> int:
        cur.execute(
            "SELECT id FROM buckets WHERE name=%s" + (" FOR UPDATE" if lock else ""), (bucket,)
        )
        row = cur.fetchone()
        if row is None:
            raise UnknownBucket(
                f"Bucket {bucket!r} is not in the index. Run `infinstor-jlab track {bucket}` "
                f"(or `infinstor-jlab sync {bucket}` if versioning is already on) first."
            )
        return int(row[0])

    # -- buckets ----------------------------------------------------------------------------
    def register_bucket(self, bucket: str, *, versioning: str | None = None) -> None:
        with self._write() as cur:
            cur.execute(
                "INSERT INTO buckets(name, tracked_ms, versioning) VALUES(%s, %s, %s) "
                "ON CONFLICT(name) DO UPDATE SET versioning=coalesce(excluded.versioning, "
                "buckets.versioning)",
                (bucket, now_ms(), versioning),
            )

    def set_tracked(self, bucket: str, tracked: bool) -> None:
        with self._write() as cur:
            b = self._bucket_id(cur, bucket, lock=True)
            if tracked:
                cur.execute(
                    "UPDATE buckets SET tracked_ms=coalesce(tracked_ms, %s) WHERE id=%s",
                    (now_ms(), b),
                )
            else:
                cur.execute("UPDATE buckets SET tracked_ms=NULL WHERE id=%s", (b,))

    _BUCKET_COLS = "id, name, tracked_ms, versioning, last_sync_ms, scan_started_ms, version_count"

    def _bucket_record(self, cur: psycopg.Cursor[Any], row: Row) -> BucketRecord:
        b, name, tracked, versioning, last_sync, started, count = row
        cur.execute("SELECT min(t), max(t) FROM versions WHERE b=%s", (b,))
        first_ms, last_ms = _one(cur)
        return BucketRecord(
            name=name,
            tracked_ms=tracked,
            versioning=versioning,
            last_sync_ms=last_sync,
            version_count=int(count),
            first_ms=first_ms,
            last_ms=last_ms,
            sync_in_progress=started is not None,
        )

    def get_bucket(self, bucket: str) -> BucketRecord:
        with self._read() as cur:
            cur.execute(f"SELECT {self._BUCKET_COLS} FROM buckets WHERE name=%s", (bucket,))
            row = cur.fetchone()
            if row is None:
                self._bucket_id(cur, bucket)  # raises the friendly error
            assert row is not None
            return self._bucket_record(cur, row)

    def has_bucket(self, bucket: str) -> bool:
        with self._pool.connection() as conn:
            return (
                conn.execute("SELECT 1 FROM buckets WHERE name=%s", (bucket,)).fetchone()
                is not None
            )

    def estimate_versions(self, bucket: str, prefix: str) -> int:
        # The versions under the '/'-folder holding the prefix (an upper bound on the prefix's).
        folder = prefix[: prefix.rfind("/") + 1]
        with self._read() as cur:
            b = self._bucket_id(cur, bucket)
            sql = "SELECT count(*) FROM versions WHERE b=%s AND key >= %s"
            params: list[object] = [b, _bound(folder, True)]
            hi = prefix_end(folder) if folder else None
            if hi is not None:
                sql += " AND key < %s"
                params.append(_bound(hi, True))
            cur.execute(sql, params)
            return int(_one(cur)[0])

    def list_buckets(self) -> list[BucketRecord]:
        with self._read() as cur:
            cur.execute(f"SELECT {self._BUCKET_COLS} FROM buckets ORDER BY name")
            rows = cur.fetchall()
            return [self._bucket_record(cur, row) for row in rows]

    def forget_bucket(self, bucket: str) -> None:
        with self._write() as cur:
            b = self._bucket_id(cur, bucket, lock=True)
            cur.execute("DELETE FROM versions WHERE b=%s", (b,))
            cur.execute("DELETE FROM buckets WHERE id=%s", (b,))

    # -- ingest -----------------------------------------------------------------------------
    def _existing(
        self, cur: psycopg.Cursor[Any], sql: str, params: Sequence[object]
    ) -> dict[str, list[Row]]:
        existing: dict[str, list[Row]] = defaultdict(list)
        cur.execute(sql, params)
        for row in cur:
            existing[row[0]].append(
                _unpacked((row[0], row[1], row[2], bytes(row[3]), row[4], row[5]))
            )
        return existing

    def _apply(
        self, cur: psycopg.Cursor[Any], b: int, upserts: list[Row], deletes: list[Row]
    ) -> None:
        """Write a batch: removals, then rows put in place (both through COPY into a staging
        table and one statement, whatever the batch's size), and the bucket's row count."""
        removed = added = 0
        if deletes:
            with cur.copy("COPY stage_del(key, t, r) FROM STDIN (FORMAT BINARY)") as cp:
                cp.set_types(["text", "int8", "int4"])
                for d in deletes:
                    cp.write_row(d[1:4])
            cur.execute(
                "DELETE FROM versions v USING stage_del d WHERE v.b=%s AND v.key=d.key "
                "AND v.t=d.t AND v.r=d.r",
                (b,),
            )
            removed = cur.rowcount
            cur.execute("TRUNCATE stage_del")
        if upserts:
            with cur.copy(
                "COPY stage_up(key, t, r, packed, f, seq) FROM STDIN (FORMAT BINARY)"
            ) as cp:
                cp.set_types(["text", "int8", "int4", "bytea", "int2", "text"])
                for u in upserts:
                    cp.write_row(u[1:7])
            # xmax is 0 exactly in the rows the INSERT made (an updated row carries this
            # transaction's id): the count of new rows, for buckets.version_count.
            cur.execute(
                "WITH w AS (INSERT INTO versions(b, key, t, r, packed, f, seq) "
                "SELECT %s, key, t, r, packed, f, seq FROM stage_up "
                "ON CONFLICT (b, key, t, r) DO UPDATE SET packed=excluded.packed, "
                "f=excluded.f, seq=excluded.seq RETURNING (xmax = 0) AS added) "
                "SELECT count(*) FILTER (WHERE added) FROM w",
                (b,),
            )
            added = int(_one(cur)[0])
            cur.execute("TRUNCATE stage_up")
        if added != removed:
            cur.execute(
                "UPDATE buckets SET version_count=version_count+%s WHERE id=%s",
                (added - removed, b),
            )

    def merge_listing(
        self,
        bucket: str,
        entries: Sequence[VersionEntry],
        *,
        after_key: str | None,
        through_key: str | None,
        scan_started_ms: int,
        checkpoint: bool = True,
        keys_only: bool = False,
    ) -> int:
        prune_before = scan_started_ms - _rows.PRUNE_MARGIN_MS
        if (
            not keys_only
            and entries
            and (
                (after_key is not None and min(e[0] for e in entries) <= after_key)
                or (through_key is not None and max(e[0] for e in entries) > through_key)
            )
        ):
            raise ValueError("merge_listing: entries outside (after_key, through_key]")
        with self._write() as cur:
            b = self._bucket_id(cur, bucket, lock=True)
            cols = "SELECT key, t, r, packed, f, seq FROM versions WHERE b=%s"
            if keys_only:
                keys = list(dict.fromkeys(e[0] for e in entries))
                existing = self._existing(cur, cols + " AND key = ANY(%s)", [b, keys])
            else:
                sql = cols
                params: list[object] = [b]
                if after_key is not None:
                    sql += " AND key >= %s"
                    params.append(_bound(after_key, False))
                if through_key is not None:
                    sql += " AND key < %s"
                    params.append(_bound(through_key, False))
                existing = self._existing(cur, sql, params)
            upserts: list[Row] = []
            deletes: list[Row] = []
            stats = _FolderStats(0)  # (no per-folder statistics kept here)
            n = len(entries)
            vbs = encode_version_ids([e[1] for e in entries])
            ebs = encode_etags([e[4] for e in entries])
            packs = pack_versions(vbs, [e[3] for e in entries], ebs, [bool(e[5]) for e in entries])
            append = upserts.append
            i = 0
            while i < n:
                e = entries[i]
                key = e[0]
                j = i + 1
                while j < n and entries[j][0] == key:
                    j += 1
                old = existing.pop(key, None) or None
                if old is None:
                    # A key new to the index: lift coarse times so a newer version is never
                    # older than its predecessor, then rank within a millisecond.
                    times = [c[2] for c in entries[i:j]]
                    for k in range(len(times) - 2, -1, -1):
                        times[k] = max(times[k], times[k + 1])
                    prev_t = None
                    r = 0
                    for k, t in enumerate(times, i):
                        c = entries[k]
                        r = r - 1 if t == prev_t else 0
                        prev_t = t
                        append(
                            (
                                b,
                                key,
                                t,
                                r,
                                packs[k],
                                (F_DELETE if c[5] else 0) | (F_PRECISE if c[6] else 0),
                                None,
                            )
                        )
                else:
                    merge_chain(b, key, entries[i:j], old, prune_before, upserts, deletes, stats)
                i = j
            for key, rows in existing.items():  # keys in the range the listing no longer has
                for row in rows:
                    if row[1] < prune_before:
                        deletes.append((b, key, row[1], row[2]))
            self._apply(cur, b, upserts, deletes)
            if checkpoint:
                cur.execute(
                    "UPDATE buckets SET scan_key_marker=%s, scan_started_ms=%s WHERE id=%s",
                    (through_key, scan_started_ms, b),
                )
            return len(upserts) + len(deletes)

    def append_versions(self, bucket: str, entries: Iterable[VersionEntry]) -> int:
        entries = list(entries)
        with self._write() as cur:
            b = self._bucket_id(cur, bucket, lock=True)
            if not entries:
                return 0
            keys = list(dict.fromkeys(e[0] for e in entries))
            original = self._existing(
                cur,
                "SELECT key, t, r, packed, f, seq FROM versions WHERE b=%s AND key = ANY(%s)",
                [b, keys],
            )
            # Per key, its rows by position (t, r) -> (vid, size, etag, f, seq), updated entry
            # by entry exactly as the SQLite index's statements would (the count of rows
            # written is theirs too); the net change is written once at the end.
            state: dict[str, dict[tuple[int, int], tuple[Any, ...]]] = {
                key: {(row[1], row[2]): tuple(row[3:]) for row in original.get(key, [])}
                for key in keys
            }
            vbs = encode_version_ids([e[1] for e in entries])
            ebs = encode_etags([e[4] for e in entries])
            written = 0
            for i, e in enumerate(entries):
                rows = state[e[0]]
                t = e[2]
                f = (F_DELETE if e[5] else 0) | (F_PRECISE if e[6] else 0)
                seq = e[7] if len(e) > 7 else None
                vb = vbs[i]
                if (t, 0) not in rows and all(v[0] != vb for v in rows.values()):
                    # A version new to the index with no row at its millisecond's top: rank 0.
                    rows[(t, 0)] = (vb, e[3], ebs[i], f, seq)
                    written += 1
                    continue
                chain = [
                    [pos[0], *v]
                    for pos, v in sorted(rows.items(), key=lambda kv: kv[0], reverse=True)
                ]
                at = next((k for k, row in enumerate(chain) if row[1] == vb), None)
                if at is not None:
                    refine(chain, at, t, bool(e[6]), seq)
                else:
                    chain.insert(
                        insert_position(chain, t, seq), [t, vb, e[3], encode_etag(e[4]), f, seq]
                    )
                final: dict[tuple[int, int], tuple[Any, ...]] = {}
                prev_t = None
                r = 0
                for ct, cvb, size, eb, cf, cseq in chain:
                    r = r - 1 if ct == prev_t else 0
                    prev_t = ct
                    final[(ct, r)] = (cvb, size, eb, cf, cseq)
                written += sum(1 for pos, v in final.items() if rows.get(pos) != v)
                state[e[0]] = final
            upserts: list[Row] = []
            deletes: list[Row] = []
            for key, rows in state.items():
                before = {(row[1], row[2]): tuple(row[3:]) for row in original.get(key, [])}
                for pos in before:
                    if pos not in rows:
                        deletes.append((b, key, pos[0], pos[1]))
                for pos, v in rows.items():
                    if before.get(pos) != v:
                        upserts.append(_packed_row((b, key, pos[0], pos[1], *v)))
            self._apply(cur, b, upserts, deletes)
            return written

    def get_checkpoint(self, bucket: str) -> SyncCheckpoint | None:
        with self._read() as cur:
            b = self._bucket_id(cur, bucket)
            cur.execute("SELECT scan_key_marker, scan_started_ms FROM buckets WHERE id=%s", (b,))
            row = cur.fetchone()
        if row is None or row[1] is None:
            return None
        return SyncCheckpoint(key_marker=row[0], started_ms=int(row[1]))

    def finish_scan(self, bucket: str, scan_started_ms: int) -> None:
        with self._write() as cur:
            b = self._bucket_id(cur, bucket, lock=True)
            cur.execute("SELECT last_sync_ms IS NULL FROM buckets WHERE id=%s", (b,))
            first = _one(cur)[0]
            cur.execute(
                "UPDATE buckets SET scan_key_marker=NULL, scan_started_ms=NULL, "
                "last_sync_ms=%s WHERE id=%s",
                (scan_started_ms, b),
            )
        if first:
            self.vacuum()

    def vacuum(self) -> None:
        """VACUUM (ANALYZE) the versions table: after a bulk load its pages become
        all-visible, so listings are index-only scans (else each row visits the heap)."""
        with self._pool.connection() as conn:
            conn.autocommit = True
            try:
                conn.execute("VACUUM (ANALYZE) versions")
            finally:
                conn.autocommit = False

    def clear_checkpoint(self, bucket: str) -> None:
        with self._write() as cur:
            b = self._bucket_id(cur, bucket, lock=True)
            cur.execute(
                "UPDATE buckets SET scan_key_marker=NULL, scan_started_ms=NULL WHERE id=%s", (b,)
            )

    def remove_versions(self, bucket: str, versions: Iterable[tuple[str, str]]) -> int:
        removed = 0
        with self._write() as cur:
            b = self._bucket_id(cur, bucket, lock=True)
            for key, vid in versions:
                if "\x00" in key:
                    continue  # no stored key holds NUL
                head = version_id_prefix(encode_version_id(vid))
                cur.execute(
                    "DELETE FROM versions WHERE b=%s AND key=%s AND substr(packed, 1, %s)=%s",
                    (b, key, len(head), head),
                )
                removed += cur.rowcount
            if removed:
                cur.execute(
                    "UPDATE buckets SET version_count=version_count-%s WHERE id=%s", (removed, b)
                )
        return removed

    def set_event_source(
        self,
        bucket: str,
        *,
        queue_url: str | None,
        queue_arn: str | None,
        notification_id: str | None,
    ) -> None:
        with self._write() as cur:
            b = self._bucket_id(cur, bucket, lock=True)
            cur.execute(
                "UPDATE buckets SET queue_url=%s, queue_arn=%s, notification_id=%s WHERE id=%s",
                (queue_url, queue_arn, notification_id, b),
            )

    def get_event_source(self, bucket: str) -> EventSource:
        with self._read() as cur:
            b = self._bucket_id(cur, bucket)
            cur.execute(
                "SELECT queue_url, queue_arn, notification_id, last_event_ms, events_applied, "
                "malformed_events, last_error FROM buckets WHERE id=%s",
                (b,),
            )
            row = _one(cur)
        return EventSource(
            queue_url=row[0],
            queue_arn=row[1],
            notification_id=row[2],
            last_event_ms=row[3],
            events_applied=int(row[4]),
            malformed_events=int(row[5]),
            last_error=row[6],
        )

    def record_events(
        self,
        bucket: str,
        *,
        applied: int = 0,
        malformed: int = 0,
        last_event_ms: int | None = None,
        error: str | None = None,
    ) -> None:
        with self._write() as cur:
            b = self._bucket_id(cur, bucket)
            # One statement: concurrent consumers' counts add up (the row lock it takes).
            cur.execute(
                "UPDATE buckets SET events_applied=events_applied+%s, "
                "malformed_events=malformed_events+%s, "
                "last_event_ms=greatest(coalesce(last_event_ms, 0), coalesce(%s::bigint, 0)), "
                "last_error=%s WHERE id=%s",
                (applied, malformed, last_event_ms, error, b),
            )

    def get_listing_style(self, bucket: str) -> str | None:
        with self._read() as cur:
            b = self._bucket_id(cur, bucket)
            cur.execute("SELECT listing_style FROM buckets WHERE id=%s", (b,))
            row = cur.fetchone()
        return row[0] if row else None

    def set_listing_style(self, bucket: str, style: str) -> None:
        with self._write() as cur:
            b = self._bucket_id(cur, bucket, lock=True)
            cur.execute("UPDATE buckets SET listing_style=%s WHERE id=%s", (style, b))

    def get_bucket_meta(self, bucket: str, name: str) -> str | None:
        with self._read() as cur:
            b = self._bucket_id(cur, bucket)
            cur.execute("SELECT v FROM bucket_meta WHERE b=%s AND name=%s", (b, name))
            row = cur.fetchone()
        return str(row[0]) if row else None

    def set_bucket_meta(self, bucket: str, name: str, value: str | None) -> None:
        # No bucket row lock: a parallel pass saves its positions after every page, and a
        # lock shared with merge_listing would make its streams wait on each other.
        with self._write() as cur:
            b = self._bucket_id(cur, bucket)
            if value is None:
                cur.execute("DELETE FROM bucket_meta WHERE b=%s AND name=%s", (b, name))
            else:
                cur.execute(
                    "INSERT INTO bucket_meta(b, name, v) VALUES (%s, %s, %s) "
                    "ON CONFLICT (b, name) DO UPDATE SET v=EXCLUDED.v",
                    (b, name, value),
                )

    # -- queries ----------------------------------------------------------------------------
    def continuation_token(self, position: str, inclusive: bool) -> str:
        return _encode_token(self._token_secret, position, inclusive)

    def list_view(
        self,
        bucket: str,
        *,
        end_ms: int,
        start_ms: int | None = None,
        prefix: str = "",
        delimiter: str | None = None,
        max_keys: int = MAX_KEYS_LIMIT,
        token: str | None = None,
        start_after: str | None = None,
    ) -> ListPage:
        if not 0 <= max_keys <= MAX_KEYS_LIMIT:
            raise BadRequest(f"max_keys must be between 0 and {MAX_KEYS_LIMIT}.")
        with self._read() as cur:
            # (the bucket first: an unknown bucket says so whatever else is wrong)
            b = self._bucket_id(cur, bucket)
            return self._page(
                cur, b, end_ms, start_ms, prefix, delimiter or None, max_keys, token, start_after
            )

    def _page(
        self,
        cur: psycopg.Cursor[Any],
        b: int,
        end_ms: int,
        start_ms: int | None,
        prefix: str,
        delimiter: str | None,
        max_keys: int,
        token: str | None,
        start_after: str | None,
    ) -> ListPage:
        if delimiter is not None and "\x00" in delimiter:
            delimiter = None  # no stored key holds NUL: nothing rolls up
        lo, lo_inclusive = start_position(self._token_secret, prefix, token, start_after)
        hi = prefix_end(prefix) if prefix else None
        lo_bound = _bound(lo, lo_inclusive)
        if delimiter is not None and start_after and start_after.startswith(prefix):
            # S3 lists what sorts after StartAfter, common prefixes included: the folder a
            # StartAfter lies in is not listed again (every key after StartAfter and inside
            # it rolls up into it), so the walk starts past it.
            i = start_after.find(delimiter, len(prefix))
            if i >= 0:
                end = prefix_end(start_after[: i + len(delimiter)])
                if end is None:
                    return ListPage(objects=[], prefixes=[], next_token=None)
                lo_bound = max(lo_bound, _bound(end, True))
        objects: list[ObjectVersion] = []
        prefixes: list[str] = []
        last_pos: tuple[str, bool] | None = None
        truncated = False
        hi_bound = _bound(hi, True) if hi is not None else None
        if hi_bound is not None and lo_bound >= hi_bound:
            return ListPage(objects=[], prefixes=[], next_token=None)
        params = {
            "b": b,
            "lo": lo_bound,
            "hi": hi_bound,
            "end": end_ms,
            "start": _NO_START if start_ms is None else start_ms,
            "plen": len(prefix),
            "delim": delimiter,
            "dlen": len(delimiter) if delimiter else 0,
            "max": max_keys,
        }
        cur.execute(_PAGE_SQL[(hi_bound is not None, delimiter is not None)], params)
        rows = cur.fetchall()
        make = ObjectVersion.from_stored
        for key, t, packed, cp in rows:
            if len(objects) + len(prefixes) == max_keys:
                truncated = True
                break
            if cp is not None:
                prefixes.append(cp)
                end = prefix_end(cp)
                if end is not None:
                    last_pos = (end, True)
            else:
                objects.append(make(key, bytes(packed), t, False))
                last_pos = (key, False)
        next_token = (
            self.continuation_token(*last_pos) if truncated and last_pos is not None else None
        )
        return ListPage(objects=objects, prefixes=prefixes, next_token=next_token)

    def iter_view(
        self,
        bucket: str,
        *,
        end_ms: int,
        start_ms: int | None = None,
        prefix: str = "",
    ) -> Iterator[ObjectVersion]:
        # A generator may be suspended while its caller writes: it reads through a pooled
        # connection of its own, in one snapshot, by a server-side cursor (rows stream).
        with self._pool.connection() as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            with conn.cursor() as c0:
                b = self._bucket_id(c0, bucket)
            hi = prefix_end(prefix) if prefix else None
            sql = (
                "SELECT DISTINCT ON (key) key, t, packed, f FROM versions WHERE b=%s AND key >= %s"
            )
            params: list[object] = [b, _bound(prefix, True)]
            if hi is not None:
                sql += " AND key < %s"
                params.append(_bound(hi, True))
            sql += " AND t <= %s"
            params.append(end_ms)
            if start_ms is not None:
                # A slice is each key's newest version inside [start, end]: with the window
                # in the statement the planner can read it through versions_by_time instead
                # of every row under the prefix.
                sql += " AND t >= %s"
                params.append(start_ms)
            sql += " ORDER BY key, t DESC, r DESC"
            lo_t = _NO_START if start_ms is None else start_ms
            make = ObjectVersion.from_stored
            with conn.cursor(name="infinstor_iter_view") as cur:
                cur.itersize = 2000
                cur.execute(sql, params)
                while chunk := cur.fetchmany(2000):
                    yield from [
                        make(key, bytes(packed), t, False)
                        for key, t, packed, f in chunk
                        if not f & F_DELETE and t >= lo_t
                    ]

    def get_version_at(
        self, bucket: str, key: str, *, end_ms: int, start_ms: int | None = None
    ) -> ObjectVersion | None:
        if "\x00" in key:
            with self._read() as cur:
                self._bucket_id(cur, bucket)
            return None
        with self._read() as cur:
            b = self._bucket_id(cur, bucket)
            cur.execute(
                "SELECT key, t, r, packed, f FROM versions WHERE b=%s AND key=%s AND t <= %s "
                "ORDER BY t DESC, r DESC LIMIT 1",
                (b, key, end_ms),
            )
            row = cur.fetchone()
            if row is None or row[4] & F_DELETE:
                return None
            if start_ms is not None and row[1] < start_ms:
                return None
            cur.execute(
                "SELECT t, r FROM versions WHERE b=%s AND key=%s ORDER BY t DESC, r DESC LIMIT 1",
                (b, key),
            )
            newest = _one(cur)
        row = (row[0], row[1], row[2], bytes(row[3]), row[4])
        return _to_version(row, latest=tuple(newest) == (row[1], row[2]))

    def diff(self, bucket: str, *, prefix: str, from_ms: int, to_ms: int) -> DiffResult:
        result = DiffResult()
        lo_ms, hi_ms = min(from_ms, to_ms), max(from_ms, to_ms)
        with self._read() as cur:
            b = self._bucket_id(cur, bucket)
            hi = prefix_end(prefix) if prefix else None
            # Only keys with a version in (lo_ms, hi_ms] can differ (without one, the newest
            # as of either time is the same row): versions_by_time finds them, and per key
            # one descent of versions_chain for each end gives its rows there.
            rng = " AND key >= %(lo)s" + (" AND key < %(hi)s" if hi is not None else "")
            newest = (
                "LEFT JOIN LATERAL (SELECT t, packed, f FROM versions v WHERE v.b=%(b)s AND "
                "v.key=w.key AND v.t <= %({end})s ORDER BY v.t DESC, v.r DESC LIMIT 1) {name} "
                "ON true"
            )
            sql = (
                "SELECT w.key, a.packed, a.f, a.t, z.packed, z.f, z.t FROM (SELECT DISTINCT key "
                f"FROM versions WHERE b=%(b)s AND t > %(a)s AND t <= %(z)s{rng}) w "
                + newest.format(end="a", name="a")
                + " "
                + newest.format(end="z", name="z")
                + " ORDER BY w.key"
            )
            cur.execute(
                sql,
                {
                    "b": b,
                    "lo": _bound(prefix, True),
                    "hi": _bound(hi, True) if hi is not None else None,
                    "a": lo_ms,
                    "z": hi_ms,
                },
            )
            rows = cur.fetchall()
        for key, lp, lf, lt, hp, hf, ht in rows:
            at_lo = None if lp is None else (key, lt, 0, bytes(lp), lf)
            at_hi = None if hp is None else (key, ht, 0, bytes(hp), hf)
            a = at_lo if from_ms <= to_ms else at_hi
            z = at_hi if from_ms <= to_ms else at_lo
            if a is not None and a[4] & F_DELETE:
                a = None
            if z is not None and z[4] & F_DELETE:
                z = None
            if z is not None and a is None:
                result.added.append(_to_version(z))
            elif a is not None and z is None:
                result.deleted.append(_to_version(a))
            elif a is not None and z is not None and a[3] != z[3]:
                result.modified.append(
                    ModifiedEntry(key, version_id_of_packed(a[3]), version_id_of_packed(z[3]))
                )
        return result

    def iter_versions(self, bucket: str, *, batch: int = 10_000) -> Iterator[VersionEntry]:
        # Keyset pages of whole chains along versions_chain, each its own snapshot; a page
        # that ends inside a key's chain is cut before that key (the next page starts there).
        after: str | None = None
        cols = "key, t, r, packed, f, seq"
        while True:
            with self._read() as cur:
                b = self._bucket_id(cur, bucket)
                if after is None:
                    cur.execute(
                        f"SELECT {cols} FROM versions WHERE b=%s "
                        "ORDER BY key, t DESC, r DESC LIMIT %s",
                        (b, batch),
                    )
                else:
                    cur.execute(
                        f"SELECT {cols} FROM versions WHERE b=%s AND key > %s "
                        "ORDER BY key, t DESC, r DESC LIMIT %s",
                        (b, after, batch),
                    )
                rows = cur.fetchall()
                full = len(rows) == batch
                if full and rows[0][0] == rows[-1][0]:
                    cur.execute(  # one key with a chain longer than a page
                        f"SELECT {cols} FROM versions WHERE b=%s AND key=%s "
                        "ORDER BY t DESC, r DESC",
                        (b, rows[0][0]),
                    )
                    rows = cur.fetchall()
                elif full:
                    last = rows[-1][0]
                    rows = [row for row in rows if row[0] != last]
            for key, t, _r, packed, f, seq in rows:
                v = ObjectVersion.from_stored(key, bytes(packed), t, bool(f & F_DELETE))
                yield VersionEntry(
                    key,
                    v.version_id,
                    t,
                    v.size,
                    v.etag,
                    v.is_delete_marker,
                    bool(f & F_PRECISE),
                    seq,
                )
            if not full:
                return
            after = rows[-1][0]

    def history(self, bucket: str, key: str) -> list[ObjectVersion]:
        with self._read() as cur:
            b = self._bucket_id(cur, bucket)
            if "\x00" in key:
                return []
            cur.execute(
                "SELECT key, t, r, packed, f FROM versions WHERE b=%s AND key=%s "
                "ORDER BY t DESC, r DESC",
                (b, key),
            )
            rows = cur.fetchall()
        return [
            _to_version((r[0], r[1], r[2], bytes(r[3]), r[4]), latest=(i == 0))
            for i, r in enumerate(rows)
        ]

    def timeline(
        self,
        bucket: str,
        *,
        prefix: str = "",
        from_ms: int | None = None,
        to_ms: int | None = None,
        bins: int = 100,
    ) -> Timeline:
        if not 1 <= bins <= 100_000:
            raise BadRequest("bins must be between 1 and 100000.")
        with self._read() as cur:
            b = self._bucket_id(cur, bucket)
            if from_ms is None or to_ms is None:
                # The range of the '/'-folder holding the prefix (the whole bucket at the root).
                folder = prefix[: prefix.rfind("/") + 1]
                sql = "SELECT min(t), max(t) FROM versions WHERE b=%s"
                params: list[object] = [b]
                if folder:
                    sql += " AND key >= %s"
                    params.append(_bound(folder, True))
                    fend = prefix_end(folder)
                    if fend is not None:
                        sql += " AND key < %s"
                        params.append(_bound(fend, True))
                cur.execute(sql, params)
                first_t, last_t = _one(cur)
                now = now_ms()
                first, last = (first_t, last_t) if first_t is not None else (now, now)
                from_ms = first if from_ms is None else from_ms
                to_ms = max(last, from_ms) if to_ms is None else to_ms
            if to_ms < from_ms:
                raise BadRequest("The timeline must end after it starts.")
            span = to_ms - from_ms + 1
            width = max(1, -(-span // bins))
            nbins = -(-span // width)
            created = [0] * nbins
            deleted = [0] * nbins
            sql = "SELECT (t - %s) / %s, f & 1, count(*) FROM versions WHERE b=%s"
            params = [from_ms, width, b]
            if prefix:
                sql += " AND key >= %s"
                params.append(_bound(prefix, True))
                hi = prefix_end(prefix)
                if hi is not None:
                    sql += " AND key < %s"
                    params.append(_bound(hi, True))
            sql += " AND t BETWEEN %s AND %s GROUP BY 1, 2"
            params += [from_ms, to_ms]
            cur.execute(sql, params)
            for idx, is_del, count in cur:
                (deleted if is_del else created)[int(idx)] += int(count)
        return Timeline(
            start_ms=from_ms, end_ms=to_ms, bin_ms=width, created=created, deleted=deleted
        )

    # -- labels -----------------------------------------------------------------------------
    def insert_label(self, label: LabelRecord) -> None:
        try:
            with self._write() as cur:
                cur.execute(
                    f"INSERT INTO labels({_LABEL_COLS}) "
                    "VALUES(%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                    (
                        label.name,
                        label.bucket,
                        label.prefix,
                        label.kind,
                        label.start_ms,
                        label.end_ms,
                        label.spec,
                        label.fingerprint,
                        label.object_count,
                        label.total_bytes,
                        label.description,
                        label.created_ms,
                        label.created_by,
                    ),
                )
        except psycopg.errors.UniqueViolation as exc:
            raise Conflict(
                f"A label named {label.name!r} already exists; labels are immutable, so "
                "pick another name (or delete the old label first)."
            ) from exc

    def get_label(self, name: str) -> LabelRecord:
        with self._read() as cur:
            cur.execute(f"SELECT {_LABEL_COLS} FROM labels WHERE name=%s", (name,))
            row = cur.fetchone()
        if row is None:
            raise UnknownLabel(
                f"There is no label named {name!r}; `infinstor-jlab label list` shows them."
            )
        return LabelRecord(*row)

    def list_labels(self, bucket: str | None = None) -> list[LabelRecord]:
        with self._read() as cur:
            if bucket is None:
                cur.execute(f"SELECT {_LABEL_COLS} FROM labels ORDER BY name")
            else:
                cur.execute(
                    f"SELECT {_LABEL_COLS} FROM labels WHERE bucket=%s ORDER BY name", (bucket,)
                )
            return [LabelRecord(*row) for row in cur.fetchall()]

    def delete_label(self, name: str) -> None:
        with self._write() as cur:
            cur.execute("DELETE FROM labels WHERE name=%s", (name,))
            if cur.rowcount == 0:
                raise UnknownLabel(
                    f"There is no label named {name!r}; `infinstor-jlab label list` shows them."
                )
