"""Server configuration for the Galata UI tests (and `jlpm start` in ui-tests/).

Starts moto's S3 server on an ephemeral loopback port, seeds it with the demo bucket's
four-second history (``infinstor_jlab.demo.seed_history``), tracks and indexes it in a
temporary SQLite index, and points the server extension at both. The step times are written
to ``test-data/history.json`` for the tests to read.

Also creates:
- ``infinstor-plain``: an untracked, unversioned bucket (the "Track" consent flow);
- ``infinstor-wide``: a tracked bucket with one folder of ``WIDE_COUNT`` objects (listing
  pages and the rendering benchmark).

!! Never use this configuration in production: it opens the server to the world and gives
access to JupyterLab's JavaScript objects through the global window variable.
"""

import atexit
import json
import logging
import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from jupyterlab.galata import configure_jupyter_server

configure_jupyter_server(c)  # noqa: F821

# CI runs as root in a throwaway container.
c.ServerApp.allow_root = True  # noqa: F821

# Uncomment to set server log level to debug level
# c.ServerApp.log_level = "DEBUG"

WIDE_COUNT = int(os.environ.get("INFINSTOR_UI_WIDE_COUNT", "1200"))


def _seed() -> None:
    import boto3
    from moto.server import ThreadedMotoServer

    from infinstor_jlab.demo import DEMO_BUCKET, seed_history
    from infinstor_jlab.index import open_index
    from infinstor_jlab.services import InfinstorService

    # moto's server logs every request through werkzeug; the tests need none of it.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    atexit.register(server.stop)
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"

    workdir = tempfile.mkdtemp(prefix="infinstor-ui-tests-")
    atexit.register(shutil.rmtree, workdir, True)
    index_url = "sqlite:///" + os.path.join(workdir, "index.sqlite")

    # Dummy credentials for the local endpoint only; real ones are never read.
    os.environ.update({
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "INFINSTOR_INDEX_URL": index_url,
    })
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        os.environ.pop(name, None)

    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    steps = seed_history(client)

    client.create_bucket(Bucket="infinstor-plain")
    for i in range(3):
        client.put_object(Bucket="infinstor-plain", Key=f"notes/note_{i}.txt",
                          Body=f"note {i}\n".encode())

    client.create_bucket(Bucket="infinstor-wide")
    client.put_bucket_versioning(Bucket="infinstor-wide",
                                 VersioningConfiguration={"Status": "Enabled"})

    def put(i: int) -> None:
        client.put_object(Bucket="infinstor-wide", Key=f"many/item_{i:06d}.txt",
                          Body=f"{i}\n".encode())

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(put, range(WIDE_COUNT)))

    svc = InfinstorService(open_index(index_url), s3_endpoint_url=endpoint)
    svc.track(DEMO_BUCKET, enable_versioning_consent=True)
    svc.sync(DEMO_BUCKET)
    svc.track("infinstor-wide", enable_versioning_consent=True)
    svc.sync("infinstor-wide")
    svc.index.close()

    data_dir = Path(__file__).parent / "test-data"
    data_dir.mkdir(exist_ok=True)
    (data_dir / "history.json").write_text(json.dumps({
        "endpoint": endpoint,
        "bucket": DEMO_BUCKET,
        "steps": steps,
        "plain_bucket": "infinstor-plain",
        "wide_bucket": "infinstor-wide",
        "wide_count": WIDE_COUNT,
    }, indent=2))

    c.InfinstorApp.index_url = index_url  # noqa: F821
    c.InfinstorApp.s3_endpoint_url = endpoint  # noqa: F821
    # Nothing changes behind the tests' back: no periodic reconcile passes.
    c.InfinstorApp.reconcile_interval = 0.0  # noqa: F821


_seed()


# -- transforms (issue 6) --------------------------------------------------------------------
#: Tracked bucket where transform runs write (transforms.spec.ts browses the output there).
TRANSFORM_OUTPUT_BUCKET = "infinstor-out"
TRANSFORM_OUTPUT_URI = f"s3://{TRANSFORM_OUTPUT_BUCKET}/transform-out/"
#: A bucket no UI test ever tracks (the output of a run that asks for a label must be tracked).
UNTRACKED_BUCKET = "infinstor-scratch"
#: The transform transforms.spec.ts stores; its MLflow experiment is created up front so that
#: its artifacts go to the temp workdir (MLflow's sqlite store would use ./mlruns otherwise).
UI_TEST_TRANSFORM = "copy-suffix"
#: The name transforms.spec.ts gives the demo notebook's cell (its experiment is made up front too).
DEMO_UI_TRANSFORM = "demo-sizes"
#: The pipelines pipelines.spec.ts defines (their MLflow experiments are made up front too).
UI_TEST_PIPELINES = ("ui-fan", "ui-fan-spark")


