"""The demo's JupyterLab offers transforms: MLflow in a SQLite file of the demo, a default
output in the demo bucket, and a notebook with a transform cell that opens at start."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

BROWSER_SCRIPT = """
import sys
url = sys.argv[1]
text = url
if url.startswith("file://"):
    with open(url[len("file://"):], encoding="utf-8") as f:
        text += "\\n" + f.read()
with open(sys.argv[2], "w", encoding="utf-8") as out:
    out.write(text)
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_demo_runs_its_notebooks_transform_with_the_dialogs_defaults(tmp_path):
    """`infinstor-jlab demo` opens a notebook whose cell, run as a transform the way the run
    dialog sends it (the defaults the server gives: executor and output location), succeeds
    over the demo's label, writes its outputs to the demo bucket and records the run in the
    demo's own MLflow store."""
    import boto3
    import requests

    port = _free_port()
    work = tmp_path / "w"
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "browser.py"
    browser.write_text(BROWSER_SCRIPT)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("JUPYTER", "AWS_", "MLFLOW_", "INFINSTOR_"))
    }
    env.update(
        JUPYTER_PORT=str(port),
        JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
        BROWSER=f"{sys.executable} {browser} %s {opened}",
    )
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "infinstor_jlab.cli", "demo", "--workdir", str(work)],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # so that nothing it started outlives the test
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 150
        token = endpoint = None
        assert proc.stdout is not None
        while time.monotonic() < deadline and token is None:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            m = re.search(r"Local S3 endpoint \(moto\) at (http://[\d.:]+);", line)
            endpoint = m.group(1) if m else endpoint
            m = re.search(rf"http://(?:127\.0\.0\.1|localhost):{port}/lab\?token=(\w+)", line)
            token = m.group(1) if m else None
        out = "".join(lines)
        assert token is not None and endpoint is not None, out[-3000:]
        assert "Outputs go to s3://infinstor-demo/transform-outputs/" in out, out[-3000:]
        threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()
        http = requests.Session()
        http.headers["Authorization"] = f"token {token}"
        base = f"http://127.0.0.1:{port}"

        def api(method: str, path: str, **kwargs):
            resp = http.request(method, f"{base}/infinstor/{path}", timeout=60, **kwargs)
            assert resp.status_code < 300, (method, path, resp.status_code, resp.text)
            return resp.json()

        info = None
        while info is None:
            try:
                info = api("GET", "executors")
            except requests.ConnectionError:
                assert proc.poll() is None and time.monotonic() < deadline, "".join(lines)
                time.sleep(0.5)
        # What the run dialog prefills.
        assert info["default_output_uri"] == "s3://infinstor-demo/transform-outputs/"
        assert info["default_executor"] == "local"
        assert next(e for e in info["executors"] if e["name"] == "local")["available"]

        # The notebook sits in the lab's root, and the browser was sent to it.
        nb = http.get(f"{base}/api/contents/infinstor-demo.ipynb", timeout=30)
        assert nb.status_code == 200, nb.text
        cells = nb.json()["content"]["cells"]
        source = next(c["source"] for c in cells if c["cell_type"] == "code")
        assert "def infin_transform_one_object(filename, output_dir, parentdir" in source
        while not opened.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "/lab/tree/infinstor-demo.ipynb" in opened.read_text()

        # Run the cell as a transform, as the dialog does with its defaults.
        checked = api("POST", "transforms/check", json={"source": source})
        assert checked["entry_point"] == "infin_transform_one_object"
        rev = api("POST", "transforms", json={"name": "image-sizes", "source": source})
        run = api(
            "POST",
            "runs",
            json={
                "transform": "image-sizes",
                "revision": rev["revision"],
                "input": {"type": "label", "label": "flowers-v1"},
                "executor": info["default_executor"],
                "output_uri": info["default_output_uri"],
            },
        )
        while run["state"] not in ("succeeded", "failed", "cancelled"):
            assert time.monotonic() < deadline, run
            time.sleep(0.3)
            run = api("GET", f"runs/{run['id']}")
        assert run["state"] == "succeeded", (run, api("GET", f"runs/{run['id']}/log"))
        assert run["done"] == run["total"] == 3
        prefix = f"transform-outputs/{run['id']}/"
        assert run["output_uri"] == f"s3://infinstor-demo/{prefix}"

        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="demo",
            aws_secret_access_key="demo",
            region_name="us-east-1",
        )
        keys = [
            o["Key"] for o in s3.list_objects_v2(Bucket="infinstor-demo", Prefix=prefix)["Contents"]
        ]
        assert sorted(k[len(prefix) :] for k in keys) == [
            "_SUCCESS.json",
            "daisy_001.png.txt",
            "daisy_002.png.txt",
            "daisy_003.png.txt",
        ]
        body = s3.get_object(Bucket="infinstor-demo", Key=prefix + "daisy_002.png.txt")["Body"]
        assert body.read() == b"daisy_002.png: 18x16 pixels\n"

        # Lineage went to the demo's SQLite store, artifacts beside it (not the user's cwd).
        from mlflow.tracking import MlflowClient

        mlrun = MlflowClient(tracking_uri=f"sqlite:///{work / 'mlflow.db'}").get_run(run["id"])
        assert mlrun.data.params["transform_name"] == "image-sizes"
        assert mlrun.info.artifact_uri.replace("file://", "").startswith(str(work)), mlrun.info
        assert list(cwd.iterdir()) == []

        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def test_the_demo_notebook_is_valid_and_its_cell_is_a_transform(tmp_path):
    """The notebook the demo writes reads as nbformat 4, and its cell captures as a
    one-object transform without the lines that try it in the kernel."""
    import nbformat

    from infinstor_jlab.demo import write_demo_notebook
    from infinstor_jlab.transforms.capture import capture

    path = Path(tmp_path / "demo.ipynb")
    write_demo_notebook(str(path))
    nb = nbformat.read(str(path), as_version=4)
    nbformat.validate(nb)
    code = next(c for c in nb.cells if c.cell_type == "code")
    captured = capture(code.source)
    assert captured.entry_point == "infin_transform_one_object"
    assert "test_infin_transform" in code.source and "test_infin_transform" not in captured.code
    assert json.loads(path.read_text())["nbformat"] == 4
