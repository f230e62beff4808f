"""Pluggable executors. Each launches the staged driver with the same arguments; only where
it runs differs. The server picks one by name; new ones subclass :class:`TransformExecutor`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

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

    def driver_args(self) -> list[str]:
        return ["--manifest", self.manifest_uri, "--code", self.code_uri,
                "--output", self.output_uri, "--run-id", self.run_id,
                "--entry-point", self.entry_point, "--kwargs", json.dumps(self.kwargs)]


@dataclass
class Status:
    state: str  # running | succeeded | failed | cancelled
    done: int = 0
    total: int = 0
    detail: str | None = None


class TransformExecutor(ABC):
    name = "base"

    @abstractmethod
    def start(self, launch: Launch) -> dict[str, Any]:
        """Start the job; returns details to keep on the run (ids, log locations)."""

    @abstractmethod
    def poll(self, launch: Launch, details: dict[str, Any]) -> Status: ...

    @abstractmethod
    def cancel(self, launch: Launch, details: dict[str, Any]) -> None: ...


class LocalExecutor(TransformExecutor):
    """Worker processes on the Jupyter server's machine: the driver with a process pool."""

    name = "local"

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or max(2, (os.cpu_count() or 1) * 2)
        self._procs: dict[str, subprocess.Popen] = {}

    def start(self, launch: Launch) -> dict[str, Any]:
        env = dict(os.environ)
        env.update(launch.env)
        log = open(launch.log_path, "ab")  # noqa: SIM115 - owned by the child process
        proc = subprocess.Popen(
            [sys.executable, launch.local_driver_path, *launch.driver_args(),
             "--workers", str(self.workers), "--progress"],
            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
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
        return Status("succeeded" if code == 0 else "failed", done, total,
                      None if code == 0 else f"the driver exited with status {code}")

    def cancel(self, launch: Launch, details: dict[str, Any]) -> None:
        proc = self._procs.get(launch.run_id)
        details["cancelled"] = True
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)


def _progress_from_log(path: str) -> tuple[int, int]:
    done = total = 0
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith(PROGRESS_PREFIX):
                    doc = json.loads(line[len(PROGRESS_PREFIX):])
                    done, total = int(doc["done"]), int(doc["total"])
    except (OSError, ValueError, KeyError):
        pass
    return done, total


def log_tail(path: str | None, lines: int = 200) -> str:
    if not path or not os.path.exists(path):
        return ""
    with open(path, encoding="utf-8", errors="replace") as fh:
        return "".join(fh.readlines()[-lines:])


class SparkExecutor(LocalExecutor):
    """``spark-submit`` of the driver (``--master local[*]`` by default, or a configured
    master). Needs pyspark (the ``spark`` extra) and Java."""

    name = "spark"

    def __init__(self, master: str = "local[*]", spark_submit: str | None = None) -> None:
        super().__init__(workers=1)
        self.master = master
        self.spark_submit = spark_submit

    def command(self, launch: Launch) -> list[str]:
        import shutil

        submit = self.spark_submit or shutil.which("spark-submit") or os.path.join(
            os.path.dirname(sys.executable), "spark-submit")
        if not os.path.exists(submit):
            from ..errors import BadRequest

            raise BadRequest("The spark executor needs pyspark: pip install 'infinstor_jlab[spark]'.")
        return [submit, "--master", self.master, launch.local_driver_path,
                *launch.driver_args(), "--spark", "--progress"]

    def start(self, launch: Launch) -> dict[str, Any]:
        env = dict(os.environ)
        env.update(launch.env)
        env.setdefault("PYSPARK_PYTHON", sys.executable)
        env.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        log = open(launch.log_path, "ab")  # noqa: SIM115 - owned by the child process
        proc = subprocess.Popen(self.command(launch), stdout=log, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True)
        log.close()
        self._procs[launch.run_id] = proc
        return {"pid": proc.pid, "master": self.master}


_EMR_STATES = {
    "PENDING": "running", "CANCEL_PENDING": "running", "RUNNING": "running",
    "COMPLETED": "succeeded", "CANCELLED": "cancelled", "FAILED": "failed",
    "INTERRUPTED": "failed",
}


