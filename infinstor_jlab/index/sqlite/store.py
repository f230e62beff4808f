"""``SqliteSnapshotIndex``: connections (WAL, one writer), the public index API, and
the scans over the layout described in :mod:`infinstor_jlab.index.sqlite`."""

from __future__ import annotations

import bisect
import logging
import os
import sqlite3
import threading
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeAlias

from ...errors import BadRequest, Conflict, UnknownBucket, UnknownLabel
from ...timespec import now_ms
from ..base import MAX_KEYS_LIMIT, SnapshotIndex
from ..codec import (
    encode_etag,
    encode_etags,
    encode_version_id,
    encode_version_ids,
    pack_version,
    pack_versions,
    version_id_of_packed,
    version_id_prefix,
)
from ..keys import (
    _encode_token,
    prefix_end,
    start_position,
)
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
from . import rows as _rows
from .chains import _FolderStats, insert_position, merge_chain, refine, save_stats
from .rows import (
    _R_OFFSET,
    _STORED_COLUMNS,
    _UPSERT,
    F_DELETE,
    F_PRECISE,
    Row,
    _first,
    _packed_row,
    _to_version,
    _unpacked,
    label_from_row,
)
from .scan import segment_sql
from .schema import (
    _SCHEMA,
    SCHEMA_VERSION,
    _create_time_index,
    _fill_timeline_hours,
    _migrate,
    _rollup_width,
    _token_secret,
    time_index_ends,
    time_index_name,
    time_index_of,
)

_log = logging.getLogger("infinstor_jlab.index.sqlite")

# A bucket's large folders (see _large_folders): sorted prefixes, their first version times,
# their last version times (None: not read) and the prefixes as a set.
_LargeFolders: TypeAlias = tuple[list[str], list[int], list[int] | None, frozenset[str]]
# What _segment needs to skip large folders (see _skippable): the large folders' prefixes,
# first and last times, and the view's end and start.
_Skippable: TypeAlias = tuple[list[str], list[int], list[int] | None, int, int | None]


