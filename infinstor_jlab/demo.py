"""``infinstor-jlab demo``: a local S3 endpoint with a versioned sample dataset, indexed.

Needs the ``demo`` extra (moto's server). Nothing touches AWS: the endpoint is moto on
127.0.0.1 and the credentials are dummies.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from typing import Any

from .timespec import format_tm, now_ms

DEMO_BUCKET = "infinstor-demo"
DEMO_LABEL = "flowers-v1"
#: Where transform runs write unless the run dialog says otherwise (``<uri>/<run id>/``).
DEMO_OUTPUT_URI = f"s3://{DEMO_BUCKET}/transform-outputs/"
#: The notebook the demo writes into JupyterLab's root directory and opens.
DEMO_NOTEBOOK = "infinstor-demo.ipynb"

DEMO_TRANSFORM_CELL = (
    '''import os
import struct


def infin_transform_one_object(filename, output_dir, parentdir, **kwargs):
    """Called once per object of the input view: writes <name>.txt with the image's size."""
    name = os.path.basename(filename)
    with open(filename, "rb") as f:
        head = f.read(24)
    if head[:8] == b"\\x89PNG\\r\\n\\x1a\\n":
        width, height = struct.unpack(">II", head[16:24])
        text = f"{name}: {width}x{height} pixels\\n"
    else:
        text = f"{name}: {os.path.getsize(filename)} bytes\\n"
    with open(os.path.join(output_dir, name + ".txt"), "w") as out:
        out.write(text)


