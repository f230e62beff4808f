"""Cells as transforms: capture, manifests, and the local executor end to end (moto + MLflow)."""

from __future__ import annotations

import json
import os
import time

import pytest

from infinstor_jlab.errors import BadRequest
from infinstor_jlab.services.views import label_spec
from infinstor_jlab.transforms.capture import capture, clean_source, parse_kwargs

COPY_ONE = """
%reset -f
import os, shutil
def infin_transform_one_object(filename, output_dir, parentdir, **kwargs):
    shutil.copy(filename, os.path.join(output_dir, kwargs.get("tag", "") + os.path.basename(filename)))
test_infin_transform({"type": "no-input-data"})  # infinstor
"""

FAIL_ONE = """
import os, shutil
def infin_transform_one_object(filename, output_dir, parentdir, **kwargs):
    if filename.endswith("b.txt"):
        raise ValueError("cannot handle " + os.path.basename(filename))
    shutil.copy(filename, output_dir)
"""


def test_cleaning_and_entry_point_detection():
    captured = capture(COPY_ONE)
    assert "%reset" not in captured.code and "test_infin_transform" not in captured.code
    assert captured.entry_point == "infin_transform_one_object"
    assert len(captured.sha256) == 64
    for name in (
        "infin_transform_all_objects(input_dir, output_dir, **kw)",
        "infin_transform_dir_by_dir(input_dir, output_dir, dir, **kw)",
        "infin_transform_csv_to_pd(df, **kw)",
    ):
        assert capture(f"def {name}:\n    pass\n").entry_point == name.split("(")[0]
    assert capture("print('hello')\n").entry_point == "script"
    assert clean_source("a = 1\nb = 2  # INFINSTOR test only\n") == "a = 1\n"


def test_capture_errors_are_sentences():
    with pytest.raises(BadRequest, match=r"not valid Python \(line 2"):
        capture("x = 1\ndef broken(:\n")
    with pytest.raises(BadRequest, match="IPython magics"):
        capture("%matplotlib inline\nx = 1\n")
    with pytest.raises(BadRequest, match="more than one"):
        capture(
            "def infin_transform_one_object(a, b, c):\n    pass\n"
            "def infin_transform_all_objects(a, b):\n    pass\n"
        )
    with pytest.raises(BadRequest, match="empty"):
        capture("   \n")
    assert parse_kwargs('{"size": 224}') == {"size": 224}
    for bad in ("[1]", "{not json", '{"bad key": 1}'):
        with pytest.raises(BadRequest):
            parse_kwargs(bad)


@pytest.fixture
def transforms(service, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///" + str(tmp_path / "mlflow.db"))
    monkeypatch.chdir(tmp_path)  # MLflow's sqlite store keeps artifacts under ./mlruns
    from infinstor_jlab.transforms.executors import LocalExecutor
    from infinstor_jlab.transforms.service import TransformService
    from infinstor_jlab.transforms.store import TransformStore

    store = TransformStore(str(tmp_path / "index.sqlite"))
    return TransformService(
        service, store, str(tmp_path / "runs"), executors={"local": LocalExecutor(workers=2)}
    )


@pytest.fixture
def view(s3, bucket, service):
    for name in ("a.txt", "b.txt", "sub/c.txt"):
        s3.put_object(Bucket=bucket, Key=f"in/{name}", Body=name.encode())
    s3.put_object(Bucket=bucket, Key="other/ignored.txt", Body=b"x")
    service.sync(bucket)
    return bucket


def s3_keys(s3, bucket, prefix):
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for p in pages for o in p.get("Contents", []))


def test_manifest_fingerprint_matches_the_label(transforms, service, view):
    spec = service.parse_spec("now")
    label = service.create_label("in-now", view, "in/", spec)
    manifest = transforms.resolve_input({"type": "label", "label": "in-now"})
    assert manifest.fingerprint == label.fingerprint
    lines = manifest.to_jsonl().splitlines()
    header = json.loads(lines[0])
    assert header["count"] == 3 and header["fingerprint"] == label.fingerprint
    assert [json.loads(line)["key"] for line in lines[1:]] == [
        "in/a.txt",
        "in/b.txt",
        "in/sub/c.txt",
    ]
    snap = transforms.resolve_input(
        {"type": "infinsnap", "bucketname": view, "prefix": "in/", "time_spec": "now"}
    )
    assert snap.fingerprint == label.fingerprint


