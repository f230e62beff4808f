"""Running a captured cell over a view: revision -> manifest -> staged files -> MLflow run ->
executor, with the run's status mirrored back into MLflow when it ends."""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from ..errors import BadRequest, InfinstorError
from ..services.core import InfinstorService, parse_s3_uri
from ..timespec import TimeSpec, now_ms
from .capture import SCRIPT, capture, parse_kwargs
from .executors import Launch, LocalExecutor, TransformExecutor, log_tail
from .manifest import Manifest
from .store import TransformRevision, TransformRun, TransformStore

log = logging.getLogger(__name__)

DRIVER_PATH = str(Path(__file__).with_name("driver.py"))
TERMINAL = ("succeeded", "failed", "cancelled")
_MLFLOW_STATUS = {"succeeded": "FINISHED", "failed": "FAILED", "cancelled": "KILLED"}


def _mlflow_client() -> Any:
    try:
        from mlflow.tracking import MlflowClient
    except ImportError as exc:
        raise BadRequest("Transforms record their lineage in MLflow: pip install mlflow.") from exc
    return MlflowClient()


class TransformService:
    def __init__(self, service: InfinstorService, store: TransformStore, workdir: str,
                 executors: dict[str, TransformExecutor] | None = None) -> None:
        self.service = service
        self.store = store
        self.workdir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.executors: dict[str, TransformExecutor] = executors or {"local": LocalExecutor()}
        self._launches: dict[str, Launch] = {}
        self._lock = threading.Lock()

    # -- revisions --------------------------------------------------------------------------
    def save_revision(self, name: str, source: str, *, author: str = "",
                      description: str = "") -> TransformRevision:
        if not name or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise BadRequest(f"{name!r} is not a valid transform name: use letters, digits, "
                             "'-', '_' and '.'.")
        captured = capture(source)
        revs = self.store.revisions(name)
        if revs and revs[0].sha256 == captured.sha256:
            return revs[0]  # the same code again is the same revision
        return self.store.add_revision(TransformRevision(
            name=name, revision=0, code=captured.code, sha256=captured.sha256,
            entry_point=captured.entry_point, author=author, description=description,
            created_ms=now_ms()))

    # -- inputs -----------------------------------------------------------------------------
    def resolve_input(self, spec: dict[str, Any]) -> Manifest | None:
        return resolve_input(self.service, spec)

    # -- runs -------------------------------------------------------------------------------
    def start_run(self, name: str, *, input_spec: dict[str, Any], output_uri: str,
                  executor: str = "local", revision: int | None = None,
                  kwargs: Any = None) -> TransformRun:
        rev = self.store.revision(name, revision)
        if executor not in self.executors:
            raise BadRequest(f"Unknown executor {executor!r}; choose one of "
                             f"{', '.join(sorted(self.executors))}.")
        out_bucket, out_prefix = parse_s3_uri(output_uri)
        kw = parse_kwargs(kwargs)
        manifest = self.resolve_input(input_spec)
        if manifest is None:
            manifest = Manifest.of("", "", None, [])
        client = _mlflow_client()
        experiment = f"infinstor-transform-{name}"
        found = client.get_experiment_by_name(experiment)
        exp_id = found.experiment_id if found else client.create_experiment(experiment)
        mlrun = client.create_run(exp_id, run_name=f"{name} r{rev.revision}")
        run_id = mlrun.info.run_id
        out_root = f"s3://{out_bucket}/{out_prefix.rstrip('/') + '/' if out_prefix else ''}"
        staging = f"{out_root}_infinstor_staging/{run_id}/"
        s3 = self.service.s3()
        stage_bucket, stage_key = parse_s3_uri(staging)
        s3.put_object(Bucket=stage_bucket, Key=stage_key + "manifest.jsonl",
                      Body=manifest.to_jsonl().encode("utf-8"))
        s3.put_object(Bucket=stage_bucket, Key=stage_key + "code.py",
                      Body=rev.code.encode("utf-8"))
        s3.upload_file(DRIVER_PATH, stage_bucket, stage_key + "driver.py")
        view = manifest.spec
        params = {
            "transform_name": name,
            "transform_revision": rev.revision,
            "code_sha256": rev.sha256,
            "entry_point": rev.entry_point,
            "input_spec": _input_text(input_spec),
            "manifest_fingerprint": manifest.fingerprint,
            "object_count": len(manifest.objects),
            "executor": executor,
        }
        params.update(_view_params(view))
        for key, value in params.items():
            client.log_param(run_id, key, value)
        client.set_tag(run_id, "infinstor.output_uri", f"{out_root}{run_id}/")
        client.set_tag(run_id, "infinstor.staging_uri", staging)
        client.log_text(run_id, rev.code, "transform/code.py")
        client.log_text(run_id, manifest.to_jsonl(), "input/manifest.jsonl")
        log_path = os.path.join(self.workdir, f"{run_id}.log")
        run = TransformRun(
            id=run_id, transform=name, revision=rev.revision, executor=executor,
            input_spec=input_spec, output_uri=f"{out_root}{run_id}/", kwargs=kw,
            state="queued", created_ms=now_ms(), total=len(manifest.objects),
            manifest_fingerprint=manifest.fingerprint, staging_uri=staging,
            mlflow_run_id=run_id, mlflow_experiment_id=exp_id, log_path=log_path,
        )
        launch = Launch(
            run_id=run_id, driver_uri=staging + "driver.py",
            manifest_uri=staging + "manifest.jsonl", code_uri=staging + "code.py",
            output_uri=out_root, entry_point=rev.entry_point if rev.entry_point else SCRIPT,
            kwargs=kw, log_path=log_path, local_driver_path=DRIVER_PATH,
        )
        self.store.save_run(run)
        try:
            run.details = self.executors[executor].start(launch)
        except InfinstorError as exc:
            self._finish(run, "failed", str(exc))
            raise
        run.state = "running"
        self.store.save_run(run)
        with self._lock:
            self._launches[run_id] = launch
        threading.Thread(target=self._watch, args=(run_id,), daemon=True,
                         name=f"infinstor-transform-{run_id[:8]}").start()
        return run

    def _watch(self, run_id: str) -> None:
        while True:
            run = self.refresh(run_id)
            if run.state in TERMINAL:
                return
            time.sleep(0.5)

    def refresh(self, run_id: str) -> TransformRun:
        run = self.store.get_run(run_id)
        launch = self._launches.get(run_id)
        if run.state in TERMINAL or launch is None:
            return run
        status = self.executors[run.executor].poll(launch, run.details)
        run.done, run.total = status.done, status.total or run.total
        if status.state in TERMINAL:
            self._finish(run, status.state, status.detail)
        else:
            self.store.save_run(run)
        return run

    def _finish(self, run: TransformRun, state: str, detail: str | None) -> None:
        with self._lock:
            if self.store.get_run(run.id).state in TERMINAL:
                return
            run.state = state
            run.error = detail
            run.finished_ms = now_ms()
            self.store.save_run(run)
        try:
            client = _mlflow_client()
            if run.log_path and os.path.exists(run.log_path):
                client.log_artifact(run.id, run.log_path, "logs")
            client.set_tag(run.id, "infinstor.state", state)
            client.set_terminated(run.id, status=_MLFLOW_STATUS[state])
        except Exception as exc:  # noqa: BLE001 - lineage is best effort once the job ended
            log.warning("could not record the end of transform run %s in MLflow: %s",
                        run.id, exc)

    def cancel(self, run_id: str) -> TransformRun:
        run = self.store.get_run(run_id)
        launch = self._launches.get(run_id)
        if run.state in TERMINAL:
            raise BadRequest(f"Run {run_id} has already {run.state}.")
        if launch is not None:
            self.executors[run.executor].cancel(launch, run.details)
        self.store.save_run(run)
        return run

    def wait(self, run_id: str, timeout: float = 300.0) -> TransformRun:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.refresh(run_id)
            if run.state in TERMINAL:
                return run
            time.sleep(0.2)
        raise TimeoutError(f"transform run {run_id} still {self.store.get_run(run_id).state}")

    def log(self, run_id: str, lines: int = 200) -> str:
        return log_tail(self.store.get_run(run_id).log_path, lines)


