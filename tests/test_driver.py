"""The transform driver run as the executors run it: a subprocess against moto's S3 server,
reading a staged manifest and code, writing to an output prefix."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from infinstor_jlab.transforms import driver

DRIVER = Path(driver.__file__)

COPY_ONE = """
import os, shutil
def infin_transform_one_object(filename, output_dir, parentdir, **kwargs):
    name = os.path.basename(parentdir) + "-" + os.path.basename(filename)
    shutil.copy(filename, os.path.join(output_dir, name))
"""

FAIL_ONE = """
import os, shutil
def infin_transform_one_object(filename, output_dir, parentdir, **kwargs):
    if filename.endswith("b.txt"):
        raise ValueError("cannot handle " + os.path.basename(filename))
    shutil.copy(filename, output_dir)
"""

USES_TINYPKG = """
import os
import tinypkg
def infin_transform_one_object(filename, output_dir, parentdir, **kwargs):
    with open(os.path.join(output_dir, os.path.basename(filename)), "w") as fh:
        fh.write(tinypkg.VALUE + ":" + tinypkg.__file__)
"""


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch, s3_endpoint):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # the requirements tests never use the network
    monkeypatch.setenv("INFINSTOR_REQUIREMENTS_CACHE", str(tmp_path / "default-cache"))


#: (bucket, stage name) -> the driver's arguments naming what was staged there: the SHA-256
#: and version id of each file as staged (what the service passes to the driver).
_STAGED: dict[tuple[str, str], list[str]] = {}


def stage(
    s3, bucket: str, objects: list[dict], code: str, *, prefix: str = "in/", name: str = "stage"
) -> str:
    header = {
        "manifest_version": 1,
        "bucket": bucket,
        "prefix": prefix,
        "count": len(objects),
        "fingerprint": "fp-" + name,
    }
    body = "\n".join(json.dumps(line) for line in [header, *objects]) + "\n"
    args: list[str] = []
    for what, data in (("manifest", body.encode()), ("code", code.encode())):
        key = f"{name}/{'manifest.jsonl' if what == 'manifest' else 'code.py'}"
        resp = s3.put_object(Bucket=bucket, Key=key, Body=data)
        args += [f"--{what}", f"s3://{bucket}/{key}", f"--{what}-sha256", _sha(data)]
        if resp.get("VersionId") not in (None, "null"):
            args += [f"--{what}-version-id", resp["VersionId"]]
    _STAGED[(bucket, name)] = args
    return name


def driver_cmd(
    bucket: str,
    run_id: str,
    *extra: str,
    stage_name: str = "stage",
    entry_point: str = driver.ONE_OBJECT,
) -> list[str]:
    return [
        sys.executable,
        str(DRIVER),
        *_STAGED[(bucket, stage_name)],
        "--output",
        f"s3://{bucket}/out/",
        "--run-id",
        run_id,
        "--entry-point",
        entry_point,
        "--progress",
        *extra,
    ]


def run_driver(bucket: str, run_id: str, *extra: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        driver_cmd(bucket, run_id, *extra, **kw),
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )


def outputs(s3, bucket: str, run_id: str) -> dict[str, bytes]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"out/{run_id}/")
    keys = [o["Key"] for p in pages for o in p.get("Contents", [])]
    return {
        k[len(f"out/{run_id}/") :]: s3.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys
    }


def progress(stdout: str) -> list[dict]:
    return [
        json.loads(line[len(driver.PROGRESS_PREFIX) :])
        for line in stdout.splitlines()
        if line.startswith(driver.PROGRESS_PREFIX)
    ]


def put_objects(s3, bucket: str, bodies: dict[str, bytes]) -> list[dict]:
    objects = []
    for key, body in bodies.items():
        resp = s3.put_object(Bucket=bucket, Key=key, Body=body)
        objects.append(
            {
                "bucket": bucket,
                "key": key,
                "version_id": resp["VersionId"],
                "size": len(body),
                "etag": resp["ETag"].strip('"'),
            }
        )
    return objects


def test_exact_versions_through_worker_processes_and_io_threads(s3, bucket):
    bodies = {f"in/d{i % 3}/f{i:02d}.txt": f"old {i}".encode() for i in range(40)}
    objects = put_objects(s3, bucket, bodies)
    for key in list(bodies)[:10]:  # newer versions the manifest does not pin
        s3.put_object(Bucket=bucket, Key=key, Body=b"new")
    stage(s3, bucket, objects, COPY_ONE)
    proc = run_driver(bucket, "r1", "--workers", "2", "--io-threads", "3")
    assert proc.returncode == 0, proc.stderr
    out = outputs(s3, bucket, "r1")
    success = json.loads(out.pop("_SUCCESS.json"))
    assert out == {f"{k.split('/')[1]}-{k.split('/')[2]}": v for k, v in bodies.items()}
    assert success["objects"] == success["succeeded"] == success["outputs"] == 40
    assert success["failed"] == 0 and success["fingerprint"] == "fp-stage"
    assert success["workers"] == 2 and success["io_threads"] == 3 and success["tasks"] > 2
    steps = progress(proc.stdout)
    assert steps[0] == {"done": 0, "total": 40} and steps[-1] == {"done": 40, "total": 40}
    assert [s["done"] for s in steps] == sorted(s["done"] for s in steps)


def test_failures_are_recorded_per_object_and_nothing_claims_success(s3, bucket):
    objects = put_objects(s3, bucket, {"in/a.txt": b"a", "in/b.txt": b"b", "in/c.txt": b"c"})
    objects.append(
        {
            "bucket": bucket,
            "key": "in/gone.txt",
            "version_id": "no-such-version",
            "size": 1,
            "etag": "x",
        }
    )
    stage(s3, bucket, objects, FAIL_ONE)
    for workers in ("1", "2"):  # in-process, and through the process pool
        run_id = f"fail{workers}"
        proc = run_driver(bucket, run_id, "--workers", workers)
        assert proc.returncode == 1
        out = outputs(s3, bucket, run_id)
        assert "_SUCCESS.json" not in out
        failures = json.loads(out.pop("_FAILED.json"))
        assert out == {"a.txt": b"a", "c.txt": b"c"}
        by_key = {f["key"]: f for f in failures["failures"]}
        assert set(by_key) == {"in/b.txt", "in/gone.txt"}
        assert "ValueError: cannot handle b.txt" in by_key["in/b.txt"]["traceback"]
        assert by_key["in/gone.txt"]["error"].startswith("download: ")
        assert "Traceback" in by_key["in/gone.txt"]["traceback"]
        assert failures["failed"] == 2 and failures["succeeded"] == 2
        assert "ValueError: cannot handle b.txt" in proc.stderr


FOREIGN = """
import os, shutil
open({marker!r}, "w").write("foreign code ran")
def infin_transform_one_object(filename, output_dir, parentdir, **kwargs):
    open({marker!r}, "w").write("foreign code ran")
    shutil.copy(filename, os.path.join(output_dir, "foreign-" + os.path.basename(filename)))
