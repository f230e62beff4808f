"""Many writers, one truth: what servers, CLIs and endpoints that share one index database
agree on without talking to each other.

* **One sync per bucket at a time.** On PostgreSQL a sync holds a session-level advisory
  lock (``pg_try_advisory_lock`` on a hash of the bucket) on a connection of its own for as
  long as it runs; a holder that dies loses its connection and with it the lock, so nothing
  is ever stuck. Who holds it, and since when, is in a small ``sync_runs`` row, which a
  second server's "sync now" reports instead of starting another. On a local SQLite index
  one process syncs a bucket at a time as before (its own job list), and SQLite's write
  lock keeps two processes' passes from interleaving their transactions.
* **SQS events applied exactly once.** Several consumers of one queue can each receive the
  same message (SQS delivers at least once). Applying an event is idempotent for the index
  (a version is added by its id, removed by its id), but two things are not: the counters,
  and a late duplicate of a *create* that arrives after the version's permanent *delete*,
  which would bring the deleted version back. The ledger records every event applied, by
  (bucket, key, version id or event identity, kind); a batch is applied under a
  per-bucket transaction-level advisory lock, skips creates of versions already removed,
  and counts only events the ledger had not seen. A crash between the apply and the record
  leaves the message on the queue: its redelivery applies idempotently and is counted once.
"""

from __future__ import annotations

import getpass
import os
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ..errors import Conflict
from ..timespec import format_iso, now_ms

