#!/usr/bin/env python3
"""infinstor_jlab transform driver: the same script runs locally, under spark-submit and on EMR.

It is staged to S3 next to the manifest and the cleaned code, and depends only on boto3 (and
pyspark with --spark), never on infinstor_jlab or the snapshot index: a job reads exactly the
object versions the manifest lists.

    driver.py --manifest s3://b/stage/manifest.jsonl --manifest-sha256 HEX
              [--manifest-version-id V] --code s3://b/stage/code.py --code-sha256 HEX
              [--code-version-id V]
              --output s3://b/out/ --run-id RUN --entry-point infin_transform_one_object
              [--kwargs JSON] [--workers N | --spark] [--io-threads N] [--progress]
              [--requirements JSON-LIST] [--requirements-cache DIR]
              [--wheelhouse s3://b/stage/wheelhouse/ --wheelhouse-sha256 HEX]
              [--status-uri s3://b/stage/]

The staged code and manifest are read at the version ids given (the ones their PutObject
returned, on a versioned bucket) and run only if their SHA-256 is the one given in these
arguments: bytes someone changed after staging fail the run before anything runs.

Output goes to <output>/<run id>/. ``_SUCCESS.json`` (counts, manifest fingerprint) is written
last and only when every object succeeded; otherwise ``_FAILED.json`` lists each failure
with its traceback and the driver exits 1.

How the work is spread: the manifest is split into tasks; tasks run in ``--workers`` processes
(or as Spark tasks with ``--spark``). Inside a task, ``--io-threads`` threads download the
objects (each at its exact version id) and upload the outputs, over one S3 client per process,
while the process's main thread calls the entry point on each object as soon as it is on
disk: the user's code never runs on two threads of one process at once. The code itself (its
module-level statements) runs once per process, not once per task. By default the I/O
threads of all processes keep about 16 requests in flight.

Manifest objects are ``{"bucket", "key", "version_id", ...}`` (fetched from S3 at that version)
or carry a local ``"path"`` (copied; an MLflow run's artifacts on this machine's filesystem,
whose ``"sha256:<hex>"`` version id is checked against the bytes copied).

``--requirements '["pillow>=10", ...]'`` installs extra packages once per machine with
``python -m pip install --target <cache>/<hash of the list>`` (under a file lock, so parallel
tasks and processes wait for one install) and puts that directory first on ``sys.path`` in
every process before the user's code runs. If the install fails the driver says so and exits
1 before any task runs. With ``--wheelhouse`` pip installs with ``--no-index`` from the wheels
staged there (for a cluster without internet): ``SHA256SUMS.json`` under it lists each wheel's
SHA-256, that file's own SHA-256 is ``--wheelhouse-sha256``, and a wheel whose bytes differ
fails the install.

``--status-uri`` (a detached run, such as an EMR step, is followed from S3): the driver keeps
``progress.json`` (objects done/total, state) and ``driver.log`` (its own last log lines)
under that prefix, rewritten every few seconds while it runs and once at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import posixpath
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any

ONE_OBJECT = "infin_transform_one_object"
DIR_BY_DIR = "infin_transform_dir_by_dir"
ALL_OBJECTS = "infin_transform_all_objects"
CSV_TO_PD = "infin_transform_csv_to_pd"
SCRIPT = "script"
PROGRESS_PREFIX = "INFINSTOR_PROGRESS "

#: Threads per process moving objects to and from S3 (small objects are latency-bound):
#: by default enough for IN_FLIGHT requests over all worker processes, at least
#: MIN_IO_THREADS per process. Many more would only queue up at the store (and cost CPU
#: in connection handling on both sides).
DEFAULT_IO_THREADS = 8
IN_FLIGHT = 16
MIN_IO_THREADS = 4
#: Objects up to this size are fetched/stored with one GetObject/PutObject; bigger ones go
#: through boto3's transfer manager (ranged, multipart).
SINGLE_REQUEST_BYTES = 64 * 1024 * 1024
#: Upper bound on one_object objects per task (progress granularity, scratch disk use).
MAX_TASK_OBJECTS = 500
_MARKER = ".infinstor-complete"

# Per-process state (a forked or spawned worker starts its own): S3 client, I/O thread pool,
# the user's code already executed. It lives in a module of its own in sys.modules, not in this
# script's globals: Spark pickles run_task with the globals it uses, and a client or a lock
# cannot be pickled. Keyed by pid so a forked child never reuses its parent's client.
_STATE_MODULE = "_infinstor_driver_state"


class RequirementsError(Exception):
    """The extra requirements could not be installed (the message says why)."""


class StagedFileError(Exception):
    """A staged file (code, manifest) could not be read or is not the one the run was
    started with (the message says which and why; ``uri`` names it)."""

    def __init__(self, message: str, uri: str) -> None:
        super().__init__(message)
        self.uri = uri


def _state() -> Any:
    mod = sys.modules.get(_STATE_MODULE)
    if mod is None:
        import types

        fresh = types.ModuleType(_STATE_MODULE)
        fresh.lock = threading.Lock()  # type: ignore[attr-defined]
        fresh.pid = None  # type: ignore[attr-defined]
        mod = sys.modules.setdefault(_STATE_MODULE, fresh)
    with mod.lock:
        if mod.pid != os.getpid():
            # A forked child keeps its parent's boto3 session (no sockets in it; its loaded
            # service models make a new client ~10x cheaper) but never its client or threads.
            mod.session = getattr(mod, "session", None)
            mod.pid, mod.s3, mod.pool, mod.pool_size, mod.namespaces = (
                os.getpid(),
                None,
                None,
                0,
                {},
            )
    return mod


def _s3(io_threads: int = DEFAULT_IO_THREADS):
    """This process's S3 client (botocore clients are thread-safe; creating one is not cheap)."""
    state = _state()
    with state.lock:
        if state.s3 is None:
            import boto3
            from botocore.config import Config

            if state.session is None:
                state.session = boto3.session.Session()
            state.s3 = state.session.client(
                "s3",
                config=Config(
                    max_pool_connections=max(64, io_threads + 2),
                    retries={"mode": "standard", "max_attempts": 6},
                ),
            )
        return state.s3