def _input_text(spec: dict[str, Any]) -> str:
    import json

    return json.dumps(spec, sort_keys=True)[:500]


def _view_params(view: TimeSpec | None) -> dict[str, Any]:
    if view is None:
        return {}
    if view.is_slice:
        return {"infinstor_slice_start": view.start_ms, "infinstor_slice_end": view.end_ms}
    return {"infinstor_snapshot_time": view.end_ms}


def resolve_input(service: InfinstorService, spec: dict[str, Any]) -> Manifest | None:
    """The manifest of an input: the original InfinStor dict forms, a label, a view, or
    no input."""
    kind = spec.get("type")
    svc = service
    bucket: str
    if kind in (None, "no-input-data"):
        return None
    if kind == "label":
        label = svc.get_label(str(spec.get("label", "")).removeprefix("label:/"))
        view = svc.label_spec(label)
        bucket, prefix = label.bucket, label.prefix
    elif kind in ("infinsnap", "infinslice", "view"):
        bucket = spec.get("bucketname") or spec.get("bucket")
        if not bucket:
            raise BadRequest("The input needs a bucket (bucketname).")
        prefix = spec.get("prefix") or ""
        text = spec.get("time_spec") or spec.get("at") or spec.get("slice") or "now"
        view = svc.parse_spec(text)
        if kind == "infinslice" and not view.is_slice:
            raise BadRequest("An infinslice input needs a slice time spec (tmA-tmB or A/B).")
    else:
        raise BadRequest(
            f"Unknown input type {kind!r}; use infinsnap, infinslice, label, view or "
            "no-input-data.")
    return Manifest.of(bucket, prefix, view, svc.iter_objects(bucket, spec=view,
                                                              prefix=prefix))
