"""Pluggable executors. Each launches the staged driver with the same arguments; only where
it runs differs. The server picks one by name; new ones subclass :class:`TransformExecutor`
and are configured like any Jupyter class (``c.EmrExecutor.cluster_id = "j-..."``) and
plugged in with the ``InfinstorApp.*_executor_class`` ``Type`` traits."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from traitlets import Bool, Dict, Enum, Int, List, Unicode
from traitlets.config import LoggingConfigurable

from ..errors import BadRequest, Conflict, StorageError
from .driver import PROGRESS_PREFIX


@dataclass
class Launch:
    """Everything an executor needs: staged URIs and the driver's arguments."""

    run_id: str
    driver_uri: str
    manifest_uri: str
    code_uri: str
    output_uri: str
    entry_point: str
    kwargs: dict[str, Any]
    log_path: str
    local_driver_path: str
    env: dict[str, str] = field(default_factory=dict)
    requirements: list[str] = field(default_factory=list)
    #: SHA-256 of the staged bytes and the version ids PutObject returned (on a versioned
    #: bucket): the driver runs only exactly these.
    manifest_sha256: str = ""
    code_sha256: str = ""
    manifest_version_id: str | None = None
    code_version_id: str | None = None

    def driver_args(self) -> list[str]:
        args = [
            "--manifest",
            self.manifest_uri,
            "--manifest-sha256",
            self.manifest_sha256,
            "--code",
            self.code_uri,
            "--code-sha256",
            self.code_sha256,
        ]
        if self.manifest_version_id:
            args += ["--manifest-version-id", self.manifest_version_id]
        if self.code_version_id:
            args += ["--code-version-id", self.code_version_id]
        args += [
            "--output",
            self.output_uri,
            "--run-id",
            self.run_id,
            "--entry-point",
            self.entry_point,
            "--kwargs",
            json.dumps(self.kwargs),
        ]
        if self.requirements:
            args += ["--requirements", json.dumps(self.requirements)]
        return args


@dataclass
class Status:
    state: str  # running | succeeded | failed | cancelled
    done: int = 0
    total: int = 0
    detail: str | None = None


class TransformExecutor(LoggingConfigurable):
    """Where a transform's driver runs. Subclasses implement start/poll/cancel; ``available``
    says whether it can run here at all (shown, with the reason, in the run dialog)."""

    name = "base"
    title = "Base"
    #: True when the job survives a restart of the Jupyter server (poll needs only details).
    detached = False
    #: The server's S3 client factory, set by the TransformService: detached executors read
    #: a run's status from S3 and stage wheelhouses with it.
    s3_client_factory: Any = None

    def available(self) -> tuple[bool, str | None]:
        return True, None

    def start(self, launch: Launch) -> dict[str, Any]:
        """Start the job; returns details to keep on the run (ids, log locations)."""
        raise NotImplementedError

    def poll(self, launch: Launch, details: dict[str, Any]) -> Status:
        raise NotImplementedError

    def cancel(self, launch: Launch, details: dict[str, Any]) -> None:
        raise NotImplementedError

    def stop_all(self, timeout_s: float = 5.0) -> None:
        """The Jupyter server is stopping: end the jobs that cannot outlive it (a detached
        executor's jobs go on, and a restarted server picks them up)."""

    def log_text(self, details: dict[str, Any], log_path: str | None, lines: int = 200) -> str:
        """The run's log view: the server-side log; detached executors add what the job
        itself wrote to S3."""
        return log_tail(log_path, lines)