def _io_pool(size: int):
    from concurrent.futures import ThreadPoolExecutor

    state = _state()
    with state.lock:
        if state.pool is None or state.pool_size != size:
            if state.pool is not None:
                state.pool.shutdown(wait=True)
            state.pool = ThreadPoolExecutor(size, thread_name_prefix="infinstor-io")
            state.pool_size = size
        return state.pool


def split_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri}")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def read_checked(uri: str, sha256: str, version_id: str | None = None, what: str = "file") -> str:
    """The text of a staged file, at ``version_id`` when given, only if its SHA-256 is
    ``sha256`` (which comes from the driver's arguments, never from the staging prefix)."""
    try:
        if uri.startswith("s3://"):
            bucket, key = split_uri(uri)
            extra = {"VersionId": version_id} if version_id else {}
            data = _s3().get_object(Bucket=bucket, Key=key, **extra)["Body"].read()
        else:
            with open(uri, "rb") as fh:
                data = fh.read()
    except Exception as exc:
        at = f" (version {version_id})" if version_id else ""
        raise StagedFileError(
            f"could not read the staged {what} {uri}{at}: {exc}. Nothing ran; start the run again.",
            uri,
        ) from exc
    got = hashlib.sha256(data).hexdigest()
    if got != sha256.lower():
        raise StagedFileError(
            f"the staged {what} {uri} is not the one this run was started with: its SHA-256 "
            f"is {got}, the run expects {sha256} (it was changed after it was staged). "
            "Nothing ran; check who can write to the output bucket, then start the run again.",
            uri,
        )
    return data.decode("utf-8")