def test_a_label_that_lost_pinned_versions_is_refused_as_input(transforms, service, view, s3):
    """A version the label pins was removed from S3 and pruned from the index: a run over
    the label would read less than the label promises, so it is refused, naming the label;
    labels that still match (snapshot or slice) resolve as before."""
    from infinstor_jlab.errors import Conflict, InfinstorError

    label = service.create_label("in-pinned", view, "in/", service.parse_spec("now"))
    window = service.parse_spec(f"{label.end_ms - 3_600_000}/{label.end_ms}")
    sliced = service.create_label("in-window", view, "in/", window)
    assert (
        transforms.resolve_input({"type": "label", "label": "in-window"}).fingerprint
        == sliced.fingerprint
    )
    gone = next(
        o
        for o in service.iter_objects(view, spec=label_spec(label), prefix="in/")
        if o.key == "in/b.txt"
    )
    s3.delete_object(Bucket=view, Key="in/b.txt", VersionId=gone.version_id)
    service.index.remove_versions(view, [("in/b.txt", gone.version_id)])  # what a sync prunes
    for spec in (
        {"type": "label", "label": "in-pinned"},
        {"type": "infinsnap", "bucketname": view, "prefix": "in/", "time_spec": "label:/in-pinned"},
    ):
        with pytest.raises(Conflict, match="'in-pinned' no longer matches") as err:
            transforms.resolve_input(spec)
        assert "label verify in-pinned" in str(err.value)
    with pytest.raises(InfinstorError, match="in the future"):
        transforms.resolve_input(
            {
                "type": "infinsnap",
                "bucketname": view,
                "prefix": "in/",
                "time_spec": "tm20990101000000",
            }
        )


def test_an_input_view_after_the_last_sync_holds_what_s3_held(transforms, service, view, s3):
    """A file written after the last sync is in the manifest of a view of "now" (the prefix
    is read again from S3 first); a view the sync covers needs no S3."""
    before = service.parse_spec("now")
    s3.put_object(Bucket=view, Key="in/late.txt", Body=b"late")
    manifest = transforms.resolve_input({"type": "view", "bucket": view, "prefix": "in/"})
    assert [
        e["key"] for e in json.loads("[" + ",".join(manifest.to_jsonl().splitlines()[1:]) + "]")
    ] == ["in/a.txt", "in/b.txt", "in/late.txt", "in/sub/c.txt"]
    # The view taken before the write still reads as it was (same second aside).
    older = transforms.resolve_input(
        {
            "type": "infinsnap",
            "bucketname": view,
            "prefix": "in/",
            "time_spec": str(before.end_ms - 1000),
        }
    )
    assert "in/late.txt" not in older.to_jsonl()


SLOW_ONE = """
import time
def infin_transform_one_object(filename, output_dir, parentdir, **kwargs):
    time.sleep(120)
"""


def test_local_runs_stop_with_the_server(transforms, view, s3):
    """A stopping server stops its local drivers (the next server could not follow them: a
    driver left running would finish unrecorded), and no _SUCCESS.json appears."""
    transforms.save_revision("slow", SLOW_ONE)
    run = transforms.start_run(
        "slow",
        input_spec={"type": "infinsnap", "bucketname": view, "prefix": "in/", "time_spec": "now"},
        output_uri=f"s3://{view}/slow-out/",
    )
    deadline = time.monotonic() + 60
    while "pid" not in transforms.refresh(run.id).details and time.monotonic() < deadline:
        time.sleep(0.1)
    pid = transforms.refresh(run.id).details["pid"]
    os.killpg(pid, 0)  # the driver's process group is running
    transforms.close()
    deadline = time.monotonic() + 10  # the workers' last exits are reaped by init
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)  # the driver and its workers are gone
    assert s3_keys(s3, view, f"slow-out/{run.id}/") == []


