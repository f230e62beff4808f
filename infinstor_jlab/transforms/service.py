"""Running a captured cell over a view: revision -> manifest -> staged files -> MLflow run ->
executor, with the run's status mirrored back into MLflow when it ends."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from ..errors import BadRequest, Conflict, InfinstorError, NotFound, UnknownBucket
from ..redact import redact
from ..redact import tracking_uri as _default_tracking_uri
from ..services.core import LABEL_NAME_RE, InfinstorService, parse_s3_uri
from ..services.s3 import call_s3
from ..timespec import now_ms
from ..tracking import status as tracking_status
from .capture import SCRIPT, CapturedCode, capture, parse_kwargs
from .executors import Launch, LocalExecutor, TransformExecutor, log_tail
from .inputs import _mlflow_client, resolve_input, view_params
from .manifest import Manifest
from .store import TransformRevision, TransformRun, TransformStore

log = logging.getLogger(__name__)

DRIVER_PATH = str(Path(__file__).with_name("driver.py"))
TERMINAL = ("succeeded", "failed", "cancelled")
_MLFLOW_STATUS = {"succeeded": "FINISHED", "failed": "FAILED", "cancelled": "KILLED"}


_MAX_REQUIREMENTS = 50

MLFLOW_MISSING_MESSAGE = (
    "Transforms record their lineage in MLflow, which is not installed on this Jupyter "
    "server: pip install mlflow (or 'infinstor_jlab[mlflow]'), then restart JupyterLab."
)


class MlflowMissing(InfinstorError):
    """No run can start: MLflow cannot be imported on the server."""

    status = 503


def _check_mlflow() -> None:
    try:
        import mlflow.tracking  # noqa: F401
    except ImportError as exc:
        raise MlflowMissing(MLFLOW_MISSING_MESSAGE) from exc


def check_requirements(value: Any) -> list[str]:
    """Extra pip requirements: a list of requirement strings (one per line in the dialog)."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        value = [line for line in value.splitlines()]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRequest(
            '"requirements" must be a list of pip requirements, e.g. ["pillow>=10", "pandas"].'
        )
    reqs = [v.strip() for v in value if v.strip() and not v.strip().startswith("#")]
    if len(reqs) > _MAX_REQUIREMENTS:
        raise BadRequest(f"At most {_MAX_REQUIREMENTS} extra requirements, please.")
    for req in reqs:
        # Options (-r, --index-url, ...) would change where pip looks, not what it installs.
        if req.startswith("-") or any(c in req for c in "\n\r\t"):
            raise BadRequest(
                f"{req!r} is not a pip requirement; give package specifiers "
                "such as 'pillow>=10' (pip options are not accepted)."
            )
    return reqs


