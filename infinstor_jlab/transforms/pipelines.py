"""Pipelines: named DAGs of saved transforms, run as one parent MLflow run with a child run
per step, and the result cache that skips a step whose exact work was done before.

A step reads a view (any input ``start_run`` takes) or the outputs of other steps
(``{"type": "step", "step": "clean"}`` or ``{"type": "step", "steps": ["a", "b"]}``): each
step's output is labelled ``pipeline-<run id>-<step>`` when it succeeds, and the steps after it
read exactly those labels (``{"type": "outputs", "labels": [...]}``, run markers left out).

One thread (the *orchestrator*) drives a pipeline run: it starts each step as soon as its
inputs exist (independent steps run at once), follows the steps' transform runs, skips the
descendants of a step that failed and ends the parent run. A cancel is a row in the store, so
``pipeline cancel`` from another process (the CLI) reaches the orchestrator too.

The cache key of a step is a SHA-256 over (code SHA-256, entry point, kwargs, input
fingerprint, requirements); a step whose key equals a successful step's reuses that step's
run: its output and output label, shown as ``cached`` with the run id it reused.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import BadRequest, Conflict, InfinstorError, NotFound
from ..timespec import now_ms
from .capture import parse_kwargs
from .service import TERMINAL, TransformService, check_requirements

log = logging.getLogger(__name__)

PIPELINE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
STEP_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
#: Pipeline run states; a step's are these plus waiting, skipped and cached.
PIPELINE_TERMINAL = ("succeeded", "failed", "cancelled")
STEP_DONE = ("succeeded", "cached")
STEP_TERMINAL = ("succeeded", "cached", "failed", "cancelled", "skipped")
#: An orchestrator that has not written its heartbeat for this long is gone (its process
#: stopped): a restarted server ends its run instead of leaving it running forever.
STALE_HEARTBEAT_MS = 60_000
POLL_SECONDS = 0.5
#: The inputs a step may read besides other steps (those ``resolve_input`` takes).
VIEW_INPUT_TYPES = (
    "label",
    "view",
    "infinsnap",
    "infinslice",
    "outputs",
    "mlflow-run-artifacts",
    "no-input-data",
)


# -- definitions -----------------------------------------------------------------------------
@dataclass
class PipelineStep:
    name: str
    transform: str
    input: dict[str, Any]
    revision: int | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    executor: str = "local"
    output_uri: str | None = None
    requirements: list[str] = field(default_factory=list)

    def upstream(self) -> list[str]:
        """The steps whose outputs this step reads (none when it reads a view)."""
        if self.input.get("type") != "step":
            return []
        return list(self.input["steps"])

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Pipeline:
    name: str
    steps: list[PipelineStep]
    description: str = ""
    author: str = ""
    created_ms: int = 0
    updated_ms: int = 0

    def step(self, name: str) -> PipelineStep:
        for step in self.steps:
            if step.name == name:
                return step
        raise NotFound(f"Pipeline {self.name!r} has no step {name!r}.")

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "author": self.author,
            "created_ms": self.created_ms,
            "updated_ms": self.updated_ms,
            "steps": [s.to_json() for s in self.steps],
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Pipeline:
        return cls(
            name=doc["name"],
            description=doc.get("description", ""),
            author=doc.get("author", ""),
            created_ms=doc.get("created_ms", 0),
            updated_ms=doc.get("updated_ms", 0),
            steps=[PipelineStep(**s) for s in doc["steps"]],
        )


def _step_input(step: str, value: Any) -> dict[str, Any]:
    """A step's input, normalised: a view spec as given, or {"type": "step", "steps": [...]}."""
    if value is None or value == {}:
        raise BadRequest(
            f"Step {step!r} has no input: give a view such as "
            '{"type": "label", "label": "my-label"}, {"type": "step", "step": "<other step>"}, '
            'or {"type": "no-input-data"}.'
        )
    if isinstance(value, list):  # [{"type": "step", "step": "a"}, ...]
        names: list[Any] = []
        for item in value:
            if not isinstance(item, dict) or item.get("type") != "step":
                raise BadRequest(
                    f"Step {step!r}: a list input holds other steps only, "
                    '[{"type": "step", "step": "a"}, {"type": "step", "step": "b"}].'
                )
            names.append(item.get("step"))
        value = {"type": "step", "steps": names}
    if not isinstance(value, dict):
        raise BadRequest(
            f'Step {step!r}: "input" must be an object such as {{"type": "step", "step": "a"}}.'
        )
    if value.get("type") != "step":
        if value.get("type") not in VIEW_INPUT_TYPES:
            raise BadRequest(
                f"Step {step!r}: "
                + ('the input has no "type"' if "type" not in value else "unknown input type")
                + " (use "
                + ", ".join(VIEW_INPUT_TYPES)
                + ' or step, e.g. {"type": "step", "step": "a"}).'
            )
        return dict(value)
    steps = value.get("steps")
    if steps is None:
        steps = [value.get("step")]
    if not isinstance(steps, list) or not steps or not all(isinstance(s, str) and s for s in steps):
        raise BadRequest(
            f'Step {step!r}: a step input names its step, {{"type": "step", "step": "a"}} '
            '(or several: "steps": ["a", "b"]).'
        )
    return {"type": "step", "steps": list(dict.fromkeys(steps))}