def test_local_executor_end_to_end_with_lineage(transforms, view, s3):
    import mlflow

    rev = transforms.save_revision("copy", COPY_ONE, author="tester")
    assert rev.revision == 1
    assert transforms.save_revision("copy", COPY_ONE).revision == 1  # same code, same revision
    run = transforms.start_run(
        "copy",
        input_spec={"type": "infinsnap", "bucketname": view, "prefix": "in/", "time_spec": "now"},
        output_uri=f"s3://{view}/out/",
        kwargs='{"tag": "x-"}',
    )
    done = transforms.wait(run.id, timeout=120)
    assert done.state == "succeeded", transforms.log(run.id)
    assert done.done == done.total == 3
    outputs = s3_keys(s3, view, f"out/{run.id}/")
    assert outputs == sorted(
        [
            f"out/{run.id}/x-a.txt",
            f"out/{run.id}/x-b.txt",
            f"out/{run.id}/x-c.txt",
            f"out/{run.id}/_SUCCESS.json",
        ]
    )
    success = json.loads(
        s3.get_object(Bucket=view, Key=f"out/{run.id}/_SUCCESS.json")["Body"].read()
    )
    assert success["objects"] == 3 and success["failed"] == 0
    assert success["fingerprint"] == done.manifest_fingerprint
    body = s3.get_object(Bucket=view, Key=f"out/{run.id}/x-b.txt")["Body"].read()
    assert body == b"b.txt"
    mlrun = mlflow.tracking.MlflowClient().get_run(run.id)
    params = mlrun.data.params
    assert params["transform_name"] == "copy" and params["transform_revision"] == "1"
    assert params["code_sha256"] == rev.sha256 and params["executor"] == "local"
    assert params["manifest_fingerprint"] == done.manifest_fingerprint
    assert params["object_count"] == "3" and "infinstor_snapshot_time" in params
    assert json.loads(params["input_spec"])["bucketname"] == view
    assert mlrun.data.tags["infinstor.output_uri"] == f"s3://{view}/out/{run.id}/"
    assert mlrun.info.status == "FINISHED"
    artifacts = {a.path for a in mlflow.tracking.MlflowClient().list_artifacts(run.id)}
    assert {"transform", "input", "logs"} <= artifacts


def test_failing_transform_is_not_reported_as_success(transforms, view, s3):
    import mlflow

    transforms.save_revision("flaky", FAIL_ONE)
    run = transforms.start_run(
        "flaky",
        input_spec={"type": "view", "bucket": view, "prefix": "in/", "at": "now"},
        output_uri=f"s3://{view}/out/",
    )
    done = transforms.wait(run.id, timeout=120)
    assert done.state == "failed"
    # The run itself says how many objects failed and which first, not just an exit status.
    assert done.error.startswith("1 of 3 objects failed (first: in/b.txt: ")
    assert "cannot handle b.txt" in done.error and "_FAILED.json" in done.error
    log = transforms.log(run.id)
    assert "ValueError: cannot handle b.txt" in log and "Traceback" in log
    keys = s3_keys(s3, view, f"out/{run.id}/")
    assert f"out/{run.id}/_SUCCESS.json" not in keys
    # The partial output is marked: _FAILED.json names the object that failed.
    failed = json.loads(s3.get_object(Bucket=view, Key=f"out/{run.id}/_FAILED.json")["Body"].read())
    assert failed["run_id"] == run.id and failed["state"] == "failed"
    assert [f["key"] for f in failed["failures"]] == ["in/b.txt"]
    assert "cannot handle b.txt" in failed["failures"][0]["error"]
    assert done.output_marker == "_FAILED.json"
    assert mlflow.tracking.MlflowClient().get_run(run.id).info.status == "FAILED"


def test_a_cancelled_run_marks_its_output(transforms, view, s3):
    """Cancelling a running local run leaves _CANCELLED.json (shaped like _SUCCESS.json)
    next to whatever it wrote, and no _SUCCESS.json; the run says its output is marked."""
    transforms.save_revision("slow", SLOW_ONE)
    run = transforms.start_run(
        "slow",
        input_spec={"type": "infinsnap", "bucketname": view, "prefix": "in/", "time_spec": "now"},
        output_uri=f"s3://{view}/slow-out/",
    )
    deadline = time.monotonic() + 60
    while "pid" not in transforms.refresh(run.id).details and time.monotonic() < deadline:
        time.sleep(0.1)
    transforms.cancel(run.id)
    done = transforms.wait(run.id, timeout=60)
    assert done.state == "cancelled" and done.output_marker == "_CANCELLED.json"
    keys = s3_keys(s3, view, f"slow-out/{run.id}/")
    assert keys == [f"slow-out/{run.id}/_CANCELLED.json"]
    marker = json.loads(s3.get_object(Bucket=view, Key=keys[0])["Body"].read())
    assert marker["run_id"] == run.id and marker["state"] == "cancelled"
    assert marker["objects"] == 3 and marker["fingerprint"] == done.manifest_fingerprint