# Lines marked "# infinstor" try it here, in this kernel; they are not part of the transform.
from infinstor_jlab import test_infin_transform  # infinstor
'''
    + f'test_infin_transform("label:/{DEMO_LABEL}")  # infinstor\n'
)


def png_bytes(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A small valid PNG of one colour (no imaging library needed)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + bytes(rgb) * width
    raw = row * height
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def iris_csv(rows: int, version: int) -> bytes:
    lines = ["sepal_length,sepal_width,petal_length,petal_width,species"]
    species = ["setosa", "versicolor", "virginica"]
    for i in range(rows):
        lines.append(
            f"{4.3 + (i * 7 % 36) / 10:.1f},{2.0 + (i * 3 % 24) / 10:.1f},"
            f"{1.0 + (i * 5 % 59) / 10:.1f},{0.1 + (i % 25) / 10:.1f},"
            f"{species[(i + version) % 3]}"
        )
    return ("\n".join(lines) + "\n").encode()


def _wait_next_second() -> None:
    # Each step lands in its own whole second, so every step is a distinct snapshot even at
    # the one-second resolution AWS listings give.
    time.sleep(1.05 - (time.time() % 1.0))


def seed_history(client: Any, bucket: str = DEMO_BUCKET) -> list[int]:
    """Create the bucket and a four-step history. Returns the time of each step."""
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key="README.txt", Body=b"Sample data, first draft.\n")
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    steps: list[int] = []
    colours = {"daisy": (250, 240, 200), "rose": (200, 30, 60), "tulip": (240, 120, 20)}

    _wait_next_second()
    steps.append(now_ms())
    for i in range(1, 4):
        client.put_object(
            Bucket=bucket,
            Key=f"flowers/daisy/daisy_{i:03d}.png",
            Body=png_bytes(16 + i, 16, colours["daisy"]),
        )
    client.put_object(Bucket=bucket, Key="tables/iris.csv", Body=iris_csv(30, 1))

    _wait_next_second()
    steps.append(now_ms())
    for i in range(1, 3):
        client.put_object(
            Bucket=bucket,
            Key=f"flowers/rose/rose_{i:03d}.png",
            Body=png_bytes(16, 16 + i, colours["rose"]),
        )
    client.put_object(Bucket=bucket, Key="tables/iris.csv", Body=iris_csv(60, 2))
    client.put_object(Bucket=bucket, Key="README.txt", Body=b"Sample data: flowers and iris.\n")

    _wait_next_second()
    steps.append(now_ms())
    client.delete_object(Bucket=bucket, Key="flowers/daisy/daisy_002.png")
    client.put_object(
        Bucket=bucket, Key="tables/labels.json", Body=b'{"daisy": 0, "rose": 1, "tulip": 2}\n'
    )

    _wait_next_second()
    steps.append(now_ms())
    for i in range(1, 3):
        client.put_object(
            Bucket=bucket,
            Key=f"flowers/tulip/tulip_{i:03d}.png",
            Body=png_bytes(18, 18, colours["tulip"]),
        )
    client.put_object(Bucket=bucket, Key="tables/iris.csv", Body=iris_csv(90, 3))
    client.delete_object(Bucket=bucket, Key="README.txt")
    return steps


def write_demo_notebook(path: str) -> None:
    """The notebook the demo opens: what to try, and a cell to run as a transform."""
    intro = (
        "# infinstor_jlab demo\n"
        "\n"
        f"This JupyterLab works against a local S3 endpoint (moto) with the versioned bucket "
        f"`{DEMO_BUCKET}`, already indexed, and the label `{DEMO_LABEL}` over its flower images "
        "as first uploaded. Open **S3 Time Travel** in the left sidebar to browse the bucket "
        "at any past second.\n"
        "\n"
        "**Transforms.** Run the cell below to try it here on the label's images. Then "
        "right-click it → **Run cell as transform…**: type a name, pick the input (the "
        f"label `{DEMO_LABEL}`, or the sidebar's view) and *Run*. The output location is "
        f"prefilled with `{DEMO_OUTPUT_URI}`; each run writes under `<output>/<run id>/`, "
        "which the sidebar's **Transforms** section links to. Local runs always work here; "
        "Spark runs where pyspark and Java are installed. Lineage goes to MLflow "
        "(`$MLFLOW_TRACKING_URI`, a SQLite file next to this notebook).\n"
    )
    doc = {
        "cells": [
            {
                "cell_type": "markdown",
                "id": "demo-intro",
                "metadata": {},
                "source": intro.splitlines(keepends=True),
            },
            {
                "cell_type": "code",
                "id": "demo-transform",
                "metadata": {},
                "execution_count": None,
                "outputs": [],
                "source": DEMO_TRANSFORM_CELL.splitlines(keepends=True),
            },
        ],
        "metadata": {
            "kernelspec": {
                "display_name": "Python 3 (ipykernel)",
                "language": "python",
                "name": "python3",
            },
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


def start_local_s3(port: int = 0) -> tuple[Any, str]:
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        raise SystemExit(
            "The demo needs moto's server: pip install 'infinstor_jlab[demo]'"
        ) from exc
    # moto's server logs every request through werkzeug: noise on the demo's terminal
    # (and through the JupyterLab session it starts), so only its errors are shown.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    host, bound = server.get_host_and_port()
    return server, f"http://{host}:{bound}"


def run_demo(
    *, no_lab: bool, port: int = 0, workdir: str | None = None, lab_port: int | None = None
) -> int:
    import boto3

    from .index import open_index
    from .services import InfinstorService

    work = os.path.abspath(workdir or tempfile.mkdtemp(prefix="infinstor-demo-"))
    os.makedirs(work, exist_ok=True)
    index_url = "sqlite:///" + os.path.join(work, "index.sqlite")
    # MLflow's store of transform lineage; its artifacts go to ./mlruns of the lab, which
    # runs in the work directory. Both start afresh with the bucket (moto keeps nothing).
    mlflow_url = "sqlite:///" + os.path.join(work, "mlflow.db")
    for name in ("index.sqlite", "mlflow.db"):
        if os.path.exists(os.path.join(work, name)):
            os.remove(os.path.join(work, name))
    shutil.rmtree(os.path.join(work, "mlruns"), ignore_errors=True)

    server, endpoint = start_local_s3(port)
    # Dummy credentials for the local endpoint only; real ones are never needed or read.
    demo_env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "demo",
        "AWS_SECRET_ACCESS_KEY": "demo",
        "AWS_DEFAULT_REGION": "us-east-1",
        "INFINSTOR_INDEX_URL": index_url,
        "MLFLOW_TRACKING_URI": mlflow_url,
    }
    os.environ.update(demo_env)
    os.environ.pop("AWS_PROFILE", None)
    print(f"Local S3 endpoint (moto) at {endpoint}; index at {index_url}")
    try:
        client = boto3.client("s3", endpoint_url=endpoint)
        print("Writing a sample dataset over four distinct seconds (adds, overwrites, deletes)...")
        steps = seed_history(client)
        svc = InfinstorService(open_index(index_url), s3_endpoint_url=endpoint)
        svc.track(DEMO_BUCKET, enable_versioning_consent=True)
        result = svc.sync(DEMO_BUCKET)
        print(f"Indexed {result.progress.versions_seen} versions of s3://{DEMO_BUCKET}.")
        first = format_tm(steps[0])
        label = svc.create_label(
            DEMO_LABEL,
            DEMO_BUCKET,
            "flowers/",
            svc.parse_spec(first),
            description="The flower images as first uploaded",
        )
        print(f"Created label {label.name} ({label.object_count} objects, {label.fingerprint}).")
        _print_tour(steps, demo_env, endpoint, no_lab)
        if no_lab:
            return 0
        notebook = os.path.join(work, DEMO_NOTEBOOK)
        if not os.path.exists(notebook):  # a --workdir used before keeps the user's edits
            write_demo_notebook(notebook)
        _print_transforms(mlflow_url)
        return _run_lab(demo_env, work, notebook, lab_port)
    finally:
        server.stop()
        if workdir is None and no_lab is False:
            shutil.rmtree(work, ignore_errors=True)


def _print_tour(steps: list[int], demo_env: dict[str, str], endpoint: str, no_lab: bool) -> None:
    t = [format_tm(s) for s in steps]
    print()
    print("Times of the four steps: " + ", ".join(t))
    print("Try (in another shell; listings, diffs and history are answered by the index):")
    # Everything another shell needs: the index, and for sync and label verify the local
    # endpoint with its dummy credentials (MLflow for run:/ specs).
    print("  export " + " ".join(f"{k}={shlex.quote(v)}" for k, v in demo_env.items()))
    print(f"  infinstor-jlab ls s3://{DEMO_BUCKET}/ --at {t[0]}")
    print(f"  infinstor-jlab ls s3://{DEMO_BUCKET}/ --recursive --at {t[2]}")
    print(f"  infinstor-jlab ls s3://{DEMO_BUCKET}/ --recursive --slice {t[1]}-{t[1]}")
    print(f"  infinstor-jlab diff s3://{DEMO_BUCKET}/ --from {t[0]} --to {t[3]}")
    print(f"  infinstor-jlab history s3://{DEMO_BUCKET}/tables/iris.csv")
    print(f"  infinstor-jlab ls s3://{DEMO_BUCKET}/flowers/ --recursive --label {DEMO_LABEL}")
    print("  infinstor-jlab label list")
    if no_lab:
        print(
            f"(label verify and sync talk to S3 too: the local endpoint, {endpoint}, stops "
            "when this command ends; without --no-lab it runs as long as JupyterLab does, "
            "and JupyterLab's terminals are set up for it)"
        )
    else:
        print(
            f"(label verify and sync talk to S3 too: the local endpoint, {endpoint}, runs "
            "as long as JupyterLab does, and JupyterLab's terminals are set up for it)"
        )
    print()


def _print_transforms(mlflow_url: str) -> None:
    import importlib.util

    from .transforms.executors import SparkExecutor

    print(
        f"Transforms: JupyterLab opens {DEMO_NOTEBOOK}; right-click its cell, then "
        f"'Run cell as transform...'. Outputs go to {DEMO_OUTPUT_URI}<run id>/, "
        f"lineage to MLflow at {mlflow_url}."
    )
    if importlib.util.find_spec("mlflow") is None:
        print(
            "  MLflow is not installed here, so transforms cannot run: "
            "pip install 'infinstor_jlab[demo]'."
        )
    ok, why = SparkExecutor().available()
    print("  Runs can go to Local" + (" and Spark." if ok else f"; Spark {why}."))
    print()


def _run_lab(demo_env: dict[str, str], work: str, notebook: str, lab_port: int | None) -> int:
    # The JupyterLab of this environment, where this extension is installed: not whichever
    # `jupyter` comes first on PATH (another environment's, or none when this one's bin
    # directory is not on PATH, as with ~/venv/bin/infinstor-jlab or pipx).
    import importlib.util

    if importlib.util.find_spec("jupyterlab") is None:
        print(
            "JupyterLab is not installed here; pip install 'infinstor_jlab[demo]'.", file=sys.stderr
        )
        return 1
    env = dict(os.environ)
    env.update(demo_env)
    # Terminals opened in JupyterLab find this environment's infinstor-jlab and python.
    bindir = os.path.dirname(sys.executable)
    env["PATH"] = os.pathsep.join([bindir, env.get("PATH", "")]) if env.get("PATH") else bindir
    print(
        "Starting JupyterLab with the extension configured against the local endpoint "
        "(Ctrl-C to stop)..."
    )
    # The run dialog offers the demo bucket as the output; the notebook opens at start.
    args = [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--notebook-dir={work}",
        "--ServerApp.open_browser=True",
        f"--InfinstorApp.transform_output_uri={DEMO_OUTPUT_URI}",
        notebook,
    ]
    if lab_port is not None:
        args.append(f"--ServerApp.port={lab_port}")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # Containers and cloud VMs often log in as root, where Jupyter refuses to start
        # unless told: the demo is a throwaway local session, so it says so for the user.
        args.append("--ServerApp.allow_root=True")
    # In the work directory: MLflow's sqlite store keeps run artifacts under ./mlruns.
    proc = subprocess.Popen(args, env=env, cwd=work)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        return 0
