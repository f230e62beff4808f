"""Transform revisions and runs, kept in the index database (their own tables)."""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import NotFound

_SCHEMA = """
CREATE TABLE IF NOT EXISTS transforms(
    name TEXT NOT NULL,
    revision INTEGER NOT NULL,
    code TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    entry_point TEXT NOT NULL,
    author TEXT NOT NULL,
    description TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY(name, revision)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS transform_runs(
    id TEXT PRIMARY KEY,
    doc TEXT NOT NULL
) WITHOUT ROWID;
"""


@dataclass
class TransformRevision:
    name: str
    revision: int
    code: str
    sha256: str
    entry_point: str
    author: str
    description: str
    created_ms: int

    def to_json(self, *, with_code: bool = True) -> dict[str, Any]:
        doc = asdict(self)
        if not with_code:
            doc.pop("code")
        return doc


@dataclass
class TransformRun:
    id: str
    transform: str
    revision: int
    executor: str
    input_spec: dict[str, Any]
    output_uri: str
    kwargs: dict[str, Any]
    state: str = "queued"  # queued | running | succeeded | failed | cancelled
    created_ms: int = 0
    finished_ms: int | None = None
    done: int = 0
    total: int = 0
    manifest_fingerprint: str | None = None
    staging_uri: str | None = None
    mlflow_run_id: str | None = None
    mlflow_experiment_id: str | None = None
    log_path: str | None = None
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    requirements: list[str] = field(default_factory=list)
    label_output: str | None = None  # the label to create over the output after success
    output_label: str | None = None  # ... once it exists
    label_error: str | None = None
    #: _FAILED.json or _CANCELLED.json, once written into the output (None otherwise)
    output_marker: str | None = None

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> TransformRun:
        # Runs stored by another version of the extension: keep the fields this one knows.
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in doc.items() if k in known})

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class TransformStore:
    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._local = threading.local()
        with self._lock:
            self._conn().executescript(_SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
        return conn

    # -- revisions --------------------------------------------------------------------------
    def add_revision(self, rev: TransformRevision) -> TransformRevision:
        """Store a new revision numbered after the latest one (returns it with its number)."""
        with self._lock:
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute(
                    "SELECT max(revision) FROM transforms WHERE name=?", (rev.name,)
                ).fetchone()
                rev.revision = (row[0] or 0) + 1
                conn.execute(
                    "INSERT INTO transforms VALUES(?,?,?,?,?,?,?,?)",
                    (
                        rev.name,
                        rev.revision,
                        rev.code,
                        rev.sha256,
                        rev.entry_point,
                        rev.author,
                        rev.description,
                        rev.created_ms,
                    ),
                )
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        return rev

    def revisions(self, name: str) -> list[TransformRevision]:
        rows = (
            self._conn()
            .execute("SELECT * FROM transforms WHERE name=? ORDER BY revision DESC", (name,))
            .fetchall()
        )
        return [TransformRevision(*row) for row in rows]

    def revision(self, name: str, revision: int | None = None) -> TransformRevision:
        revs = self.revisions(name)
        if not revs:
            raise NotFound(f"There is no transform named {name!r}.")
        if revision is None:
            return revs[0]
        for rev in revs:
            if rev.revision == revision:
                return rev
        raise NotFound(f"Transform {name!r} has no revision {revision}.")

    def names(self) -> list[str]:
        return [
            row[0]
            for row in self._conn().execute("SELECT DISTINCT name FROM transforms ORDER BY name")
        ]

    def delete(self, name: str) -> None:
        cur = self._conn().execute("DELETE FROM transforms WHERE name=?", (name,))
        if cur.rowcount == 0:
            raise NotFound(f"There is no transform named {name!r}.")

    # -- runs -------------------------------------------------------------------------------
    def save_run(self, run: TransformRun) -> None:
        self._conn().execute(
            "INSERT OR REPLACE INTO transform_runs VALUES(?, ?)",
            (run.id, json.dumps(run.to_json())),
        )

    def get_run(self, run_id: str) -> TransformRun:
        row = (
            self._conn().execute("SELECT doc FROM transform_runs WHERE id=?", (run_id,)).fetchone()
        )
        if row is None:
            raise NotFound(f"There is no transform run {run_id!r}.")
        return TransformRun.from_json(json.loads(row[0]))

    def runs(self, transform: str | None = None) -> list[TransformRun]:
        """Runs, newest first (of one transform when given)."""
        rows = self._conn().execute("SELECT doc FROM transform_runs").fetchall()
        out = [TransformRun.from_json(json.loads(r[0])) for r in rows]
        if transform is not None:
            out = [r for r in out if r.transform == transform]
        return sorted(out, key=lambda r: r.created_ms, reverse=True)


_PG_SCHEMA = """
CREATE TABLE IF NOT EXISTS transforms(
    name TEXT NOT NULL,
    revision INTEGER NOT NULL,
    code TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    entry_point TEXT NOT NULL,
    author TEXT NOT NULL,
    description TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    PRIMARY KEY(name, revision)
);
CREATE TABLE IF NOT EXISTS transform_runs(
    id TEXT PRIMARY KEY,
    transform TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    doc JSONB NOT NULL
);
CREATE INDEX IF NOT EXISTS transform_runs_by_transform
    ON transform_runs(transform, created_ms DESC);
"""


class PgTransformStore(TransformStore):
    """The same store on a shared PostgreSQL index database: every server of a team sees
    the same transforms (revisions numbered once, whoever saves) and runs."""

    def __init__(self, url: str) -> None:  # its own: no SQLite file, no sqlite3 connection
        from ..pg import connection

        self.path = url
        self.url = url
        with connection(url) as conn, conn.transaction():
            # One creator at a time: CREATE ... IF NOT EXISTS races between servers.
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('infinstor:transform-schema'))")
            conn.execute(_PG_SCHEMA)

    def add_revision(self, rev: TransformRevision) -> TransformRevision:
        from ..pg import connection

        with connection(self.url) as conn, conn.transaction():
            # Two servers saving the same transform at once: one numbers after the other.
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", ("transform:" + rev.name,))
            row = conn.execute(
                "SELECT max(revision) FROM transforms WHERE name=%s", (rev.name,)
            ).fetchone()
            rev.revision = (row[0] or 0) + 1 if row else 1
            conn.execute(
                "INSERT INTO transforms VALUES(%s,%s,%s,%s,%s,%s,%s,%s)",
                (
                    rev.name,
                    rev.revision,
                    rev.code,
                    rev.sha256,
                    rev.entry_point,
                    rev.author,
                    rev.description,
                    rev.created_ms,
                ),
            )
        return rev

    def revisions(self, name: str) -> list[TransformRevision]:
        from ..pg import connection

        with connection(self.url) as conn:
            rows = conn.execute(
                "SELECT name, revision, code, sha256, entry_point, author, description, "
                "created_ms FROM transforms WHERE name=%s ORDER BY revision DESC",
                (name,),
            ).fetchall()
        return [TransformRevision(*row) for row in rows]

    def names(self) -> list[str]:
        from ..pg import connection

        with connection(self.url) as conn:
            rows = conn.execute("SELECT DISTINCT name FROM transforms ORDER BY name").fetchall()
        return [row[0] for row in rows]

    def delete(self, name: str) -> None:
        from ..pg import connection

        with connection(self.url) as conn:
            cur = conn.execute("DELETE FROM transforms WHERE name=%s", (name,))
        if cur.rowcount == 0:
            raise NotFound(f"There is no transform named {name!r}.")

    def save_run(self, run: TransformRun) -> None:
        from psycopg.types.json import Jsonb

        from ..pg import connection

        with connection(self.url) as conn:
            conn.execute(
                "INSERT INTO transform_runs(id, transform, created_ms, doc) "
                "VALUES(%s,%s,%s,%s) ON CONFLICT(id) DO UPDATE SET "
                "transform=excluded.transform, created_ms=excluded.created_ms, doc=excluded.doc",
                (run.id, run.transform, run.created_ms, Jsonb(run.to_json())),
            )

    def get_run(self, run_id: str) -> TransformRun:
        from ..pg import connection

        with connection(self.url) as conn:
            row = conn.execute("SELECT doc FROM transform_runs WHERE id=%s", (run_id,)).fetchone()
        if row is None:
            raise NotFound(f"There is no transform run {run_id!r}.")
        return TransformRun.from_json(row[0])

    def runs(self, transform: str | None = None) -> list[TransformRun]:
        from ..pg import connection

        with connection(self.url) as conn:
            if transform is None:
                rows = conn.execute(
                    "SELECT doc FROM transform_runs ORDER BY created_ms DESC"
                ).fetchall()
            else:
                rows = conn.execute(
                    "SELECT doc FROM transform_runs WHERE transform=%s ORDER BY created_ms DESC",
                    (transform,),
                ).fetchall()
        return [TransformRun.from_json(r[0]) for r in rows]


def open_transform_store(location: str) -> TransformStore:
    """The transform store of an index: its PostgreSQL database for a ``postgresql://`` URL,
    else the SQLite file (a path or ``sqlite:///`` URL)."""
    from ..pg import is_postgres_url

    if is_postgres_url(location):
        return PgTransformStore(location)
    if location.startswith("sqlite:///"):
        from ..index import sqlite_path

        location = sqlite_path(location)
    return TransformStore(location)