FOREIGN_CODE = """
import os, shutil
open({marker!r}, "w").write("foreign code ran")
def infin_transform_one_object(filename, output_dir, parentdir, **kwargs):
    shutil.copy(filename, os.path.join(output_dir, "foreign-" + os.path.basename(filename)))
"""


def _swapping_service(service, tmp_path, s3_endpoint, marker):
    """A service whose local executor lets a second S3 client (write access to the output
    bucket, no Jupyter) overwrite the staged code.py between staging and the driver."""
    import boto3

    from infinstor_jlab.transforms.executors import LocalExecutor
    from infinstor_jlab.transforms.service import TransformService
    from infinstor_jlab.transforms.store import TransformStore

    other = boto3.client("s3", endpoint_url=s3_endpoint)

    class SwappedBeforeStart(LocalExecutor):
        def start(self, launch):
            bucket, key = launch.code_uri[5:].split("/", 1)
            other.put_object(
                Bucket=bucket, Key=key, Body=FOREIGN_CODE.format(marker=str(marker)).encode()
            )
            return super().start(launch)

    return TransformService(
        service,
        TransformStore(str(tmp_path / "swap.sqlite")),
        str(tmp_path / "runs"),
        executors={"local": SwappedBeforeStart(workers=1)},
    )


def test_staged_code_swapped_by_another_client_never_runs(
    transforms, service, view, s3, s3_endpoint, tmp_path
):
    """End to end: the staged code.py is replaced after staging. In a versioned output
    bucket the driver reads the version it staged, so the run's own code runs; in an
    unversioned one the bytes are not the run's (SHA-256), the run fails saying so, and
    the foreign code never ran."""
    import uuid

    marker = tmp_path / "foreign-code-ran"
    svc = _swapping_service(service, tmp_path, s3_endpoint, marker)
    rev = svc.save_revision("copy", COPY_ONE)
    spec = {"type": "infinsnap", "bucketname": view, "prefix": "in/", "time_spec": "now"}

    run = svc.start_run("copy", input_spec=spec, output_uri=f"s3://{view}/out/")
    done = svc.wait(run.id, timeout=120)
    assert done.state == "succeeded", svc.log(run.id)
    assert not marker.exists()
    assert s3_keys(s3, view, f"out/{run.id}/") == sorted(
        f"out/{run.id}/{n}" for n in ("a.txt", "b.txt", "c.txt", "_SUCCESS.json")
    )

    plain = f"plain-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=plain)  # versioning off: PutObject gives no version id
    run = svc.start_run("copy", input_spec=spec, output_uri=f"s3://{plain}/out/")
    done = svc.wait(run.id, timeout=120)
    assert done.state == "failed"
    assert not marker.exists()
    code_uri = f"{run.staging_uri}code.py"
    assert done.error.startswith(
        f"the staged code {code_uri} is not the one this run was started with"
    ), done.error
    assert "Nothing ran" in done.error
    keys = s3_keys(s3, plain, f"out/{run.id}/")
    assert keys == [f"out/{run.id}/_FAILED.json"] and done.output_marker == "_FAILED.json"
    failed = json.loads(s3.get_object(Bucket=plain, Key=keys[0])["Body"].read())
    assert failed["failures"][0]["key"] == code_uri
    import mlflow

    params = mlflow.tracking.MlflowClient().get_run(run.id).data.params
    assert params["code_sha256"] == rev.sha256
    assert mlflow.tracking.MlflowClient().get_run(run.id).info.status == "FAILED"


def test_unknown_inputs_and_executors(transforms, view):
    transforms.save_revision("copy", COPY_ONE)
    with pytest.raises(BadRequest, match="Unknown executor"):
        transforms.start_run(
            "copy",
            input_spec={"type": "no-input-data"},
            output_uri=f"s3://{view}/out/",
            executor="mainframe",
        )
    with pytest.raises(BadRequest, match="Unknown input type"):
        transforms.resolve_input({"type": "ftp"})
    with pytest.raises(BadRequest, match='no "type"'):  # not quietly "no input"
        transforms.resolve_input({"bucketname": "b", "prefix": "in/"})
    assert (
        transforms.resolve_input({}) is None
        and transforms.resolve_input({"type": "no-input-data"}) is None
    )