class SqliteSnapshotIndex(SnapshotIndex):
    def __init__(self, path: str) -> None:
        self.path = path
        if path != ":memory:":
            parent = os.path.dirname(os.path.abspath(path))
            os.makedirs(parent, exist_ok=True)
        self._local = threading.local()
        self._write_lock = threading.RLock()
        self._all_conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        # Large-folder data per (bucket, kind), per generation: see _large_folders.
        self._large_cache: dict[tuple[int, str], dict[int, tuple[int, _LargeFolders]]] = {}
        self._large_lock = threading.Lock()
        self._iter_pool: list[sqlite3.Connection] = []  # idle connections for iter_view
        self._rollup_ms = _rows.TIMELINE_ROLLUP_MS
        self._token_secret = b""
        conn = self._conn()
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")  # one process creates or migrates at a time
            try:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(
                    "INSERT OR IGNORE INTO meta(k, v) VALUES('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
                row = conn.execute("SELECT v FROM meta WHERE k='schema_version'").fetchone()
                version = int(row[0])
                if version < 4:
                    # Said before it starts: from schema 3 every stored version is rewritten
                    # (~6 s per million), and nothing else would show why opening waits.
                    _log.warning(
                        "Upgrading the index at %s from schema %d to %d, once: this rewrites "
                        "every stored version (about 6 s per million versions).",
                        path,
                        version,
                        SCHEMA_VERSION,
                    )
                    _migrate(conn, version)
                self._rollup_ms = _rollup_width(conn)
                self._token_secret = _token_secret(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            if version > SCHEMA_VERSION:
                raise BadRequest(
                    f"The index at {path} has schema version {version}, written by a newer "
                    f"infinstor_jlab (this one reads up to {SCHEMA_VERSION}); upgrade "
                    "infinstor_jlab or point --index at a new file."
                )

    # -- connections ------------------------------------------------------------------------
    def _open_connection(self) -> sqlite3.Connection:
        # The busy timeout comes first: switching a new file to WAL takes a lock that other
        # processes opening the same index at that moment must wait for, not fail on.
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=30.0
        )
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA cache_size=-131072")
        conn.execute("PRAGMA temp_store=MEMORY")
        # As much of the file mapped as this SQLite allows (usually 2 GB): mapped pages need
        # no copy into each connection's cache, and stay valid when another process commits
        # (cached pages do not). A fresh connection's 1000-entry root page at 10M versions:
        # 2.4-2.6 ms with 1 GB mapped, 2.16 ms with 2 GB.
        conn.execute("PRAGMA mmap_size=1099511627776")
        return conn

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._open_connection()
            self._local.conn = conn
            with self._conns_lock:
                self._all_conns.append(conn)
        return conn

    def close(self) -> None:
        with self._conns_lock:
            for conn in self._all_conns:
                try:
                    conn.close()
                except sqlite3.Error:
                    pass
            self._all_conns.clear()
            for conn in self._iter_pool:
                try:
                    conn.close()
                except sqlite3.Error:
                    pass
            self._iter_pool.clear()
        self._local = threading.local()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            else:
                conn.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every statement inside sees one committed state, so a page
        built from several seeks never mixes before and after an ingest commit."""
        conn = self._conn()
        if conn.in_transaction:
            yield conn
            return
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            if conn.in_transaction:
                conn.execute("COMMIT")

    # -- buckets ----------------------------------------------------------------------------
    # Tests set this to build each bucket's time index when the bucket is registered, so
    # that every write maintains it from the start.
    EAGER_TIME_INDEX = False

    def register_bucket(self, bucket: str, *, versioning: str | None = None) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT INTO buckets(name, tracked_ms, versioning) VALUES(?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET versioning=coalesce(excluded.versioning, "
                "versioning)",
                (bucket, now_ms(), versioning),
            )
            if self.EAGER_TIME_INDEX:
                b = self._bucket_id(conn, bucket)
                if time_index_of(conn, b) is None:
                    _create_time_index(conn, b)
                    _fill_timeline_hours(conn, b, self._rollup_ms)

    def set_tracked(self, bucket: str, tracked: bool) -> None:
        with self._write() as conn:
            self._bucket_id(conn, bucket)  # raises the friendly error
            if tracked:
                conn.execute(
                    "UPDATE buckets SET tracked_ms=coalesce(tracked_ms, ?) WHERE name=?",
                    (now_ms(), bucket),
                )
            else:
                conn.execute("UPDATE buckets SET tracked_ms=NULL WHERE name=?", (bucket,))

    def _bucket_id(self, conn: sqlite3.Connection, bucket: str) -> int:
        row = conn.execute("SELECT id FROM buckets WHERE name=?", (bucket,)).fetchone()
        if row is None:
            raise UnknownBucket(
                f"Bucket {bucket!r} is not in the index. Run `infinstor-jlab track {bucket}` "
                f"(or `infinstor-jlab sync {bucket}` if versioning is already on) first."
            )
        return int(row[0])

    def get_bucket(self, bucket: str) -> BucketRecord:
        with self._read() as conn:
            row = conn.execute(
                "SELECT id, name, tracked_ms, versioning, last_sync_ms, scan_key_marker, "
                "scan_started_ms FROM buckets WHERE name=?",
                (bucket,),
            ).fetchone()
            if row is None:
                self._bucket_id(conn, bucket)  # raises the friendly error
            return self._bucket_record(conn, row)

    def has_bucket(self, bucket: str) -> bool:
        with self._read() as conn:
            return (
                conn.execute("SELECT 1 FROM buckets WHERE name=?", (bucket,)).fetchone() is not None
            )

    def estimate_versions(self, bucket: str, prefix: str) -> int:
        # The rows ever written under the '/'-folder holding the prefix (one row lookup).
        with self._read() as conn:
            b = self._bucket_id(conn, bucket)
            row = conn.execute(
                "SELECT n FROM folders WHERE b=? AND prefix=?", (b, prefix[: prefix.rfind("/") + 1])
            ).fetchone()
        return int(row[0]) if row else 0

    def _bucket_record(self, conn: sqlite3.Connection, row: Row) -> BucketRecord:
        b, name, tracked, versioning, last_sync, _marker, started = row
        b = int(b)
        time_index = time_index_of(conn, b)
        if time_index is not None:
            # A few page reads whatever the bucket holds (counting its rows took 0.85 s at
            # 10M versions, and the sidebar's status poll asks every few seconds):
            # timeline_hours counts every row exactly, and the time index's ends are the
            # first and last version times, also after versions were pruned (the folder
            # bounds are not: they only widen).
            count = conn.execute(
                "SELECT coalesce(sum(created + deleted), 0) FROM timeline_hours WHERE b=?", (b,)
            ).fetchone()[0]
            first_ms, last_ms = time_index_ends(conn, b, time_index)
        else:
            # Before the first full scan ends: count the rows, and take the folder bounds
            # (nothing has been pruned before the first scan ends).
            count = conn.execute(f"SELECT count(*) FROM versions WHERE b={b}").fetchone()[0]
            stats = conn.execute(
                "SELECT first_t, last_t FROM folders WHERE b=? AND prefix=''", (b,)
            ).fetchone()
            first_ms, last_ms = stats if stats else (None, None)
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

    def list_buckets(self) -> list[BucketRecord]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT id, name, tracked_ms, versioning, last_sync_ms, scan_key_marker, "
                "scan_started_ms FROM buckets ORDER BY name"
            ).fetchall()
            return [self._bucket_record(conn, row) for row in rows]

    def forget_bucket(self, bucket: str) -> None:
        with self._write() as conn:
            b = self._bucket_id(conn, bucket)
            conn.execute(f"DROP INDEX IF EXISTS {time_index_name(b)}")
            conn.execute(f"DELETE FROM versions WHERE b={b}")
            conn.execute("DELETE FROM folders WHERE b=?", (b,))
            conn.execute("DELETE FROM timeline_hours WHERE b=?", (b,))
            conn.execute("DELETE FROM buckets WHERE id=?", (b,))
            conn.execute("DELETE FROM meta WHERE k LIKE ?", (f"bucket:{b}:%",))
        for kind in ("snapshot", "slice"):
            self._large_cache.pop((b, kind), None)

    # -- ingest -----------------------------------------------------------------------------
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
            # The range is what this call replaces: a key outside it would be merged
            # without its known versions and take their places in its chain.
            raise ValueError("merge_listing: entries outside (after_key, through_key]")
        with self._write() as conn:
            b = self._bucket_id(conn, bucket)
            existing: dict[str, list[Row]] = defaultdict(list)
            if keys_only:
                # Only the keys present are merged (an event-driven re-list of a few keys).
                for key in dict.fromkeys(e[0] for e in entries):
                    existing[key] = [
                        _unpacked(row)
                        for row in conn.execute(
                            f"SELECT {_STORED_COLUMNS} FROM versions WHERE b={b} AND key=?",
                            (key,),
                        )
                    ]
            else:
                sql = f"SELECT {_STORED_COLUMNS} FROM versions WHERE b={b}"
                params: list[object] = []
                if after_key is not None:
                    sql += " AND key > ?"
                    params.append(after_key)
                if through_key is not None:
                    sql += " AND key <= ?"
                    params.append(through_key)
                for row in conn.execute(sql, params):
                    existing[row[0]].append(_unpacked(row))

            upserts: list[Row] = []
            deletes: list[Row] = []
            stats = self._stats(conn, b)
            by_dir = stats.by_dir
            # times of the rows the fast path inserts, counted into hours at the end
            new_created_t: list[int] = []
            new_deleted_t: list[int] = []
            new_created, new_deleted = new_created_t.append, new_deleted_t.append
            n = len(entries)
            # Ids and ETags encoded a page at a time; keys new to the index (all of them in a
            # first scan) take the fast paths below.
            vbs = encode_version_ids([e[1] for e in entries])
            ebs = encode_etags([e[4] for e in entries])
            packs = pack_versions(vbs, [e[3] for e in entries], ebs, [bool(e[5]) for e in entries])
            append = upserts.append
            pop_existing = existing.pop
            i = 0
            while i < n:
                e = entries[i]
                key = e[0]
                j = i + 1
                while j < n and entries[j][0] == key:
                    j += 1
                old = pop_existing(key, None) or None
                if j == i + 1 and old is None:
                    # Fast path: a key with one version and nothing known yet.
                    t = e[2]
                    append(
                        (
                            b,
                            key,
                            t,
                            0,
                            packs[i],
                            (F_DELETE if e[5] else 0) | (F_PRECISE if e[6] else 0),
                            None,
                        )
                    )
                    (new_deleted if e[5] else new_created)(t)
                    d = key[: key.rfind("/") + 1]
                    st = by_dir.get(d)
                    if st is None:
                        by_dir[d] = [t, t, 1]
                    else:
                        if t < st[0]:
                            st[0] = t
                        elif t > st[1]:
                            st[1] = t
                        st[2] += 1
                elif old is None:
                    # A new key with several versions: lift coarse times so a newer version
                    # is never older than its predecessor, then rank within a millisecond.
                    chain = entries[i:j]
                    times = [c[2] for c in chain]
                    for k in range(len(times) - 2, -1, -1):
                        times[k] = max(times[k], times[k + 1])
                    prev_t = None
                    r = 0
                    for k, (c, t) in enumerate(zip(chain, times), i):
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
                        (new_deleted if c[5] else new_created)(t)
                    # times[] is newest first and never increases down the chain
                    lo, hi = times[-1], times[0]
                    d = key[: key.rfind("/") + 1]
                    st = by_dir.get(d)
                    if st is None:
                        by_dir[d] = [lo, hi, len(times)]
                    else:
                        st[0] = min(st[0], lo)
                        st[1] = max(st[1], hi)
                        st[2] += len(times)
                else:
                    merge_chain(b, key, entries[i:j], old, prune_before, upserts, deletes, stats)
                i = j
            # Keys in the range the listing no longer has at all.
            for key, rows in existing.items():
                for row in rows:
                    if row[1] < prune_before:
                        deletes.append((b, key, row[1], row[2]))
                        stats.count(row[1], row[6], -1)
            if deletes:
                conn.executemany(
                    f"DELETE FROM versions WHERE b={b} AND key=? AND t=? AND r=?",
                    [d[1:] for d in deletes],
                )
            if upserts:
                conn.executemany(_UPSERT, upserts)
            stats.count_times(new_created_t, 0)
            stats.count_times(new_deleted_t, F_DELETE)
            # Until the first full scan ends, every page brings new folders and older first
            # times: skip data is refreshed after each page without looking.
            save_stats(conn, b, stats, look=bool(stats.width) or keys_only)
            if checkpoint:
                conn.execute(
                    "UPDATE buckets SET scan_key_marker=?, scan_started_ms=? WHERE id=?",
                    (through_key, scan_started_ms, b),
                )
            if upserts or deletes:
                conn.execute("UPDATE buckets SET generation=generation+1 WHERE id=?", (b,))
            return len(upserts) + len(deletes)

    def append_versions(self, bucket: str, entries: Iterable[VersionEntry]) -> int:
        with self._write() as conn:
            b = self._bucket_id(conn, bucket)
            stats = self._stats(conn, b)
            entries = list(entries)
            vbs = encode_version_ids([e[1] for e in entries])
            ebs = encode_etags([e[4] for e in entries])
            # Insert first: a version new to the index whose key has no row at the same
            # millisecond goes in at rank 0 with one statement (its place in the chain is
            # its time; this is what _append_chains would decide too). Anything else (a
            # version already known, a same-millisecond neighbour) goes through
            # _append_chains, in order, after the inserts before it.
            insert = (
                "INSERT OR IGNORE INTO versions(b, key, t, r, packed, f, seq) "
                f"SELECT {b}, ?1, ?2, 0, ?3, ?4, ?5 WHERE NOT EXISTS ("
                f"SELECT 1 FROM versions WHERE b={b} AND key=?1 AND substr(packed, 1, ?6)=?7)"
            )
            execute = conn.execute
            written = 0
            add = stats.add
            for i, e in enumerate(entries):
                t = e[2]
                f = (F_DELETE if e[5] else 0) | (F_PRECISE if e[6] else 0)
                seq = e[7] if len(e) > 7 else None
                head = version_id_prefix(vbs[i])
                packed = pack_version(vbs[i], e[3], ebs[i], bool(e[5]))
                if execute(insert, (e[0], t, packed, f, seq, len(head), head)).rowcount == 1:
                    written += 1
                    add(e[0], t)
                    stats.count(t, f, 1)
                else:
                    written += self._append_chains(conn, b, [e], stats)
            if written:
                conn.execute("UPDATE buckets SET generation=generation+1 WHERE id=?", (b,))
            save_stats(conn, b, stats)
            return written

    def _append_chains(
        self, conn: sqlite3.Connection, b: int, entries: list[VersionEntry], stats: _FolderStats
    ) -> int:
        """append_versions by whole chains: read what the index knows of the entries' keys,
        place each entry in its key's chain, rewrite the rows whose rank changed."""
        # What the index already knows of these keys, fetched in a few statements.
        original: dict[str, list[Row]] = {}
        wanted = list(dict.fromkeys(e[0] for e in entries))
        for start in range(0, len(wanted), 500):
            part = wanted[start : start + 500]
            marks = ",".join("?" * len(part))
            for row in conn.execute(
                f"SELECT {_STORED_COLUMNS} FROM versions WHERE b={b} AND key "
                f"IN ({marks}) ORDER BY key, t DESC, r DESC",
                part,
            ):
                original.setdefault(row[0], []).append(_unpacked(row))
        # Per key, the chain newest first as mutable rows [t, vid, size, etag, f, seq].
        chains: dict[str, list[list[Any]]] = {}
        for e in entries:
            key = e[0]
            chain = chains.get(key)
            if chain is None:
                found = original.setdefault(key, [])
                chain = [[r[1], r[3], r[4], r[5], r[6], r[7]] for r in found]
                chains[key] = chain
            vb = encode_version_id(e[1])
            t = e[2]
            seq = e[7] if len(e) > 7 else None
            at = next((i for i, row in enumerate(chain) if row[1] == vb), None)
            if at is not None:
                refine(chain, at, t, bool(e[6]), seq)
                continue
            f = (F_DELETE if e[5] else 0) | (F_PRECISE if e[6] else 0)
            chain.insert(insert_position(chain, t, seq), [t, vb, e[3], encode_etag(e[4]), f, seq])
        upserts: list[Row] = []
        deletes: list[Row] = []
        for key, chain in chains.items():
            final: dict[tuple[int, int], Row] = {}
            prev_t = None
            r = 0
            for t, vb, size, eb, f, seq in chain:
                r = r - 1 if t == prev_t else 0
                prev_t = t
                final[(t, r)] = (b, key, t, r, vb, size, eb, f, seq)
            old_by_pos = {(row[1], row[2]): row for row in original[key]}
            for pos in old_by_pos:
                if pos not in final:
                    deletes.append((b, key, pos[0], pos[1]))
            for pos, nrow in final.items():
                orow = old_by_pos.get(pos)
                if orow is None or orow[3:] != nrow[4:]:
                    upserts.append(_packed_row(nrow))
                    stats.add(key, pos[0])
            stats.count_rows(((row[1], row[6]) for row in original[key]), -1)
            stats.count_rows(((row[2], row[7]) for row in final.values()), 1)
        if deletes:
            conn.executemany(
                f"DELETE FROM versions WHERE b={b} AND key=? AND t=? AND r=?",
                [d[1:] for d in deletes],
            )
        if upserts:
            conn.executemany(_UPSERT, upserts)
        if deletes and not upserts:
            # the count reports rows written; a rewrite that only removed rows must still
            # invalidate readers' caches
            conn.execute("UPDATE buckets SET generation=generation+1 WHERE id=?", (b,))
        return len(upserts)

    def get_checkpoint(self, bucket: str) -> SyncCheckpoint | None:
        with self._read() as conn:
            b = self._bucket_id(conn, bucket)
            row = conn.execute(
                "SELECT scan_key_marker, scan_started_ms FROM buckets WHERE id=?", (b,)
            ).fetchone()
        if row is None or row[1] is None:
            return None
        return SyncCheckpoint(key_marker=row[0], started_ms=int(row[1]))

    def _stats(self, conn: sqlite3.Connection, b: int) -> _FolderStats:
        """A write's folder stats; with timeline_hours deltas once the bucket keeps them."""
        return _FolderStats(self._rollup_ms if time_index_of(conn, b) else 0)

    def finish_scan(self, bucket: str, scan_started_ms: int) -> None:
        with self._write() as conn:
            b = self._bucket_id(conn, bucket)
            # After the first full scan: one sorted build of the bucket's time index, and
            # its timeline_hours counted through it.
            if time_index_of(conn, b) is None:
                _create_time_index(conn, b)
                _fill_timeline_hours(conn, b, self._rollup_ms)
            conn.execute(
                "UPDATE buckets SET scan_key_marker=NULL, scan_started_ms=NULL, last_sync_ms=? "
                "WHERE id=?",
                (scan_started_ms, b),
            )

    def remove_versions(self, bucket: str, versions: Iterable[tuple[str, str]]) -> int:
        """Forget versions that were permanently deleted from S3 (by key and version id)."""
        removed = 0
        with self._write() as conn:
            b = self._bucket_id(conn, bucket)
            stats = self._stats(conn, b)
            for key, vid in versions:
                head = version_id_prefix(encode_version_id(vid))
                match = f"b={b} AND key=? AND substr(packed, 1, ?)=?"
                gone = conn.execute(
                    f"SELECT t, f FROM versions WHERE {match}", (key, len(head), head)
                ).fetchall()
                if gone:
                    conn.execute(f"DELETE FROM versions WHERE {match}", (key, len(head), head))
                    removed += len(gone)
                    stats.count_rows(gone, -1)
            if removed:
                save_stats(conn, b, stats)
                conn.execute("UPDATE buckets SET generation=generation+1 WHERE id=?", (b,))
        return removed

    def set_event_source(
        self,
        bucket: str,
        *,
        queue_url: str | None,
        queue_arn: str | None,
        notification_id: str | None,
    ) -> None:
        with self._write() as conn:
            b = self._bucket_id(conn, bucket)
            conn.execute(
                "UPDATE buckets SET queue_url=?, queue_arn=?, notification_id=? WHERE id=?",
                (queue_url, queue_arn, notification_id, b),
            )

    def get_event_source(self, bucket: str) -> EventSource:
        with self._read() as conn:
            b = self._bucket_id(conn, bucket)
            row = conn.execute(
                "SELECT queue_url, queue_arn, notification_id, last_event_ms, events_applied, "
                "malformed_events, last_error FROM buckets WHERE id=?",
                (b,),
            ).fetchone()
        return EventSource(
            queue_url=row[0],
            queue_arn=row[1],
            notification_id=row[2],
            last_event_ms=row[3],
            events_applied=row[4],
            malformed_events=row[5],
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
        with self._write() as conn:
            b = self._bucket_id(conn, bucket)
            conn.execute(
                "UPDATE buckets SET events_applied=events_applied+?, "
                "malformed_events=malformed_events+?, "
                "last_event_ms=max(coalesce(last_event_ms, 0), coalesce(?, 0)), "
                "last_error=? WHERE id=?",
                (applied, malformed, last_event_ms, error, b),
            )

    def get_listing_style(self, bucket: str) -> str | None:
        with self._read() as conn:
            b = self._bucket_id(conn, bucket)
            row = conn.execute("SELECT listing_style FROM buckets WHERE id=?", (b,)).fetchone()
        return row[0] if row else None

    def set_listing_style(self, bucket: str, style: str) -> None:
        with self._write() as conn:
            b = self._bucket_id(conn, bucket)
            conn.execute("UPDATE buckets SET listing_style=? WHERE id=?", (style, b))

    def get_bucket_meta(self, bucket: str, name: str) -> str | None:
        with self._read() as conn:
            b = self._bucket_id(conn, bucket)
            row = conn.execute("SELECT v FROM meta WHERE k=?", (f"bucket:{b}:{name}",)).fetchone()
        return str(row[0]) if row else None

    def set_bucket_meta(self, bucket: str, name: str, value: str | None) -> None:
        # In the meta table (keyed by the bucket's id), so no schema change is needed.
        with self._write() as conn:
            b = self._bucket_id(conn, bucket)
            if value is None:
                conn.execute("DELETE FROM meta WHERE k=?", (f"bucket:{b}:{name}",))
            else:
                conn.execute(
                    "INSERT OR REPLACE INTO meta(k, v) VALUES(?, ?)", (f"bucket:{b}:{name}", value)
                )

    def clear_checkpoint(self, bucket: str) -> None:
        with self._write() as conn:
            b = self._bucket_id(conn, bucket)
            conn.execute(
                "UPDATE buckets SET scan_key_marker=NULL, scan_started_ms=NULL WHERE id=?", (b,)
            )

    # -- queries ----------------------------------------------------------------------------
    def _large_folders(
        self, conn: sqlite3.Connection, b: int, *, with_lasts: bool = False
    ) -> _LargeFolders:
        """The bucket's large folders: sorted prefixes, their first version times, their last
        version times (``with_lasts``, for slices) and the prefixes as a set.

        Read in the caller's read transaction and cached, so that each reader uses data
        that is right for the state it reads:

        * with last times (slices) per ``generation``, which every write moves;
        * without (snapshots) per ``skip_gen``, which moves only when a folder's first
          version time goes back. Data of the reader's skip_gen is right even when folders
          became large since (``large_gen`` moved): they are just not skipped yet. So one
          reader refreshes it while the others go on with it, and appends to a live bucket
          never make its listings wait.

        A few generations are kept, since readers of the states just before and after a
        commit overlap; one thread computes a generation while the others wait for it.
        """
        row = conn.execute(
            "SELECT generation, skip_gen, large_gen FROM buckets WHERE id=?", (b,)
        ).fetchone()
        if with_lasts:
            slot, gen, large_gen = (b, "slice"), row[0], row[0]
        else:
            slot, gen, large_gen = (b, "snapshot"), row[1], row[2]
        # Data computed at a later large_gen of the same skip_gen is right for this reader
        # too (it only knows more large folders), so it is never recomputed for an older one.
        cached = self._large_cache.get(slot, {}).get(gen)
        if cached is not None:
            if cached[0] >= large_gen or not self._large_lock.acquire(blocking=False):
                return cached[1]
        else:
            self._large_lock.acquire()
        try:
            entries = self._large_cache.setdefault(slot, {})
            cached = entries.get(gen)
            if cached is not None and cached[0] >= large_gen:
                return cached[1]
            rows = conn.execute(
                "SELECT prefix, first_t, last_t FROM folders WHERE b=? AND n>=? AND "
                "prefix<>'' ORDER BY prefix",
                (b, _rows.LARGE_FOLDER_VERSIONS),
            ).fetchall()
            prefixes = [r[0] for r in rows]
            value = (
                prefixes,
                [r[1] for r in rows],
                [r[2] for r in rows] if with_lasts else None,
                frozenset(prefixes),
            )
            entries[gen] = (large_gen, value)
            while len(entries) > 4:
                del entries[min(entries)]
            return value
        finally:
            self._large_lock.release()

    def _skippable(
        self, conn: sqlite3.Connection, b: int, prefix: str, end_ms: int, start_ms: int | None
    ) -> _Skippable:
        """What ``_segment`` needs to find the large folders that cannot hold a visible key
        in the view (first version after ``end_ms``, or for a slice last version before
        ``start_ms``): the scan jumps over them without reading their rows."""
        prefixes, firsts, lasts, _ = self._large_folders(conn, b, with_lasts=start_ms is not None)
        return prefixes, firsts, lasts, end_ms, start_ms

    def _segment(
        self,
        cur: sqlite3.Cursor,
        b: int,
        skippable: _Skippable,
        pos: str,
        inclusive: bool,
        hi: str | None,
        end_ms: int,
        grouped: bool = False,
    ) -> tuple[sqlite3.Cursor, str | None]:
        """Rows (key, t, packed) from ``pos`` up to the next skippable folder (or
        ``hi``), and where the scan continues after that folder (None: nothing skipped, the
        range ends at ``hi``).

        Executed on the scan's one cursor: a scan abandons most statements after a few rows,
        and a statement still open on a cursor of its own cannot be reused from the
        connection's cache, so each conn.execute would compile it again (~8 us of ~11)."""
        seg_hi, skip_to = hi, None
        prefixes, firsts, lasts, view_end, view_start = skippable
        if prefixes:
            # The first skippable large folder from pos on, found lazily: a page usually
            # scans only a little way, so the walk looks at _rows.SKIP_LOOKAHEAD folders at most
            # and otherwise ends the segment at the next one (the scan continues there).
            k = bisect.bisect_left(prefixes, pos)
            stop = min(len(prefixes), k + _rows.SKIP_LOOKAHEAD)
            while k < stop:
                p = prefixes[k]
                if hi is not None and p >= hi:
                    break
                if firsts[k] > view_end or (
                    # (the last times are read whenever there is a view start: _skippable)
                    view_start is not None and lasts is not None and lasts[k] < view_start
                ):
                    seg_hi, skip_to = p, prefix_end(p)
                    break
                k += 1
            else:
                if k < len(prefixes) and (hi is None or prefixes[k] < hi):
                    seg_hi = skip_to = prefixes[k]
        if seg_hi is None:
            return cur.execute(segment_sql(b, inclusive, False, grouped), (pos, end_ms)), skip_to
        return cur.execute(segment_sql(b, inclusive, True, grouped), (pos, seg_hi, end_ms)), skip_to

    def continuation_token(self, position: str, inclusive: bool) -> str:
        """A token that resumes a listing at ``position`` (keys >= it when inclusive)."""
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
        delimiter = delimiter or None
        with self._read() as conn:
            b = self._bucket_id(conn, bucket)
            lo, lo_inclusive = start_position(self._token_secret, prefix, token, start_after)
            hi = prefix_end(prefix) if prefix else None
            # S3 lists what sorts after StartAfter, common prefixes included: the folder a
            # StartAfter lies in (or equals) is not listed again, though keys after it roll
            # up into it (ListObjects V1 pages on with NextMarker = the last common prefix).
            inside = start_after if start_after and delimiter else None
            if start_ms is not None and self._slice_by_time(conn, b, prefix, start_ms, end_ms):
                rows = self._slice_rows_by_time(
                    conn, b, prefix, hi, lo, lo_inclusive, start_ms, end_ms
                )
                return self._page_from_rows(rows, prefix, delimiter, max_keys, inside)
            return self._scan_page(
                conn,
                b,
                prefix=prefix,
                lo=lo,
                lo_inclusive=lo_inclusive,
                hi=hi,
                end_ms=end_ms,
                start_ms=start_ms,
                delimiter=delimiter,
                max_keys=max_keys,
                inside=inside,
            )

    def _scan_page(
        self,
        conn: sqlite3.Connection,
        b: int,
        *,
        prefix: str,
        lo: str,
        lo_inclusive: bool,
        hi: str | None,
        end_ms: int,
        start_ms: int | None,
        delimiter: str | None,
        max_keys: int,
        inside: str | None = None,
    ) -> ListPage:
        """One page by one ordered scan that re-seeks past each rolled-up folder and each
        skippable large folder. The hot loop of every listing: kept flat on purpose.
        ``inside``: a StartAfter; the common prefix it lies in is skipped, not listed."""
        prefixes_l, firsts, lasts, large = self._large_folders(
            conn, b, with_lasts=start_ms is not None
        )
        skippable = (prefixes_l, firsts, lasts, end_ms, start_ms)
        if delimiter is None:
            large = frozenset()
        stream_rows = _rows.STREAM_SKIP_ROWS
        objects: list[ObjectVersion] = []
        prefixes: list[str] = []
        count = 0
        last_pos: tuple[str, bool] | None = None
        truncated = False
        plen = len(prefix)
        dlen = len(delimiter) if delimiter else 0
        make = ObjectVersion.from_stored
        pos, inclusive = lo, lo_inclusive
        cur = conn.cursor()
        while True:
            rows, skip_to = self._segment(cur, b, skippable, pos, inclusive, hi, end_ms)
            last = None
            reseek: str | None = None
            done = False
            # After a rolled-up folder: the scan steps over the rows of a small folder (a
            # statement costs as much as dozens of rows) and re-seeks past a large one, or
            # once a folder turns out to hold more than _rows.STREAM_SKIP_ROWS rows.
            skip_below: str | None = None
            budget = 0
            for key, t, packed in rows:
                if skip_below is not None:
                    if key < skip_below:
                        budget -= 1
                        if budget < 0:
                            reseek = skip_below
                            break
                        continue
                    skip_below = None
                if key == last:
                    continue
                last = key
                if packed[-1] & 1 or (start_ms is not None and t < start_ms):
                    continue  # a delete marker (codec.pack_version), or before the slice
                if delimiter is not None:
                    i = key.find(delimiter, plen)
                    if i >= 0:
                        cp = key[: i + dlen]
                        if inside is not None and inside.startswith(cp):
                            # the folder StartAfter is in (it sorts before StartAfter)
                            inside = None
                            end = prefix_end(cp)
                            if end is None or (hi is not None and end >= hi):
                                done = True
                                break
                            reseek = end
                            break
                        if count == max_keys:
                            truncated = True
                            break
                        prefixes.append(cp)
                        count += 1
                        end = prefix_end(cp)
                        if end is None or (hi is not None and end >= hi):
                            done = True
                            break
                        last_pos = (end, True)
                        if cp in large:
                            reseek = end
                            break
                        skip_below = end
                        budget = stream_rows
                        continue
                if count == max_keys:
                    truncated = True
                    break
                objects.append(make(key, packed, t, False))
                count += 1
                last_pos = (key, False)
            if truncated or done:
                break
            if (
                reseek is None
                and skip_below is not None
                and skip_to is not None
                and skip_to < skip_below
            ):
                reseek = skip_below  # the segment ended inside the rolled-up folder
            if reseek is not None:
                if hi is not None and reseek >= hi:
                    break
                pos, inclusive = reseek, True
                continue
            if skip_to is None or (hi is not None and skip_to >= hi):
                break
            pos, inclusive = skip_to, True
        next_token = (
            self.continuation_token(*last_pos) if truncated and last_pos is not None else None
        )
        return ListPage(objects=objects, prefixes=prefixes, next_token=next_token)

    def _page_from_rows(
        self,
        rows: Iterable[Row],
        prefix: str,
        delimiter: str | None,
        max_keys: int,
        inside: str | None = None,
    ) -> ListPage:
        """A page from rows already reduced to one visible row per key, in key order
        (``inside``: as in ``_scan_page``)."""
        objects: list[ObjectVersion] = []
        prefixes: list[str] = []
        count = 0
        last_pos: tuple[str, bool] | None = None
        truncated = False
        plen = len(prefix)
        skip_below: str | None = None
        for row in rows:
            key = row[0]
            if skip_below is not None and key < skip_below:
                continue
            if row[4] & F_DELETE:
                continue
            if delimiter is not None:
                i = key.find(delimiter, plen)
                if i >= 0:
                    cp = key[: i + len(delimiter)]
                    if inside is not None and inside.startswith(cp):
                        inside = None  # the folder StartAfter is in: not listed
                        end = prefix_end(cp)
                        if end is None:
                            break
                        skip_below = end
                        continue
                    if count == max_keys:
                        truncated = True
                        break
                    prefixes.append(cp)
                    count += 1
                    end = prefix_end(cp)
                    if end is None:
                        break
                    last_pos = (end, True)
                    skip_below = end
                    continue
            if count == max_keys:
                truncated = True
                break
            objects.append(_to_version(row))
            count += 1
            last_pos = (key, False)
        next_token = (
            self.continuation_token(*last_pos) if truncated and last_pos is not None else None
        )
        return ListPage(objects=objects, prefixes=prefixes, next_token=next_token)

    def _slice_by_time(
        self, conn: sqlite3.Connection, b: int, prefix: str, start_ms: int, end_ms: int
    ) -> bool:
        """Pick the plan for a slice: the time index when the window holds far fewer versions
        than the prefix does, else the key-ordered scan."""
        root = conn.execute(
            "SELECT first_t, last_t, n FROM folders WHERE b=? AND prefix=''", (b,)
        ).fetchone()
        if root is None or root[2] < 20_000 or time_index_of(conn, b) is None:
            return False
        first_t, last_t, total = root
        span = max(1, last_t - first_t)
        window = max(0, min(end_ms, last_t) - max(start_ms, first_t))
        est_window: float = total * window / span
        under: int = total  # folder version counts
        if prefix:
            folder = prefix[: prefix.rfind("/") + 1]
            row = conn.execute(
                "SELECT n FROM folders WHERE b=? AND prefix=?", (b, folder)
            ).fetchone()
            under = row[0] if row else total
        return est_window * 4 < under

    def _slice_rows_by_time(
        self,
        conn: sqlite3.Connection,
        b: int,
        prefix: str,
        hi: str | None,
        lo: str,
        lo_inclusive: bool,
        start_ms: int,
        end_ms: int,
    ) -> list[Row]:
        b = int(b)
        name = time_index_of(conn, b)
        sql = (
            "SELECT v.key, v.t, v.r, v.packed, v.f FROM ("
            " SELECT key, max(t * 1048576 + r + ?) AS o FROM versions"
            + (f" INDEXED BY {name}" if name else "")
            + f" WHERE b={b} AND t BETWEEN ? AND ?"
        )
        params: list[object] = [_R_OFFSET, start_ms, end_ms]
        sql += " AND key >= ?" if lo_inclusive else " AND key > ?"
        params.append(lo)
        if hi is not None:
            sql += " AND key < ?"
            params.append(hi)
        sql += (
            # CROSS JOIN keeps the window outermost: SQLite would otherwise scan the bucket.
            f" GROUP BY key) w CROSS JOIN versions v ON v.b={b} AND v.key=w.key"
            " AND v.t=(w.o >> 20) AND v.r=((w.o & 1048575) - ?)"
        )
        params += [_R_OFFSET]
        rows = conn.execute(sql, params).fetchall()
        # GROUP BY emits the keys in order and the join keeps it; SQLite cannot know that and
        # would sort again (ORDER BY), Python's sort of a sorted list is one pass.
        rows.sort(key=_first)
        return rows

    def iter_view(
        self,
        bucket: str,
        *,
        end_ms: int,
        start_ms: int | None = None,
        prefix: str = "",
    ) -> Iterator[ObjectVersion]:
        # A generator may be suspended while its caller writes on the same thread, so it reads
        # through a connection of its own (one read transaction: a consistent view), taken
        # from a small pool of idle ones: opening one costs more than a small listing.
        with self._conns_lock:
            conn = self._iter_pool.pop() if self._iter_pool else None
        if conn is None:
            conn = self._open_connection()
        conn.execute("BEGIN")
        try:
            b = self._bucket_id(conn, bucket)
            hi = prefix_end(prefix) if prefix else None
            make = ObjectVersion.from_stored
            if start_ms is not None and self._slice_by_time(conn, b, prefix, start_ms, end_ms):
                yield from [
                    make(key, packed, t, False)
                    for key, t, _r, packed, f in self._slice_rows_by_time(
                        conn, b, prefix, hi, prefix, True, start_ms, end_ms
                    )
                    if not f & F_DELETE
                ]
                return
            # One flat loop (the hot path of enumeration): per segment between skippable
            # large folders, the first row of each key is its newest as of end_ms.
            skippable = self._skippable(conn, b, prefix, end_ms, start_ms)
            pos, inclusive = prefix, True
            lo_t = start_ms if start_ms is not None else -(1 << 62)
            cur = conn.cursor()
            # Rows of older versions stepped over, counted down to the switch to GROUP BY.
            older = _rows.GROUP_AFTER_OLDER_ROWS
            keys = 0
            grouped = older <= 0
            while True:
                rows, skip_to = self._segment(
                    cur, b, skippable, pos, inclusive, hi, end_ms, grouped
                )
                if grouped:
                    # In chunks: a comprehension makes the objects faster than a loop that
                    # yields each (the caller still gets them one by one).
                    lo_tr = lo_t << 20  # t >= lo_t exactly when t_r >= lo_t << 20
                    fetch = rows.fetchmany
                    while chunk := fetch(256):
                        yield from [
                            make(key, packed, t_r >> 20, False)
                            for key, t_r, packed in chunk
                            if not packed[-1] & 1 and t_r >= lo_tr
                        ]  # not deleted
                else:
                    last = None
                    for key, t, packed in rows:
                        if key == last:
                            older -= 1
                            if older == 0 and keys <= 2 * _rows.GROUP_AFTER_OLDER_ROWS:
                                grouped = True
                                break
                            continue
                        last = key
                        keys += 1
                        if packed[-1] & 1 or t < lo_t:
                            continue
                        yield make(key, packed, t, False)
                    if grouped:  # switched mid-segment: go on after the key just read
                        # (the switch happens on a repeated key, so a key was read)
                        assert last is not None
                        pos, inclusive = last, False
                        continue
                if skip_to is None or (hi is not None and skip_to >= hi):
                    return
                pos, inclusive = skip_to, True
        finally:
            self._release_iter_connection(conn)

    def _release_iter_connection(self, conn: sqlite3.Connection) -> None:
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")  # read-only: ends the read transaction
        except sqlite3.Error:
            conn.close()
            return
        with self._conns_lock:
            if len(self._iter_pool) < 4:
                self._iter_pool.append(conn)
                return
        conn.close()

    def get_version_at(
        self, bucket: str, key: str, *, end_ms: int, start_ms: int | None = None
    ) -> ObjectVersion | None:
        with self._read() as conn:
            b = self._bucket_id(conn, bucket)
            row = conn.execute(
                f"SELECT key, t, r, packed, f FROM versions WHERE b={b} AND key=? "
                "AND t <= ? ORDER BY t DESC, r DESC LIMIT 1",
                (key, end_ms),
            ).fetchone()
            if row is None or row[4] & F_DELETE:
                return None
            if start_ms is not None and row[1] < start_ms:
                return None
            newest = conn.execute(
                f"SELECT t, r FROM versions WHERE b={b} AND key=? ORDER BY t DESC, r DESC LIMIT 1",
                (key,),
            ).fetchone()
        return _to_version(row, latest=newest == (row[1], row[2]))

    def diff(self, bucket: str, *, prefix: str, from_ms: int, to_ms: int) -> DiffResult:
        result = DiffResult()
        lo_ms, hi_ms = min(from_ms, to_ms), max(from_ms, to_ms)
        with self._read() as conn:
            b = self._bucket_id(conn, bucket)
            hi = prefix_end(prefix) if prefix else None
            rows: Iterable[Row]
            if lo_ms < hi_ms and self._slice_by_time(conn, b, prefix, lo_ms + 1, hi_ms):
                # Only keys with a version in (lo_ms, hi_ms] can differ (without one, the
                # newest as of either time is the same row): the time index finds them, and
                # the rows of those keys alone are read, instead of every row under the prefix
                # (a day's diff of a 10M-version bucket: 4.8 s that way).
                rows = self._diff_rows_by_time(conn, b, prefix, hi, lo_ms, hi_ms)
            else:
                sql = f"SELECT key, t, r, packed, f FROM versions WHERE b={b} AND key >= ?"
                params: list[object] = [prefix]
                if hi is not None:
                    sql += " AND key < ?"
                    params.append(hi)
                sql += " AND t <= ? ORDER BY key, t DESC, r DESC"
                params.append(hi_ms)
                rows = conn.execute(sql, params)
            current: str | None = None
            at_hi: Row | None = None
            at_lo: Row | None = None

            def flush() -> None:
                # The live row at each end (None: no version then, or a delete marker).
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
                elif (
                    a is not None and z is not None and a[3] != z[3]
                ):  # another version (packed id first)
                    result.modified.append(
                        ModifiedEntry(
                            current or "", version_id_of_packed(a[3]), version_id_of_packed(z[3])
                        )
                    )

            for row in rows:
                key = row[0]
                if key != current:
                    if current is not None:
                        flush()
                    current = key
                    at_hi = row
                    at_lo = row if row[1] <= lo_ms else None
                elif at_lo is None and row[1] <= lo_ms:
                    at_lo = row
            if current is not None:
                flush()
        return result

    def _diff_rows_by_time(
        self, conn: sqlite3.Connection, b: int, prefix: str, hi: str | None, lo_ms: int, hi_ms: int
    ) -> list[Row]:
        """The rows as of hi_ms (key, t, r, packed, f; per key newest first, keys in order)
        of the keys under the prefix that have a version in (lo_ms, hi_ms]."""
        b = int(b)
        name = time_index_of(conn, b)
        sql = (
            "SELECT v.key, v.t, v.r, v.packed, v.f FROM ("
            " SELECT DISTINCT key FROM versions"
            + (f" INDEXED BY {name}" if name else "")
            + f" WHERE b={b} AND t > ? AND t <= ? AND key >= ?"
        )
        params: list[object] = [lo_ms, hi_ms, prefix]
        if hi is not None:
            sql += " AND key < ?"
            params.append(hi)
        # CROSS JOIN keeps the window outermost (as in _slice_rows_by_time).
        sql += f") w CROSS JOIN versions v ON v.b={b} AND v.key=w.key AND v.t <= ?"
        params.append(hi_ms)
        rows = conn.execute(sql, params).fetchall()
        # Each key's rows come in the table's order (newest first); a stable sort by key
        # puts the keys in order and keeps that.
        rows.sort(key=_first)
        return rows

    def iter_versions(self, bucket: str, *, batch: int = 10_000) -> Iterator[VersionEntry]:
        # Pages of whole chains, each in its own read transaction (a copy of a big bucket
        # never holds one open for its whole length); a page that ends inside a key's chain
        # is cut before that key, which the next page starts with.
        after: str | None = None
        cols = "key, t, r, packed, f, seq"
        while True:
            with self._read() as conn:
                b = self._bucket_id(conn, bucket)
                where = f"b={b}" if after is None else f"b={b} AND key > ?"
                rows = conn.execute(
                    f"SELECT {cols} FROM versions WHERE {where} "
                    "ORDER BY key, t DESC, r DESC LIMIT ?",
                    (batch,) if after is None else (after, batch),
                ).fetchall()
                full = len(rows) == batch
                if full and rows[0][0] == rows[-1][0]:
                    rows = conn.execute(  # one key with a chain longer than a page
                        f"SELECT {cols} FROM versions WHERE b={b} AND key=? "
                        "ORDER BY t DESC, r DESC",
                        (rows[0][0],),
                    ).fetchall()
                elif full:
                    last = rows[-1][0]
                    rows = [row for row in rows if row[0] != last]
            for key, t, _r, packed, f, seq in rows:
                v = ObjectVersion.from_stored(key, packed, t, bool(f & F_DELETE))
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
        with self._read() as conn:
            b = self._bucket_id(conn, bucket)
            rows = conn.execute(
                f"SELECT key, t, r, packed, f FROM versions WHERE b={b} AND key=? "
                "ORDER BY t DESC, r DESC",
                (key,),
            ).fetchall()
        return [_to_version(row, latest=(i == 0)) for i, row in enumerate(rows)]

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
        with self._read() as conn:
            b = self._bucket_id(conn, bucket)
            if from_ms is None or to_ms is None:
                folder = prefix[: prefix.rfind("/") + 1]
                time_index = time_index_of(conn, b) if not folder else None
                row: tuple[int, int] | None
                if time_index is not None:
                    # The whole bucket spans exactly its first to last version (the folder
                    # bounds only widen: after old versions expire they would start the
                    # histogram at the bucket's first day, with nothing in it for months).
                    first_t, last_t = time_index_ends(conn, b, time_index)
                    if first_t is None:
                        row = None
                    else:
                        assert last_t is not None  # a bucket with a first version has a last
                        row = (first_t, last_t)
                else:
                    row = conn.execute(
                        "SELECT first_t, last_t FROM folders WHERE b=? AND prefix=?", (b, folder)
                    ).fetchone()
                now = now_ms()
                first, last = (row[0], row[1]) if row else (now, now)
                from_ms = first if from_ms is None else from_ms
                to_ms = max(last, from_ms) if to_ms is None else to_ms
            if to_ms < from_ms:
                raise BadRequest("The timeline must end after it starts.")
            span = to_ms - from_ms + 1
            width = max(1, -(-span // bins))
            nbins = -(-span // width)
            created = [0] * nbins
            deleted = [0] * nbins
            if prefix:
                sql = f"SELECT (t - ?) / ?, f & 1, count(*) FROM versions WHERE b={b} AND key >= ?"
                params: list[object] = [from_ms, width, prefix]
                hi = prefix_end(prefix)
                if hi is not None:
                    sql += " AND key < ?"
                    params.append(hi)
                sql += " AND t BETWEEN ? AND ? GROUP BY 1, 2"
                params += [from_ms, to_ms]
            else:
                name = time_index_of(conn, b)
                if name is not None and width >= self._rollup_ms:
                    self._timeline_from_hours(
                        conn, b, name, from_ms, to_ms, width, created, deleted
                    )
                    return Timeline(
                        start_ms=from_ms,
                        end_ms=to_ms,
                        bin_ms=width,
                        created=created,
                        deleted=deleted,
                    )
                sql = (
                    "SELECT (t - ?) / ?, f & 1, count(*) FROM versions"
                    + (f" INDEXED BY {name}" if name else "")
                    + f" WHERE b={int(b)} AND t BETWEEN ? AND ? GROUP BY 1, 2"
                )
                params = [from_ms, width, from_ms, to_ms]
            for idx, is_del, count in conn.execute(sql, params):
                (deleted if is_del else created)[idx] += count
        return Timeline(
            start_ms=from_ms, end_ms=to_ms, bin_ms=width, created=created, deleted=deleted
        )

    def _timeline_from_hours(
        self,
        conn: sqlite3.Connection,
        b: int,
        time_index: str,
        from_ms: int,
        to_ms: int,
        width: int,
        created: list[int],
        deleted: list[int],
    ) -> None:
        """The whole bucket's timeline: each hour that lies inside one bin adds its
        timeline_hours counts; only the hours cut by a bin edge (or by the range's ends) are
        counted row by row through the time index."""
        hour = self._rollup_ms
        cut: list[tuple[int, int]] = []
        for h, c, d in conn.execute(
            "SELECT h, created, deleted FROM timeline_hours WHERE b=? AND h BETWEEN ? AND ?",
            (b, from_ms // hour, to_ms // hour),
        ):
            lo, hi = h * hour, h * hour + hour - 1
            if lo >= from_ms and hi <= to_ms:
                i = (lo - from_ms) // width
                if i == (hi - from_ms) // width:
                    created[i] += c
                    deleted[i] += d
                    continue
            if c or d:
                cut.append((max(lo, from_ms), min(hi, to_ms)))
        sql = (
            f"SELECT (t - ?) / ?, f & 1, count(*) FROM versions INDEXED BY {time_index} "
            f"WHERE b={int(b)} AND t BETWEEN ? AND ? GROUP BY 1, 2"
        )
        cur = conn.cursor()
        for lo, hi in cut:
            for i, is_del, count in cur.execute(sql, (from_ms, width, lo, hi)):
                (deleted if is_del else created)[i] += count

    # -- labels -----------------------------------------------------------------------------
    def insert_label(self, label: LabelRecord) -> None:
        with self._write() as conn:
            try:
                conn.execute(
                    "INSERT INTO labels(name, bucket, prefix, kind, start_ms, end_ms, spec, "
                    "fingerprint, object_count, total_bytes, description, created_ms, "
                    "created_by) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)",
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
            except sqlite3.IntegrityError as exc:
                raise Conflict(
                    f"A label named {label.name!r} already exists; labels are immutable, so "
                    "pick another name (or delete the old label first)."
                ) from exc

    _LABEL_COLS = (
        "name, bucket, prefix, kind, start_ms, end_ms, spec, fingerprint, object_count, "
        "total_bytes, description, created_ms, created_by"
    )

    def get_label(self, name: str) -> LabelRecord:
        with self._read() as conn:
            row = conn.execute(
                f"SELECT {self._LABEL_COLS} FROM labels WHERE name=?", (name,)
            ).fetchone()
        if row is None:
            raise UnknownLabel(
                f"There is no label named {name!r}; `infinstor-jlab label list` shows them."
            )
        return label_from_row(row)

    def list_labels(self, bucket: str | None = None) -> list[LabelRecord]:
        with self._read() as conn:
            if bucket is None:
                rows = conn.execute(f"SELECT {self._LABEL_COLS} FROM labels ORDER BY name")
            else:
                rows = conn.execute(
                    f"SELECT {self._LABEL_COLS} FROM labels WHERE bucket=? ORDER BY name",
                    (bucket,),
                )
            return [label_from_row(row) for row in rows.fetchall()]

    def delete_label(self, name: str) -> None:
        with self._write() as conn:
            cur = conn.execute("DELETE FROM labels WHERE name=?", (name,))
            if cur.rowcount == 0:
                raise UnknownLabel(
                    f"There is no label named {name!r}; `infinstor-jlab label list` shows them."
                )