def _seed_transforms() -> None:
    """MLflow in the temp workdir, an empty tracked output bucket, the default output URI."""
    import boto3
    from mlflow import MlflowClient

    from infinstor_jlab.index import open_index
    from infinstor_jlab.services import InfinstorService

    index_url = os.environ["INFINSTOR_INDEX_URL"]
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    workdir = os.path.dirname(index_url[len("sqlite:///"):])
    os.environ["MLFLOW_TRACKING_URI"] = "sqlite:///" + os.path.join(workdir, "mlflow.db")
    for name in (UI_TEST_TRANSFORM, DEMO_UI_TRANSFORM):
        MlflowClient().create_experiment(
            f"infinstor-transform-{name}",
            artifact_location=Path(workdir, "mlartifacts").as_uri(),
        )
    # The pipelines pipelines.spec.ts defines (their runs and step runs go there).
    for name in UI_TEST_PIPELINES:
        MlflowClient().create_experiment(
            f"infinstor-pipeline-{name}",
            artifact_location=Path(workdir, "mlartifacts").as_uri(),
        )

    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=TRANSFORM_OUTPUT_BUCKET)
    client.create_bucket(Bucket=UNTRACKED_BUCKET)
    svc = InfinstorService(open_index(index_url), s3_endpoint_url=endpoint)
    svc.track(TRANSFORM_OUTPUT_BUCKET, enable_versioning_consent=True)
    svc.sync(TRANSFORM_OUTPUT_BUCKET)
    svc.index.close()

    c.InfinstorApp.transform_output_uri = TRANSFORM_OUTPUT_URI  # noqa: F821

    data_dir = Path(__file__).parent / "test-data"
    # The notebook `infinstor-jlab demo` opens, as it writes it (the tests upload it).
    from infinstor_jlab.demo import DEMO_NOTEBOOK, write_demo_notebook

    write_demo_notebook(str(data_dir / DEMO_NOTEBOOK))
    (data_dir / "transforms.json").write_text(json.dumps({
        "output_bucket": TRANSFORM_OUTPUT_BUCKET,
        "output_uri": TRANSFORM_OUTPUT_URI,
        "transform": UI_TEST_TRANSFORM,
        "untracked_bucket": UNTRACKED_BUCKET,
        "demo_notebook": DEMO_NOTEBOOK,
        "demo_transform": DEMO_UI_TRANSFORM,
    }, indent=2))


_seed_transforms()


# -- restore (issue 21) ----------------------------------------------------------------------
#: A tracked bucket of its own (restore.spec.ts changes it; no other spec looks at it).
RESTORE_BUCKET = "infinstor-restore"


def _seed_restore() -> None:
    """``tables/`` as it was at one second (a, b, keep) and after a bad job the next second
    (a overwritten, b deleted, c added), tracked and indexed."""
    import time

    import boto3

    from infinstor_jlab.index import open_index
    from infinstor_jlab.services import InfinstorService
    from infinstor_jlab.timespec import now_ms

    def next_second() -> int:
        time.sleep(1.05 - (time.time() % 1.0))
        return now_ms()

    index_url = os.environ["INFINSTOR_INDEX_URL"]
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=RESTORE_BUCKET)
    client.put_bucket_versioning(Bucket=RESTORE_BUCKET,
                                 VersioningConfiguration={"Status": "Enabled"})
    good = next_second()
    client.put_object(Bucket=RESTORE_BUCKET, Key="tables/a.csv", Body=b"id,value\na,1\n",
                      ContentType="text/csv")
    client.put_object(Bucket=RESTORE_BUCKET, Key="tables/b.csv", Body=b"id,value\nb,1\n",
                      ContentType="text/csv")
    client.put_object(Bucket=RESTORE_BUCKET, Key="tables/keep.csv", Body=b"keep\n",
                      ContentType="text/csv")
    damaged = next_second()
    client.put_object(Bucket=RESTORE_BUCKET, Key="tables/a.csv", Body=b"id,value\na,BAD\n",
                      ContentType="text/csv")
    client.delete_object(Bucket=RESTORE_BUCKET, Key="tables/b.csv")
    client.put_object(Bucket=RESTORE_BUCKET, Key="tables/c.csv", Body=b"id,value\nc,1\n",
                      ContentType="text/csv")
    next_second()
    svc = InfinstorService(open_index(index_url), s3_endpoint_url=endpoint)
    svc.track(RESTORE_BUCKET, enable_versioning_consent=True)
    svc.sync(RESTORE_BUCKET)
    svc.index.close()

    data_dir = Path(__file__).parent / "test-data"
    (data_dir / "restore.json").write_text(json.dumps({
        "bucket": RESTORE_BUCKET,
        "prefix": "tables/",
        "good": good,
        "damaged": damaged,
    }, indent=2))


_seed_restore()