def test_a_tracking_store_mlflow_refuses_is_our_error(
    transforms, view, tmp_path, monkeypatch, index_url
):
    """MLflow 3 refuses a file: store unless MLFLOW_ALLOW_FILE_STORE=true: the Python API
    raises TrackingUnavailable with MLflow's explanation, before any run is recorded."""
    import mlflow

    from infinstor_jlab.errors import TrackingUnavailable
    from infinstor_jlab.kernel.local_test import run_local_test

    if int(mlflow.__version__.split(".")[0]) < 3:
        pytest.skip("MLflow 2 accepts file: stores")
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    transforms.save_revision("copy", COPY_ONE)
    with pytest.raises(TrackingUnavailable, match="MLFLOW_ALLOW_FILE_STORE=true") as err:
        transforms.start_run(
            "copy", input_spec={"type": "no-input-data"}, output_uri=f"s3://{view}/out/"
        )
    assert err.value.status == 503 and "sqlite:///" in err.value.message
    assert err.value.message == transforms.executors_info()["tracking"]["detail"]
    assert transforms.store.runs("copy") == []
    monkeypatch.setenv("INFINSTOR_INDEX_URL", index_url)
    with pytest.raises(TrackingUnavailable, match="MLFLOW_ALLOW_FILE_STORE=true"):
        run_local_test(
            {"infin_transform_all_objects": lambda i, o: None}, {"type": "no-input-data"}
        )


def _spark_available() -> bool:
    import shutil
    import sys
    from pathlib import Path

    return bool(
        shutil.which("spark-submit") or (Path(sys.executable).parent / "spark-submit").exists()
    ) and bool(shutil.which("java"))


