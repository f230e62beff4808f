"""Lineage that cannot lie (issue 22, section 1)."""

from __future__ import annotations

import pytest
import test_infin_boto3

from infinstor_jlab.errors import BadRequest, BadTimeSpec
from infinstor_jlab.transforms.capture import capture

# The kernel's fixtures (time travel on, the flowers/ history), shared with its own tests.
tt_env = test_infin_boto3.tt_env
history = test_infin_boto3.history


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


@pytest.mark.parametrize(
    ("name", "meant"),
    [
        ("infin_transform_one_obj", "infin_transform_one_object"),
        ("infin_transfrom_all_objects", "infin_transform_all_objects"),
        ("infin_transform_dir_by_dirs", "infin_transform_dir_by_dir"),
        ("infin_transform_csv", "infin_transform_csv_to_pd"),
    ],
)
def test_a_misspelt_entry_point_is_refused_with_did_you_mean(name: str, meant: str) -> None:
    with pytest.raises(BadRequest, match=f"did you mean {meant}") as info:
        capture(f"def {name}(filename, output_dir, parentdir, **kwargs):\n    pass\n")
    assert name in str(info.value)


def test_an_unknown_infin_transform_function_is_refused() -> None:
    with pytest.raises(BadRequest, match="not an entry point"):
        capture("def infin_transform_everything_at_once(a, b):\n    pass\n")


def test_scripts_and_helpers_next_to_an_entry_point_still_capture() -> None:
    assert capture("import os\nprint(os.getcwd())\n").entry_point == "script"
    assert capture("def helper(x):\n    return x\nhelper(1)\n").entry_point == "script"
    code = "def infin_transform_one_object(filename, output_dir, parentdir, **kwargs):\n    pass\n"
    assert capture(code).entry_point == "infin_transform_one_object"


def test_a_misspelt_entry_point_is_refused_at_submit_before_anything_is_stored(transforms) -> None:
    source = "def infin_transform_one_obj(filename, output_dir, parentdir, **kwargs):\n    pass\n"
    with pytest.raises(BadRequest, match="did you mean infin_transform_one_object"):
        transforms.save_revision("typo", source)
    assert transforms.list_transforms() == []


COPY_ONE = """import os, shutil
def infin_transform_one_object(filename, output_dir, parentdir, **kwargs):
    shutil.copy(filename, os.path.join(output_dir, os.path.basename(filename)))
"""


def test_run_spec_of_a_slice_run_reproduces_the_slice_and_its_kwargs_are_recorded(
    transforms, service, s3, bucket
) -> None:
    """A run over a slice (2 of 5 objects): run:/<id> must give back the same 2 objects
    (main resolved it to the run's start time: all 5), and the run's kwargs are in MLflow."""
    import json
    import time
    from datetime import datetime, timezone

    import mlflow

    for name in ("a", "b", "c"):
        s3.put_object(Bucket=bucket, Key=f"in/old-{name}.txt", Body=name.encode())
    service.sync(bucket)
    time.sleep(1.2)  # listings give whole seconds
    start = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    time.sleep(1.2)
    for name in ("d", "e"):
        s3.put_object(Bucket=bucket, Key=f"in/new-{name}.txt", Body=name.encode())
    service.sync(bucket)
    time.sleep(1.2)
    end = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    transforms.save_revision("copy", COPY_ONE)
    spec = {
        "type": "infinsnap",
        "bucketname": bucket,
        "prefix": "in/",
        "time_spec": f"{start}/{end}",
    }
    run = transforms.start_run(
        "copy", input_spec=spec, output_uri=f"s3://{bucket}/out/", kwargs={"tag": "x", "n": 2}
    )
    assert run.total == 2
    done = transforms.wait(run.id, timeout=120)
    assert done.state == "succeeded", transforms.log(run.id)

    again = transforms.resolve_input({**spec, "time_spec": f"run:/{run.id}"})
    assert len(again.objects) == 2
    assert again.fingerprint == done.manifest_fingerprint
    assert service.parse_spec(f"run:/{run.id}").is_slice

    client = mlflow.tracking.MlflowClient()
    params = client.get_run(run.id).data.params
    assert (params["infinstor_bucket"], params["infinstor_prefix"]) == (bucket, "in/")
    assert json.loads(client.get_run(run.id).data.params["kwargs"]) == {"n": 2, "tag": "x"}
    path = client.download_artifacts(run.id, "transform/kwargs.json")
    with open(path) as f:
        assert json.load(f) == {"n": 2, "tag": "x"}


def test_kernel_snapshot_env_of_a_slice_run_reads_the_slice(tt_env, history, monkeypatch):
    """INFINSTOR_SNAPSHOT_TIME=run:/<id> of a run that read a slice (as a transform records
    it) reads that slice in the kernel, not the bucket at the run's start."""
    import boto3
    import mlflow

    from infinstor_jlab.timespec import parse_time_spec

    later = parse_time_spec(history["later"])
    with mlflow.start_run() as run:
        mlflow.log_param("infinstor_slice_start", later.start_ms)
        mlflow.log_param("infinstor_slice_end", later.end_ms)
    monkeypatch.setenv("INFINSTOR_SNAPSHOT_TIME", f"run:/{run.info.run_id}")
    resp = boto3.client("s3").list_objects_v2(Bucket=history["bucket"], Prefix="flowers/")
    assert [o["Key"] for o in resp.get("Contents", [])] == ["flowers/a.jpg", "flowers/c.jpg"]


def test_view_credentials_for_a_slice_run_grant_the_slice(service, bucket, tmp_path, monkeypatch):
    """The S3 endpoint's credential for run:/<id> of a run over a slice grants that slice,
    not a snapshot at the run's start."""
    import mlflow

    from infinstor_jlab.services.credentials import CredentialService

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///" + str(tmp_path / "mlflow.db"))
    monkeypatch.chdir(tmp_path)
    service.sync(bucket)
    with mlflow.start_run() as run:
        mlflow.log_param("infinstor_slice_start", 1_700_000_000_000)
        mlflow.log_param("infinstor_slice_end", 1_700_000_100_000)
    grant = CredentialService.for_service(service).resolve_grant(
        f"run:/{run.info.run_id}", bucket=bucket, prefix="in/"
    )
    assert (grant.kind, grant.start_ms, grant.end_ms) == (
        "slice",
        1_700_000_000_000,
        1_700_000_100_000,
    )


def test_run_spec_of_a_transform_run_without_a_view_is_refused(service, tmp_path, monkeypatch):
    """A transform run over an MLflow run's artifacts names no time: run:/ refuses it rather
    than answering the run's start time; a plain run with nothing logged keeps its start."""
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///" + str(tmp_path / "mlflow.db"))
    monkeypatch.chdir(tmp_path)
    with mlflow.start_run() as transform_run:
        mlflow.log_param("transform_name", "copy")
        mlflow.log_param("input_spec", '{"type": "mlflow-run-artifacts", "run_id": "x"}')
    with pytest.raises(BadTimeSpec, match="input was not a bucket view"):
        service.parse_spec(f"run:/{transform_run.info.run_id}")
    with mlflow.start_run() as plain:
        pass
    spec = service.parse_spec(f"run:/{plain.info.run_id}")
    assert spec.kind == "snapshot" and spec.end_ms == plain.info.start_time
