"""EMR made operable (issue 22, section 4): against moto's EMR through its HTTP server."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys

import boto3
import pytest
import test_transforms
from botocore.stub import ANY

view = test_transforms.view


def test_a_transient_cluster_logs_under_the_staging_prefix_by_default(
    service, view, tmp_path, monkeypatch
) -> None:
    """No log_uri configured: the cluster still gets a LogUri (the run's staging prefix +
    emr-logs/), and the run's details say where its step logs appear."""
    import boto3

    svc = test_transforms._emr_service(service, tmp_path, monkeypatch)
    svc.save_revision("copy", test_transforms.COPY_ONE)
    run = svc.start_run(
        "copy",
        input_spec={"type": "view", "bucket": view, "prefix": "in/"},
        output_uri=f"s3://{view}/emr-out/",
        executor="emr",
    )
    details = svc.store.get_run(run.id).details
    expected = f"s3://{view}/emr-out/_infinstor_staging/{run.id}/emr-logs/"
    emr = boto3.client("emr", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    cluster = emr.describe_cluster(ClusterId=details["cluster_id"])["Cluster"]
    assert cluster["LogUri"] == expected
    assert details["log_location"] == (
        f"{expected}{details['cluster_id']}/steps/{details['step_id']}/"
    )
    svc.cancel(run.id)
    svc.wait(run.id, timeout=30)
    svc.close()


# -- settings for real accounts ------------------------------------------------------------


def test_transient_cluster_settings_reach_run_job_flow(service, view, tmp_path, monkeypatch):
    """Subnet, key, security groups, tags, bootstrap actions and configurations go into
    run_job_flow as EMR takes them (read back from moto's EMR)."""
    import boto3

    svc = test_transforms._emr_service(
        service,
        tmp_path,
        monkeypatch,
        subnet_ids=["subnet-0abc"],
        ec2_key_name="ops-key",
        master_security_group="sg-master",
        slave_security_group="sg-core",
        tags={"team": "vision"},
        bootstrap_actions=[{"name": "deps", "path": f"s3://{view}/boot.sh", "args": ["-x"]}],
        configurations=[
            {"Classification": "spark-defaults", "Properties": {"spark.speculation": "false"}}
        ],
    )
    svc.save_revision("copy", test_transforms.COPY_ONE)
    run = svc.start_run(
        "copy",
        input_spec={"type": "view", "bucket": view, "prefix": "in/"},
        output_uri=f"s3://{view}/emr-out/",
        executor="emr",
    )
    details = svc.store.get_run(run.id).details
    emr = boto3.client("emr", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    cluster = emr.describe_cluster(ClusterId=details["cluster_id"])["Cluster"]
    attrs = cluster["Ec2InstanceAttributes"]
    assert attrs["Ec2SubnetId"] == "subnet-0abc"
    assert attrs["Ec2KeyName"] == "ops-key"
    assert attrs["EmrManagedMasterSecurityGroup"] == "sg-master"
    assert attrs["EmrManagedSlaveSecurityGroup"] == "sg-core"
    tags = {t["Key"]: t["Value"] for t in cluster["Tags"]}
    assert tags == {"team": "vision", "infinstor:run-id": run.id}
    boot = emr.list_bootstrap_actions(ClusterId=details["cluster_id"])["BootstrapActions"]
    assert [(b["Name"], b["ScriptPath"], b["Args"]) for b in boot] == [
        ("deps", f"s3://{view}/boot.sh", ["-x"])
    ]
    # The step asks the driver to keep its status under the run's staging prefix.
    step = emr.describe_step(ClusterId=details["cluster_id"], StepId=details["step_id"])["Step"]
    args = step["Config"]["Args"]
    assert args[args.index("--status-uri") + 1] == details["status_uri"]
    assert details["status_uri"] == f"s3://{view}/emr-out/_infinstor_staging/{run.id}/"
    svc.cancel(run.id)
    svc.wait(run.id, timeout=30)
    svc.close()


def test_contradictory_cluster_settings_are_refused_before_anything_starts(
    service, view, tmp_path, monkeypatch
):
    from infinstor_jlab.errors import BadRequest

    svc = test_transforms._emr_service(
        service, tmp_path, monkeypatch, subnet_ids=["subnet-a", "subnet-b"]
    )
    svc.save_revision("copy", test_transforms.COPY_ONE)
    info = {e["name"]: e for e in svc.executors_info()["executors"]}
    assert info["emr"]["available"] is False
    assert "instance_fleets" in info["emr"]["detail"]
    with pytest.raises(BadRequest, match="several subnets"):
        svc.start_run(
            "copy",
            input_spec={"type": "view", "bucket": view, "prefix": "in/"},
            output_uri=f"s3://{view}/emr-out/",
            executor="emr",
        )
    assert svc.store.runs() == []
    svc.close()


# -- completion, failure and cancel: EMR's step states stubbed at the boto3 level ----------


class _StubbedEmr:
    """An EmrExecutor whose EMR client is a botocore Stubber over a real client (moto never
    finishes a step); S3 (staging, the driver's progress and logs) stays real."""

    def __init__(self, **config):
        from botocore.stub import Stubber

        from infinstor_jlab.transforms.executors import EmrExecutor

        client = boto3.client("emr", region_name="us-east-1", endpoint_url="http://127.0.0.1:9")
        self.stub = Stubber(client)
        stub_client = client

        class Executor(EmrExecutor):
            last_step = None

            def client(self):
                return stub_client

            def step(self, launch):
                self.last_step = super().step(launch)
                return self.last_step

        self.executor = Executor(cluster_id="j-STUBBED", **config)

    def add_step(self, step_id="s-STUBBED"):
        self.stub.add_response(
            "add_job_flow_steps", {"StepIds": [step_id]}, {"JobFlowId": "j-STUBBED", "Steps": ANY}
        )

    def states(self, *states, failure=None, spare=5):
        """describe_step answers in this order; the last one repeats (pollers race)."""
        for state in [*states, *[states[-1]] * spare]:
            status = {"State": state}
            if state == "FAILED" and failure:
                status["FailureDetails"] = failure
            self.stub.add_response(
                "describe_step",
                {"Step": {"Id": "s-STUBBED", "Name": "x", "Status": status}},
                {"ClusterId": "j-STUBBED", "StepId": "s-STUBBED"},
            )


def _stubbed_service(service, tmp_path, monkeypatch, stubbed):
    from infinstor_jlab.transforms.service import TransformService
    from infinstor_jlab.transforms.store import TransformStore

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///" + str(tmp_path / "mlflow.db"))
    monkeypatch.chdir(tmp_path)
    store = TransformStore(str(tmp_path / "t.sqlite"))
    return TransformService(
        service, store, str(tmp_path / "runs"), executors={"emr": stubbed.executor}
    )


def _run_step_payload(s3, args, tmp_path):
    """What EMR would run: the staged driver with the step's arguments (locally, no Spark)."""
    driver = tmp_path / "driver.py"
    bucket, key = args[3][5:].split("/", 1)
    s3.download_file(bucket, key, str(driver))
    command = [sys.executable, str(driver), *[a for a in args[4:] if a != "--spark"]]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=240, check=False)
    return proc


def test_an_emr_run_shows_progress_and_logs_from_s3_and_succeeds(
    service, view, s3, tmp_path, monkeypatch
):
    import mlflow

    stubbed = _StubbedEmr(log_uri=f"s3://{view}/emr-logs/")
    stubbed.add_step()
    svc = _stubbed_service(service, tmp_path, monkeypatch, stubbed)
    svc.save_revision("copy", test_transforms.COPY_ONE)
    with stubbed.stub:
        run = svc.start_run(
            "copy",
            input_spec={"type": "view", "bucket": view, "prefix": "in/"},
            output_uri=f"s3://{view}/emr-out/",
            executor="emr",
        )
        details = svc.store.get_run(run.id).details
        # The step's payload runs (on the cluster, here locally) and keeps its status on S3.
        step_args = stubbed.executor.last_step["HadoopJarStep"]["Args"]
        proc = _run_step_payload(s3, step_args, tmp_path)
        assert proc.returncode == 0, proc.stderr[-2000:]
        progress = json.loads(
            s3.get_object(Bucket=view, Key=f"emr-out/_infinstor_staging/{run.id}/progress.json")[
                "Body"
            ].read()
        )
        assert (progress["done"], progress["total"], progress["state"]) == (3, 3, "succeeded")
        # EMR copies the step's stderr (gzipped) under the log URI.
        where = details["log_location"]
        bucket, key = where[5:].split("/", 1)
        s3.put_object(Bucket=bucket, Key=key + "stderr.gz", Body=gzip.compress(b"spark said hi\n"))

        stubbed.states("RUNNING")
        running = svc.refresh(run.id)
        assert running.state == "running" and (running.done, running.total) == (3, 3)
        log = svc.log(run.id)
        assert "driver log (from S3)" in log and '"succeeded": 3' in log
        assert "spark said hi" in log
        assert "step stdout: not there yet" in log

        stubbed.stub._queue.clear()  # drop the spare RUNNING answers
        stubbed.states("COMPLETED")
        done = svc.wait(run.id, timeout=30)
    assert done.state == "succeeded"
    assert f"emr-out/{run.id}/_SUCCESS.json" in test_transforms.s3_keys(s3, view, "emr-out/")
    assert mlflow.tracking.MlflowClient().get_run(run.id).info.status == "FINISHED"
    svc.close()


def test_a_failed_emr_step_fails_the_run_with_emrs_reason(service, view, s3, tmp_path, monkeypatch):
    import mlflow

    stubbed = _StubbedEmr()
    stubbed.add_step()
    stubbed.states(
        "PENDING",
        "RUNNING",
        "FAILED",
        failure={"Reason": "Container killed by YARN", "LogFile": "s3://logs/j/steps/s/stderr.gz"},
    )
    svc = _stubbed_service(service, tmp_path, monkeypatch, stubbed)
    svc.save_revision("copy", test_transforms.COPY_ONE)
    with stubbed.stub:
        run = svc.start_run(
            "copy",
            input_spec={"type": "view", "bucket": view, "prefix": "in/"},
            output_uri=f"s3://{view}/emr-out/",
            executor="emr",
        )
        done = svc.wait(run.id, timeout=30)
    assert done.state == "failed"
    assert "Container killed by YARN" in done.error
    assert "s3://logs/j/steps/s/stderr.gz" in done.error
    assert test_transforms.s3_keys(s3, view, f"emr-out/{run.id}/") == [
        f"emr-out/{run.id}/_FAILED.json"
    ]
    assert mlflow.tracking.MlflowClient().get_run(run.id).info.status == "FAILED"
    svc.close()


def test_cancelling_an_emr_step_cancels_it_and_the_run(service, view, s3, tmp_path, monkeypatch):
    stubbed = _StubbedEmr()
    stubbed.add_step()
    svc = _stubbed_service(service, tmp_path, monkeypatch, stubbed)
    svc.save_revision("copy", test_transforms.COPY_ONE)
    with stubbed.stub:
        run = svc.start_run(
            "copy",
            input_spec={"type": "view", "bucket": view, "prefix": "in/"},
            output_uri=f"s3://{view}/emr-out/",
            executor="emr",
        )
        stubbed.stub.add_response(
            "cancel_steps",
            {"CancelStepsInfoList": [{"StepId": "s-STUBBED", "Status": "SUBMITTED"}]},
            {"ClusterId": "j-STUBBED", "StepIds": ["s-STUBBED"]},
        )
        stubbed.states("CANCEL_PENDING", "CANCELLED")
        svc.cancel(run.id)
        done = svc.wait(run.id, timeout=30)
    assert done.state == "cancelled"
    assert test_transforms.s3_keys(s3, view, f"emr-out/{run.id}/") == [
        f"emr-out/{run.id}/_CANCELLED.json"
    ]
    svc.close()


# -- requirements without internet on the cluster: a staged wheelhouse ----------------------

TINY_VALUE = 4217
USES_TINY = """
import os
def infin_transform_one_object(filename, output_dir, parentdir, **kwargs):
    import tinypkg
    with open(os.path.join(output_dir, os.path.basename(filename) + ".v"), "w") as fh:
        fh.write(str(tinypkg.VALUE))
"""


def _tiny_wheel(where) -> str:
    """A pure-Python wheel of our own (no index needed): tinypkg 1.0, VALUE = TINY_VALUE."""
    import zipfile

    where.mkdir(parents=True, exist_ok=True)
    path = where / "tinypkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("tinypkg/__init__.py", f"VALUE = {TINY_VALUE}\n")
        zf.writestr(
            "tinypkg-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: tinypkg\nVersion: 1.0\n"
        )
        zf.writestr(
            "tinypkg-1.0.dist-info/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        zf.writestr(
            "tinypkg-1.0.dist-info/RECORD",
            "tinypkg/__init__.py,,\ntinypkg-1.0.dist-info/METADATA,,\n"
            "tinypkg-1.0.dist-info/WHEEL,,\ntinypkg-1.0.dist-info/RECORD,,\n",
        )
    return str(where)


def test_requirements_travel_as_a_checked_wheelhouse(service, view, s3, tmp_path, monkeypatch):
    """The wheels are downloaded here for the cluster's platform, staged with their
    SHA-256s, installed offline by the driver; a wheel changed after staging fails the run
    before any user code runs."""
    links = _tiny_wheel(tmp_path / "links")
    svc = test_transforms._emr_service(
        service,
        tmp_path,
        monkeypatch,
        wheelhouse_pip_args=["--no-index", "--find-links", links],
    )
    svc.save_revision("tiny", USES_TINY)
    run = svc.start_run(
        "tiny",
        input_spec={"type": "view", "bucket": view, "prefix": "in/"},
        output_uri=f"s3://{view}/emr-out/",
        executor="emr",
        requirements=["tinypkg==1.0"],
    )
    details = svc.store.get_run(run.id).details
    staged = f"emr-out/_infinstor_staging/{run.id}/wheelhouse/"
    assert test_transforms.s3_keys(s3, view, staged) == [
        staged + "SHA256SUMS.json",
        staged + "tinypkg-1.0-py3-none-any.whl",
    ]
    emr = boto3.client("emr", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    args = emr.describe_step(ClusterId=details["cluster_id"], StepId=details["step_id"])["Step"][
        "Config"
    ]["Args"]
    assert args[args.index("--wheelhouse") + 1] == f"s3://{view}/{staged}"
    env = dict(os.environ, INFINSTOR_REQUIREMENTS_CACHE=str(tmp_path / "node-cache"))
    driver = tmp_path / "driver.py"
    bucket, key = args[3][5:].split("/", 1)
    s3.download_file(bucket, key, str(driver))
    command = [sys.executable, str(driver), *[a for a in args[4:] if a != "--spark"]]
    proc = subprocess.run(
        command, capture_output=True, text=True, timeout=240, env=env, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = s3.get_object(Bucket=view, Key=f"emr-out/{run.id}/a.txt.v")["Body"].read()
    assert out == str(TINY_VALUE).encode()

    # Someone swaps the staged wheel: the next node to install refuses it.
    s3.put_object(Bucket=view, Key=staged + "tinypkg-1.0-py3-none-any.whl", Body=b"not a wheel")
    env["INFINSTOR_REQUIREMENTS_CACHE"] = str(tmp_path / "other-node-cache")
    proc = subprocess.run(
        command, capture_output=True, text=True, timeout=240, env=env, check=False
    )
    assert proc.returncode == 1
    assert "is not the wheel that was staged" in proc.stderr
    svc.cancel(run.id)
    svc.wait(run.id, timeout=30)
    svc.close()


def test_a_requirement_without_a_wheel_for_the_cluster_is_refused_at_start(
    service, view, tmp_path, monkeypatch
):
    from infinstor_jlab.errors import BadRequest

    links = _tiny_wheel(tmp_path / "links")
    svc = test_transforms._emr_service(
        service, tmp_path, monkeypatch, wheelhouse_pip_args=["--no-index", "--find-links", links]
    )
    svc.save_revision("tiny", USES_TINY)
    with pytest.raises(BadRequest, match="Could not build the wheelhouse") as err:
        svc.start_run(
            "tiny",
            input_spec={"type": "view", "bucket": view, "prefix": "in/"},
            output_uri=f"s3://{view}/emr-out/",
            executor="emr",
            requirements=["no-such-package-anywhere==9.9"],
        )
    assert "Python 3.9" in str(err.value)
    (failed,) = svc.store.runs()
    assert failed.state == "failed"
    svc.close()


# -- EMR Serverless --------------------------------------------------------------------------


def _serverless_service(service, tmp_path, monkeypatch, ex):
    from infinstor_jlab.transforms.service import TransformService
    from infinstor_jlab.transforms.store import TransformStore

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///" + str(tmp_path / "mlflow.db"))
    monkeypatch.chdir(tmp_path)
    return TransformService(
        service,
        TransformStore(str(tmp_path / "t.sqlite")),
        str(tmp_path / "runs"),
        executors={"emr-serverless": ex},
    )


def test_emr_serverless_job_runs_the_staged_driver(service, view, s3, tmp_path, monkeypatch):
    """On moto's EMR Serverless: StartJobRun gets the staged driver as its entry point, the
    run's arguments with its status prefix, and the run's id as a tag."""
    from infinstor_jlab.transforms.emr_serverless import EmrServerlessExecutor

    client = boto3.client("emr-serverless", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    app = client.create_application(name="spark", releaseLabel="emr-7.5.0", type="SPARK")
    ex = EmrServerlessExecutor(
        endpoint_url=os.environ["AWS_ENDPOINT_URL"],
        application_id=app["applicationId"],
        execution_role_arn="arn:aws:iam::123456789012:role/infinstor-jobs",
        spark_submit_parameters="--conf spark.executor.cores=2",
    )
    svc = _serverless_service(service, tmp_path, monkeypatch, ex)
    svc.save_revision("copy", test_transforms.COPY_ONE)
    run = svc.start_run(
        "copy",
        input_spec={"type": "view", "bucket": view, "prefix": "in/"},
        output_uri=f"s3://{view}/sls-out/",
        executor="emr-serverless",
    )
    details = svc.store.get_run(run.id).details
    job = client.get_job_run(applicationId=app["applicationId"], jobRunId=details["job_run_id"])
    spark = job["jobRun"]["jobDriver"]["sparkSubmit"]
    assert spark["entryPoint"] == f"s3://{view}/sls-out/_infinstor_staging/{run.id}/driver.py"
    assert spark["sparkSubmitParameters"] == "--conf spark.executor.cores=2"
    args = spark["entryPointArguments"]
    assert args[args.index("--status-uri") + 1] == details["status_uri"]
    assert args[args.index("--run-id") + 1] == run.id
    assert job["jobRun"]["tags"]["infinstor:run-id"] == run.id
    svc.wait(run.id, timeout=30)  # moto reports SUCCESS at once
    svc.close()


def test_emr_serverless_progress_logs_and_cancel(service, view, s3, tmp_path, monkeypatch):
    """GetJobRun stubbed (RUNNING, then CANCELLED after CancelJobRun): progress and the
    driver's log come from S3 while it runs; cancel ends the run cancelled."""
    from botocore.stub import Stubber

    from infinstor_jlab.transforms.emr_serverless import EmrServerlessExecutor

    client = boto3.client(
        "emr-serverless", region_name="us-east-1", endpoint_url="http://127.0.0.1:9"
    )
    stub = Stubber(client)
    started = {}

    class Executor(EmrServerlessExecutor):
        def client(self):
            return client

        def job_driver(self, launch):
            started["driver"] = super().job_driver(launch)
            return started["driver"]

    ex = Executor(
        application_id="00app", execution_role_arn="arn:aws:iam::123456789012:role/infinstor-jobs"
    )
    svc = _serverless_service(service, tmp_path, monkeypatch, ex)
    svc.save_revision("copy", test_transforms.COPY_ONE)
    stub.add_response(
        "start_job_run",
        {
            "applicationId": "00app",
            "jobRunId": "00job",
            "arn": "arn:aws:emr-serverless:us-east-1:123456789012:/applications/00app/jobruns/00job",
        },
    )

    def job_state(state, n=6):
        for _ in range(n):
            stub.add_response(
                "get_job_run",
                {
                    "jobRun": {
                        "applicationId": "00app",
                        "jobRunId": "00job",
                        "arn": "arn:aws:emr-serverless:us-east-1:123456789012:/applications/00app/jobruns/00job",
                        "createdBy": "arn:aws:iam::123456789012:user/me",
                        "createdAt": 0,
                        "updatedAt": 0,
                        "executionRole": "arn:aws:iam::123456789012:role/infinstor-jobs",
                        "state": state,
                        "stateDetails": f"the job is {state.lower()}",
                        "releaseLabel": "emr-7.5.0",
                        "jobDriver": {"sparkSubmit": {"entryPoint": "s3://x/d.py"}},
                    }
                },
                {"applicationId": "00app", "jobRunId": "00job"},
            )

    with stub:
        run = svc.start_run(
            "copy",
            input_spec={"type": "view", "bucket": view, "prefix": "in/"},
            output_uri=f"s3://{view}/sls-out/",
            executor="emr-serverless",
        )
        args = started["driver"]["sparkSubmit"]["entryPointArguments"]
        driver = tmp_path / "driver.py"
        s3.download_file(view, f"sls-out/_infinstor_staging/{run.id}/driver.py", str(driver))
        proc = subprocess.run(
            [sys.executable, str(driver), *[a for a in args if a != "--spark"]],
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        job_state("RUNNING")
        polled = svc.refresh(run.id)
        assert polled.state == "running" and (polled.done, polled.total) == (3, 3)
        log = svc.log(run.id)
        assert "driver log (from S3)" in log and "Spark driver stderr: not there yet" in log
        stub._queue.clear()  # drop the spare RUNNING answers
        stub.add_response(
            "cancel_job_run",
            {"applicationId": "00app", "jobRunId": "00job"},
            {"applicationId": "00app", "jobRunId": "00job"},
        )
        job_state("CANCELLED")
        svc.cancel(run.id)
        done = svc.wait(run.id, timeout=30)
    assert done.state == "cancelled"
    svc.close()


def test_emr_serverless_unconfigured_says_what_to_set(service, tmp_path, monkeypatch):
    from infinstor_jlab.errors import BadRequest
    from infinstor_jlab.transforms.emr_serverless import EmrServerlessExecutor
    from infinstor_jlab.transforms.executors import Launch

    ok, why = EmrServerlessExecutor().available()
    assert not ok and "application_id" in why and "execution_role_arn" in why
    launch = Launch("r", "s3://b/s/driver.py", "", "", "s3://b/o/", "script", {}, "", "")
    with pytest.raises(BadRequest, match="application_id"):
        EmrServerlessExecutor().start(launch)