class EmrExecutor(TransformExecutor):
    """A step on an Amazon EMR cluster: ``spark-submit --deploy-mode cluster`` of the staged
    driver. Uses ``cluster_id`` when given, else a transient cluster (``run_job_flow`` that
    terminates when its steps are done)."""

    name = "emr"

    def __init__(self, *, cluster_id: str | None = None, release_label: str = "emr-7.5.0",
                 instance_type: str = "m5.xlarge", instance_count: int = 3,
                 service_role: str = "EMR_DefaultRole",
                 job_flow_role: str = "EMR_EC2_DefaultRole", log_uri: str | None = None,
                 endpoint_url: str | None = None) -> None:
        self.cluster_id = cluster_id
        self.release_label = release_label
        self.instance_type = instance_type
        self.instance_count = instance_count
        self.service_role = service_role
        self.job_flow_role = job_flow_role
        self.log_uri = log_uri
        self.endpoint_url = endpoint_url

    def client(self) -> Any:
        import boto3

        kwargs: dict[str, Any] = {}
        if self.endpoint_url:
            kwargs["endpoint_url"] = self.endpoint_url
        session = boto3.session.Session()
        if not session.region_name:
            kwargs["region_name"] = "us-east-1"
        return session.client("emr", **kwargs)

    @staticmethod
    def step(launch: Launch) -> dict[str, Any]:
        return {
            "Name": f"infinstor transform {launch.run_id}",
            "ActionOnFailure": "CONTINUE",
            "HadoopJarStep": {
                "Jar": "command-runner.jar",
                "Args": ["spark-submit", "--deploy-mode", "cluster", launch.driver_uri,
                         *launch.driver_args(), "--spark"],
            },
        }

    def start(self, launch: Launch) -> dict[str, Any]:
        emr = self.client()
        step = self.step(launch)
        if self.cluster_id:
            resp = emr.add_job_flow_steps(JobFlowId=self.cluster_id, Steps=[step])
            cluster_id, step_id = self.cluster_id, resp["StepIds"][0]
        else:
            params: dict[str, Any] = {
                "Name": f"infinstor-{launch.run_id}",
                "ReleaseLabel": self.release_label,
                "Applications": [{"Name": "Spark"}],
                "Instances": {
                    "InstanceGroups": [
                        {"Name": "primary", "InstanceRole": "MASTER", "Market": "ON_DEMAND",
                         "InstanceType": self.instance_type, "InstanceCount": 1},
                        {"Name": "core", "InstanceRole": "CORE", "Market": "ON_DEMAND",
                         "InstanceType": self.instance_type,
                         "InstanceCount": max(1, self.instance_count - 1)},
                    ],
                    "KeepJobFlowAliveWhenNoSteps": False,
                },
                "Steps": [step],
                "ServiceRole": self.service_role,
                "JobFlowRole": self.job_flow_role,
            }
            if self.log_uri:
                params["LogUri"] = self.log_uri
            cluster_id = emr.run_job_flow(**params)["JobFlowId"]
            step_id = emr.list_steps(ClusterId=cluster_id)["Steps"][0]["Id"]
        log_location = (f"{self.log_uri.rstrip('/')}/{cluster_id}/steps/{step_id}/"
                        if self.log_uri else None)
        with open(launch.log_path, "a", encoding="utf-8") as fh:
            fh.write(f"EMR cluster {cluster_id}, step {step_id}\n"
                     f"step: {json.dumps(step)}\n")
            if log_location:
                fh.write(f"step logs: {log_location}\n")
        return {"cluster_id": cluster_id, "step_id": step_id, "log_location": log_location,
                "transient": self.cluster_id is None}

    def poll(self, launch: Launch, details: dict[str, Any]) -> Status:
        emr = self.client()
        step = emr.describe_step(ClusterId=details["cluster_id"],
                                 StepId=details["step_id"])["Step"]
        raw = step["Status"]["State"]
        details["emr_state"] = raw
        state = _EMR_STATES.get(raw, "running")
        reason = step["Status"].get("FailureDetails", {}).get("Reason")
        return Status(state, detail=reason or (None if state != "failed" else raw))

    def cancel(self, launch: Launch, details: dict[str, Any]) -> None:
        details["cancelled"] = True
        self.client().cancel_steps(ClusterId=details["cluster_id"],
                                   StepIds=[details["step_id"]])