def parse_pipeline(doc: Any) -> Pipeline:
    """A pipeline from its JSON (or YAML) document, checked for shape: names, inputs, kwargs,
    requirements, unique steps, known step references and no cycle. Transforms and executors
    are checked by :meth:`PipelineService.save` (they need the server's stores)."""
    if not isinstance(doc, dict):
        raise BadRequest("A pipeline is an object with a name and its steps.")
    name = doc.get("name")
    if not isinstance(name, str) or not PIPELINE_NAME_RE.match(name):
        raise BadRequest(
            f"{name!r} is not a valid pipeline name: use 1-128 letters, digits, '-', '_' and "
            "'.', starting with a letter or digit."
        )
    raw_steps = doc.get("steps")
    if isinstance(raw_steps, dict):  # YAML's natural form: steps keyed by name
        if not all(isinstance(v, dict) or v is None for v in raw_steps.values()):
            raise BadRequest(f"Each step of pipeline {name!r} is an object.")
        raw_steps = [{"name": k, **(v or {})} for k, v in raw_steps.items()]
    if not isinstance(raw_steps, list) or not raw_steps:
        raise BadRequest(f"Pipeline {name!r} has no steps; give a list of steps.")
    steps: list[PipelineStep] = []
    seen: set[str] = set()
    for raw in raw_steps:
        if not isinstance(raw, dict):
            raise BadRequest(f"Each step of pipeline {name!r} is an object.")
        sname = raw.get("name")
        if not isinstance(sname, str) or not STEP_NAME_RE.match(sname):
            raise BadRequest(
                f"{sname!r} is not a valid step name: use 1-64 letters, digits, '-' and '_', "
                "starting with a letter or digit."
            )
        if sname in seen:
            raise BadRequest(f"Pipeline {name!r} has two steps named {sname!r}; rename one.")
        seen.add(sname)
        transform = raw.get("transform")
        if not isinstance(transform, str) or not transform:
            raise BadRequest(f'Step {sname!r} needs "transform": the name of a saved transform.')
        revision = raw.get("revision")
        if revision is not None and (isinstance(revision, bool) or not isinstance(revision, int)):
            raise BadRequest(f'Step {sname!r}: "revision" must be a whole number (or omitted).')
        executor = raw.get("executor", "local")
        if not isinstance(executor, str) or not executor:
            raise BadRequest(f'Step {sname!r}: "executor" must be a name such as "local".')
        output_uri = raw.get("output_uri") or None
        if output_uri is not None and (
            not isinstance(output_uri, str) or not output_uri.startswith("s3://")
        ):
            raise BadRequest(
                f"Step {sname!r}: the output location {str(output_uri)[:100]!r} is not an S3 "
                "URI; write it as s3://BUCKET/PREFIX/."
            )
        if not isinstance(raw.get("kwargs"), (dict, str, type(None))):
            raise BadRequest(f'Step {sname!r}: "kwargs" must be a JSON object.')
        try:
            kwargs = parse_kwargs(raw.get("kwargs"))
            reqs = check_requirements(raw.get("requirements"))
        except BadRequest as exc:
            raise BadRequest(f"Step {sname!r}: {exc.message}") from exc
        steps.append(
            PipelineStep(
                name=sname,
                transform=transform,
                input=_step_input(sname, raw.get("input")),
                revision=revision,
                kwargs=kwargs,
                executor=executor,
                output_uri=output_uri,
                requirements=reqs,
            )
        )
    for step in steps:
        for up in step.upstream():
            if up not in seen:
                raise BadRequest(
                    f"Step {step.name!r} reads step {up!r}, which pipeline {name!r} does not "
                    f"have (its steps: {', '.join(s.name for s in steps)})."
                )
    cycle = find_cycle(steps)
    if cycle:
        raise BadRequest(
            f"Pipeline {name!r} has a cycle: {' -> '.join(cycle)}; a step cannot read its own "
            "output, directly or through other steps."
        )
    description = doc.get("description", "")
    if not isinstance(description, str):
        raise BadRequest('"description" must be a string.')
    return Pipeline(name=name, steps=steps, description=description)


def find_cycle(steps: list[PipelineStep]) -> list[str] | None:
    """A cycle of step names (first name repeated at the end), or None."""
    upstream = {s.name: s.upstream() for s in steps}
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = 1
        path.append(name)
        for up in upstream.get(name, []):
            if state.get(up) == 1:
                cycle = path[path.index(up) :] + [up]
                cycle.reverse()  # in the direction data flows
                return cycle
            if state.get(up) is None:
                found = visit(up)
                if found:
                    return found
        path.pop()
        state[name] = 2
        return None

    for step in steps:
        if state.get(step.name) is None:
            found = visit(step.name)
            if found:
                return found
    return None


