"""Schedules: a transform run by cron or every N minutes, over the **slice of arrivals since
its previous run's end** (incremental) or over the snapshot at firing time.

Exactly once. An incremental schedule's windows are contiguous slices [start, end] (both
ends inclusive, as every slice): the next window starts 1 ms after the end of the last window
that succeeded (or was empty), so a failed or interrupted run's arrivals are retried in the
next window, never skipped, and a missed tick only makes the next window longer. A window
ends on a whole second at least ``settle_s`` before firing: S3 times are whole seconds, so a
write in the current second belongs to the next window, and ``settle_s`` leaves room for
writes that were in flight. The view is made current for the window before it is read
(the resolver relists a prefix whose view ends after the last sync).

One runner per schedule at a time: a runner (the Jupyter server, or
``infinstor-jlab schedules run-due``) claims a schedule with a lease in the index while it
acts on it (a crashed runner's lease lapses after 10 minutes), and a schedule has at most one
running window, so two servers sharing a PostgreSQL index never start the same window twice.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import BadRequest, Conflict, InfinstorError, NotFound, UnknownBucket
from ..services.core import LABEL_NAME_RE
from ..timespec import now_ms
from .cron import Cron
from .service import TERMINAL, TransformService

log = logging.getLogger(__name__)

MODES = ("incremental", "snapshot")
#: How long a runner's claim on a schedule lasts without being renewed.
LEASE_MS = 10 * 60 * 1000
DEFAULT_SETTLE_S = 60


@dataclass
class Schedule:
    name: str
    transform: str
    bucket: str
    prefix: str = ""
    mode: str = "incremental"
    cron: str | None = None
    every_minutes: int | None = None
    if_new_data: bool = False
    executor: str = "local"
    output_uri: str = ""
    kwargs: dict[str, Any] = field(default_factory=dict)
    requirements: list[str] = field(default_factory=list)
    revision: int | None = None
    start_ms: int = 0  # an incremental schedule's first window starts here
    settle_s: int = DEFAULT_SETTLE_S
    paused: bool = False
    created_ms: int = 0
    created_by: str = ""
    next_ms: int = 0

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Schedule:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in doc.items() if k in known})

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def trigger_text(self) -> str:
        if self.cron:
            return f"cron {self.cron} (UTC)"
        text = f"every {self.every_minutes} min"
        return text + (" if new data" if self.if_new_data else "")


@dataclass
class Window:
    """One firing: the slice it covers (snapshot mode: end only), its run and how it ended."""

    schedule: str
    seq: int
    start_ms: int
    end_ms: int
    state: str = "running"  # running | succeeded | failed | empty
    run_id: str | None = None
    objects: int = 0
    created_ms: int = 0
    finished_ms: int | None = None
    error: str | None = None
    attempt: int = 1  # how many windows from this start have been tried

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Window:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in doc.items() if k in known})

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


_SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS transform_schedules(
    name TEXT PRIMARY KEY,
    doc TEXT NOT NULL,
    lease_owner TEXT,
    lease_until INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS transform_schedule_windows(
    schedule TEXT NOT NULL,
    seq INTEGER NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY(schedule, seq)
) WITHOUT ROWID;
"""

_PG_SCHEMA = """
CREATE TABLE IF NOT EXISTS transform_schedules(
    name TEXT PRIMARY KEY,
    doc TEXT NOT NULL,
    lease_owner TEXT,
    lease_until BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS transform_schedule_windows(
    schedule TEXT NOT NULL,
    seq BIGINT NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY(schedule, seq)
);
"""


