"""EMR Serverless: the staged driver as a Spark job run on an EMR Serverless application
(StartJobRun), followed like an EMR step: state from GetJobRun, progress and the driver's
log from the run's staging prefix."""

from __future__ import annotations

import json
from typing import Any

from traitlets import Bool, Dict, Unicode

from ..errors import BadRequest, Conflict, StorageError
from .executors import DetachedExecutor, Launch, Status

#: GetJobRun states -> run states.
_JOB_STATES = {
    "SUBMITTED": "running",
    "PENDING": "running",
    "SCHEDULED": "running",
    "QUEUED": "running",
    "RUNNING": "running",
    "CANCELLING": "running",
    "SUCCESS": "succeeded",
    "FAILED": "failed",
    "CANCELLED": "cancelled",
}


class EmrServerlessExecutor(DetachedExecutor):
    """A job run on an EMR Serverless application (configure ``application_id`` and
    ``execution_role_arn``; the application must have the Spark runtime)."""

    name = "emr-serverless"
    title = "EMR Serverless"

    application_id = Unicode(
        "", config=True, help="Id of the EMR Serverless application (Spark) that runs jobs."
    )
    execution_role_arn = Unicode(
        "", config=True, help="IAM role the job runs as (S3 read of the view, write of outputs)."
    )
    log_uri = Unicode(
        "",
        config=True,
        help="S3 URI for the job's Spark logs; empty: the run's staging prefix + emr-logs/.",
    )
    spark_submit_parameters = Unicode(
        "", config=True, help="Extra spark-submit parameters (--conf spark.executor.cores=4 ...)."
    )
    tags = Dict({}, config=True, help="Tags of each job run; runs add their id.")
    endpoint_url = Unicode("", config=True, help="EMR Serverless API endpoint; empty: AWS's.")
    region_name = Unicode("", config=True, help="AWS region; empty means boto3's default.")
    enabled = Bool(True, config=True, help="Offer EMR Serverless when it is configured.")

    def available(self) -> tuple[bool, str | None]:
        if not self.enabled:
            return False, "disabled by the server's configuration (EmrServerlessExecutor.enabled)"
        if not self.application_id or not self.execution_role_arn:
            return False, (
                "set EmrServerlessExecutor.application_id and execution_role_arn in the "
                "server's configuration"
            )
        return True, None

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
        return session.client("emr-serverless", **kwargs)

    def _call(self, what: str, fn: Any, **params: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(**params)
        except ClientError as exc:
            err = exc.response.get("Error", {})
            raise StorageError(
                f"EMR Serverless refused to {what}: {err.get('Code', 'error')}: "
                f"{err.get('Message', '')}".rstrip(": ")
            ) from exc
        except BotoCoreError as exc:
            raise StorageError(f"Could not reach EMR Serverless to {what}: {exc}") from exc

    def job_driver(self, launch: Launch) -> dict[str, Any]:
        spark: dict[str, Any] = {
            "entryPoint": launch.driver_uri,
            "entryPointArguments": self.job_args(launch),
        }
        if self.spark_submit_parameters:
            spark["sparkSubmitParameters"] = self.spark_submit_parameters
        return {"sparkSubmit": spark}

    def start(self, launch: Launch) -> dict[str, Any]:
        ok, why = self.available()
        if not ok:
            raise BadRequest(f"The emr-serverless executor cannot run here: {why}.")
        client = self.client()
        log_uri = self.log_uri or self.status_uri(launch) + "emr-logs/"
        resp = self._call(
            "start the job run",
            client.start_job_run,
            applicationId=self.application_id,
            executionRoleArn=self.execution_role_arn,
            name=f"infinstor transform {launch.run_id}",
            jobDriver=self.job_driver(launch),
            configurationOverrides={
                "monitoringConfiguration": {"s3MonitoringConfiguration": {"logUri": log_uri}}
            },
            tags={
                str(k): str(v) for k, v in {**self.tags, "infinstor:run-id": launch.run_id}.items()
            },
        )
        job_run_id = resp["jobRunId"]
        # EMR Serverless writes a job's driver logs under applications/<app>/jobs/<id>/.
        log_location = (
            f"{log_uri.rstrip('/')}/applications/{self.application_id}/jobs/{job_run_id}/"
            "SPARK_DRIVER/"
        )
        with open(launch.log_path, "a", encoding="utf-8") as fh:
            fh.write(
                f"EMR Serverless application {self.application_id}, job run {job_run_id}\n"
                f"job driver: {json.dumps(self.job_driver_summary(launch))}\n"
                f"Spark logs: {log_location}\n"
            )
        return {
            "application_id": self.application_id,
            "job_run_id": job_run_id,
            "log_location": log_location,
            "status_uri": self.status_uri(launch),
        }

    @staticmethod
    def job_driver_summary(launch: Launch) -> dict[str, Any]:
        return {"entryPoint": launch.driver_uri, "run_id": launch.run_id}

    def remote_logs(self, details: dict[str, Any]) -> list[tuple[str, str]]:
        sources = super().remote_logs(details)
        where = details.get("log_location")
        if where:
            sources += [("Spark driver stderr", where + "stderr.gz")]
            sources += [("Spark driver stdout", where + "stdout.gz")]
        return sources

    def poll(self, launch: Launch, details: dict[str, Any]) -> Status:
        job = self._call(
            "describe the job run",
            self.client().get_job_run,
            applicationId=details["application_id"],
            jobRunId=details["job_run_id"],
        )["jobRun"]
        raw = job.get("state", "")
        details["emr_serverless_state"] = raw
        state = _JOB_STATES.get(raw, "running")
        done, total = self.progress(details)
        if state == "succeeded" and total:
            done = total
        detail = job.get("stateDetails") or None
        if state == "failed" and not detail:
            detail = raw
        return Status(state, done=done, total=total, detail=detail if state != "running" else None)

    def cancel(self, launch: Launch, details: dict[str, Any]) -> None:
        try:
            self._call(
                "cancel the job run",
                self.client().cancel_job_run,
                applicationId=details["application_id"],
                jobRunId=details["job_run_id"],
            )
        except StorageError as exc:
            raise Conflict(f"EMR Serverless could not cancel the job run: {exc}") from exc
        details["cancelled"] = True