"""


def test_staged_code_or_manifest_swapped_after_staging_never_runs(
    s3, s3_endpoint, bucket, tmp_path
):
    """A second S3 client overwrites the staged code.py (or manifest) after staging, before
    the driver reads it: on a versioned bucket the driver reads the version it was given
    (the run's own code runs); without a version (an unversioned bucket) the bytes do not
    match the SHA-256 in its arguments and it stops, naming the file, before running
    anything."""
    import uuid

    import boto3

    marker = tmp_path / "foreign-code-ran"
    other = boto3.client("s3", endpoint_url=s3_endpoint)  # write access, no Jupyter
    objects = put_objects(s3, bucket, {"in/a.txt": b"a", "in/b.txt": b"b"})

    stage(s3, bucket, objects, COPY_ONE, name="swap")
    other.put_object(
        Bucket=bucket, Key="swap/code.py", Body=FOREIGN.format(marker=str(marker)).encode()
    )
    proc = run_driver(bucket, "swap-versioned", "--workers", "1", stage_name="swap")
    assert proc.returncode == 0, proc.stderr
    assert not marker.exists()
    out = outputs(s3, bucket, "swap-versioned")
    assert out.pop("_SUCCESS.json") and out == {"input-a.txt": b"a", "input-b.txt": b"b"}

    plain = f"plain-{uuid.uuid4().hex[:12]}"  # no versioning: PutObject returns no version
    s3.create_bucket(Bucket=plain)
    s3.put_object(Bucket=plain, Key="in/a.txt", Body=b"a")
    objects = [{"bucket": plain, "key": "in/a.txt", "size": 1}]
    for swapped in ("code.py", "manifest.jsonl"):
        name = "swap-" + swapped.split(".")[0]
        stage(s3, plain, objects, COPY_ONE, name=name)
        assert not any(a.endswith("-version-id") for a in _STAGED[(plain, name)])
        body = (
            FOREIGN.format(marker=str(marker)).encode()
            if swapped == "code.py"
            else s3.get_object(Bucket=plain, Key=f"{name}/manifest.jsonl")["Body"]
            .read()
            .replace(b"fp-", b"forged-")
        )
        other.put_object(Bucket=plain, Key=f"{name}/{swapped}", Body=body)
        proc = run_driver(plain, name, "--workers", "1", stage_name=name)
        assert proc.returncode == 1
        assert not marker.exists()
        uri = f"s3://{plain}/{name}/{swapped}"
        assert f"{uri} is not the one this run was started with" in proc.stderr
        assert "Nothing ran" in proc.stderr and progress(proc.stdout) == []
        out = outputs(s3, plain, name)
        assert list(out) == ["_FAILED.json"]  # no output, no _SUCCESS.json
        failure = json.loads(out["_FAILED.json"])["failures"][0]
        assert failure["key"] == uri and "SHA-256" in failure["error"]


def test_user_code_that_exits_or_kills_its_worker(s3, bucket):
    objects = put_objects(s3, bucket, {"in/a.txt": b"a", "in/b.txt": b"b"})
    stage(
        s3,
        bucket,
        objects,
        """
import os, shutil, sys
def infin_transform_one_object(filename, output_dir, parentdir, **kwargs):
    if filename.endswith("b.txt"):
        sys.exit(3)
    shutil.copy(filename, output_dir)
""",
    )
    proc = run_driver(bucket, "exits", "--workers", "1")
    assert proc.returncode == 1
    out = outputs(s3, bucket, "exits")
    failures = json.loads(out["_FAILED.json"])["failures"]
    assert [f["key"] for f in failures] == ["in/b.txt"] and "SystemExit(3)" in failures[0]["error"]
    assert out["a.txt"] == b"a"

    # A worker process that dies is a failure of its task, not a hang.
    stage(
        s3,
        bucket,
        objects,
        """
import os
def infin_transform_one_object(filename, output_dir, parentdir, **kwargs):
    os._exit(9)
""",
        name="stage-dies",
    )
    proc = run_driver(bucket, "dies", "--workers", "2", stage_name="stage-dies")
    assert proc.returncode == 1
    out = outputs(s3, bucket, "dies")
    assert "_SUCCESS.json" not in out
    assert "a worker process died" in out["_FAILED.json"].decode()

    # A script may end itself with sys.exit(0); it sees INPUT_DIR and OUTPUT_DIR.
    stage(
        s3,
        bucket,
        objects,
        """
import os, sys
names = sorted(os.listdir(os.environ["INPUT_DIR"]))
with open(os.path.join(os.environ["OUTPUT_DIR"], "names.txt"), "w") as fh:
    fh.write(",".join(names))
sys.exit(0)
""",
        name="stage-script",
    )
    proc = run_driver(bucket, "script", stage_name="stage-script", entry_point=driver.SCRIPT)
    assert proc.returncode == 0, proc.stderr
    assert outputs(s3, bucket, "script")["names.txt"] == b"a.txt,b.txt"


def test_dir_by_dir_sees_every_folder_once(s3, bucket):
    objects = put_objects(
        s3, bucket, {f"in/{d}/{n}.txt": d.encode() for d in ("x", "y") for n in range(5)}
    )
    stage(
        s3,
        bucket,
        objects,
        """
import os
def infin_transform_dir_by_dir(input_dir, output_dir, dir, **kwargs):
    names = sorted(os.listdir(dir))
    with open(os.path.join(output_dir, os.path.basename(dir) + ".txt"), "w") as fh:
        fh.write(",".join(names))
""",
    )
    proc = run_driver(bucket, "dirs", "--workers", "2", entry_point=driver.DIR_BY_DIR)
    assert proc.returncode == 0, proc.stderr
    out = outputs(s3, bucket, "dirs")
    assert out["x.txt"] == out["y.txt"] == b"0.txt,1.txt,2.txt,3.txt,4.txt"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_local_path_objects_are_copied_and_checked(s3, bucket, tmp_path):
    root = tmp_path / "artifacts"
    (root / "model").mkdir(parents=True)
    files = {"metrics.txt": b"acc=0.9", "model/weights.bin": b"\x00\x01\x02"}
    for rel, data in files.items():
        (root / rel).write_bytes(data)
    objects = [
        {
            "bucket": "",
            "key": rel,
            "version_id": "sha256:" + _sha(data),
            "size": len(data),
            "etag": _sha(data)[:32],
            "path": str(root / rel),
        }
        for rel, data in files.items()
    ]
    stage(s3, bucket, objects, COPY_ONE, prefix="")
    proc = run_driver(bucket, "local-ok", "--workers", "2")
    assert proc.returncode == 0, proc.stderr
    out = outputs(s3, bucket, "local-ok")
    assert out.pop("_SUCCESS.json")
    assert out == {"input-metrics.txt": b"acc=0.9", "model-weights.bin": b"\x00\x01\x02"}

    # The bytes changed after the manifest pinned them; a file is gone: failures, no success.
    (root / "metrics.txt").write_bytes(b"acc=0.1")
    objects.append(
        {
            "bucket": "",
            "key": "missing.txt",
            "version_id": "sha256:" + _sha(b""),
            "size": 0,
            "etag": "",
            "path": str(root / "missing.txt"),
        }
    )
    stage(s3, bucket, objects, COPY_ONE, prefix="", name="stage2")
    proc = run_driver(bucket, "local-bad", "--workers", "1", stage_name="stage2")
    assert proc.returncode == 1
    out = outputs(s3, bucket, "local-bad")
    assert "_SUCCESS.json" not in out and "model-weights.bin" in out
    by_key = {f["key"]: f["error"] for f in json.loads(out["_FAILED.json"])["failures"]}
    assert "changed since the manifest was made" in by_key["metrics.txt"]
    assert "input-metrics.txt" not in out
    assert "does not exist on this machine" in by_key["missing.txt"]


def make_wheel(directory: Path, name: str, version: str, value: str) -> Path:
    """A pure-Python wheel built by hand: pip installs it with no network and no build."""
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": f"VALUE = {value!r}\n".encode(),
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{dist}/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: test_driver\n"
            b"Root-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{dist}/RECORD,,")
    files[f"{dist}/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel = directory / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, data in files.items():
            zf.writestr(path, data)
    return wheel


def test_requirements_installed_once_per_machine_and_importable(s3, bucket, tmp_path):
    wheel = make_wheel(tmp_path, "tinypkg", "1.0", "tiny-42")
    objects = put_objects(s3, bucket, {f"in/f{i}.txt": b"x" for i in range(12)})
    stage(s3, bucket, objects, USES_TINYPKG)
    cache = tmp_path / "req-cache"
    reqs = json.dumps([str(wheel)])
    # Two runs at once, each with two worker processes: one install, both use it.
    procs = [
        subprocess.Popen(
            driver_cmd(
                bucket,
                f"req{i}",
                "--workers",
                "2",
                "--requirements",
                reqs,
                "--requirements-cache",
                str(cache),
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    logs = [p.communicate(timeout=300) for p in procs]
    for p, (stdout, stderr) in zip(procs, logs):
        assert p.returncode == 0, stdout + stderr
    assert sum(stdout.count("installing extra requirements") for stdout, _ in logs) == 1
    installed = [d for d in cache.iterdir() if d.is_dir()]
    assert len(installed) == 1 and (installed[0] / ".infinstor-complete").exists()
    for i in range(2):
        out = outputs(s3, bucket, f"req{i}")
        assert out.pop("_SUCCESS.json")
        assert len(out) == 12
        value, path = next(iter(out.values())).decode().split(":", 1)
        assert value == "tiny-42" and path.startswith(str(installed[0]))
    # Later runs find them installed; the same list in another order is the same directory.
    proc = run_driver(
        bucket,
        "req-again",
        "--workers",
        "1",
        "--requirements",
        json.dumps([str(wheel), " "]),
        "--requirements-cache",
        str(cache),
    )
    assert proc.returncode == 0, proc.stderr
    assert "installing extra requirements" not in proc.stdout
    assert driver.requirements_key([str(wheel)]) == installed[0].name


def test_requirements_default_cache_and_failure_stops_before_any_task(s3, bucket, tmp_path):
    objects = put_objects(s3, bucket, {"in/a.txt": b"a"})
    stage(s3, bucket, objects, COPY_ONE)
    missing = tmp_path / "nothing-1.0-py3-none-any.whl"
    proc = run_driver(bucket, "req-bad", "--requirements", json.dumps([str(missing)]))
    assert proc.returncode == 1
    assert "could not install the extra requirements; no task ran" in proc.stderr
    assert "pip could not install" in proc.stderr and str(missing) in proc.stderr
    assert progress(proc.stdout) == []
    out = outputs(s3, bucket, "req-bad")
    assert list(out) == ["_FAILED.json"]
    failure = json.loads(out["_FAILED.json"])["failures"][0]
    assert failure["error"].startswith("requirements: pip could not install")
    # Nothing half-installed is left to be taken for a finished install.
    cache = Path(os.environ["INFINSTOR_REQUIREMENTS_CACHE"])
    assert not any(d.is_dir() for d in cache.iterdir())

    for bad, why in (
        ('["--index-url=http://example.invalid"]', "is a pip option"),
        ('{"pillow": 1}', "must be a JSON list of strings"),
        ("[not json", "is not a JSON list"),
    ):
        proc = run_driver(bucket, "req-bad2", "--requirements", bad)
        assert proc.returncode == 1 and why in proc.stderr, proc.stderr


def test_requirements_key_and_activation(tmp_path, monkeypatch):
    assert driver.requirements_key(["a", "b"]) == driver.requirements_key(["b", "a", "a"])
    assert driver.requirements_key(["a"]) != driver.requirements_key(["a==2"])
    assert driver.install_requirements([], str(tmp_path)) is None
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    driver.activate_requirements(str(tmp_path))
    driver.activate_requirements(str(tmp_path))
    assert sys.path[0] == str(tmp_path) and sys.path.count(str(tmp_path)) == 1
    assert os.environ["PYTHONPATH"] == str(tmp_path) + os.pathsep + "/elsewhere"
