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
