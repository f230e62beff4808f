"""What detached executors (EMR, EMR Serverless) share: the run followed from S3 (the
driver's ``progress.json`` and ``driver.log`` under the staging prefix, the step's own
stderr/stdout where EMR puts them), and requirements staged as a wheelhouse for clusters
without internet."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from typing import Any

from ..errors import BadRequest, StorageError
from .driver import WHEELHOUSE_SUMS

#: The last lines of each remote log shown in a run's log view.
REMOTE_LOG_LINES = 200


def split_s3_uri(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


def _get(s3: Any, uri: str) -> bytes | None:
    """The object's bytes, or None when it is not there (yet)."""
    from botocore.exceptions import ClientError

    bucket, key = split_s3_uri(uri)
    try:
        return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("NoSuchKey", "404", "NotFound"):
            return None
        raise StorageError(f"Could not read {uri}: {code}") from exc


def read_progress(s3: Any, status_uri: str) -> dict[str, Any] | None:
    """The driver's last ``progress.json`` ({"done", "total", "state", "updated"}), or None
    before it wrote one (the job has not started its driver yet)."""
    body = _get(s3, status_uri.rstrip("/") + "/progress.json")
    if body is None:
        return None
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def _tail(text: str, lines: int) -> str:
    return "\n".join(text.splitlines()[-lines:])


def remote_log(s3: Any, sources: list[tuple[str, str]], lines: int = REMOTE_LOG_LINES) -> str:
    """The sections of a detached run's log view: each (title, S3 URI) that exists, its
    last ``lines`` lines (``.gz`` objects, as EMR writes step logs, are unpacked)."""
    parts: list[str] = []
    for title, uri in sources:
        try:
            body = _get(s3, uri)
        except StorageError as exc:
            parts.append(f"--- {title} ({uri}): {exc}")
            continue
        if body is None:
            parts.append(f"--- {title}: not there yet ({uri})")
            continue
        if uri.endswith(".gz"):
            try:
                body = gzip.decompress(body)
            except OSError:
                pass  # written without compression after all
        parts.append(f"--- {title} ({uri})\n" + _tail(body.decode("utf-8", "replace"), lines))
    return "\n".join(parts)


def build_wheelhouse(
    requirements: list[str],
    *,
    python_version: str,
    platforms: list[str],
    pip_args: list[str],
) -> str:
    """``pip download`` of the requirements (and their dependencies) as wheels for the
    cluster's Python and platform, into a new temporary directory (returned)."""
    dest = tempfile.mkdtemp(prefix="infinstor-wheelhouse-")
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--disable-pip-version-check",
        "--no-input",
        "--dest",
        dest,
        "--only-binary=:all:",
        "--python-version",
        python_version,
        "--implementation",
        "cp",
    ]
    for platform in platforms:
        cmd += ["--platform", platform]
    cmd += [*pip_args, *requirements]
    proc = subprocess.run(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False
    )
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.splitlines()[-15:])
        raise BadRequest(
            f"Could not build the wheelhouse of {json.dumps(requirements)} for Python "
            f"{python_version} on {', '.join(platforms)} (the cluster installs offline from "
            f"it; each requirement needs a wheel for that platform):\n{tail}"
        )
    return dest


def stage_wheelhouse(s3: Any, local_dir: str, staging_uri: str) -> tuple[str, str]:
    """Upload the wheels and their ``SHA256SUMS.json``; (wheelhouse URI, SHA-256 of the
    sums file), which the driver gets in its arguments and checks."""
    uri = staging_uri.rstrip("/") + "/wheelhouse/"
    bucket, prefix = split_s3_uri(uri)
    sums: dict[str, str] = {}
    for name in sorted(os.listdir(local_dir)):
        path = os.path.join(local_dir, name)
        if not os.path.isfile(path):
            continue
        with open(path, "rb") as fh:
            body = fh.read()
        sums[name] = hashlib.sha256(body).hexdigest()
        s3.put_object(Bucket=bucket, Key=prefix + name, Body=body)
    doc = json.dumps(sums, indent=1, sort_keys=True).encode()
    s3.put_object(Bucket=bucket, Key=prefix + WHEELHOUSE_SUMS, Body=doc)
    return uri, hashlib.sha256(doc).hexdigest()