class TransformService:
    """Transform revisions and runs: the logic behind the REST handlers and the tests."""

    def __init__(
        self,
        service: InfinstorService,
        store: TransformStore,
        workdir: str,
        executors: dict[str, TransformExecutor] | None = None,
        *,
        default_output_uri: str = "",
        mlflow_tracking_uri: str | None = None,
        mlflow_ui_url: str = "",
        mlflow_artifact_location: str = "",
    ) -> None:
        self.service = service
        self.store = store
        self.workdir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.executors: dict[str, TransformExecutor] = executors or {"local": LocalExecutor()}
        for ex in self.executors.values():
            if ex.s3_client_factory is None:
                ex.s3_client_factory = service.s3  # detached jobs are followed from S3
        self.default_output_uri = default_output_uri
        self.mlflow_tracking_uri = mlflow_tracking_uri or None
        self.mlflow_ui_url = mlflow_ui_url.rstrip("/")
        self.mlflow_artifact_location = mlflow_artifact_location
        self._launches: dict[str, Launch] = {}
        self._lock = threading.Lock()
        # One run's status is read, changed and saved under this lock: a cancel and a poll
        # never overwrite each other's view of the run.
        self._state_lock = threading.RLock()
        self._finishing: set[str] = set()  # runs whose end is being recorded (see _finish)
        self._closing = threading.Event()

    def close(self) -> None:
        """The server is stopping: stop watching runs, and stop the local and Spark drivers
        (they cannot be followed by the next server; EMR steps go on and it picks them up)."""
        self._closing.set()
        for executor in self.executors.values():
            try:
                executor.stop_all()
            except Exception:
                logging.getLogger(__name__).exception("stopping %s runs failed", executor.name)

    def mlflow(self) -> Any:
        return _mlflow_client(self.mlflow_tracking_uri)

    def _redact(self, exc: object) -> str:
        """An error's text for the log, without the tracking store's credentials or path."""
        return redact(exc, [self.mlflow_tracking_uri or _default_tracking_uri()])

    # -- what the dialog offers ---------------------------------------------------------------
    def executors_info(self) -> dict[str, Any]:
        # The run dialog asks this as it opens: without MLflow no run can start, and the
        # user hears so then, not after filling the whole form.
        _check_mlflow()
        infos = []
        for name, ex in self.executors.items():
            ok, detail = ex.available()
            infos.append({"name": name, "title": ex.title, "available": ok, "detail": detail})
        return {
            "executors": infos,
            "default_executor": "local"
            if "local" in self.executors
            else next(iter(self.executors), ""),
            "default_output_uri": self.default_output_uri,
            "mlflow_ui_url": self.mlflow_ui_url,
            "tracking": tracking_status(self.mlflow_tracking_uri),
        }

    def check(self, source: str) -> CapturedCode:
        """Clean, syntax-check and detect the entry point without storing anything."""
        return capture(source)

    def list_transforms(self) -> list[dict[str, Any]]:
        out = []
        for name in self.store.names():
            revs = [r.to_json(with_code=False) for r in self.store.revisions(name)]
            out.append({"name": name, "latest": revs[0], "revisions": revs})
        return out

    def get_transform(self, name: str) -> dict[str, Any]:
        revs = self.store.revisions(name)
        if not revs:
            raise NotFound(f"There is no transform named {name!r}.")
        return {"name": name, "revisions": [r.to_json() for r in revs]}

    def delete_transform(self, name: str) -> None:
        self.store.delete(name)

    def list_runs(
        self, transform: str | None = None, *, active: bool = False, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Runs, newest first (of one transform, or all); ``active``: queued or running only."""
        runs = self.store.runs(transform)
        if active:
            runs = [r for r in runs if r.state in ("queued", "running")]
        return [self.run_json(r) for r in runs[:limit]]

    def get_run_json(self, run_id: str) -> dict[str, Any]:
        return self.run_json(self.store.get_run(run_id))

    def run_json(self, run: TransformRun) -> dict[str, Any]:
        doc = run.to_json()
        doc.pop("log_path", None)  # a path on the server; the log route serves it
        doc["mlflow_url"] = (
            f"{self.mlflow_ui_url}/#/experiments/{run.mlflow_experiment_id}/runs/{run.id}"
            if self.mlflow_ui_url and run.mlflow_experiment_id
            else None
        )
        return doc

    # -- revisions --------------------------------------------------------------------------
    def save_revision(
        self, name: str, source: str, *, author: str = "", description: str = ""
    ) -> TransformRevision:
        return self.save_revision_reporting(name, source, author=author, description=description)[0]

    def save_revision_reporting(
        self, name: str, source: str, *, author: str = "", description: str = ""
    ) -> tuple[TransformRevision, bool]:
        """(revision, created): the same cleaned code as the latest revision is that
        revision, not a new one."""
        if (
            not name
            or len(name) > 128
            or not name[0].isalnum()
            or not name.replace("-", "").replace("_", "").replace(".", "").isalnum()
            or not name.isascii()
        ):
            raise BadRequest(
                f"{name!r} is not a valid transform name: use 1-128 letters, "
                "digits, '-', '_' and '.', starting with a letter or digit."
            )
        if name == "check":
            raise BadRequest(
                "'check' is reserved (POST /infinstor/transforms/check); pick "
                "another transform name."
            )
        captured = capture(source)
        revs = self.store.revisions(name)
        if revs and revs[0].sha256 == captured.sha256:
            return revs[0], False
        return self.store.add_revision(
            TransformRevision(
                name=name,
                revision=0,
                code=captured.code,
                sha256=captured.sha256,
                entry_point=captured.entry_point,
                author=author,
                description=description,
                created_ms=now_ms(),
            )
        ), True

    # -- inputs -----------------------------------------------------------------------------
    def resolve_input(self, spec: dict[str, Any]) -> Manifest | None:
        return resolve_input(self.service, spec, mlflow_tracking_uri=self.mlflow_tracking_uri)

    # -- runs -------------------------------------------------------------------------------
    def start_run(
        self,
        name: str,
        *,
        input_spec: dict[str, Any],
        output_uri: str | None = None,
        executor: str = "local",
        revision: int | None = None,
        kwargs: Any = None,
        requirements: Any = None,
        label_output: str | None = None,
        mlflow_experiment: str | None = None,
        mlflow_run_name: str | None = None,
        mlflow_tags: dict[str, str] | None = None,
    ) -> TransformRun:
        """Resolve the input to a manifest, stage manifest + code + driver next to the output,
        open the MLflow run, start the executor and watch it until it ends.

        ``mlflow_experiment``, ``mlflow_run_name`` and ``mlflow_tags``: where the run is
        recorded (default: the transform's own experiment); a pipeline puts its steps' runs
        in its experiment with ``mlflow.parentRunId``."""
        rev = self.store.revision(name, revision)
        if executor not in self.executors:
            raise BadRequest(
                f"Unknown executor {executor!r}; choose one of {', '.join(sorted(self.executors))}."
            )
        ok, why = self.executors[executor].available()
        if not ok:
            raise BadRequest(f"The {executor} executor cannot run here: {why}.")
        output_uri = output_uri or self.default_output_uri
        if not output_uri:
            raise BadRequest(
                "Say where the output goes: an S3 URI such as "
                "s3://my-bucket/outputs/ (or configure "
                "InfinstorApp.transform_output_uri)."
            )
        if not isinstance(output_uri, str) or not output_uri.strip().startswith("s3://"):
            raise BadRequest(
                f"The output location {str(output_uri)[:100]!r} is not an S3 URI; "
                "write it as s3://BUCKET/PREFIX/."
            )
        out_bucket, out_prefix = parse_s3_uri(output_uri)
        kw = parse_kwargs(kwargs)
        reqs = check_requirements(requirements)
        if label_output:
            self._check_output_label(label_output, out_bucket)
        if not isinstance(input_spec, dict):
            raise BadRequest(
                '"input" must be an object such as {"type": "label", "label": "my-label"}.'
            )
        manifest = self.resolve_input(input_spec)
        if manifest is None:
            manifest = Manifest.of("", "", None, [])
        # The output bucket must exist before anything is recorded about the run.
        call_s3(self.service.s3().head_bucket, out_bucket, Bucket=out_bucket)
        client = self.mlflow()
        experiment = mlflow_experiment or f"infinstor-transform-{name}"
        found = client.get_experiment_by_name(experiment)
        if found:
            exp_id = found.experiment_id
        elif self.mlflow_artifact_location:
            exp_id = client.create_experiment(
                experiment,
                artifact_location=f"{self.mlflow_artifact_location.rstrip('/')}/{experiment}",
            )
        else:
            exp_id = client.create_experiment(experiment)
        mlrun = client.create_run(
            exp_id, run_name=mlflow_run_name or f"{name} r{rev.revision}", tags=mlflow_tags
        )
        run_id = mlrun.info.run_id
        out_root = f"s3://{out_bucket}/{out_prefix.rstrip('/') + '/' if out_prefix else ''}"
        staging = f"{out_root}_infinstor_staging/{run_id}/"
        log_path = os.path.join(self.workdir, f"{run_id}.log")
        run = TransformRun(
            id=run_id,
            transform=name,
            revision=rev.revision,
            executor=executor,
            input_spec=input_spec,
            output_uri=f"{out_root}{run_id}/",
            kwargs=kw,
            state="queued",
            created_ms=now_ms(),
            total=len(manifest.objects),
            manifest_fingerprint=manifest.fingerprint,
            staging_uri=staging,
            mlflow_run_id=run_id,
            mlflow_experiment_id=exp_id,
            log_path=log_path,
            requirements=reqs,
            label_output=label_output or None,
        )
        self.store.save_run(run)
        try:
            staged = self._stage(staging, manifest, rev)
            view = manifest.spec
            params: dict[str, Any] = {
                "transform_name": name,
                "transform_revision": rev.revision,
                "code_sha256": rev.sha256,
                "entry_point": rev.entry_point,
                "input_spec": _input_text(input_spec),
                "manifest_fingerprint": manifest.fingerprint,
                "object_count": len(manifest.objects),
                "executor": executor,
            }
            if reqs:
                params["requirements"] = json.dumps(reqs)[:500]
            # The run alone must reproduce its output: the kwargs as a param (whole when it
            # fits MLflow's 500-character limit) and always whole as transform/kwargs.json.
            kw_text = json.dumps(kw, sort_keys=True, default=str)
            params["kwargs"] = (
                kw_text if len(kw_text) <= 500 else "(too long; see transform/kwargs.json)"
            )
            params.update(view_params(view))
            if view is not None:
                # Where the view was, next to its times, so the run names its whole input.
                params["infinstor_bucket"] = manifest.bucket
                params["infinstor_prefix"] = manifest.prefix
                if view.label:
                    params["infinstor_label"] = view.label
            for key, value in params.items():
                client.log_param(run_id, key, value)
            client.set_tag(run_id, "infinstor.output_uri", f"{out_root}{run_id}/")
            client.set_tag(run_id, "infinstor.staging_uri", staging)
            client.log_text(run_id, rev.code, "transform/code.py")
            client.log_text(run_id, kw_text, "transform/kwargs.json")
            client.log_text(run_id, manifest.to_jsonl(), "input/manifest.jsonl")
            launch = Launch(
                run_id=run_id,
                driver_uri=staging + "driver.py",
                manifest_uri=staging + "manifest.jsonl",
                code_uri=staging + "code.py",
                output_uri=out_root,
                entry_point=rev.entry_point if rev.entry_point else SCRIPT,
                kwargs=kw,
                log_path=log_path,
                local_driver_path=DRIVER_PATH,
                requirements=reqs,
                manifest_sha256=staged["manifest.jsonl"][0],
                manifest_version_id=staged["manifest.jsonl"][1],
                code_sha256=staged["code.py"][0],
                code_version_id=staged["code.py"][1],
            )
            run.details = self.executors[executor].start(launch)
        except InfinstorError as exc:
            self._finish(run, "failed", str(exc))
            raise
        except Exception as exc:
            self._finish(run, "failed", f"the run could not start: {exc}")
            raise
        for key in ("cluster_id", "step_id"):
            if run.details.get(key):
                client.log_param(run_id, f"emr_{key}", run.details[key])
        if run.details.get("log_location"):
            client.set_tag(run_id, "infinstor.emr_log_uri", run.details["log_location"])
        run.state = "running"
        self.store.save_run(run)
        with self._lock:
            self._launches[run_id] = launch
        self._start_watch(run_id)
        return run

    def _stage(
        self, staging: str, manifest: Manifest, rev: TransformRevision
    ) -> dict[str, tuple[str, str | None]]:
        """Put the run's files under ``staging``; {name: (sha256, version id or None)}: the
        driver gets these in its arguments and runs only exactly these bytes."""
        s3 = self.service.s3()
        bucket, key = parse_s3_uri(staging)
        with open(DRIVER_PATH, "rb") as fh:
            driver = fh.read()
        staged: dict[str, tuple[str, str | None]] = {}
        for name, body in (
            ("manifest.jsonl", manifest.to_jsonl().encode("utf-8")),
            ("code.py", rev.code.encode("utf-8")),
            ("driver.py", driver),
        ):
            resp = call_s3(s3.put_object, bucket, Bucket=bucket, Key=key + name, Body=body)
            version = (resp or {}).get("VersionId")
            staged[name] = (
                hashlib.sha256(body).hexdigest(),
                version if version and version != "null" else None,
            )
        return staged

    def _check_output_label(self, label: str, out_bucket: str) -> None:
        if not LABEL_NAME_RE.match(label):
            raise BadRequest(
                f"{label!r} is not a valid label name: use 1-128 letters, digits, "
                "'.', '_' or '-', starting with a letter or digit."
            )
        try:
            self.service.get_label(label)
        except NotFound:
            pass
        else:
            raise Conflict(
                f"A label named {label!r} already exists; pick another name for the output's label."
            )
        try:
            self.service.index.get_bucket(out_bucket)
        except UnknownBucket as exc:
            raise BadRequest(
                f"Labelling the output needs its bucket {out_bucket!r} tracked "
                f"first (infinstor-jlab track {out_bucket}), or run without "
                "a label."
            ) from exc

    def _start_watch(self, run_id: str) -> None:
        threading.Thread(
            target=self._watch,
            args=(run_id,),
            daemon=True,
            name=f"infinstor-transform-{run_id[:8]}",
        ).start()

    def recover(self) -> None:
        """After a server restart: runs of detached executors (EMR) are watched again; runs
        whose worker processes died with the old server are marked failed, not left
        running forever."""
        for run in self.store.runs():
            if run.state not in ("queued", "running"):
                continue
            ex = self.executors.get(run.executor)
            if ex is not None and ex.detached and run.details:
                launch = Launch(
                    run_id=run.id,
                    driver_uri="",
                    manifest_uri="",
                    code_uri="",
                    output_uri=run.output_uri,
                    entry_point="",
                    kwargs=run.kwargs,
                    log_path=run.log_path or "",
                    local_driver_path=DRIVER_PATH,
                )
                with self._lock:
                    self._launches[run.id] = launch
                self._start_watch(run.id)
            else:
                self._finish(
                    run,
                    "failed",
                    "the Jupyter server stopped while this run was running; run it again",
                )

    def _watch(self, run_id: str) -> None:
        while not self._closing.is_set():
            try:
                run = self.refresh(run_id)
            except Exception as exc:  # noqa: BLE001 - keep watching through a bad poll
                log.warning("polling transform run %s failed: %s", run_id, self._redact(exc))
                self._closing.wait(5.0)
                continue
            if run.state in TERMINAL:
                return
            self._closing.wait(0.5)

    def refresh(self, run_id: str) -> TransformRun:
        """The run with its executor's latest status (and, when it just ended, its output
        indexed, labelled and its MLflow run closed)."""
        with self._state_lock:
            run = self.store.get_run(run_id)
            launch = self._launches.get(run_id)
            if run.state in TERMINAL or launch is None:
                return run
            status = self.executors[run.executor].poll(launch, run.details)
            run.done, run.total = status.done, status.total or run.total
            if status.state not in TERMINAL:
                self.store.save_run(run)
                return run
            if run_id in self._finishing:
                return run  # another thread is recording the end
            self._finishing.add(run_id)
        try:
            if status.state == "succeeded":
                # Before the run says succeeded: whoever sees that can browse (and has) the
                # output.
                self._index_output(run)
            self._finish(run, status.state, status.detail, claimed=True)
        finally:
            with self._state_lock:
                self._finishing.discard(run_id)
        return self.store.get_run(run_id)

    def _index_output(self, run: TransformRun) -> None:
        from ..services.events import relist_prefix

        bucket, prefix = parse_s3_uri(run.output_uri)
        try:
            self.service.index.get_bucket(bucket)
        except UnknownBucket:
            return  # not tracked: nothing to keep current, nothing to label
        try:
            relist_prefix(self.service.s3(), self.service.index, bucket, prefix)
            if run.label_output:
                label = self.service.create_label(
                    run.label_output,
                    bucket,
                    prefix,
                    self.service.parse_spec("now"),
                    description=(
                        f"Output of transform {run.transform} r{run.revision}, "
                        f"MLflow run {run.id}, over "
                        f"{_input_text(run.input_spec)[:300]}"
                    ),
                )
                run.output_label = label.name
                try:
                    self.mlflow().set_tag(run.id, "infinstor.output_label", label.name)
                except Exception as exc:  # noqa: BLE001 - the label exists either way
                    log.warning("could not tag MLflow run %s: %s", run.id, self._redact(exc))
        except InfinstorError as exc:
            run.label_error = str(exc)
        self.store.save_run(run)

    def _finish(
        self, run: TransformRun, state: str, detail: str | None, *, claimed: bool = False
    ) -> None:
        """Record the end of a run: in MLflow first, then in the store, so that whoever sees
        the run ended (the REST API, ``wait``) also finds its MLflow run closed. One thread
        records it (``claimed``: the caller put the run in ``_finishing``); the others
        (pollers of the same run) see it running until then."""
        with self._state_lock:
            if self.store.get_run(run.id).state in TERMINAL:
                return
            if not claimed:
                if run.id in self._finishing:
                    return
                self._finishing.add(run.id)
        try:
            self._mark_output(run, state, detail)
            try:
                client = self.mlflow()
                if run.log_path and os.path.exists(run.log_path):
                    client.log_artifact(run.id, run.log_path, "logs")
                client.set_tag(run.id, "infinstor.state", state)
                client.set_terminated(run.id, status=_MLFLOW_STATUS[state])
            except Exception as exc:  # noqa: BLE001 - lineage is best effort; the job ended
                log.warning(
                    "could not record the end of transform run %s in MLflow: %s",
                    run.id,
                    self._redact(exc),
                )
            with self._state_lock:
                run.state = state
                run.error = detail
                run.finished_ms = now_ms()
                self.store.save_run(run)
        finally:
            if not claimed:
                with self._state_lock:
                    self._finishing.discard(run.id)

    def _mark_output(self, run: TransformRun, state: str, detail: str | None) -> None:
        """A failed or cancelled run's output says so, next to whatever partial outputs it
        has: ``_FAILED.json`` (the driver's, listing each failed object, when it wrote one;
        else this one with the run's error) or ``_CANCELLED.json``, shaped like
        ``_SUCCESS.json``. Best effort: the run ends either way."""
        if state not in ("failed", "cancelled") or not run.output_uri.startswith("s3://"):
            return
        from botocore.exceptions import ClientError

        name = "_FAILED.json" if state == "failed" else "_CANCELLED.json"
        bucket, prefix = parse_s3_uri(run.output_uri)
        key = (prefix.rstrip("/") + "/" if prefix else "") + name
        try:
            s3 = self.service.s3()
            if state == "failed":
                try:
                    s3.head_object(Bucket=bucket, Key=key)
                    run.output_marker = name  # the driver's own, with each failure
                    return
                except ClientError as exc:
                    if exc.response.get("Error", {}).get("Code") not in (
                        "404",
                        "NoSuchKey",
                        "NotFound",
                    ):
                        raise
            doc: dict[str, Any] = {
                "run_id": run.id,
                "state": state,
                "transform": run.transform,
                "revision": run.revision,
                "executor": run.executor,
                "started": run.created_ms / 1000,
                "objects": run.total,
                "done": run.done,
                "fingerprint": run.manifest_fingerprint,
                "finished": time.time(),
                "error": detail,
            }
            if state == "failed":
                doc["failures"] = [
                    {"key": "*", "error": detail or "the run failed", "traceback": ""}
                ]
            s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(doc, indent=1).encode())
            run.output_marker = name
        except Exception as exc:  # noqa: BLE001 - the run's end is recorded regardless
            log.warning(
                "could not write %s for transform run %s into %s: %s",
                name,
                run.id,
                run.output_uri,
                exc,
            )

    def cancel(self, run_id: str) -> TransformRun:
        with self._state_lock:
            run = self.store.get_run(run_id)
            if run.state in TERMINAL:
                raise Conflict(f"Run {run_id} has already {run.state}; there is nothing to cancel.")
            launch = self._launches.get(run_id)
            if launch is None:
                self._finish(run, "cancelled", "cancelled before it started")
                return self.store.get_run(run_id)
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
        run = self.store.get_run(run_id)
        ex = self.executors.get(run.executor)
        if ex is None:
            return log_tail(run.log_path, lines)
        return ex.log_text(run.details or {}, run.log_path, lines)


def _input_text(spec: dict[str, Any]) -> str:
    return json.dumps(spec, sort_keys=True)[:500]