def load_pipeline_text(text: str) -> Any:
    """A pipeline file's document: JSON, or YAML (a superset) when PyYAML is installed."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        import yaml  # type: ignore[import-untyped]
    except ImportError as exc:
        raise BadRequest(
            "The pipeline file is not JSON, and reading YAML needs PyYAML: pip install pyyaml."
        ) from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise BadRequest(f"The pipeline file is neither JSON nor valid YAML: {exc}") from exc


# -- runs ------------------------------------------------------------------------------------
@dataclass
class StepRun:
    step: str
    #: waiting | running | succeeded | failed | cancelled | skipped | cached
    state: str = "waiting"
    run_id: str | None = None  # the transform run (and its MLflow child run)
    cached_from: str | None = None  # the run whose output a cached step reuses
    cache_key: str | None = None
    output_uri: str | None = None
    output_label: str | None = None
    error: str | None = None
    started_ms: int | None = None
    finished_ms: int | None = None
    done: int = 0
    total: int = 0


@dataclass
class PipelineRun:
    id: str
    pipeline: str
    definition: dict[str, Any]  # the pipeline as it was when the run started
    state: str = "running"  # running | succeeded | failed | cancelled
    created_ms: int = 0
    finished_ms: int | None = None
    cache: bool = True
    steps: dict[str, StepRun] = field(default_factory=dict)
    error: str | None = None
    mlflow_experiment_id: str | None = None
    heartbeat_ms: int = 0
    author: str = ""
    #: "<host>:<pid>" of the process whose orchestrator drives the run
    driver: str = ""

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["steps"] = [asdict(self.steps[s["name"]]) for s in self.definition["steps"]]
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> PipelineRun:
        known = cls.__dataclass_fields__
        values = {k: v for k, v in doc.items() if k in known}
        values["steps"] = {s["step"]: StepRun(**s) for s in doc.get("steps", [])}
        return cls(**values)


# -- the store -------------------------------------------------------------------------------
_SCHEMA = """
CREATE TABLE IF NOT EXISTS pipelines(
    name TEXT PRIMARY KEY,
    doc TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pipeline_runs(
    id TEXT PRIMARY KEY,
    pipeline TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    doc TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pipeline_cancels(
    id TEXT PRIMARY KEY
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS result_cache(
    key TEXT PRIMARY KEY,
    doc TEXT NOT NULL
) WITHOUT ROWID;
"""


class PipelineStore:
    """Pipelines, their runs, cancel requests and the result cache, in the index's SQLite
    file (next to the transform store's tables)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._local = threading.local()
        self._conn().executescript(_SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
        return conn

    def save(self, pipeline: Pipeline) -> None:
        self._conn().execute(
            "INSERT OR REPLACE INTO pipelines VALUES(?, ?)",
            (pipeline.name, json.dumps(pipeline.to_json())),
        )

    def get(self, name: str) -> Pipeline:
        row = self._conn().execute("SELECT doc FROM pipelines WHERE name=?", (name,)).fetchone()
        if row is None:
            raise NotFound(f"There is no pipeline named {name!r}.")
        return Pipeline.from_json(json.loads(row[0]))

    def pipelines(self) -> list[Pipeline]:
        rows = self._conn().execute("SELECT doc FROM pipelines ORDER BY name").fetchall()
        return [Pipeline.from_json(json.loads(r[0])) for r in rows]

    def delete(self, name: str) -> None:
        cur = self._conn().execute("DELETE FROM pipelines WHERE name=?", (name,))
        if cur.rowcount == 0:
            raise NotFound(f"There is no pipeline named {name!r}.")

    def save_run(self, run: PipelineRun) -> None:
        self._conn().execute(
            "INSERT OR REPLACE INTO pipeline_runs VALUES(?, ?, ?, ?)",
            (run.id, run.pipeline, run.created_ms, json.dumps(run.to_json())),
        )

    def get_run(self, run_id: str) -> PipelineRun:
        row = self._conn().execute("SELECT doc FROM pipeline_runs WHERE id=?", (run_id,)).fetchone()
        if row is None:
            raise NotFound(f"There is no pipeline run {run_id!r}.")
        return PipelineRun.from_json(json.loads(row[0]))

    def runs(self, pipeline: str | None = None) -> list[PipelineRun]:
        if pipeline is None:
            rows = (
                self._conn()
                .execute("SELECT doc FROM pipeline_runs ORDER BY created_ms DESC")
                .fetchall()
            )
        else:
            rows = (
                self._conn()
                .execute(
                    "SELECT doc FROM pipeline_runs WHERE pipeline=? ORDER BY created_ms DESC",
                    (pipeline,),
                )
                .fetchall()
            )
        return [PipelineRun.from_json(json.loads(r[0])) for r in rows]

    def request_cancel(self, run_id: str) -> None:
        self._conn().execute("INSERT OR IGNORE INTO pipeline_cancels VALUES(?)", (run_id,))

    def cancel_requested(self, run_id: str) -> bool:
        row = (
            self._conn().execute("SELECT 1 FROM pipeline_cancels WHERE id=?", (run_id,)).fetchone()
        )
        return row is not None

    def cache_get(self, key: str) -> dict[str, Any] | None:
        row = self._conn().execute("SELECT doc FROM result_cache WHERE key=?", (key,)).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def cache_items(self) -> list[tuple[str, dict[str, Any]]]:
        rows = self._conn().execute("SELECT key, doc FROM result_cache ORDER BY key").fetchall()
        return [(r[0], dict(json.loads(r[1]))) for r in rows]

    def cache_put(self, key: str, doc: dict[str, Any]) -> None:
        self._conn().execute(
            "INSERT OR REPLACE INTO result_cache VALUES(?, ?)", (key, json.dumps(doc))
        )


_PG_SCHEMA = """
CREATE TABLE IF NOT EXISTS pipelines(
    name TEXT PRIMARY KEY,
    doc JSONB NOT NULL
);
CREATE TABLE IF NOT EXISTS pipeline_runs(
    id TEXT PRIMARY KEY,
    pipeline TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    doc JSONB NOT NULL
);
CREATE INDEX IF NOT EXISTS pipeline_runs_by_pipeline
    ON pipeline_runs(pipeline, created_ms DESC);
CREATE TABLE IF NOT EXISTS pipeline_cancels(
    id TEXT PRIMARY KEY
);
CREATE TABLE IF NOT EXISTS result_cache(
    key TEXT PRIMARY KEY,
    doc JSONB NOT NULL
);
"""


class PgPipelineStore(PipelineStore):
    """The same store on a shared PostgreSQL index database: a team's servers share
    pipelines, runs and the result cache (a step one server ran is cached for all)."""

    def __init__(self, url: str) -> None:  # its own: no SQLite file
        from ..pg import connection

        self.path = url
        self.url = url
        with connection(url) as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('infinstor:pipeline-schema'))")
            conn.execute(_PG_SCHEMA)

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        from ..pg import connection

        with connection(self.url) as conn:
            return list(conn.execute(sql, params).fetchall())

    def _exec(self, sql: str, params: tuple[Any, ...]) -> int:
        from ..pg import connection

        with connection(self.url) as conn:
            return int(conn.execute(sql, params).rowcount)

    def save(self, pipeline: Pipeline) -> None:
        from psycopg.types.json import Jsonb

        self._exec(
            "INSERT INTO pipelines(name, doc) VALUES(%s, %s) "
            "ON CONFLICT(name) DO UPDATE SET doc=excluded.doc",
            (pipeline.name, Jsonb(pipeline.to_json())),
        )

    def get(self, name: str) -> Pipeline:
        rows = self._rows("SELECT doc FROM pipelines WHERE name=%s", (name,))
        if not rows:
            raise NotFound(f"There is no pipeline named {name!r}.")
        return Pipeline.from_json(rows[0][0])

    def pipelines(self) -> list[Pipeline]:
        return [
            Pipeline.from_json(r[0]) for r in self._rows("SELECT doc FROM pipelines ORDER BY name")
        ]

    def delete(self, name: str) -> None:
        if self._exec("DELETE FROM pipelines WHERE name=%s", (name,)) == 0:
            raise NotFound(f"There is no pipeline named {name!r}.")

    def save_run(self, run: PipelineRun) -> None:
        from psycopg.types.json import Jsonb

        self._exec(
            "INSERT INTO pipeline_runs(id, pipeline, created_ms, doc) VALUES(%s,%s,%s,%s) "
            "ON CONFLICT(id) DO UPDATE SET doc=excluded.doc",
            (run.id, run.pipeline, run.created_ms, Jsonb(run.to_json())),
        )

    def get_run(self, run_id: str) -> PipelineRun:
        rows = self._rows("SELECT doc FROM pipeline_runs WHERE id=%s", (run_id,))
        if not rows:
            raise NotFound(f"There is no pipeline run {run_id!r}.")
        return PipelineRun.from_json(rows[0][0])

    def runs(self, pipeline: str | None = None) -> list[PipelineRun]:
        if pipeline is None:
            rows = self._rows("SELECT doc FROM pipeline_runs ORDER BY created_ms DESC")
        else:
            rows = self._rows(
                "SELECT doc FROM pipeline_runs WHERE pipeline=%s ORDER BY created_ms DESC",
                (pipeline,),
            )
        return [PipelineRun.from_json(r[0]) for r in rows]

    def request_cancel(self, run_id: str) -> None:
        self._exec("INSERT INTO pipeline_cancels(id) VALUES(%s) ON CONFLICT DO NOTHING", (run_id,))

    def cancel_requested(self, run_id: str) -> bool:
        return bool(self._rows("SELECT 1 FROM pipeline_cancels WHERE id=%s", (run_id,)))

    def cache_get(self, key: str) -> dict[str, Any] | None:
        rows = self._rows("SELECT doc FROM result_cache WHERE key=%s", (key,))
        return dict(rows[0][0]) if rows else None

    def cache_items(self) -> list[tuple[str, dict[str, Any]]]:
        rows = self._rows("SELECT key, doc FROM result_cache ORDER BY key")
        return [(r[0], dict(r[1])) for r in rows]

    def cache_put(self, key: str, doc: dict[str, Any]) -> None:
        from psycopg.types.json import Jsonb

        self._exec(
            "INSERT INTO result_cache(key, doc) VALUES(%s, %s) "
            "ON CONFLICT(key) DO UPDATE SET doc=excluded.doc",
            (key, Jsonb(doc)),
        )


def open_pipeline_store(location: str) -> PipelineStore:
    """The pipeline store of an index: its PostgreSQL database for a ``postgresql://`` URL,
    else the SQLite file (a path or ``sqlite:///`` URL)."""
    from ..pg import is_postgres_url

    if is_postgres_url(location):
        return PgPipelineStore(location)
    if location.startswith("sqlite:///"):
        from ..index import sqlite_path

        location = sqlite_path(location)
    return PipelineStore(location)


# -- the cache key ---------------------------------------------------------------------------
def cache_key(
    code_sha256: str,
    entry_point: str,
    kwargs: dict[str, Any],
    input_fingerprint: str,
    requirements: list[str],
) -> str:
    """SHA-256 of the canonical JSON of what decides a step's output."""
    doc = {
        "code_sha256": code_sha256,
        "entry_point": entry_point,
        "kwargs": kwargs,
        "input_fingerprint": input_fingerprint,
        "requirements": sorted(requirements),
    }
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def output_label_name(run_id: str, step: str) -> str:
    """The label a pipeline run gives a step's output (the next steps read exactly it)."""
    return f"pipeline-{run_id}-{step}"


def _this_driver() -> str:
    import os
    import socket

    return f"{socket.gethostname()}:{os.getpid()}"


def _driver_gone(run: PipelineRun) -> bool:
    """True when nothing drives the run any more: its driving process on this machine has
    exited, or its heartbeat is older than STALE_HEARTBEAT_MS."""
    import os
    import socket

    if now_ms() - run.heartbeat_ms >= STALE_HEARTBEAT_MS:
        return True
    host, _, pid = run.driver.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another machine's process: only its heartbeat tells
    if int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


# -- the service -----------------------------------------------------------------------------
class PipelineService:
    """Pipelines over a :class:`TransformService`: definitions, runs, cancel, the cache."""

    def __init__(self, transforms: TransformService, store: PipelineStore) -> None:
        self.transforms = transforms
        self.store = store
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()
        self._closing = threading.Event()

    def close(self, timeout_s: float = 5.0) -> None:
        """The server is stopping: each orchestrator of this process ends its run as failed
        (its local steps stop with the server), saying so."""
        self._closing.set()
        deadline = time.monotonic() + timeout_s
        with self._lock:
            threads = list(self._threads.values())
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    # -- definitions --------------------------------------------------------------------------
    def check(self, doc: Any) -> Pipeline:
        """Parse and check a pipeline against this server: its transforms (and revisions)
        exist and its executors are known."""
        pipeline = parse_pipeline(doc)
        for step in pipeline.steps:
            try:
                self.transforms.store.revision(step.transform, step.revision)
            except NotFound as exc:
                raise BadRequest(f"Step {step.name!r}: {exc.message}") from exc
            if step.executor not in self.transforms.executors:
                raise BadRequest(
                    f"Step {step.name!r}: unknown executor {step.executor!r}; choose one of "
                    f"{', '.join(sorted(self.transforms.executors))}."
                )
        return pipeline

    def save(self, doc: Any, *, author: str = "") -> tuple[Pipeline, bool]:
        """(pipeline, created): a pipeline saved again under its name replaces the old one."""
        pipeline = self.check(doc)
        try:
            old = self.store.get(pipeline.name)
        except NotFound:
            old = None
        pipeline.author = author
        pipeline.updated_ms = now_ms()
        pipeline.created_ms = old.created_ms if old else pipeline.updated_ms
        self.store.save(pipeline)
        return pipeline, old is None

    def list_pipelines(self) -> list[dict[str, Any]]:
        out = []
        for pipeline in self.store.pipelines():
            doc = pipeline.to_json()
            runs = self.store.runs(pipeline.name)
            doc["last_run"] = self.run_json(runs[0]) if runs else None
            out.append(doc)
        return out

    def get(self, name: str) -> dict[str, Any]:
        return self.store.get(name).to_json()

    def delete(self, name: str) -> None:
        self.store.delete(name)

    # -- runs -----------------------------------------------------------------------------------
    def run_json(self, run: PipelineRun) -> dict[str, Any]:
        doc = run.to_json()
        ui = self.transforms.mlflow_ui_url
        doc["mlflow_run_id"] = run.id
        doc["cancel_requested"] = run.state not in PIPELINE_TERMINAL and (
            self.store.cancel_requested(run.id)
        )
        doc["mlflow_url"] = (
            f"{ui}/#/experiments/{run.mlflow_experiment_id}/runs/{run.id}"
            if ui and run.mlflow_experiment_id
            else None
        )
        for step in doc["steps"]:
            shown = step["cached_from"] or step["run_id"]
            step["run_url"] = (
                f"{ui}/#/experiments/{run.mlflow_experiment_id}/runs/{shown}"
                if ui and shown and run.mlflow_experiment_id
                else None
            )
        return doc

    def get_run_json(self, run_id: str) -> dict[str, Any]:
        return self.run_json(self.store.get_run(run_id))

    def list_runs(self, pipeline: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        if pipeline is not None:
            self.store.get(pipeline)  # 404 for an unknown name
        return [self.run_json(r) for r in self.store.runs(pipeline)[:limit]]

    def create_run(
        self, name: str, *, cache: bool = True, author: str = "", executor: str | None = None
    ) -> PipelineRun:
        """Record a pipeline run and its parent MLflow run; :meth:`drive` runs it. With
        ``executor``, every step of this run goes there (the definition is unchanged)."""
        doc = self.store.get(name).to_json()
        if executor is not None:
            if executor not in self.transforms.executors:
                raise BadRequest(
                    f"Unknown executor {executor!r}; choose one of "
                    f"{', '.join(sorted(self.transforms.executors))}."
                )
            doc["steps"] = [{**step, "executor": executor} for step in doc["steps"]]
        pipeline = self.check(doc)
        client = self.transforms.mlflow()
        experiment = f"infinstor-pipeline-{name}"
        found = client.get_experiment_by_name(experiment)
        if found:
            exp_id = found.experiment_id
        elif self.transforms.mlflow_artifact_location:
            exp_id = client.create_experiment(
                experiment,
                artifact_location=(
                    f"{self.transforms.mlflow_artifact_location.rstrip('/')}/{experiment}"
                ),
            )
        else:
            exp_id = client.create_experiment(experiment)
        parent = client.create_run(
            exp_id,
            run_name=f"pipeline {name}",
            tags={"infinstor.pipeline": name, "infinstor.cache": str(cache).lower()},
        )
        run_id = parent.info.run_id
        client.log_text(run_id, json.dumps(pipeline.to_json(), indent=1), "pipeline.json")
        run = PipelineRun(
            id=run_id,
            pipeline=name,
            definition=pipeline.to_json(),
            created_ms=now_ms(),
            cache=cache,
            steps={s.name: StepRun(step=s.name) for s in pipeline.steps},
            mlflow_experiment_id=exp_id,
            heartbeat_ms=now_ms(),
            author=author,
        )
        self.store.save_run(run)
        return run

    def start_run(
        self, name: str, *, cache: bool = True, author: str = "", executor: str | None = None
    ) -> PipelineRun:
        """Start a pipeline run, driven by a thread of this process."""
        run = self.create_run(name, cache=cache, author=author, executor=executor)
        thread = threading.Thread(
            target=self._drive_logged,
            args=(run.id,),
            daemon=True,
            name=f"infinstor-pipeline-{run.id[:8]}",
        )
        with self._lock:
            self._threads[run.id] = thread
        thread.start()
        return run

    def _drive_logged(self, run_id: str) -> None:
        try:
            self.drive(run_id)
        except Exception:
            log.exception("pipeline run %s failed unexpectedly", run_id)
            try:
                run = self.store.get_run(run_id)
                self._end(run, "failed", "the pipeline's orchestrator failed unexpectedly")
            except Exception as exc:  # noqa: BLE001 - logged above
                log.warning("could not record the end of pipeline run %s: %s", run_id, exc)
        finally:
            with self._lock:
                self._threads.pop(run_id, None)

    def cancel(self, run_id: str) -> PipelineRun:
        """Ask the run's orchestrator (in this process or another) to stop every step."""
        run = self.store.get_run(run_id)
        if run.state in PIPELINE_TERMINAL:
            raise Conflict(
                f"Pipeline run {run_id} has already {run.state}; there is nothing to cancel."
            )
        self.store.request_cancel(run_id)
        return run

    def wait(self, run_id: str, timeout: float = 600.0) -> PipelineRun:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.store.get_run(run_id)
            if run.state in PIPELINE_TERMINAL:
                return run
            time.sleep(0.2)
        raise TimeoutError(f"pipeline run {run_id} still {self.store.get_run(run_id).state}")

    def recover(self) -> None:
        """After a server restart: a run whose orchestrator stopped (its process on this
        machine is gone, or no heartbeat for a minute) is ended as failed, saying so; its
        steps that still run are cancelled."""
        for run in self.store.runs():
            if run.state in PIPELINE_TERMINAL or not _driver_gone(run):
                continue
            for srun in run.steps.values():
                if srun.state == "running" and srun.run_id:
                    try:
                        self.transforms.cancel(srun.run_id)
                    except InfinstorError:
                        pass
                if srun.state in ("waiting", "running"):
                    srun.state = "skipped" if srun.state == "waiting" else "failed"
                    srun.error = "the server stopped while the pipeline ran"
            self._end(
                run,
                "failed",
                "the process driving this pipeline stopped (server restart?); run it again",
            )

    # -- the orchestrator -------------------------------------------------------------------
    def drive(self, run_id: str, on_change: Any = None) -> PipelineRun:
        """Run a recorded pipeline run to its end, in this thread. ``on_change(run)`` is
        called whenever a step changes state (the CLI prints it)."""
        run = self.store.get_run(run_id)
        pipeline = Pipeline.from_json(run.definition)
        run.driver = _this_driver()
        cancelling = False
        while run.state not in PIPELINE_TERMINAL:
            changed = False
            if self._closing.is_set():
                why = "the server stopped while the pipeline ran; run it again"
                for srun in run.steps.values():
                    if srun.state in ("waiting", "running"):
                        srun.state = "skipped" if srun.state == "waiting" else "failed"
                        srun.error = why
                self._end(run, "failed", why)
                break
            if not cancelling and self.store.cancel_requested(run_id):
                cancelling = True
                changed = True
                for srun in run.steps.values():
                    if srun.state == "waiting":
                        srun.state, srun.error = "skipped", "the pipeline was cancelled"
                    elif srun.state == "running" and srun.run_id:
                        try:
                            self.transforms.cancel(srun.run_id)
                        except InfinstorError as exc:
                            log.warning("cancelling step %s: %s", srun.step, exc)
            for step in pipeline.steps:
                srun = run.steps[step.name]
                if srun.state == "running":
                    changed |= self._follow(run, step, srun)
            if not cancelling:
                for step in pipeline.steps:
                    srun = run.steps[step.name]
                    if srun.state != "waiting":
                        continue
                    ups = [run.steps[u] for u in step.upstream()]
                    bad = next(
                        (u for u in ups if u.state in ("failed", "cancelled", "skipped")), None
                    )
                    if bad is not None:
                        srun.state = "skipped"
                        srun.error = (
                            f"step {bad.step!r} was skipped"
                            if bad.state == "skipped"
                            else f"step {bad.step!r} {bad.state}: {bad.error or 'no reason given'}"
                        )
                        changed = True
                    elif all(u.state in STEP_DONE for u in ups):
                        self._start_step(run, step, srun, [u.output_label or "" for u in ups])
                        changed = True
            states = [s.state for s in run.steps.values()]
            if all(s in STEP_TERMINAL for s in states):
                self._conclude(run, pipeline, cancelling)
                changed = True
            run.heartbeat_ms = now_ms()
            self.store.save_run(run)
            if changed and on_change is not None:
                on_change(run)
            if run.state in PIPELINE_TERMINAL:
                break
            time.sleep(POLL_SECONDS)
        return run

    def _conclude(self, run: PipelineRun, pipeline: Pipeline, cancelled: bool) -> None:
        failed = [run.steps[s.name] for s in pipeline.steps if run.steps[s.name].state == "failed"]
        if failed:
            first = failed[0]
            self._end(
                run, "failed", f"step {first.step!r} failed: {first.error or 'no reason given'}"
            )
        elif cancelled or any(s.state in ("cancelled", "skipped") for s in run.steps.values()):
            self._end(run, "cancelled", "the pipeline was cancelled")
        else:
            self._end(run, "succeeded", None)

    def _end(self, run: PipelineRun, state: str, error: str | None) -> None:
        run.state, run.error, run.finished_ms = state, error, now_ms()
        status = {"succeeded": "FINISHED", "failed": "FAILED", "cancelled": "KILLED"}[state]
        try:
            client = self.transforms.mlflow()
            client.set_tag(run.id, "infinstor.state", state)
            if error:
                client.set_tag(run.id, "infinstor.error", error[:4000])
            client.log_text(run.id, json.dumps(run.to_json(), indent=1), "pipeline_run.json")
            client.set_terminated(run.id, status=status)
        except Exception as exc:  # noqa: BLE001 - lineage is best effort; the run ended
            log.warning("could not record the end of pipeline run %s in MLflow: %s", run.id, exc)
        self.store.save_run(run)

    def _input_for(self, step: PipelineStep, labels: list[str]) -> dict[str, Any]:
        if step.input.get("type") == "step":
            return {"type": "outputs", "labels": labels}
        return step.input

    def _start_step(
        self, run: PipelineRun, step: PipelineStep, srun: StepRun, labels: list[str]
    ) -> None:
        """Start one step: reuse a cached result when its key matches, else a transform run
        in the pipeline's experiment under the parent run."""
        srun.started_ms = now_ms()
        spec = self._input_for(step, labels)
        try:
            rev = self.transforms.store.revision(step.transform, step.revision)
            manifest = self.transforms.resolve_input(spec)
            fingerprint = manifest.fingerprint if manifest is not None else ""
            key = cache_key(
                rev.sha256, rev.entry_point, step.kwargs, fingerprint, step.requirements
            )
            srun.cache_key = key
            if run.cache and self._reuse(run, step, srun, key, rev.revision):
                return
            tr = self.transforms.start_run(
                step.transform,
                input_spec=spec,
                output_uri=step.output_uri,
                executor=step.executor,
                revision=rev.revision,
                kwargs=step.kwargs,
                requirements=step.requirements,
                label_output=output_label_name(run.id, step.name),
                mlflow_experiment=f"infinstor-pipeline-{run.pipeline}",
                mlflow_run_name=f"{step.name} ({step.transform} r{rev.revision})",
                mlflow_tags={
                    "mlflow.parentRunId": run.id,
                    "infinstor.pipeline": run.pipeline,
                    "infinstor.pipeline_step": step.name,
                },
            )
        except InfinstorError as exc:
            srun.state, srun.error, srun.finished_ms = "failed", exc.message, now_ms()
            return
        except Exception as exc:  # the step fails, the pipeline says why
            log.exception("pipeline %s: step %s could not start", run.pipeline, step.name)
            srun.state, srun.error = "failed", f"the step could not start: {exc}"
            srun.finished_ms = now_ms()
            return
        if tr.manifest_fingerprint is not None and tr.manifest_fingerprint != fingerprint:
            # The view changed between the cache check and the run (a view of "now").
            srun.cache_key = cache_key(
                rev.sha256,
                rev.entry_point,
                step.kwargs,
                tr.manifest_fingerprint,
                step.requirements,
            )
        try:
            self.transforms.mlflow().set_tag(tr.id, "infinstor.cache_key", srun.cache_key)
        except Exception as exc:  # noqa: BLE001 - lineage is best effort
            log.warning("could not tag MLflow run %s: %s", tr.id, exc)
        srun.state, srun.run_id, srun.output_uri = "running", tr.id, tr.output_uri
        srun.total = tr.total

    def _reuse(
        self, run: PipelineRun, step: PipelineStep, srun: StepRun, key: str, revision: int
    ) -> bool:
        """A step whose key a successful step had: its output and label, recorded as a
        cached child run in MLflow. False when there is none (or it is gone)."""
        hit = self.store.cache_get(key)
        if hit is None:
            return False
        try:
            earlier = self.transforms.store.get_run(hit["run_id"])
            if earlier.state != "succeeded" or not earlier.output_label:
                return False
            self.transforms.service.get_label(earlier.output_label)
        except NotFound:
            return False
        client = self.transforms.mlflow()
        child = client.create_run(
            run.mlflow_experiment_id,
            run_name=f"{step.name} (cached: {step.transform} r{revision})",
            tags={
                "mlflow.parentRunId": run.id,
                "infinstor.pipeline": run.pipeline,
                "infinstor.pipeline_step": step.name,
                "infinstor.cached_from": earlier.id,
                "infinstor.cache_key": key,
                "infinstor.output_uri": earlier.output_uri,
                "infinstor.output_label": earlier.output_label,
            },
        )
        client.set_terminated(child.info.run_id, status="FINISHED")
        srun.state = "cached"
        srun.cached_from = earlier.id
        srun.run_id = child.info.run_id
        srun.output_uri = earlier.output_uri
        srun.output_label = earlier.output_label
        srun.done = srun.total = earlier.total
        srun.finished_ms = now_ms()
        return True

    def _follow(self, run: PipelineRun, step: PipelineStep, srun: StepRun) -> bool:
        """Update a running step from its transform run; True when it ended."""
        assert srun.run_id is not None
        try:
            tr = self.transforms.refresh(srun.run_id)
        except InfinstorError as exc:
            log.warning("following step %s failed: %s", step.name, exc)
            return False
        srun.done, srun.total = tr.done, tr.total
        if tr.state not in TERMINAL:
            return False
        srun.finished_ms = now_ms()
        if tr.state == "succeeded" and not tr.output_label:
            srun.state = "failed"
            srun.error = "its output could not be labelled for the next steps" + (
                f": {tr.label_error}" if tr.label_error else ""
            )
            return True
        srun.state = tr.state
        srun.error = tr.error
        srun.output_label = tr.output_label
        if tr.state == "succeeded" and srun.cache_key:
            self.store.cache_put(
                srun.cache_key,
                {
                    "run_id": tr.id,
                    "output_uri": tr.output_uri,
                    "output_label": tr.output_label,
                    "transform": tr.transform,
                    "revision": tr.revision,
                    "pipeline_run": run.id,
                    "step": step.name,
                    "created_ms": now_ms(),
                },
            )
        return True
