"""Background jobs for long operations started from the REST API (a restore, a download into
the Jupyter file tree): a job runs in a daemon thread of its own, reports progress, and keeps
its result (or the error sentence) for the front end to poll."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import InfinstorError, NotFound
from ..timespec import now_ms

MAX_FINISHED = 100


@dataclass
class Job:
    id: str
    kind: str  # restore | get
    started_ms: int
    state: str = "running"  # running | done | error
    done: int = 0
    total: int = 0
    bytes: int = 0
    result: dict[str, Any] | None = None
    error: str | None = None
    finished_ms: int | None = None
    ended: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)

    def progress(self, done: int, total: int, nbytes: int = 0) -> None:
        self.done, self.total, self.bytes = done, total, nbytes

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "state": self.state,
            "finished": self.state != "running",
            "done": self.done,
            "total": self.total,
            "bytes": self.bytes,
            "started_ms": self.started_ms,
            "finished_ms": self.finished_ms,
            "result": self.result,
            "error": self.error,
        }


class JobBoard:
    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def start(self, kind: str, work: Callable[[Job], dict[str, Any]]) -> Job:
        job = Job(id=uuid.uuid4().hex, kind=kind, started_ms=now_ms())
        with self._lock:
            finished = [j for j in self._jobs.values() if j.state != "running"]
            for old in finished[:-MAX_FINISHED]:
                self._jobs.pop(old.id, None)
            self._jobs[job.id] = job

        def run() -> None:
            try:
                job.result = work(job)
                job.state = "done"
            except InfinstorError as exc:
                job.error = exc.message
                job.state = "error"
            except Exception as exc:  # noqa: BLE001 - reported on the job
                job.error = f"The {kind} failed unexpectedly: {exc!r}"
                job.state = "error"
            finally:
                job.finished_ms = now_ms()
                job.ended.set()

        threading.Thread(target=run, name=f"infinstor-{kind}", daemon=True).start()
        return job

    def get(self, job_id: str) -> Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise NotFound(f"There is no job {job_id!r} (jobs are kept until the server stops).")
        return job