class ScheduleStore:
    """Schedules and their windows in the index database (SQLite file, or PostgreSQL)."""

    def __init__(self, location: str) -> None:
        from ..pg import is_postgres_url

        self.pg = is_postgres_url(location)
        self.location = location
        self._lock = threading.Lock()
        if self.pg:
            from ..pg import connection

            with connection(location) as conn, conn.transaction():
                # One creator at a time: CREATE ... IF NOT EXISTS races between servers.
                conn.execute("SELECT pg_advisory_xact_lock(hashtext('infinstor:schedule-schema'))")
                conn.execute(_PG_SCHEMA)
        else:
            from ..index import sqlite_path

            self._path = sqlite_path(location) if location.startswith("sqlite:") else location
            conn = sqlite3.connect(self._path, timeout=30)
            try:
                conn.executescript(_SQLITE_SCHEMA)
            finally:
                conn.close()

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        if self.pg:
            from ..pg import connection

            with connection(self.location) as conn, conn.transaction(), conn.cursor() as cur:
                yield _PgCursor(cur)
            return
        with self._lock:
            conn = sqlite3.connect(self._path, timeout=30, isolation_level=None)
            try:
                conn.execute("BEGIN IMMEDIATE")
                cur = conn.cursor()
                yield cur
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            finally:
                conn.close()

    # -- schedules ---------------------------------------------------------------------------
    def add(self, sched: Schedule) -> None:
        with self._cursor() as cur:
            cur.execute("SELECT 1 FROM transform_schedules WHERE name=?", (sched.name,))
            if cur.fetchone():
                raise Conflict(
                    f"A schedule named {sched.name!r} exists already; delete it first or pick "
                    "another name."
                )
            cur.execute(
                "INSERT INTO transform_schedules(name, doc) VALUES (?, ?)",
                (sched.name, json.dumps(sched.to_json())),
            )

    def save(self, sched: Schedule) -> None:
        with self._cursor() as cur:
            cur.execute(
                "UPDATE transform_schedules SET doc=? WHERE name=?",
                (json.dumps(sched.to_json()), sched.name),
            )

    def get(self, name: str) -> Schedule:
        with self._cursor() as cur:
            cur.execute("SELECT doc FROM transform_schedules WHERE name=?", (name,))
            row = cur.fetchone()
        if row is None:
            raise NotFound(f"There is no schedule named {name!r} (infinstor-jlab schedules list).")
        return Schedule.from_json(json.loads(row[0]))

    def all(self) -> list[Schedule]:
        with self._cursor() as cur:
            cur.execute("SELECT doc FROM transform_schedules ORDER BY name")
            rows = cur.fetchall()
        return [Schedule.from_json(json.loads(r[0])) for r in rows]

    def delete(self, name: str) -> None:
        with self._cursor() as cur:
            cur.execute("DELETE FROM transform_schedules WHERE name=?", (name,))
            cur.execute("DELETE FROM transform_schedule_windows WHERE schedule=?", (name,))

    def claim(self, name: str, owner: str, now: int) -> bool:
        """Take (or renew) the schedule's lease: True when this owner may act on it."""
        with self._cursor() as cur:
            cur.execute(
                "UPDATE transform_schedules SET lease_owner=?, lease_until=? WHERE name=? AND "
                "(lease_owner IS NULL OR lease_owner=? OR lease_until < ?)",
                (owner, now + LEASE_MS, name, owner, now),
            )
            return bool(cur.rowcount == 1)

    def release(self, name: str, owner: str) -> None:
        with self._cursor() as cur:
            cur.execute(
                "UPDATE transform_schedules SET lease_owner=NULL, lease_until=0 "
                "WHERE name=? AND lease_owner=?",
                (name, owner),
            )

    # -- windows -----------------------------------------------------------------------------
    def windows(self, name: str, limit: int = 1000) -> list[Window]:
        """Newest first."""
        with self._cursor() as cur:
            cur.execute(
                "SELECT doc FROM transform_schedule_windows WHERE schedule=? "
                "ORDER BY seq DESC LIMIT ?",
                (name, limit),
            )
            rows = cur.fetchall()
        return [Window.from_json(json.loads(r[0])) for r in rows]

    def save_window(self, win: Window) -> None:
        with self._cursor() as cur:
            cur.execute(
                "DELETE FROM transform_schedule_windows WHERE schedule=? AND seq=?",
                (win.schedule, win.seq),
            )
            cur.execute(
                "INSERT INTO transform_schedule_windows(schedule, seq, doc) VALUES (?, ?, ?)",
                (win.schedule, win.seq, json.dumps(win.to_json())),
            )


