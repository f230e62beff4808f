"""The Jupyter server extension application of infinstor_jlab."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import ClassVar

from jupyter_server.extension.application import ExtensionApp
from traitlets import Bool, CaselessStrEnum, Float, Int, List, Type, Unicode

from .rest import handlers as rest_handlers
from .rest.base import CONFIG_KEY, EXECUTOR_KEY, QUERY_EXECUTOR_KEY, SERVICE_KEY
from .rest.endpoint import CREDENTIALS_KEY, ENDPOINT_KEY, ENDPOINT_STATE_KEY
from .rest.pipelines import PIPELINES_KEY
from .rest.schedules import SCHEDULES_KEY
from .rest.transforms import TRANSFORMS_KEY
from .transforms.emr_serverless import EmrServerlessExecutor
from .transforms.executors import EmrExecutor, LocalExecutor, SparkExecutor, TransformExecutor

__all__ = ["CONFIG_KEY", "EXECUTOR_KEY", "QUERY_EXECUTOR_KEY", "SERVICE_KEY", "TRANSFORMS_KEY"]

#: Request heads (request line and headers) Tornado reads before it gives up. Its default,
#: 64 KiB, makes it drop the connection with no answer on a longer URL; up to this size the
#: handlers answer a too-long key, prefix or URL with a JSON 400. Longer heads are still
#: dropped by Tornado unanswered.
MAX_HEADER_BYTES = 1024 * 1024


def _raise_header_limit(limit: int = MAX_HEADER_BYTES) -> None:
    """Make Tornado HTTPServers created from now on read heads of up to ``limit`` bytes.

    jupyter_server creates its HTTPServer after loading extensions and offers no setting for
    this, so it is set through Tornado's ``Configurable.configure`` defaults (which arguments
    the server passes itself still override)."""
    from tornado.httpserver import HTTPServer

    save = getattr(HTTPServer, "_save_configuration", None)
    impl, kwargs = save() if save is not None else (None, None)
    kwargs = dict(kwargs or {})
    if (kwargs.get("max_header_size") or 0) < limit:
        kwargs["max_header_size"] = limit
        HTTPServer.configure(impl, **kwargs)


class InfinstorApp(ExtensionApp):
    """Serves the infinstor_jlab REST API under ``<base_url>/infinstor/`` and keeps the
    snapshot index of every tracked bucket current in the background."""

    name = "infinstor_jlab"
    # Listed by `jupyter infinstor-jlab --help-all`, with the server's own options.
    classes: ClassVar[list] = [*ExtensionApp.classes, LocalExecutor, SparkExecutor, EmrExecutor]

    index_url = Unicode(
        "",
        config=True,
        help=(
            "Location of the snapshot index (sqlite:///path). Empty means $INFINSTOR_INDEX_URL, "
            "else a file under the Jupyter data directory."
        ),
    )

    access_checks = CaselessStrEnum(
        ["auto", "on", "off"],
        default_value="auto",
        config=True,
        help=(
            "Check this server's own AWS credentials' access to a bucket (ListObjectVersions, "
            "MaxKeys=1, cached 5 minutes) before answering for it from the index, and hide "
            "buckets they cannot read. auto: on when the index is shared (PostgreSQL), off for "
            "a local SQLite file. $INFINSTOR_ACCESS_CHECKS overrides auto."
        ),
    )

    s3_endpoint_url = Unicode(
        "",
        config=True,
        help=(
            "Endpoint URL of an S3-compatible store (also used for SQS). Empty means boto3's "
            "default (AWS, or AWS_ENDPOINT_URL when set)."
        ),
    )

    sqs_wait_seconds = Int(
        10,
        config=True,
        help="SQS long-poll wait (1-20 s). Events are applied as soon as they arrive.",
    )

    reconcile_interval = Float(
        300.0,
        config=True,
        help=(
            "Seconds between ListObjectVersions reconcile passes over every tracked bucket "
            "(catches what events miss: deletes on stores that send none, dropped events). "
            "0 disables them."
        ),
    )

    track_buckets = List(
        Unicode(),
        default_value=[],
        config=True,
        help="Buckets to keep current at start (they must already be tracked in the index).",
    )

    watch_buckets = Int(
        1,
        config=True,
        help="1 to run the background event poller and reconcile loop, 0 to serve queries only.",
    )

    preview_max_bytes = Int(
        1_048_576,
        config=True,
        help="Most bytes a preview returns (the UI shows text, CSV, JSON and images).",
    )

    thread_pool_size = Int(
        8,
        config=True,
        help="Threads that run blocking work (S3 calls, syncs, label checks) off the event loop.",
    )

    query_thread_pool_size = Int(
        0,
        config=True,
        help="Threads that answer index queries (listings, history, diff, timeline). Queries "
        "are CPU work under Python's GIL: more threads than cores make every answer slower "
        "(on 2 cores, 20 clients listing nonstop: the slowest answer took 0.3 s with 2 "
        "threads, 0.6-0.8 s with 8). 0: the number of CPUs, from 2 to 4.",
    )

    local_executor_class = Type(
        default_value=LocalExecutor,
        klass=TransformExecutor,
        config=True,
        help="Executor of the 'local' choice: worker processes on this server's machine.",
    )

    spark_executor_class = Type(
        default_value=SparkExecutor,
        klass=TransformExecutor,
        config=True,
        help="Executor of the 'spark' choice: spark-submit (configure SparkExecutor.master).",
    )

    emr_executor_class = Type(
        default_value=EmrExecutor,
        klass=TransformExecutor,
        config=True,
        help=(
            "Executor of the 'emr' choice: a step on Amazon EMR (configure "
            "EmrExecutor.cluster_id, or the transient-cluster settings)."
        ),
    )

    emr_serverless_executor_class = Type(
        default_value=EmrServerlessExecutor,
        klass=TransformExecutor,
        config=True,
        help=(
            "Executor of the 'emr-serverless' choice: a job run on an EMR Serverless "
            "application (configure EmrServerlessExecutor.application_id and "
            "execution_role_arn)."
        ),
    )

    schedule_interval_s = Float(
        30.0,
        config=True,
        help="Seconds between the server's passes over the schedules (firing what is due, "
        "recording ended runs); 0 turns the server's runner off (use `infinstor-jlab "
        "schedules run-due` from cron instead).",
    )

    transform_output_uri = Unicode(
        "",
        config=True,
        help="Default S3 URI under which transform runs write (<uri>/<run id>/).",
    )

    mlflow_tracking_uri = Unicode(
        "",
        config=True,
        help=(
            "MLflow tracking URI for transform lineage (exported to kernels too). Empty means "
            "$MLFLOW_TRACKING_URI, else MLflow's default."
        ),
    )

    mlflow_ui_url = Unicode(
        "",
        config=True,
        help="Base URL of the MLflow UI, for links from transform runs (empty: no links).",
    )

    mlflow_artifact_location = Unicode(
        "",
        config=True,
        help=(
            "Where new transform experiments keep their MLflow artifacts (a directory or an "
            "s3:// URI; each experiment gets <location>/<experiment name>). Empty means "
            "MLflow's default (./mlruns beside a sqlite store)."
        ),
    )

    transform_log_dir = Unicode(
        "",
        config=True,
        help="Directory of transform run logs; empty means next to the snapshot index.",
    )

    endpoint_enabled = Bool(
        True,
        config=True,
        help=(
            "Start the read-only S3 endpoint that serves views to any S3 client (pyarrow, "
            "DuckDB, Polars, the AWS CLI...) with view credentials."
        ),
    )

    endpoint_host = Unicode(
        "127.0.0.1",
        config=True,
        help="Address the S3 endpoint listens on (loopback only unless told otherwise).",
    )

    endpoint_port = Int(
        0,
        config=True,
        help="Port of the S3 endpoint; 0 picks a free one (GET /infinstor/endpoint says which).",
    )

    endpoint_public_url = Unicode(
        "",
        config=True,
        help=(
            "URL clients reach the S3 endpoint by, when it is not http://HOST:PORT (behind a "
            "proxy or a load balancer). Empty: http://HOST:PORT."
        ),
    )

    def _start_endpoint(self, service: object) -> None:
        from .endpoint import EndpointServer
        from .services.credentials import CredentialService

        state: dict[str, object] = {"enabled": bool(self.endpoint_enabled), "error": None}
        self.settings[ENDPOINT_STATE_KEY] = state
        self._endpoint = None
        try:
            creds = CredentialService.for_service(service)
        except Exception as exc:  # noqa: BLE001 - the sidebar still works without it
            state["error"] = str(exc)
            self.log.warning("infinstor_jlab: view credentials are unavailable: %s", exc)
            return
        self.settings[CREDENTIALS_KEY] = creds
        if not self.endpoint_enabled:
            return
        server = EndpointServer(
            service,
            creds.store,
            host=self.endpoint_host,
            port=self.endpoint_port,
            public_url=self.endpoint_public_url or None,
        )
        try:
            url = server.start()
        except Exception as exc:  # noqa: BLE001 - e.g. the port is taken
            state["error"] = (
                f"the S3 endpoint could not listen on {self.endpoint_host}:{self.endpoint_port} "
                f"({exc}); set InfinstorApp.endpoint_port to a free port"
            )
            self.log.warning("infinstor_jlab: %s", state["error"])
            return
        self._endpoint = server
        self.settings[ENDPOINT_KEY] = server
        self.log.info("infinstor_jlab: S3 endpoint for views at %s", url)

    def _transform_service(self, service: object, index_url: str) -> object:
        from .index import sqlite_path
        from .pg import is_postgres_url
        from .transforms.service import TransformService
        from .transforms.store import open_transform_store

        if self.mlflow_tracking_uri:
            os.environ.setdefault("MLFLOW_TRACKING_URI", self.mlflow_tracking_uri)
        if is_postgres_url(index_url):
            # Transforms and runs on the shared database; logs stay on this server's disk.
            from jupyter_core.paths import jupyter_data_dir

            here = os.path.join(jupyter_data_dir(), "infinstor")
        else:
            here = os.path.dirname(os.path.abspath(sqlite_path(index_url)))
        logdir = self.transform_log_dir or os.path.join(here, "transform-runs")
        executors = {
            "local": self.local_executor_class(parent=self),
            "spark": self.spark_executor_class(parent=self),
            "emr": self.emr_executor_class(parent=self),
            "emr-serverless": self.emr_serverless_executor_class(parent=self),
        }
        transforms = TransformService(
            service,
            open_transform_store(index_url),
            logdir,
            executors,  # type: ignore[arg-type]
            default_output_uri=self.transform_output_uri,
            mlflow_tracking_uri=self.mlflow_tracking_uri or None,
            mlflow_ui_url=self.mlflow_ui_url,
            mlflow_artifact_location=self.mlflow_artifact_location,
        )
        transforms.recover()
        return transforms

    def _pipeline_service(self, transforms: object, index_url: str) -> object:
        from .transforms.pipelines import PipelineService, open_pipeline_store

        pipelines = PipelineService(transforms, open_pipeline_store(index_url))  # type: ignore[arg-type]
        pipelines.recover()
        return pipelines

    def initialize_settings(self) -> None:
        from .index import INDEX_URL_ENV, open_index, resolve_index_url
        from .services import InfinstorService
        from .services.watcher import BucketWatcher

        _raise_header_limit()
        url = resolve_index_url(self.index_url or None)
        # Kernels started by this server inherit its environment: notebook code finds the
        # same index (and endpoint) with no configuration.
        os.environ[INDEX_URL_ENV] = url
        if self.s3_endpoint_url:
            os.environ["AWS_ENDPOINT_URL"] = self.s3_endpoint_url
        from .services.access import ACCESS_CHECKS_ENV

        mode = self.access_checks if self.access_checks != "auto" else None
        if mode:
            os.environ[ACCESS_CHECKS_ENV] = mode  # kernels and their time travel follow it
        service = InfinstorService(
            open_index(url), s3_endpoint_url=self.s3_endpoint_url or None, access_checks=mode
        )
        executor = ThreadPoolExecutor(
            max_workers=max(1, self.thread_pool_size), thread_name_prefix="infinstor"
        )
        query_threads = self.query_thread_pool_size or min(4, max(2, os.cpu_count() or 2))
        query_executor = ThreadPoolExecutor(
            max_workers=max(1, query_threads), thread_name_prefix="infinstor-query"
        )
        self.settings.update(
            {
                SERVICE_KEY: service,
                EXECUTOR_KEY: executor,
                QUERY_EXECUTOR_KEY: query_executor,
                CONFIG_KEY: {"preview_max_bytes": self.preview_max_bytes},
            }
        )
        try:
            self.settings[TRANSFORMS_KEY] = self._transform_service(service, url)
            self.settings[PIPELINES_KEY] = self._pipeline_service(
                self.settings[TRANSFORMS_KEY], url
            )
        except Exception as exc:  # noqa: BLE001 - the sidebar still works without transforms
            self.log.warning("infinstor_jlab: transforms are unavailable: %s", exc)
        self._schedule_runner = None
        if TRANSFORMS_KEY in self.settings:
            try:
                self._start_schedules(self.settings[TRANSFORMS_KEY], url)
            except Exception as exc:  # noqa: BLE001 - transforms still work without them
                self.log.warning("infinstor_jlab: schedules are unavailable: %s", exc)
        self._start_endpoint(service)
        self._service = service
        self._executor = executor
        self._query_executor = query_executor
        self._watcher = None
        if self.watch_buckets:
            watcher = BucketWatcher(
                service,
                wait_seconds=min(20, max(1, self.sqs_wait_seconds)),
                reconcile_interval=self.reconcile_interval,
                buckets=list(self.track_buckets) or None,
            )
            service.watcher = watcher
            try:
                watcher.start()
            except Exception as exc:  # noqa: BLE001 - a broken index must not stop Jupyter
                self.log.warning("infinstor_jlab: background tracking did not start: %s", exc)
            self._watcher = watcher
        self.log.info("infinstor_jlab: snapshot index at %s", url)

    def _start_schedules(self, transforms: object, index_url: str) -> None:
        from .transforms.schedules import ScheduleRunner, ScheduleService, ScheduleStore

        schedules = ScheduleService(transforms, ScheduleStore(index_url))  # type: ignore[arg-type]
        self.settings[SCHEDULES_KEY] = schedules
        if self.schedule_interval_s > 0:
            runner = ScheduleRunner(schedules, interval_s=self.schedule_interval_s)
            runner.start()
            self._schedule_runner = runner

    def initialize_handlers(self) -> None:
        # ExtensionApp prepends the server's base_url to each pattern, so these
        # resolve to url_path_join(base_url, "infinstor", ...).
        self.handlers.extend(rest_handlers)

    async def stop_extension(self) -> None:
        """Stop background work cleanly: pollers finish their current receive (messages are
        deleted only after their events are committed, so nothing is half-applied)."""
        import asyncio

        service = getattr(self, "_service", None)
        if service is not None:
            service.stop()  # running syncs stop after their current page
        runner = getattr(self, "_schedule_runner", None)
        if runner is not None:
            await asyncio.get_running_loop().run_in_executor(None, runner.stop, 5.0)
        pipelines = self.settings.get(PIPELINES_KEY)
        if pipelines is not None:
            pipelines.close()
        transforms = self.settings.get(TRANSFORMS_KEY)
        if transforms is not None:
            transforms.close()
        watcher = getattr(self, "_watcher", None)
        if watcher is not None:
            # Joining the pollers can take a long-poll's length: not on the event loop.
            await asyncio.get_running_loop().run_in_executor(None, watcher.stop, 5.0)
        endpoint = getattr(self, "_endpoint", None)
        if endpoint is not None:
            await asyncio.get_running_loop().run_in_executor(None, endpoint.stop)
        for name in ("_executor", "_query_executor"):
            executor = getattr(self, name, None)
            if executor is not None:
                executor.shutdown(wait=False, cancel_futures=True)
        if service is not None:
            service.index.close()


def main() -> None:
    """``jupyter infinstor-jlab``: a Jupyter server with this extension. Its ``--help-all``
    lists InfinstorApp's settings next to the server's (``jupyter server --help-all`` shows
    only jupyter_server's own classes, never an extension's)."""
    InfinstorApp.launch_instance()


if __name__ == "__main__":
    main()