class LocalExecutor(TransformExecutor):
    """Worker processes on the Jupyter server's machine: the driver with a process pool."""

    name = "local"
    title = "Local"

    workers = Int(
        0,
        config=True,
        help="Worker processes of a local run; 0 means twice the CPU count (the "
        "work is mostly S3 I/O).",
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not self.workers:
            self.workers = max(2, (os.cpu_count() or 1) * 2)
        self._procs: dict[str, subprocess.Popen] = {}

    def start(self, launch: Launch) -> dict[str, Any]:
        env = dict(os.environ)
        env.update(launch.env)
        log = open(launch.log_path, "ab")  # noqa: SIM115 - owned by the child process
        proc = subprocess.Popen(
            [
                sys.executable,
                launch.local_driver_path,
                *launch.driver_args(),
                "--workers",
                str(self.workers),
                "--progress",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        log.close()
        self._procs[launch.run_id] = proc
        return {"pid": proc.pid, "workers": self.workers}

    def poll(self, launch: Launch, details: dict[str, Any]) -> Status:
        proc = self._procs.get(launch.run_id)
        done, total = _progress_from_log(launch.log_path)
        if proc is None:
            return Status("failed", done, total, "the worker process is gone (server restart?)")
        code = proc.poll()
        if code is None:
            return Status("running", done, total)
        if details.get("cancelled"):
            return Status("cancelled", done, total)
        if code == 0:
            return Status("succeeded", done, total)
        return Status(
            "failed",
            done,
            total,
            _failures_from_log(launch.log_path) or f"the driver exited with status {code}",
        )

    def cancel(self, launch: Launch, details: dict[str, Any]) -> None:
        proc = self._procs.get(launch.run_id)
        if proc is not None and proc.poll() is not None:
            return  # it ended already: the next poll says how (a success stays one)
        details["cancelled"] = True
        if proc is not None:
            os.killpg(proc.pid, signal.SIGTERM)

    def stop_all(self, timeout_s: float = 5.0) -> None:
        # A driver left running would finish on its own after the server stopped, and the
        # restarted server, which no longer knows its process, would mark the run failed:
        # its outputs would be neither recorded nor labelled. Stop it with the server.
        running = [p for p in self._procs.values() if p.poll() is None]
        for proc in running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for proc in running:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)


def _progress_from_log(path: str) -> tuple[int, int]:
    done = total = 0
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith(PROGRESS_PREFIX):
                    doc = json.loads(line[len(PROGRESS_PREFIX) :])
                    done, total = int(doc["done"]), int(doc["total"])
    except (OSError, ValueError, KeyError):
        pass
    return done, total


def _failures_from_log(path: str) -> str | None:
    """What failed, from the driver's log (``FAILED <key>: <error>`` lines and its closing
    summary): how many objects and the first one, so the run says it without opening
    _FAILED.json; or the ``ERROR: `` line of a driver that stopped before any task ran
    (staged code that is not the run's)."""
    count, first, objects, error = 0, None, None, None
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("ERROR: ") and error is None:
                    error = line[len("ERROR: ") :].strip()  # the run stopped before any task
                elif line.startswith("FAILED "):
                    count += 1
                    first = first or line[len("FAILED ") :].strip()
                elif line.startswith("{") and '"failed"' in line:
                    try:
                        objects = int(json.loads(line).get("objects"))
                    except (ValueError, TypeError, AttributeError):
                        pass
    except OSError:
        return None
    if not count or first is None:
        return error
    of = f" of {objects:,}" if objects is not None else ""
    first = first if len(first) <= 300 else first[:297] + "..."
    return (
        f"{count:,}{of} objects failed (first: {first}); _FAILED.json in the output and "
        "the run's log have each one"
    )


def log_tail(path: str | None, lines: int = 200) -> str:
    if not path or not os.path.exists(path):
        return ""
    with open(path, encoding="utf-8", errors="replace") as fh:
        return "".join(fh.readlines()[-lines:])


class SparkExecutor(LocalExecutor):
    """``spark-submit`` of the driver (``--master local[*]`` by default, or a configured
    master). Needs pyspark (the ``spark`` extra) and Java."""

    name = "spark"
    title = "Spark"

    master = Unicode(
        "local[*]",
        config=True,
        help="Spark master URL given to spark-submit (local[*], spark://..., yarn).",
    )
    spark_submit = Unicode(
        "",
        config=True,
        help="Path of spark-submit; empty means the one on PATH or next "
        "to this Python (pip install pyspark).",
    )

    def _submit_path(self) -> str | None:
        import shutil

        submit = (
            self.spark_submit
            or shutil.which("spark-submit")
            or os.path.join(os.path.dirname(sys.executable), "spark-submit")
        )
        return submit if os.path.exists(submit) else None

    def available(self) -> tuple[bool, str | None]:
        import shutil

        if self._submit_path() is None:
            return False, "needs pyspark: pip install 'infinstor_jlab[spark]'"
        if not shutil.which("java") and not os.environ.get("JAVA_HOME"):
            return False, "needs Java (set JAVA_HOME or put java on PATH)"
        return True, None

    def command(self, launch: Launch) -> list[str]:
        submit = self._submit_path()
        if submit is None:
            raise BadRequest(
                "The spark executor needs pyspark: pip install 'infinstor_jlab[spark]'."
            )
        return [
            submit,
            "--master",
            self.master,
            launch.local_driver_path,
            *launch.driver_args(),
            "--spark",
            "--progress",
        ]

    def start(self, launch: Launch) -> dict[str, Any]:
        env = dict(os.environ)
        env.update(launch.env)
        env.setdefault("PYSPARK_PYTHON", sys.executable)
        env.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        log = open(launch.log_path, "ab")  # noqa: SIM115 - owned by the child process
        proc = subprocess.Popen(
            self.command(launch),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        log.close()
        self._procs[launch.run_id] = proc
        return {"pid": proc.pid, "master": self.master}


_EMR_STATES = {
    "PENDING": "running",
    "CANCEL_PENDING": "running",
    "RUNNING": "running",
    "COMPLETED": "succeeded",
    "CANCELLED": "cancelled",
    "FAILED": "failed",
    "INTERRUPTED": "failed",
}


class DetachedExecutor(TransformExecutor):
    """A job that runs away from this server (EMR, EMR Serverless) and is followed from S3:
    the driver keeps its progress and log lines under the run's staging prefix, and extra
    requirements travel as a staged wheelhouse (clusters often have no internet)."""

    detached = True

    requirements_install = Enum(
        ["wheelhouse", "pip"],
        default_value="wheelhouse",
        config=True,
        help="How the job gets a run's extra requirements: 'wheelhouse' downloads wheels "
        "for the cluster's Python and platform here (pip download), stages them next to "
        "the run and installs them with pip --no-index on the nodes (no internet needed "
        "there); 'pip' runs pip install on each node at run time (needs PyPI there).",
    )
    wheelhouse_python_version = Unicode(
        "3.9",
        config=True,
        help="Python version of the cluster's nodes, for the wheelhouse (EMR 7 on Amazon "
        "Linux 2023: 3.9).",
    )
    wheelhouse_platforms = List(
        Unicode(),
        default_value=["manylinux2014_x86_64", "manylinux_2_28_x86_64"],
        config=True,
        help="pip --platform tags of the cluster's nodes (Graviton: manylinux2014_aarch64).",
    )
    wheelhouse_pip_args = List(
        Unicode(),
        config=True,
        help="Extra pip download arguments, e.g. ['--index-url', 'https://mirror/simple'].",
    )

    def _s3(self) -> Any:
        if self.s3_client_factory is None:
            import boto3

            return boto3.client("s3")
        return self.s3_client_factory()

    @staticmethod
    def status_uri(launch: Launch) -> str:
        return launch.driver_uri.rsplit("/", 1)[0] + "/"

    def job_args(self, launch: Launch) -> list[str]:
        """The driver's arguments for a detached job: the run's, its status prefix, and the
        staged wheelhouse when requirements go that way."""
        args = [*launch.driver_args(), "--spark", "--status-uri", self.status_uri(launch)]
        if launch.requirements and self.requirements_install == "wheelhouse":
            from .remote import build_wheelhouse, stage_wheelhouse

            local = build_wheelhouse(
                launch.requirements,
                python_version=self.wheelhouse_python_version,
                platforms=list(self.wheelhouse_platforms),
                pip_args=list(self.wheelhouse_pip_args),
            )
            try:
                uri, sha = stage_wheelhouse(self._s3(), local, self.status_uri(launch))
            finally:
                import shutil

                shutil.rmtree(local, ignore_errors=True)
            args += ["--wheelhouse", uri, "--wheelhouse-sha256", sha]
        return args

    def progress(self, details: dict[str, Any]) -> tuple[int, int]:
        """(done, total) from the driver's progress.json; (0, 0) before it wrote one."""
        from .remote import read_progress

        uri = details.get("status_uri")
        if not uri:
            return 0, 0
        try:
            doc = read_progress(self._s3(), uri)
        except StorageError:
            return 0, 0
        if not doc:
            return 0, 0
        return int(doc.get("done") or 0), int(doc.get("total") or 0)

    def remote_logs(self, details: dict[str, Any]) -> list[tuple[str, str]]:
        """(title, S3 URI) of each log the job writes, in the order the log view shows them."""
        uri = details.get("status_uri")
        return [("driver log (from S3)", uri + "driver.log")] if uri else []

    def log_text(self, details: dict[str, Any], log_path: str | None, lines: int = 200) -> str:
        from .remote import remote_log

        local = log_tail(log_path, lines)
        sources = self.remote_logs(details)
        if not sources:
            return local
        try:
            remote = remote_log(self._s3(), sources, lines)
        except Exception as exc:  # noqa: BLE001 - the local part is still worth showing
            remote = f"--- the job's logs on S3 could not be read: {exc}"
        return (local.rstrip("\n") + "\n" if local else "") + remote


class EmrExecutor(DetachedExecutor):
    """A step on an Amazon EMR cluster: ``spark-submit --deploy-mode cluster`` of the staged
    driver. Uses ``cluster_id`` when given, else a transient cluster (``run_job_flow`` that
    terminates when its steps are done)."""

    name = "emr"
    title = "Amazon EMR"

    cluster_id = Unicode(
        "",
        config=True,
        help="Id of a running EMR cluster (j-...) to add steps to; empty "
        "starts a transient cluster per run.",
    )
    release_label = Unicode("emr-7.5.0", config=True, help="EMR release of transient clusters.")
    instance_type = Unicode(
        "m5.xlarge", config=True, help="EC2 instance type of transient clusters."
    )
    instance_count = Int(
        3, config=True, help="Instances of a transient cluster (one primary, the rest core)."
    )
    service_role = Unicode("EMR_DefaultRole", config=True, help="EMR service role.")
    job_flow_role = Unicode(
        "EMR_EC2_DefaultRole", config=True, help="EC2 instance profile of transient clusters."
    )
    log_uri = Unicode(
        "", config=True, help="S3 URI where EMR writes cluster and step logs (shown per run)."
    )
    endpoint_url = Unicode(
        "", config=True, help="EMR API endpoint; empty means AWS's (or AWS_ENDPOINT_URL)."
    )
    region_name = Unicode(
        "", config=True, help="AWS region of the cluster; empty means boto3's default."
    )
    enabled = Bool(
        True,
        config=True,
        help="Offer EMR in the run dialog (it needs AWS credentials with EMR rights).",
    )
    # -- what a real account's transient clusters need (see the README's EMR section) ----
    subnet_ids = List(
        Unicode(),
        config=True,
        help="VPC subnet(s) of transient clusters: one with instance groups, several with "
        "instance fleets (EMR picks one).",
    )
    ec2_key_name = Unicode("", config=True, help="EC2 key pair for SSH to the nodes.")
    master_security_group = Unicode(
        "", config=True, help="EMR-managed security group of the primary node."
    )
    slave_security_group = Unicode(
        "", config=True, help="EMR-managed security group of core and task nodes."
    )
    service_access_security_group = Unicode(
        "", config=True, help="Service-access security group (clusters in private subnets)."
    )
    additional_master_security_groups = List(
        Unicode(), config=True, help="More security groups of the primary node."
    )
    additional_slave_security_groups = List(
        Unicode(), config=True, help="More security groups of core and task nodes."
    )
    bootstrap_actions = List(
        Dict(),
        config=True,
        help="Bootstrap actions of transient clusters: [{'name': ..., 'path': 's3://...', "
        "'args': [...]}].",
    )
    tags = Dict(
        {}, config=True, help="Tags of transient clusters ({'team': 'ml'}); runs add their id."
    )
    idle_timeout_s = Int(
        0,
        config=True,
        help="Idle auto-termination of transient clusters, in seconds (0: EMR's default).",
    )
    instance_groups = List(
        Dict(),
        config=True,
        help="EMR InstanceGroups of transient clusters, as run_job_flow takes them (replaces "
        "instance_type/instance_count).",
    )
    instance_fleets = List(
        Dict(),
        config=True,
        help="EMR InstanceFleets of transient clusters, as run_job_flow takes them (instead "
        "of instance groups).",
    )
    configurations = List(
        Dict(), config=True, help="EMR Configurations of transient clusters (spark-defaults...)."
    )

    def available(self) -> tuple[bool, str | None]:
        if not self.enabled:
            return False, "disabled by the server's configuration (EmrExecutor.enabled)"
        if self.instance_groups and self.instance_fleets:
            return False, "EmrExecutor has both instance_groups and instance_fleets; keep one"
        if len(self.subnet_ids) > 1 and not self.instance_fleets:
            return False, (
                "EmrExecutor.subnet_ids lists several subnets, which EMR takes only with "
                "instance_fleets; keep one, or configure fleets"
            )
        return True, None

    def instances(self) -> dict[str, Any]:
        """run_job_flow's Instances of a transient cluster, from the settings."""
        inst: dict[str, Any] = {"KeepJobFlowAliveWhenNoSteps": False}
        if self.instance_fleets:
            inst["InstanceFleets"] = [dict(f) for f in self.instance_fleets]
            if self.subnet_ids:
                inst["Ec2SubnetIds"] = list(self.subnet_ids)
        else:
            inst["InstanceGroups"] = [dict(g) for g in self.instance_groups] or [
                {
                    "Name": "primary",
                    "InstanceRole": "MASTER",
                    "Market": "ON_DEMAND",
                    "InstanceType": self.instance_type,
                    "InstanceCount": 1,
                },
                {
                    "Name": "core",
                    "InstanceRole": "CORE",
                    "Market": "ON_DEMAND",
                    "InstanceType": self.instance_type,
                    "InstanceCount": max(1, self.instance_count - 1),
                },
            ]
            if self.subnet_ids:
                inst["Ec2SubnetId"] = self.subnet_ids[0]
        for key, value in (
            ("Ec2KeyName", self.ec2_key_name),
            ("EmrManagedMasterSecurityGroup", self.master_security_group),
            ("EmrManagedSlaveSecurityGroup", self.slave_security_group),
            ("ServiceAccessSecurityGroup", self.service_access_security_group),
            ("AdditionalMasterSecurityGroups", list(self.additional_master_security_groups)),
            ("AdditionalSlaveSecurityGroups", list(self.additional_slave_security_groups)),
        ):
            if value:
                inst[key] = value
        return inst

    def remote_logs(self, details: dict[str, Any]) -> list[tuple[str, str]]:
        sources = super().remote_logs(details)
        where = details.get("log_location")
        if where:
            # EMR copies a step's logs to the log URI about every five minutes, gzipped.
            sources += [("step stderr", where + "stderr.gz"), ("step stdout", where + "stdout.gz")]
        return sources

    def client(self) -> Any:
        import boto3

        kwargs: dict[str, Any] = {}
        if self.endpoint_url:
            kwargs["endpoint_url"] = self.endpoint_url
        session = boto3.session.Session()
        if self.region_name:
            kwargs["region_name"] = self.region_name
        elif not session.region_name:
            kwargs["region_name"] = "us-east-1"
        return session.client("emr", **kwargs)

    def _call(self, what: str, fn: Any, **params: Any) -> Any:
        """An EMR API call whose refusal becomes a sentence (the error code, not a trace)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(**params)
        except ClientError as exc:
            err = exc.response.get("Error", {})
            raise StorageError(
                f"EMR refused to {what}: {err.get('Code', 'error')}: "
                f"{err.get('Message', '')}".rstrip(": ")
            ) from exc
        except BotoCoreError as exc:
            raise StorageError(f"Could not reach EMR to {what}: {exc}") from exc

    def step(self, launch: Launch) -> dict[str, Any]:
        return {
            "Name": f"infinstor transform {launch.run_id}",
            "ActionOnFailure": "CONTINUE",
            "HadoopJarStep": {
                "Jar": "command-runner.jar",
                "Args": [
                    "spark-submit",
                    "--deploy-mode",
                    "cluster",
                    launch.driver_uri,
                    *self.job_args(launch),
                ],
            },
        }

    def start(self, launch: Launch) -> dict[str, Any]:
        ok, why = self.available()
        if not ok:
            raise BadRequest(f"The emr executor cannot run here: {why}.")
        emr = self.client()
        step = self.step(launch)
        log_uri = self.log_uri
        if self.cluster_id:
            resp = self._call(
                "add the step", emr.add_job_flow_steps, JobFlowId=self.cluster_id, Steps=[step]
            )
            cluster_id, step_id = self.cluster_id, resp["StepIds"][0]
        else:
            params: dict[str, Any] = {
                "Name": f"infinstor-{launch.run_id}",
                "ReleaseLabel": self.release_label,
                "Applications": [{"Name": "Spark"}],
                "Instances": self.instances(),
                "Steps": [step],
                "ServiceRole": self.service_role,
                "JobFlowRole": self.job_flow_role,
                "Tags": [
                    {"Key": str(k), "Value": str(v)}
                    for k, v in {**self.tags, "infinstor:run-id": launch.run_id}.items()
                ],
            }
            if self.bootstrap_actions:
                params["BootstrapActions"] = [_bootstrap(a) for a in self.bootstrap_actions]
            if self.idle_timeout_s > 0:
                params["AutoTerminationPolicy"] = {"IdleTimeout": int(self.idle_timeout_s)}
            if self.configurations:
                params["Configurations"] = [dict(c) for c in self.configurations]
            # Without a configured log URI, EMR keeps no step logs at all; default to the
            # run's staging prefix so every run has its stderr/stdout somewhere readable.
            log_uri = self.log_uri or launch.driver_uri.rsplit("/", 1)[0] + "/emr-logs/"
            params["LogUri"] = log_uri
            cluster_id = self._call("start a cluster", emr.run_job_flow, **params)["JobFlowId"]
            step_id = self._call("list the cluster's steps", emr.list_steps, ClusterId=cluster_id)[
                "Steps"
            ][0]["Id"]
        log_location = f"{log_uri.rstrip('/')}/{cluster_id}/steps/{step_id}/" if log_uri else None
        with open(launch.log_path, "a", encoding="utf-8") as fh:
            fh.write(f"EMR cluster {cluster_id}, step {step_id}\nstep: {json.dumps(step)}\n")
            if log_location:
                fh.write(f"step logs: {log_location}\n")
        return {
            "cluster_id": cluster_id,
            "step_id": step_id,
            "log_location": log_location,
            "transient": not self.cluster_id,
            "status_uri": self.status_uri(launch),
        }

    def poll(self, launch: Launch, details: dict[str, Any]) -> Status:
        emr = self.client()
        step = self._call(
            "describe the step",
            emr.describe_step,
            ClusterId=details["cluster_id"],
            StepId=details["step_id"],
        )["Step"]
        raw = step["Status"]["State"]
        details["emr_state"] = raw
        state = _EMR_STATES.get(raw, "running")
        if state == "running" and details.get("cancelled") and details.get("transient"):
            # A transient cluster is cancelled by terminating it: its step ends with it.
            cluster = self._call(
                "describe the cluster", emr.describe_cluster, ClusterId=details["cluster_id"]
            )["Cluster"]
            details["emr_cluster_state"] = cluster["Status"]["State"]
            if cluster["Status"]["State"] in (
                "TERMINATING",
                "TERMINATED",
                "TERMINATED_WITH_ERRORS",
            ):
                return Status("cancelled", detail="the transient cluster was terminated")
        failure = step["Status"].get("FailureDetails", {})
        reason = failure.get("Reason")
        if reason and failure.get("LogFile"):
            reason = f"{reason} (log: {failure['LogFile']})"
        done, total = self.progress(details)
        if state == "succeeded" and total:
            done = total
        return Status(
            state, done=done, total=total, detail=reason or (None if state != "failed" else raw)
        )

    def cancel(self, launch: Launch, details: dict[str, Any]) -> None:
        emr = self.client()
        if details.get("transient"):
            # The cluster exists only for this step: terminating it stops the step and the
            # billing at once.
            self._call(
                "terminate the cluster", emr.terminate_job_flows, JobFlowIds=[details["cluster_id"]]
            )
        else:
            resp = self._call(
                "cancel the step",
                emr.cancel_steps,
                ClusterId=details["cluster_id"],
                StepIds=[details["step_id"]],
            )
            for info in resp.get("CancelStepsInfoList", []):
                if info.get("Status") == "FAILED":
                    raise Conflict(
                        f"EMR could not cancel step {details['step_id']}: "
                        f"{info.get('Reason', 'no reason given')}"
                    )
        details["cancelled"] = True


def _bootstrap(action: dict[str, Any]) -> dict[str, Any]:
    """A bootstrap action from the settings ({'name', 'path', 'args'}, or EMR's own shape)."""
    if "ScriptBootstrapAction" in action:
        return dict(action)
    path = str(action.get("path") or "")
    if not path.startswith("s3://"):
        raise BadRequest(
            f"EmrExecutor.bootstrap_actions: {action!r} needs a 'path' of an s3:// script."
        )
    return {
        "Name": str(action.get("name") or path.rsplit("/", 1)[-1]),
        "ScriptBootstrapAction": {"Path": path, "Args": [str(a) for a in action.get("args", [])]},
    }