class _PgCursor:
    """psycopg's cursor with SQLite's ``?`` placeholders (the statements above are shared)."""

    def __init__(self, cur: Any) -> None:
        self._cur = cur

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        self._cur.execute(sql.replace("?", "%s"), params)

    def fetchone(self) -> Any:
        return self._cur.fetchone()

    def fetchall(self) -> Any:
        return self._cur.fetchall()

    @property
    def rowcount(self) -> int:
        return int(self._cur.rowcount)


def _whole_second_end(ms: int) -> int:
    """The last millisecond of the last whole second before ``ms``."""
    return (ms // 1000) * 1000 - 1


class ScheduleService:
    """Create, list and fire schedules; the logic behind the REST handlers, the CLI and the
    server's runner thread."""

    def __init__(self, transforms: TransformService, store: ScheduleStore) -> None:
        self.transforms = transforms
        self.store = store
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    # -- definitions -------------------------------------------------------------------------
    def create(self, doc: dict[str, Any], *, author: str = "") -> Schedule:
        if not isinstance(doc, dict):
            raise BadRequest('A schedule is an object such as {"name": ..., "transform": ...}.')
        name = str(doc.get("name") or "")
        if not LABEL_NAME_RE.match(name):
            raise BadRequest(
                f"{name!r} is not a valid schedule name: use 1-128 letters, digits, '.', '_' "
                "or '-', starting with a letter or digit."
            )
        transform = str(doc.get("transform") or "")
        if not transform:
            raise BadRequest('A schedule needs "transform": the saved transform it runs.')
        revision = doc.get("revision")
        if revision is not None and (not isinstance(revision, int) or isinstance(revision, bool)):
            raise BadRequest('"revision" is a transform revision number (or absent: the latest).')
        self.transforms.store.revision(transform, revision)  # NotFound says which
        bucket = str(doc.get("bucket") or "")
        if not bucket:
            raise BadRequest('A schedule needs "bucket": the tracked bucket whose data it reads.')
        try:
            self.transforms.service.index.get_bucket(bucket)
        except UnknownBucket as exc:
            raise BadRequest(
                f"Bucket {bucket!r} is not tracked; a schedule reads the index "
                f"(infinstor-jlab track {bucket})."
            ) from exc
        mode = str(doc.get("mode") or "incremental")
        if mode not in MODES:
            raise BadRequest(f"mode must be one of {', '.join(MODES)}, not {mode!r}.")
        cron_text = doc.get("cron") or None
        every = doc.get("every_minutes")
        if bool(cron_text) == (every is not None):
            raise BadRequest(
                'Say when it runs: either "cron" (e.g. "0 2 * * *", UTC) or "every_minutes" '
                "(with if_new_data to skip runs when nothing arrived)."
            )
        if every is not None and (
            not isinstance(every, int) or isinstance(every, bool) or not 1 <= every <= 10080
        ):
            raise BadRequest('"every_minutes" must be a whole number from 1 to 10080 (a week).')
        if cron_text:
            Cron.parse(str(cron_text))
        executor = str(doc.get("executor") or "local")
        if executor not in self.transforms.executors:
            raise BadRequest(
                f"Unknown executor {executor!r}; choose one of "
                f"{', '.join(sorted(self.transforms.executors))}."
            )
        output_uri = str(doc.get("output_uri") or self.transforms.default_output_uri or "")
        if not output_uri.startswith("s3://"):
            raise BadRequest(
                "Say where the runs write: an S3 URI such as s3://my-bucket/outputs/ "
                '("output_uri").'
            )
        from .capture import parse_kwargs
        from .service import check_requirements

        kwargs = parse_kwargs(doc.get("kwargs"))
        reqs = check_requirements(doc.get("requirements"))
        settle = doc.get("settle_s", DEFAULT_SETTLE_S)
        if not isinstance(settle, int) or isinstance(settle, bool) or not 0 <= settle <= 86400:
            raise BadRequest('"settle_s" must be a whole number of seconds from 0 to 86400.')
        now = now_ms()
        start_text = doc.get("start")
        if start_text in (None, ""):
            start = now  # arrivals from now on
        else:
            spec = self.transforms.service.parse_spec(str(start_text))
            if spec.kind == "slice":
                raise BadRequest(
                    '"start" is one time (where the first window begins), not a slice.'
                )
            start = spec.end_ms
        # S3 times are whole seconds: a write in this very second has a time before `now`.
        start = (start // 1000) * 1000
        sched = Schedule(
            name=name,
            transform=transform,
            revision=revision if isinstance(revision, int) else None,
            bucket=bucket,
            prefix=str(doc.get("prefix") or ""),
            mode=mode,
            cron=str(cron_text) if cron_text else None,
            every_minutes=every,
            if_new_data=bool(doc.get("if_new_data", False)),
            executor=executor,
            output_uri=output_uri,
            kwargs=kwargs,
            requirements=reqs,
            start_ms=start,
            settle_s=settle,
            created_ms=now,
            created_by=author,
        )
        sched.next_ms = self._next_fire(sched, now)
        self.store.add(sched)
        return sched

    @staticmethod
    def _next_fire(sched: Schedule, after: int) -> int:
        if sched.cron:
            return Cron.parse(sched.cron).next_after(after)
        return after + int(sched.every_minutes or 1) * 60_000

    def list(self) -> list[dict[str, Any]]:
        return [self.summary(s) for s in self.store.all()]

    def summary(self, sched: Schedule, windows: int = 1) -> dict[str, Any]:
        doc = sched.to_json()
        doc["trigger"] = sched.trigger_text()
        wins = self.store.windows(sched.name, windows)
        doc["last_window"] = wins[0].to_json() if wins else None
        return doc

    def get(self, name: str, *, windows: int = 100) -> dict[str, Any]:
        sched = self.store.get(name)
        doc = self.summary(sched)
        doc["windows"] = [w.to_json() for w in self.store.windows(name, windows)]
        return doc

    def set_paused(self, name: str, paused: bool) -> Schedule:
        sched = self.store.get(name)
        sched.paused = paused
        if not paused and sched.next_ms < now_ms():
            sched.next_ms = now_ms()  # came due while paused: fire at the next tick
        self.store.save(sched)
        return sched

    def delete(self, name: str) -> None:
        self.store.get(name)
        self.store.delete(name)

    # -- firing ------------------------------------------------------------------------------
    def tick(
        self, *, now: int | None = None, only: str | None = None, force: bool = False
    ) -> list[Window]:
        """One pass: record the end of windows whose runs ended, and start the windows that
        are due (``force``: due now). Returns the windows started."""
        started: list[Window] = []
        for sched in self.store.all():
            if only is not None and sched.name != only:
                continue
            if sched.paused and not force:
                continue
            t = now_ms() if now is None else now
            if not self.store.claim(sched.name, self.owner, t):
                continue  # another runner has it
            try:
                win = self._advance(sched, t, force=force)
                if win is not None:
                    started.append(win)
            except InfinstorError as exc:
                log.warning("schedule %s: %s", sched.name, exc)
            except Exception:  # one bad schedule must not stop the others
                log.exception("schedule %s failed to fire", sched.name)
            finally:
                # Held only while acting: the window's state in the index (one running at a
                # time) carries over to the next runner, a restarted server or another one.
                self.store.release(sched.name, self.owner)
        return started

    def _record_end(self, win: Window) -> Window:
        """A running window whose run has ended: succeeded or failed (to be retried)."""
        if win.state != "running" or not win.run_id:
            return win
        try:
            run = self.transforms.refresh(win.run_id)
        except NotFound:
            win.state, win.error = "failed", "its run is gone from the store"
        else:
            if run.state not in TERMINAL:
                return win
            win.state = "succeeded" if run.state == "succeeded" else "failed"
            win.error = None if run.state == "succeeded" else (run.error or run.state)
        win.finished_ms = now_ms()
        self.store.save_window(win)
        return win

    def _advance(self, sched: Schedule, now: int, *, force: bool) -> Window | None:
        wins = self.store.windows(sched.name, 50)
        last = self._record_end(wins[0]) if wins else None
        if last is not None and last.state == "running":
            return None  # one window at a time
        if not force and now < sched.next_ms:
            return None
        done = next((w for w in wins if w.state in ("succeeded", "empty")), None)
        start = done.end_ms + 1 if done is not None else sched.start_ms
        end = _whole_second_end(now - sched.settle_s * 1000)
        sched.next_ms = self._next_fire(sched, now)
        self.store.save(sched)
        if sched.mode == "incremental" and end < start:
            return None  # nothing settled since the last window
        if sched.mode == "incremental":
            spec: dict[str, Any] = {
                "type": "infinslice",
                "bucket": sched.bucket,
                "prefix": sched.prefix,
                "slice": f"{start}/{end}",
            }
        else:
            spec = {
                "type": "infinsnap",
                "bucket": sched.bucket,
                "prefix": sched.prefix,
                "time_spec": str(end),
            }
        seq = (wins[0].seq + 1) if wins else 1
        attempt = (last.attempt + 1) if last is not None and last.state == "failed" else 1
        win = Window(
            schedule=sched.name,
            seq=seq,
            start_ms=start if sched.mode == "incremental" else end,
            end_ms=end,
            created_ms=now_ms(),
            attempt=attempt,
        )
        manifest = self.transforms.resolve_input(spec)
        win.objects = len(manifest.objects) if manifest is not None else 0
        if win.objects == 0 and sched.if_new_data:
            win.state, win.finished_ms = "empty", now_ms()
            if last is not None and last.state == "empty" and sched.mode == "incremental":
                # Consecutive empty windows are one: the history stays readable.
                last.end_ms, last.finished_ms = end, win.finished_ms
                self.store.save_window(last)
                return None
            self.store.save_window(win)
            return None
        try:
            run = self.transforms.start_run(
                sched.transform,
                input_spec=spec,
                output_uri=sched.output_uri,
                executor=sched.executor,
                revision=sched.revision,
                kwargs=sched.kwargs,
                requirements=sched.requirements,
            )
        except InfinstorError as exc:
            win.state, win.error, win.finished_ms = "failed", str(exc), now_ms()
            self.store.save_window(win)
            return win
        win.run_id = run.id
        self.store.save_window(win)
        try:
            client = self.transforms.mlflow()
            client.set_tag(run.id, "infinstor.schedule", sched.name)
            client.set_tag(run.id, "infinstor.schedule_window", f"{win.seq}:{win.start_ms}/{end}")
        except Exception as exc:  # noqa: BLE001 - lineage tags are best effort
            log.warning("could not tag run %s with its schedule: %s", run.id, exc)
        return win

    def run_due(
        self,
        *,
        only: str | None = None,
        force: bool = False,
        wait: bool = True,
        timeout: float = 3600,
    ) -> list[Window]:
        """Fire what is due (``force``: now), and with ``wait`` wait for those runs and
        record how they ended (a process without a server: cron, systemd, EventBridge)."""
        started = self.tick(only=only, force=force)
        if not wait:
            return started
        out = []
        for win in started:
            if win.run_id and win.state == "running":
                try:
                    self.transforms.wait(win.run_id, timeout=timeout)
                except TimeoutError:
                    pass
            fresh = next((w for w in self.store.windows(win.schedule, 5) if w.seq == win.seq), win)
            out.append(self._record_end(fresh))
        self.tick(only=only)  # records any other ended windows; starts nothing not due
        return out


class ScheduleRunner:
    """The Jupyter server's thread that fires schedules while the server runs."""

    def __init__(self, schedules: ScheduleService, interval_s: float = 30.0) -> None:
        self.schedules = schedules
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="infinstor-schedules", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.schedules.tick()
            except Exception:
                log.exception("the schedule runner's pass failed")

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