def parse_manifest(text: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(header, objects): the first JSON line is the header with the fingerprint."""
    lines = [line for line in text.splitlines() if line.strip()]
    header = json.loads(lines[0])
    objects = [json.loads(line) for line in lines[1:]]
    return header, objects


def relative_key(key: str, prefix: str) -> str:
    rel = key[len(prefix) :] if prefix and key.startswith(prefix) else key
    # Keys are data, not paths: keep them inside the task's input directory.
    parts = [p for p in rel.split("/") if p not in ("", ".", "..")]
    return "/".join(parts) or "_"


def object_name(obj: dict[str, Any]) -> str:
    """The object's key; for a local file without one, its file name."""
    return obj.get("key") or os.path.basename(obj.get("path") or "") or "_"


def plan_tasks(
    entry_point: str, objects: list[dict[str, Any]], prefix: str, parallelism: int
) -> list[list[dict[str, Any]]]:
    if not objects:
        return [[]]
    if entry_point == ONE_OBJECT:
        # About four tasks per worker (stragglers even out), at most MAX_TASK_OBJECTS each.
        want = max(1, parallelism * 4)
        size = min(MAX_TASK_OBJECTS, max(1, -(-len(objects) // want)))
        return [objects[i : i + size] for i in range(0, len(objects), size)]
    if entry_point == DIR_BY_DIR:
        by_dir: dict[str, list[dict[str, Any]]] = {}
        for obj in objects:
            rel = relative_key(object_name(obj), prefix)
            by_dir.setdefault(posixpath.dirname(rel), []).append(obj)
        return list(by_dir.values())
    return [objects]


# -- extra requirements -------------------------------------------------------------------
def default_requirements_cache() -> str:
    env = os.environ.get("INFINSTOR_REQUIREMENTS_CACHE")
    if env:
        return env
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = os.path.join(base, "infinstor_jlab", "requirements")
    try:
        os.makedirs(path, exist_ok=True)
        if os.access(path, os.W_OK):
            return path
    except OSError:
        pass
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    return os.path.join(tempfile.gettempdir(), f"infinstor_jlab-requirements-{uid}")


def check_requirement_list(value: Any) -> list[str]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise RequirementsError(f"--requirements is not a JSON list: {exc}") from exc
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RequirementsError(
            '--requirements must be a JSON list of strings, e.g. ["pillow>=10", "pandas"]'
        )
    reqs = [v.strip() for v in value if v.strip()]
    for req in reqs:
        if req.startswith("-"):
            raise RequirementsError(f"{req!r} is a pip option, not a requirement")
    return reqs


def requirements_key(reqs: list[str]) -> str:
    """Same list (in any order), same interpreter and platform: same directory."""
    import platform

    doc = {
        "requirements": sorted(set(reqs)),
        "python": sys.implementation.cache_tag,
        "platform": sys.platform,
        "machine": platform.machine(),
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32]


@contextlib.contextmanager
def _file_lock(path: str) -> Iterator[None]:
    """An exclusive lock on a file, across processes (flock; msvcrt on Windows)."""
    with open(path, "a+b") as fh:
        try:
            import fcntl
        except ImportError:  # Windows
            import msvcrt

            while True:
                try:
                    msvcrt.locking(fh.fileno(), msvcrt.LK_LOCK, 1)
                    break
                except OSError:
                    time.sleep(0.2)
            try:
                yield
            finally:
                fh.seek(0)
                msvcrt.locking(fh.fileno(), msvcrt.LK_UNLCK, 1)
            return
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


WHEELHOUSE_SUMS = "SHA256SUMS.json"


def fetch_wheelhouse(uri: str, sums_sha256: str, dest: str) -> str:
    """Download the staged wheels under ``uri`` into ``dest``, each checked against
    ``SHA256SUMS.json`` (itself checked against ``sums_sha256``, from the arguments)."""
    prefix = uri.rstrip("/") + "/"
    try:
        sums = json.loads(read_checked(prefix + WHEELHOUSE_SUMS, sums_sha256, what="wheelhouse"))
    except (StagedFileError, ValueError) as exc:
        raise RequirementsError(f"the wheelhouse at {prefix} cannot be used: {exc}") from exc
    bucket, key = split_uri(prefix)
    os.makedirs(dest, exist_ok=True)
    for name, want in sorted(sums.items()):
        if "/" in name or name.startswith("."):
            raise RequirementsError(f"the wheelhouse lists an unsafe file name {name!r}")
        try:
            body = _s3().get_object(Bucket=bucket, Key=key + name)["Body"].read()
        except Exception as exc:  # said as a sentence; the run stops
            raise RequirementsError(f"cannot download {prefix}{name}: {exc}") from exc
        got = hashlib.sha256(body).hexdigest()
        if got != want:
            raise RequirementsError(
                f"{prefix}{name} is not the wheel that was staged (SHA-256 {got}, expected "
                f"{want}): it changed after the run started"
            )
        with open(os.path.join(dest, name), "wb") as fh:
            fh.write(body)
    return dest


def install_requirements(
    reqs: list[str],
    cache: str | None = None,
    log: Any = None,
    wheelhouse: tuple[str, str] | None = None,
) -> str | None:
    """The directory holding ``reqs``, installed there first if no process on this machine
    has done it yet (``wheelhouse``: (S3 prefix, SHA-256 of its SHA256SUMS.json) to install
    from, offline). Raises RequirementsError when pip fails."""
    if not reqs:
        return None
    cache = cache or default_requirements_cache()
    target = os.path.join(cache, requirements_key(reqs))
    marker = os.path.join(target, _MARKER)
    if os.path.exists(marker):
        return target
    try:
        os.makedirs(cache, exist_ok=True)
    except OSError as exc:
        raise RequirementsError(f"cannot create the requirements cache {cache}: {exc}") from exc
    with _file_lock(target + ".lock"):
        if os.path.exists(marker):  # another process installed them while we waited
            return target
        shutil.rmtree(target, ignore_errors=True)  # a half-finished earlier attempt
        index_args: list[str] = []
        if wheelhouse is not None:
            wheels = fetch_wheelhouse(wheelhouse[0], wheelhouse[1], target + ".wheels")
            index_args = ["--no-index", "--find-links", wheels]
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--target",
            target,
            "--disable-pip-version-check",
            "--no-input",
            "--no-warn-script-location",
            *index_args,
            *reqs,
        ]
        if log:
            log(f"installing extra requirements {json.dumps(reqs)} into {target}")
        started = time.time()
        proc = subprocess.run(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False
        )
        if wheelhouse is not None:
            shutil.rmtree(target + ".wheels", ignore_errors=True)
        if proc.returncode != 0:
            shutil.rmtree(target, ignore_errors=True)
            tail = "\n".join(proc.stdout.splitlines()[-40:])
            raise RequirementsError(
                f"pip could not install the extra requirements {json.dumps(reqs)} "
                f"(exit status {proc.returncode}):\n{tail}"
            )
        with open(marker, "w", encoding="utf-8") as fh:
            json.dump(
                {
                    "requirements": reqs,
                    "python": sys.version,
                    "seconds": round(time.time() - started, 2),
                },
                fh,
            )
        if log:
            log(f"installed extra requirements in {time.time() - started:.1f}s")
    return target


def activate_requirements(path: str | None) -> None:
    """Put an installed requirements directory first on sys.path (and PYTHONPATH, for the
    processes a script starts)."""
    if not path:
        return
    if not sys.path or sys.path[0] != path:
        if path in sys.path:
            sys.path.remove(path)
        sys.path.insert(0, path)
        import importlib

        importlib.invalidate_caches()
    current = os.environ.get("PYTHONPATH", "")
    if path not in current.split(os.pathsep):
        os.environ["PYTHONPATH"] = path + (os.pathsep + current if current else "")


# -- one task -------------------------------------------------------------------------------
def _fetch(s3: Any, obj: dict[str, Any], path: str) -> None:
    """One object into ``path``: at its exact version from S3, or copied from a local path."""
    tmp = f"{path}.infinstor-part-{threading.get_ident()}"
    try:
        if obj.get("path"):
            _copy_local(obj, tmp)
        else:
            extra = {"VersionId": obj["version_id"]} if obj.get("version_id") else {}
            size = obj.get("size")
            if isinstance(size, int) and size > SINGLE_REQUEST_BYTES:
                s3.download_file(obj["bucket"], obj["key"], tmp, ExtraArgs=extra)
            else:
                body = s3.get_object(Bucket=obj["bucket"], Key=obj["key"], **extra)["Body"]
                try:
                    with open(tmp, "wb") as fh:
                        shutil.copyfileobj(body, fh, 1 << 20)
                finally:
                    body.close()
        os.replace(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise


def _copy_local(obj: dict[str, Any], dest: str) -> None:
    src = obj["path"]
    want = obj.get("version_id") or ""
    digest = hashlib.sha256() if want.startswith("sha256:") else None
    try:
        fin = open(src, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError as exc:
        import socket

        raise FileNotFoundError(
            f"{src} does not exist on this machine ({socket.gethostname()}): local "
            "artifacts can only be read on the machine that stores them"
        ) from exc
    with fin, open(dest, "wb") as fout:
        while True:
            chunk = fin.read(1 << 20)
            if not chunk:
                break
            fout.write(chunk)
            if digest is not None:
                digest.update(chunk)
    if digest is not None and digest.hexdigest() != want[len("sha256:") :]:
        raise ValueError(
            f"{src} changed since the manifest was made (its sha256 is now "
            f"{digest.hexdigest()[:16]}..., the manifest pins "
            f"{want[len('sha256:') :][:16]}...)"
        )


def _store(s3: Any, path: str, bucket: str, key: str) -> None:
    if os.path.getsize(path) > SINGLE_REQUEST_BYTES:
        s3.upload_file(path, bucket, key)
    else:
        with open(path, "rb") as fh:
            s3.put_object(Bucket=bucket, Key=key, Body=fh)


def _entry_point(code: str, entry_point: str) -> Any:
    """The entry point of the user's code, executed once per process."""
    namespaces = _state().namespaces
    digest = hashlib.sha256(code.encode("utf-8")).hexdigest()
    namespace = namespaces.get(digest)
    if namespace is None:
        namespace = {"__name__": "infinstor_transform"}
        exec(compile(code, "transform.py", "exec"), namespace)  # noqa: S102
        namespaces[digest] = namespace
    return namespace[entry_point]


def _failure(key: str, error: str, exc: BaseException | None = None) -> dict[str, Any]:
    """A failure record; the traceback of ``exc``, else of the exception being handled."""
    tb = (
        "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        if exc is not None
        else traceback.format_exc()
    )
    return {"key": key, "error": error, "traceback": tb}


def run_task(task: dict[str, Any]) -> dict[str, Any]:
    """Download a task's objects at their exact versions, run the entry point, upload what
    it wrote. Never raises: failures are returned with their tracebacks."""
    from concurrent.futures import wait

    objects = task["objects"]
    prefix = task["prefix"]
    entry_point = task["entry_point"]
    io_threads = max(1, int(task.get("io_threads") or DEFAULT_IO_THREADS))
    result: dict[str, Any] = {"objects": len(objects), "ok": 0, "failed": [], "outputs": 0}
    work = tempfile.mkdtemp(prefix="infinstor-task-")
    input_dir = os.path.join(work, "input")
    output_dir = os.path.join(work, "output")
    os.makedirs(input_dir)
    os.makedirs(output_dir)
    pending: list[Any] = []
    try:
        if task.get("requirements"):
            activate_requirements(
                install_requirements(
                    task["requirements"],
                    task.get("requirements_cache"),
                    wheelhouse=task.get("wheelhouse"),
                )
            )
        s3 = _s3(io_threads)
        pool = _io_pool(io_threads)
        fetches: list[tuple[dict[str, Any], str, Any]] = []
        for obj in objects:
            path = os.path.join(input_dir, *relative_key(object_name(obj), prefix).split("/"))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fetches.append((obj, path, pool.submit(_fetch, s3, obj, path)))
        pending = [f for _, _, f in fetches]

        def fetched() -> Any:
            """(key, path) of each object in manifest order, once it is on disk."""
            for obj, path, fut in fetches:
                try:
                    fut.result()
                except Exception as exc:  # noqa: BLE001 - reported per object
                    result["failed"].append(_failure(object_name(obj), f"download: {exc}"))
                    continue
                yield object_name(obj), path

        code = task["code"]
        kwargs = task["kwargs"]
        if entry_point == ONE_OBJECT:
            fn = _entry_point(code, entry_point)
            for key, path in fetched():
                try:
                    fn(path, output_dir, os.path.dirname(path), **kwargs)
                    result["ok"] += 1
                except (Exception, SystemExit) as exc:  # noqa: BLE001 - sys.exit() too
                    result["failed"].append(_failure(key, repr(exc)))
        else:
            local = dict(fetched())
            try:
                if entry_point == SCRIPT:
                    _run_script(code, input_dir, output_dir)
                elif entry_point == DIR_BY_DIR:
                    fn = _entry_point(code, entry_point)
                    dirs = sorted({os.path.dirname(p) for p in local.values()}) or [input_dir]
                    for d in dirs:
                        fn(input_dir, output_dir, d, **kwargs)
                elif entry_point == ALL_OBJECTS:
                    _entry_point(code, entry_point)(input_dir, output_dir, **kwargs)
                elif entry_point == CSV_TO_PD:
                    import pandas as pd

                    fn = _entry_point(code, entry_point)
                    frames = [
                        pd.read_csv(p)
                        for k, p in sorted(local.items())
                        if k.lower().endswith(".csv")
                    ]
                    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
                    out = fn(df, **kwargs)
                    if out is not None and hasattr(out, "to_csv"):
                        out.to_csv(os.path.join(output_dir, "output.csv"), index=False)
                else:
                    raise ValueError(f"unknown entry point {entry_point!r}")
                result["ok"] = len(local)
            except (Exception, SystemExit) as exc:  # noqa: BLE001 - sys.exit() too
                result["failed"].append(_failure("*", repr(exc)))
        out_bucket, out_key = split_uri(task["output"])
        uploads = []
        for root, _dirs, files in os.walk(output_dir):
            for name in files:
                path = os.path.join(root, name)
                rel = os.path.relpath(path, output_dir).replace(os.sep, "/")
                uploads.append(
                    (rel, pool.submit(_store, s3, path, out_bucket, posixpath.join(out_key, rel)))
                )
        pending = [f for _, f in uploads]
        for rel, fut in uploads:
            try:
                fut.result()
                result["outputs"] += 1
            except Exception as exc:  # noqa: BLE001 - reported per output
                result["failed"].append(_failure(rel, f"upload: {exc}"))
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - the whole task failed
        result["failed"].append(_failure("*", repr(exc)))
    finally:
        for fut in pending:  # after a failure: what has not started never will
            fut.cancel()
        wait(pending)  # nothing may still be writing into the scratch directory
        shutil.rmtree(work, ignore_errors=True)
    return result


def _run_script(code: str, input_dir: str, output_dir: str) -> None:
    env_before = {k: os.environ.get(k) for k in ("INPUT_DIR", "OUTPUT_DIR")}
    os.environ["INPUT_DIR"], os.environ["OUTPUT_DIR"] = input_dir, output_dir
    try:
        exec(compile(code, "transform.py", "exec"), {"__name__": "__main__"})  # noqa: S102
    except SystemExit as exc:
        if exc.code not in (None, 0):  # a script may end itself with sys.exit(0)
            raise
    finally:
        for k, v in env_before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# -- the run --------------------------------------------------------------------------------
def _pool_context() -> Any:
    """fork where it is safe (Linux, no threads yet): workers start without re-importing
    boto3; spawn elsewhere."""
    import multiprocessing

    if sys.platform.startswith("linux") and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _run_local(tasks: list[dict[str, Any]], workers: int, on_result: Any) -> None:
    if workers <= 1 or len(tasks) <= 1:
        for task in tasks:
            on_result(run_task(task))
        return
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    with ProcessPoolExecutor(min(workers, len(tasks)), mp_context=_pool_context()) as pool:
        futures = {pool.submit(run_task, task): task for task in tasks}
        for fut in as_completed(futures):
            try:
                res = fut.result()
            except BrokenProcessPool as exc:
                # A worker died (killed, out of memory, a crash in native code).
                res = {
                    "objects": len(futures[fut]["objects"]),
                    "ok": 0,
                    "outputs": 0,
                    "failed": [_failure("*", f"a worker process died: {exc}", exc)],
                }
            except Exception as exc:  # noqa: BLE001 - whatever escaped the task
                res = {
                    "objects": len(futures[fut]["objects"]),
                    "ok": 0,
                    "outputs": 0,
                    "failed": [_failure("*", repr(exc), exc)],
                }
            on_result(res)


def _run_spark(
    sc: Any, tasks: list[dict[str, Any]], on_done: Callable[[int], None]
) -> list[dict[str, Any]]:
    """The tasks as one Spark job; ``on_done`` hears, about twice a second while it runs,
    how many objects the finished tasks held (an accumulator: Spark merges a task's update
    into the driver's value when the task ends)."""
    finished = sc.accumulator(0)

    def run_counted(task: dict[str, Any]) -> dict[str, Any]:
        res = run_task(task)
        finished.add(res["objects"])
        return res

    stop = threading.Event()

    def report() -> None:
        last = -1
        while not stop.wait(0.5):
            value = finished.value
            if value != last:
                on_done(value)
                last = value

    reporter = threading.Thread(target=report, name="infinstor-spark-progress", daemon=True)
    reporter.start()
    try:
        return sc.parallelize(tasks, len(tasks)).map(run_counted).collect()
    finally:
        stop.set()
        reporter.join(2)


class StatusWriter:
    """Progress and the driver's own log lines as two small S3 objects under ``uri``
    (``progress.json``, ``driver.log``), rewritten at most every ``interval`` seconds while
    something changed, and at the end: a detached run (an EMR step) is followed from S3.
    Writing is best effort: a failed write is said once on stderr and the run goes on."""

    def __init__(self, uri: str, interval: float = 5.0, keep: int = 500) -> None:
        from collections import deque

        self.bucket, key = split_uri(uri.rstrip("/") + "/")
        self.prefix = key
        self.interval = interval
        self.lines: Any = deque(maxlen=keep)
        self.doc: dict[str, Any] = {"state": "running", "done": 0, "total": 0}
        self._lock = threading.Lock()
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self._warned = False
        self._thread = threading.Thread(target=self._loop, name="infinstor-status", daemon=True)
        self._thread.start()

    def log(self, msg: str) -> None:
        with self._lock:
            for line in str(msg).splitlines() or [""]:
                self.lines.append(time.strftime("%Y-%m-%dT%H:%M:%SZ ", time.gmtime()) + line)
        self._dirty.set()

    def progress(self, done: int, total: int) -> None:
        with self._lock:
            self.doc.update(done=done, total=total)
        self._dirty.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._dirty.wait(self.interval)
            if self._stop.is_set():
                return
            if self._dirty.is_set():
                self._dirty.clear()
                self.flush()
                self._stop.wait(self.interval)

    def flush(self) -> None:
        with self._lock:
            doc = dict(self.doc, updated=time.time())
            text = "\n".join(self.lines) + "\n"
        try:
            s3 = _s3()
            s3.put_object(
                Bucket=self.bucket,
                Key=self.prefix + "progress.json",
                Body=json.dumps(doc).encode(),
                ContentType="application/json",
            )
            s3.put_object(
                Bucket=self.bucket,
                Key=self.prefix + "driver.log",
                Body=text.encode("utf-8"),
                ContentType="text/plain; charset=utf-8",
            )
        except Exception as exc:  # noqa: BLE001 - the run goes on without live status
            if not self._warned:
                self._warned = True
                print(f"(could not write the run's status to S3: {exc})", file=sys.stderr)

    def close(self, state: str) -> None:
        self._stop.set()
        self._dirty.set()
        self._thread.join(self.interval + 5)
        with self._lock:
            self.doc["state"] = state
        self.flush()


FAILED_MARKER = "_FAILED.json"


def _write_failures(
    output: str, summary: dict[str, Any], failed: list[dict[str, Any]], *, echo: bool = True
) -> None:
    if echo:
        for f in failed:
            print(f"FAILED {f['key']}: {f['error']}\n{f['traceback']}", file=sys.stderr, flush=True)
    out_bucket, out_key = split_uri(output)
    _s3().put_object(
        Bucket=out_bucket,
        Key=out_key + FAILED_MARKER,
        Body=json.dumps({**summary, "state": "failed", "failures": failed}, indent=1).encode(),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="infinstor_jlab transform driver")
    parser.add_argument("--manifest", required=True)
    parser.add_argument(
        "--manifest-sha256", required=True, help="SHA-256 the manifest's bytes must have"
    )
    parser.add_argument(
        "--manifest-version-id", default=None, help="S3 version id of the staged manifest"
    )
    parser.add_argument("--code", required=True)
    parser.add_argument("--code-sha256", required=True, help="SHA-256 the code's bytes must have")
    parser.add_argument("--code-version-id", default=None, help="S3 version id of the staged code")
    parser.add_argument("--output", required=True)
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--entry-point", required=True)
    parser.add_argument("--kwargs", default="{}")
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="worker processes of a local run (default: CPU count)",
    )
    parser.add_argument(
        "--io-threads",
        type=int,
        default=0,
        help="threads per worker process (or Spark task) downloading and "
        f"uploading objects (default 0: {IN_FLIGHT} / workers, at "
        f"least {MIN_IO_THREADS})",
    )
    parser.add_argument("--spark", action="store_true")
    parser.add_argument("--progress", action="store_true")
    parser.add_argument(
        "--requirements",
        default="[]",
        help="JSON list of extra pip requirements, installed once per machine",
    )
    parser.add_argument(
        "--requirements-cache",
        default=None,
        help="directory of installed requirements (default: "
        "$INFINSTOR_REQUIREMENTS_CACHE, else "
        "~/.cache/infinstor_jlab/requirements)",
    )
    parser.add_argument(
        "--wheelhouse",
        default=None,
        help="S3 prefix of staged wheels: requirements are installed from it, offline",
    )
    parser.add_argument(
        "--wheelhouse-sha256", default="", help="SHA-256 of the wheelhouse's SHA256SUMS.json"
    )
    parser.add_argument(
        "--status-uri",
        default=None,
        help="S3 prefix where progress.json and driver.log are kept while the run goes on",
    )
    args = parser.parse_args(argv)
    status = StatusWriter(args.status_uri) if args.status_uri else None
    try:
        code = _main(args, status)
    except BaseException:
        if status is not None:
            status.log(traceback.format_exc())
            status.close("failed")
        raise
    if status is not None:
        status.close("succeeded" if code == 0 else "failed")
    return code


def _main(args: Any, status: StatusWriter | None) -> int:
    started = time.time()
    output = args.output.rstrip("/") + "/" + args.run_id + "/"
    base_summary = {"run_id": args.run_id, "entry_point": args.entry_point, "started": started}

    def say(msg: str) -> None:
        print(msg, flush=True)
        if status is not None:
            status.log(msg)

    def shout(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)
        if status is not None:
            status.log(msg)

    try:
        # Before anything else runs (pip, the user's code): exactly the staged bytes.
        manifest_text = read_checked(
            args.manifest, args.manifest_sha256, args.manifest_version_id, "manifest"
        )
        code = read_checked(args.code, args.code_sha256, args.code_version_id, "code")
    except StagedFileError as exc:
        shout(f"ERROR: {exc}")
        try:
            _write_failures(
                output,
                {
                    **base_summary,
                    "objects": None,
                    "succeeded": 0,
                    "failed": 1,
                    "finished": time.time(),
                },
                [_failure(exc.uri, str(exc), exc)],
                echo=False,
            )
        except Exception as write_exc:  # noqa: BLE001 - the log has the reason already
            print(f"(could not write {FAILED_MARKER}: {write_exc})", file=sys.stderr)
        return 1

    try:
        reqs = check_requirement_list(args.requirements)
        wheelhouse = (args.wheelhouse, args.wheelhouse_sha256) if args.wheelhouse else None
        activate_requirements(
            install_requirements(reqs, args.requirements_cache, log=say, wheelhouse=wheelhouse)
        )
    except RequirementsError as exc:
        shout(f"ERROR: could not install the extra requirements; no task ran.\n{exc}")
        failure = _failure("*", f"requirements: {exc}", exc)
        try:
            _write_failures(
                output,
                {
                    **base_summary,
                    "objects": None,
                    "succeeded": 0,
                    "failed": 1,
                    "finished": time.time(),
                },
                [failure],
            )
        except Exception as write_exc:  # noqa: BLE001 - the log has the reason already
            print(f"(could not write {FAILED_MARKER}: {write_exc})", file=sys.stderr)
        return 1

    header, objects = parse_manifest(manifest_text)
    kwargs = json.loads(args.kwargs)
    prefix = header.get("prefix", "")
    parallelism = max(1, args.workers)
    io_threads = args.io_threads
    spark = None
    if args.spark:
        from pyspark.sql import SparkSession

        spark = SparkSession.builder.appName(f"infinstor-{args.run_id}").getOrCreate()
        parallelism = max(parallelism, spark.sparkContext.defaultParallelism)
    if io_threads <= 0:
        io_threads = max(MIN_IO_THREADS, -(-IN_FLIGHT // parallelism))
    groups = plan_tasks(args.entry_point, objects, prefix, parallelism)
    tasks = [
        {
            "objects": g,
            "prefix": prefix,
            "entry_point": args.entry_point,
            "code": code,
            "kwargs": kwargs,
            "output": output,
            "io_threads": io_threads,
            "requirements": reqs,
            "requirements_cache": args.requirements_cache,
            "wheelhouse": wheelhouse,
        }
        for g in groups
    ]
    total = len(objects)
    done = 0
    results: list[dict[str, Any]] = []

    def progress() -> None:
        if args.progress:
            print(PROGRESS_PREFIX + json.dumps({"done": done, "total": total}), flush=True)
        if status is not None:
            status.progress(done, total)

    def on_result(res: dict[str, Any]) -> None:
        nonlocal done
        results.append(res)
        done += res["objects"]
        progress()

    def on_spark_done(objects_done: int) -> None:
        nonlocal done
        done = objects_done
        progress()

    progress()
    if spark is not None:
        results = _run_spark(spark.sparkContext, tasks, on_done=on_spark_done)
        done = total
        progress()
    else:
        _run_local(tasks, parallelism, on_result)

    failed = [f for r in results for f in r["failed"]]
    if status is not None:
        for f in failed[:20]:
            status.log(f"FAILED {f['key']}: {f['error']}")
    summary = {
        **base_summary,
        "objects": total,
        "succeeded": sum(r["ok"] for r in results),
        "failed": len(failed),
        "outputs": sum(r["outputs"] for r in results),
        "fingerprint": header.get("fingerprint"),
        "tasks": len(tasks),
        "workers": parallelism,
        "io_threads": io_threads,
        "finished": time.time(),
    }
    if failed:
        _write_failures(output, summary, failed)
    else:
        # Written last: its presence means every object of the manifest went through.
        out_bucket, out_key = split_uri(output)
        _s3().put_object(
            Bucket=out_bucket,
            Key=out_key + "_SUCCESS.json",
            Body=json.dumps(summary, indent=1).encode(),
        )
    say(json.dumps(summary))
    if spark is not None:
        spark.stop()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