#: Ledger rows older than this are dropped: SQS keeps a message 14 days at most, so no
#: duplicate can arrive later.
LEDGER_KEEP_MS = 15 * 86_400_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sync_runs(
    bucket TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    full_pass BOOLEAN NOT NULL,
    started_ms BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS applied_events(
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    ident TEXT NOT NULL,
    kind TEXT NOT NULL,
    applied_ms BIGINT NOT NULL,
    PRIMARY KEY(bucket, key, ident, kind)
);
CREATE INDEX IF NOT EXISTS applied_events_by_time ON applied_events(applied_ms);
"""


def current_user() -> str:
    """Who is acting: the JupyterHub user of a single-user server, else the OS user."""
    name = os.environ.get("JUPYTERHUB_USER")
    if name:
        return name
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry (a container): still say something
        return f"uid {os.getuid()}"


@dataclass(frozen=True)
class RunningSync:
    """A sync of a bucket that another process runs."""

    bucket: str
    holder: str
    host: str
    pid: int
    full: bool
    started_ms: int

    def describe(self) -> str:
        what = "A full sync" if self.full else "A sync"
        return (
            f"{what} of {self.bucket!r} is already running: started by {self.holder} on "
            f"{self.host} (pid {self.pid}) at {format_iso(self.started_ms)}. Its results "
            "reach the shared index as it goes; no second sync was started."
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "bucket": self.bucket,
            "holder": self.holder,
            "host": self.host,
            "pid": self.pid,
            "full": self.full,
            "started_ms": self.started_ms,
            "started": format_iso(self.started_ms),
        }


class SyncBusy(Conflict):
    """Another process holds the bucket's sync (HTTP 409)."""

    def __init__(self, running: RunningSync) -> None:
        super().__init__(running.describe())
        self.running = running


@dataclass(frozen=True)
class EventKey:
    """What identifies one S3 event for the ledger: a version id (a create or a removal of
    that version), else the event's own identity (a store that sends no version ids)."""

    key: str
    ident: str
    kind: str  # "create" | "remove"


class Coordination:
    """The local (SQLite) behaviour: nothing to agree on with other processes."""

    shared = False

    @contextmanager
    def sync_lock(self, bucket: str, *, full: bool) -> Iterator[None]:
        yield

    def running_sync(self, bucket: str) -> RunningSync | None:
        return None

    @contextmanager
    def event_batch(self, bucket: str) -> Iterator[EventBatch]:
        yield EventBatch(None, bucket)

    def close(self) -> None:
        pass


class EventBatch:
    """The ledger inside one batch's transaction (no-op without a connection)."""

    def __init__(self, conn: Any, bucket: str) -> None:
        self._conn = conn
        self.bucket = bucket

    def removed(self, keys: list[EventKey]) -> set[EventKey]:
        """Which of these creates name a version whose removal was applied already."""
        if self._conn is None or not keys:
            return set()
        rows = self._conn.execute(
            "SELECT key, ident FROM applied_events WHERE bucket=%s AND kind='remove' "
            "AND (key, ident) IN (SELECT * FROM unnest(%s::text[], %s::text[]))",
            (self.bucket, [k.key for k in keys], [k.ident for k in keys]),
        ).fetchall()
        gone = {(r[0], r[1]) for r in rows}
        return {k for k in keys if (k.key, k.ident) in gone}

    def record(self, keys: list[EventKey]) -> int:
        """Record the events; returns how many the ledger had not seen before (without a
        ledger: all of them, as a single consumer counts them)."""
        if self._conn is None:
            return len(keys)
        unique = sorted(set(keys), key=lambda k: (k.key, k.ident, k.kind))
        if not unique:
            return 0
        cur = self._conn.execute(
            "INSERT INTO applied_events(bucket, key, ident, kind, applied_ms) "
            "SELECT %s, k, i, d, %s FROM unnest(%s::text[], %s::text[], %s::text[]) AS u(k, i, d) "
            "ON CONFLICT DO NOTHING",
            (
                self.bucket,
                now_ms(),
                [k.key for k in unique],
                [k.ident for k in unique],
                [k.kind for k in unique],
            ),
        )
        return int(cur.rowcount)


class PgCoordination(Coordination):
    """Advisory locks, ``sync_runs`` and the event ledger on the shared PostgreSQL index."""

    shared = True

    def __init__(self, url: str) -> None:
        from ..pg import connection

        self.url = url
        self._pruned_ms = 0
        self._lock = threading.Lock()
        with connection(url) as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('infinstor:coordination'))")
            conn.execute(_SCHEMA)

    @staticmethod
    def _key_sql(kind: str) -> str:
        # A 64-bit key from the bucket's name; the prefix keeps it apart from other locks.
        return f"hashtextextended('infinstor-{kind}:' || %s, 0)"

    @contextmanager
    def sync_lock(self, bucket: str, *, full: bool) -> Iterator[None]:
        from ..pg import connect

        conn = connect(self.url)  # held for the whole sync: the lock lives with it
        try:
            got = conn.execute(
                f"SELECT pg_try_advisory_lock({self._key_sql('sync')})", (bucket,)
            ).fetchone()
            if not (got and got[0]):
                running = self._read_run(conn, bucket)
                raise SyncBusy(
                    running
                    or RunningSync(bucket, "another server", "an unknown host", 0, full, now_ms())
                )
            conn.execute(
                "INSERT INTO sync_runs VALUES(%s,%s,%s,%s,%s,%s) ON CONFLICT(bucket) DO UPDATE "
                "SET holder=excluded.holder, host=excluded.host, pid=excluded.pid, "
                "full_pass=excluded.full_pass, started_ms=excluded.started_ms",
                (bucket, current_user(), socket.gethostname(), os.getpid(), full, now_ms()),
            )
            try:
                yield
            finally:
                conn.execute(
                    "DELETE FROM sync_runs WHERE bucket=%s AND pid=%s AND host=%s",
                    (bucket, os.getpid(), socket.gethostname()),
                )
                conn.execute(f"SELECT pg_advisory_unlock({self._key_sql('sync')})", (bucket,))
        finally:
            conn.close()

    @staticmethod
    def _read_run(conn: Any, bucket: str) -> RunningSync | None:
        row = conn.execute(
            "SELECT bucket, holder, host, pid, full_pass, started_ms FROM sync_runs "
            "WHERE bucket=%s",
            (bucket,),
        ).fetchone()
        return None if row is None else RunningSync(*row)

    def running_sync(self, bucket: str) -> RunningSync | None:
        """The sync another process runs for ``bucket`` now (None: none runs). A row left
        by a holder that died does not count: its lock went with its connection."""
        from ..pg import connection

        with connection(self.url) as conn:
            got = conn.execute(
                f"SELECT pg_try_advisory_lock({self._key_sql('sync')})", (bucket,)
            ).fetchone()
            if got and got[0]:
                conn.execute(f"SELECT pg_advisory_unlock({self._key_sql('sync')})", (bucket,))
                return None
            return self._read_run(conn, bucket)

    @contextmanager
    def event_batch(self, bucket: str) -> Iterator[EventBatch]:
        """One transaction that holds the bucket's event lock: consumers of one bucket
        apply their batches one after another (other buckets, and readers, do not wait)."""
        from ..pg import connection

        with connection(self.url) as conn:
            with conn.transaction():
                conn.execute(f"SELECT pg_advisory_xact_lock({self._key_sql('events')})", (bucket,))
                yield EventBatch(conn, bucket)
            self._prune(conn)

    def _prune(self, conn: Any) -> None:
        now = now_ms()
        with self._lock:
            if now - self._pruned_ms < 3_600_000:
                return
            self._pruned_ms = now
        conn.execute("DELETE FROM applied_events WHERE applied_ms < %s", (now - LEDGER_KEEP_MS,))


def open_coordination(index: object) -> Coordination:
    """The coordination of an index: PostgreSQL's when the index is on PostgreSQL (its
    ``url``), else the local no-op."""
    from ..pg import is_postgres_url

    url = getattr(index, "url", None)
    if isinstance(url, str) and is_postgres_url(url):
        return PgCoordination(url)
    return Coordination()


CoordinationFactory = Callable[[object], Coordination]