@pytest.mark.skipif(not _spark_available(), reason="pyspark and java are needed")
def test_spark_executor_runs_spark_submit(service, view, s3, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///" + str(tmp_path / "mlflow.db"))
    monkeypatch.chdir(tmp_path)
    from infinstor_jlab.transforms.executors import SparkExecutor
    from infinstor_jlab.transforms.service import TransformService
    from infinstor_jlab.transforms.store import TransformStore

    svc = TransformService(
        service,
        TransformStore(str(tmp_path / "t.sqlite")),
        str(tmp_path / "runs"),
        executors={"spark": SparkExecutor(master="local[2]")},
    )
    # Each object takes a while, so the run's progress can be seen between 0 and all.
    svc.save_revision(
        "copy",
        "import time\n"
        + COPY_ONE.replace("    shutil.copy(", "    time.sleep(2)\n    shutil.copy("),
    )
    run = svc.start_run(
        "copy",
        input_spec={"type": "view", "bucket": view, "prefix": "in/"},
        output_uri=f"s3://{view}/spark-out/",
        executor="spark",
    )
    done = svc.wait(run.id, timeout=240)
    assert done.state == "succeeded", svc.log(run.id)[-3000:]
    assert f"spark-out/{run.id}/_SUCCESS.json" in s3_keys(s3, view, f"spark-out/{run.id}/")
    assert len(s3_keys(s3, view, f"spark-out/{run.id}/")) == 4
    from infinstor_jlab.transforms.driver import PROGRESS_PREFIX

    seen = [
        json.loads(line[len(PROGRESS_PREFIX) :])["done"]
        for line in svc.log(run.id, lines=100_000).splitlines()
        if line.startswith(PROGRESS_PREFIX)
    ]
    assert seen[0] == 0 and seen[-1] == 3 and any(0 < n < 3 for n in seen), seen


def test_emr_step_carries_the_staged_driver(service, view, s3, tmp_path, monkeypatch):
    """On moto's EMR: the step is spark-submit of the staged driver with the staged manifest
    and code; then that payload is run locally with exactly the step's arguments."""
    import os
    import subprocess
    import sys

    import boto3

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///" + str(tmp_path / "mlflow.db"))
    monkeypatch.chdir(tmp_path)
    from infinstor_jlab.transforms.executors import EmrExecutor
    from infinstor_jlab.transforms.service import TransformService
    from infinstor_jlab.transforms.store import TransformStore

    emr_exec = EmrExecutor(
        log_uri=f"s3://{view}/emr-logs/", endpoint_url=os.environ["AWS_ENDPOINT_URL"]
    )
    svc = TransformService(
        service,
        TransformStore(str(tmp_path / "t.sqlite")),
        str(tmp_path / "runs"),
        executors={"emr": emr_exec},
    )
    svc.save_revision("copy", COPY_ONE)
    run = svc.start_run(
        "copy",
        input_spec={"type": "view", "bucket": view, "prefix": "in/"},
        output_uri=f"s3://{view}/emr-out/",
        executor="emr",
    )
    details = svc.store.get_run(run.id).details
    emr = boto3.client("emr", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    step = emr.describe_step(ClusterId=details["cluster_id"], StepId=details["step_id"])["Step"]
    args = step["Config"]["Args"]
    assert args[:3] == ["spark-submit", "--deploy-mode", "cluster"]
    assert args[3] == run.staging_uri + "driver.py" and "--spark" in args
    # The driver runs only the bytes staged: their SHA-256 and version ids are step args.
    rev = svc.store.revision("copy")
    code_version = s3.head_object(Bucket=view, Key=f"emr-out/_infinstor_staging/{run.id}/code.py")[
        "VersionId"
    ]
    assert args[args.index("--code-sha256") + 1] == rev.sha256
    assert args[args.index("--code-version-id") + 1] == code_version
    assert "--manifest-sha256" in args and "--manifest-version-id" in args
    flow = emr.describe_cluster(ClusterId=details["cluster_id"])["Cluster"]
    assert flow["AutoTerminate"] is True  # a transient cluster
    staged = s3_keys(s3, view, "emr-out/_infinstor_staging/" + run.id + "/")
    assert [k.rsplit("/", 1)[1] for k in staged] == ["code.py", "driver.py", "manifest.jsonl"]
    assert svc.refresh(run.id).state == "running"  # moto's steps stay RUNNING
    assert details["log_location"].startswith(f"s3://{view}/emr-logs/")
    # The payload EMR would get, run by local spark-submit with exactly the step's arguments
    # (the staged driver fetched from S3; local mode instead of --deploy-mode cluster).
    driver = tmp_path / "driver.py"
    bucket, key = args[3][5:].split("/", 1)
    s3.download_file(bucket, key, str(driver))
    if _spark_available():
        import shutil
        from pathlib import Path

        submit = shutil.which("spark-submit") or str(Path(sys.executable).parent / "spark-submit")
        command = [submit, "--master", "local[2]", str(driver), *args[4:]]
        env = dict(os.environ, PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable)
    else:
        command = [sys.executable, str(driver), *[a for a in args[4:] if a != "--spark"]]
        env = dict(os.environ)
    proc = subprocess.run(
        command, capture_output=True, text=True, timeout=240, check=False, env=env
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"emr-out/{run.id}/_SUCCESS.json" in s3_keys(s3, view, f"emr-out/{run.id}/")


def test_test_infin_transform_runs_the_notebooks_function(
    service, view, tmp_path, monkeypatch, index_url
):
    """The kernel-side local test: the live function over the view, inside an MLflow run."""
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///" + str(tmp_path / "mlflow.db"))
    monkeypatch.setenv("INFINSTOR_INDEX_URL", index_url)
    monkeypatch.chdir(tmp_path)
    # The README's (and InfinStor's) import gives the function, not a module.
    from infinstor_jlab import test_infin_transform
    from infinstor_jlab.kernel import local_test
    from infinstor_jlab.kernel.local_test import run_local_test

    assert test_infin_transform is local_test.test_infin_transform

    seen = []

    def infin_transform_one_object(filename, output_dir, parentdir, **kwargs):
        seen.append((os.path.basename(filename), kwargs))
        with open(os.path.join(output_dir, os.path.basename(filename) + ".len"), "w") as fh:
            fh.write(str(os.path.getsize(filename)))

    import os

    out = run_local_test(
        {"infin_transform_one_object": infin_transform_one_object},
        {"type": "infinsnap", "bucketname": view, "prefix": "in/", "time_spec": "now"},
        scale=2,
    )
    assert sorted(seen) == [
        ("a.txt", {"scale": 2}),
        ("b.txt", {"scale": 2}),
        ("c.txt", {"scale": 2}),
    ]
    assert sorted(os.listdir(out)) == ["a.txt.len", "b.txt.len", "c.txt.len"]
    run = mlflow.search_runs(output_format="list")[0]
    assert run.data.params["object_count"] == "3" and "manifest_fingerprint" in run.data.params
    with pytest.raises(BadRequest, match="Define one of"):
        run_local_test({}, {"type": "no-input-data"})


def _emr_service(service, tmp_path, monkeypatch, **emr_config):
    import os

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///" + str(tmp_path / "mlflow.db"))
    monkeypatch.chdir(tmp_path)
    from infinstor_jlab.transforms.executors import EmrExecutor
    from infinstor_jlab.transforms.service import TransformService
    from infinstor_jlab.transforms.store import TransformStore

    emr_exec = EmrExecutor(endpoint_url=os.environ["AWS_ENDPOINT_URL"], **emr_config)
    store = TransformStore(str(tmp_path / "t.sqlite"))
    return TransformService(service, store, str(tmp_path / "runs"), executors={"emr": emr_exec})


def test_emr_cancel_terminates_a_transient_cluster(service, view, s3, tmp_path, monkeypatch):
    """Cancelling a run on its own transient cluster terminates that cluster; the run then
    reads cancelled, MLflow says KILLED, and the cluster and step ids are MLflow params."""
    import os

    import boto3
    import mlflow

    svc = _emr_service(service, tmp_path, monkeypatch, log_uri=f"s3://{view}/emr-logs/")
    svc.save_revision("copy", COPY_ONE)
    run = svc.start_run(
        "copy",
        input_spec={"type": "view", "bucket": view, "prefix": "in/"},
        output_uri=f"s3://{view}/emr-out/",
        executor="emr",
    )
    details = svc.store.get_run(run.id).details
    params = mlflow.tracking.MlflowClient().get_run(run.id).data.params
    assert params["emr_cluster_id"] == details["cluster_id"]
    assert params["emr_step_id"] == details["step_id"]
    assert svc.refresh(run.id).details["emr_state"] in ("PENDING", "RUNNING")
    svc.cancel(run.id)
    done = svc.wait(run.id, timeout=30)
    assert done.state == "cancelled"
    assert s3_keys(s3, view, f"emr-out/{run.id}/") == [f"emr-out/{run.id}/_CANCELLED.json"]
    emr = boto3.client("emr", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    state = emr.describe_cluster(ClusterId=details["cluster_id"])["Cluster"]["Status"]["State"]
    assert state in ("TERMINATING", "TERMINATED")
    assert mlflow.tracking.MlflowClient().get_run(run.id).info.status == "KILLED"
    from infinstor_jlab.errors import Conflict

    with pytest.raises(Conflict, match="already cancelled"):
        svc.cancel(run.id)
    svc.close()


def test_emr_step_on_a_configured_cluster(service, view, tmp_path, monkeypatch):
    """With a cluster id, the run is a step added to that cluster (no new cluster); cancel
    asks EMR to cancel exactly that step, and a refusal comes back as a sentence."""
    import os

    import boto3

    from infinstor_jlab.errors import InfinstorError

    emr = boto3.client("emr", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    cluster = emr.run_job_flow(
        Name="shared",
        ReleaseLabel="emr-7.5.0",
        ServiceRole="EMR_DefaultRole",
        JobFlowRole="EMR_EC2_DefaultRole",
        Instances={
            "MasterInstanceType": "m5.xlarge",
            "InstanceCount": 1,
            "KeepJobFlowAliveWhenNoSteps": True,
        },
    )["JobFlowId"]
    before = len(emr.list_clusters()["Clusters"])
    svc = _emr_service(service, tmp_path, monkeypatch, cluster_id=cluster)
    svc.save_revision("copy", COPY_ONE)
    run = svc.start_run(
        "copy",
        input_spec={"type": "view", "bucket": view, "prefix": "in/"},
        output_uri=f"s3://{view}/emr-out/",
        executor="emr",
    )
    details = svc.store.get_run(run.id).details
    assert details["cluster_id"] == cluster and details["transient"] is False
    assert len(emr.list_clusters()["Clusters"]) == before
    steps = emr.list_steps(ClusterId=cluster)["Steps"]
    assert [s["Id"] for s in steps] == [details["step_id"]]
    try:
        svc.cancel(run.id)
    except InfinstorError as exc:
        # moto's server has no CancelSteps; a real EMR answers it. Either way the user gets
        # a sentence naming the step, never a stack trace.
        assert exc.status in (409, 502) and "cancel" in exc.message
    else:
        assert svc.store.get_run(run.id).details["cancelled"] is True
    svc.close()


def test_runs_are_recovered_after_a_server_restart(service, view, s3, tmp_path, monkeypatch):
    """A local run whose worker died with the old server is marked failed with a reason; an
    EMR run (its job lives on the cluster) is watched again."""
    from infinstor_jlab.transforms.executors import LocalExecutor
    from infinstor_jlab.transforms.service import TransformService
    from infinstor_jlab.transforms.store import TransformRun

    svc = _emr_service(service, tmp_path, monkeypatch)
    svc.save_revision("copy", COPY_ONE)
    emr_run = svc.start_run(
        "copy",
        input_spec={"type": "no-input-data"},
        output_uri=f"s3://{view}/emr-out/",
        executor="emr",
    )
    svc.store.save_run(
        TransformRun(
            id="local-run",
            transform="copy",
            revision=1,
            executor="local",
            input_spec={},
            output_uri=f"s3://{view}/lost/local-run/",
            kwargs={},
            state="running",
            created_ms=1,
        )
    )
    restarted = TransformService(
        service,
        svc.store,
        str(tmp_path / "runs"),
        executors={"emr": svc.executors["emr"], "local": LocalExecutor()},
    )
    restarted.recover()
    lost = restarted.store.get_run("local-run")
    assert lost.state == "failed" and "server stopped" in lost.error
    # Its output says so, with the reason (the driver never wrote one).
    failed = json.loads(
        s3.get_object(Bucket=view, Key="lost/local-run/_FAILED.json")["Body"].read()
    )
    assert failed["state"] == "failed" and "server stopped" in failed["failures"][0]["error"]
    assert restarted.refresh(emr_run.id).details.get("emr_state") in ("PENDING", "RUNNING")
    svc.close()
    restarted.close()


def test_mlflow_run_artifacts_as_input(transforms, service, tmp_path):
    """An MLflow run's artifacts: files on this machine become a manifest whose version ids
    are their SHA-256 (so the fingerprint pins the bytes)."""
    import hashlib

    import mlflow

    with mlflow.start_run() as active:
        mlflow.log_text("hello", "data/a.txt")
        mlflow.log_text("world", "data/sub/b.txt")
    manifest = transforms.resolve_input(
        {"type": "mlflow-run-artifacts", "run_id": active.info.run_id}
    )
    assert [o.key for o in manifest.objects] == ["data/a.txt", "data/sub/b.txt"]
    assert manifest.objects[0].version_id == "sha256:" + hashlib.sha256(b"hello").hexdigest()
    lines = [json.loads(x) for x in manifest.to_jsonl().splitlines()[1:]]
    with open(lines[1]["path"], encoding="utf-8") as fh:
        assert fh.read() == "world"
    from infinstor_jlab.errors import NotFound

    with pytest.raises(NotFound, match="no run"):
        transforms.resolve_input({"type": "mlflow-run-artifacts", "run_id": "0" * 32})
    with pytest.raises(BadRequest, match="run_id"):
        transforms.resolve_input({"type": "mlflow-run-artifacts"})


def test_requirements_are_checked(transforms, view):
    from infinstor_jlab.transforms.service import check_requirements

    assert check_requirements("pillow>=10\n\n# comment\npandas") == ["pillow>=10", "pandas"]
    for bad in (["--index-url=http://evil"], [1], "-r reqs.txt"):
        with pytest.raises(BadRequest):
            check_requirements(bad)


def test_experiments_keep_artifacts_where_configured(service, view, tmp_path, monkeypatch):
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///" + str(tmp_path / "mlflow.db"))
    monkeypatch.chdir(tmp_path)
    from infinstor_jlab.transforms.executors import LocalExecutor
    from infinstor_jlab.transforms.service import TransformService
    from infinstor_jlab.transforms.store import TransformStore

    where = tmp_path / "artifacts"
    svc = TransformService(
        service,
        TransformStore(str(tmp_path / "t.sqlite")),
        str(tmp_path / "runs"),
        executors={"local": LocalExecutor()},
        mlflow_artifact_location=str(where),
    )
    svc.save_revision("copy", COPY_ONE)
    run = svc.start_run(
        "copy", input_spec={"type": "no-input-data"}, output_uri=f"s3://{view}/out/"
    )
    assert svc.wait(run.id, timeout=120).state == "succeeded"
    client = mlflow.tracking.MlflowClient()
    experiment = client.get_experiment_by_name("infinstor-transform-copy")
    assert experiment.artifact_location.endswith(str(where / "infinstor-transform-copy"))
    assert (
        where / "infinstor-transform-copy" / run.id / "artifacts" / "transform" / "code.py"
    ).exists()
