"""How users install: a wheel built with ``python -m build``, installed with pip into a fresh
virtualenv on a machine without Node.js, then JupyterLab started. Both the lab extension and
the server extension must show up enabled and OK, with nothing built on the user's machine."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _run(
    cmd: list[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 600,
) -> str:
    proc = subprocess.run(
        cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    out = ANSI.sub("", proc.stdout + proc.stderr)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed ({proc.returncode}):\n{out[-4000:]}"
    return out


def _path_without_node() -> str:
    """PATH minus every directory that holds a ``node`` executable."""
    keep = [
        d
        for d in os.environ.get("PATH", "").split(os.pathsep)
        if d and not os.access(os.path.join(d, "node"), os.X_OK)
    ]
    return os.pathsep.join(keep)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(ROOT)], timeout=900)
    wheels = list(out.glob("infinstor_jlab-*-py3-none-any.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_the_wheel_carries_the_prebuilt_extension_and_server_config(wheel: Path):
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    data = next(n.split("/data/")[0] for n in names if ".data/data/" in n) + "/data/"
    lab = data + "share/jupyter/labextensions/infinstor_jlab/"
    for needed in (
        lab + "package.json",
        lab + "install.json",
        lab + "schemas/infinstor_jlab/plugin.json",
        lab + "static/style.js",
        data + "etc/jupyter/jupyter_server_config.d/infinstor_jlab.json",
        "infinstor_jlab/openapi.yaml",
        "infinstor_jlab/index/sqlite/store.py",
        "infinstor_jlab/rest/base.py",
        "infinstor_jlab/kernel/infin_boto3.py",
        "infinstor_jlab/endpoint/server.py",
    ):
        assert needed in names, f"{needed} is missing from {wheel.name}"
    assert any(n.startswith(lab + "static/remoteEntry.") for n in names)
    # Nothing of the developer's checkout rides along.
    assert not [n for n in names if "node_modules" in n or n.startswith("tests/")]


@pytest.mark.timeout(1200)
def test_pip_install_into_a_fresh_virtualenv_without_node_enables_both_extensions(
    wheel: Path, tmp_path: Path
):
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)])
    bindir = venv / ("Scripts" if os.name == "nt" else "bin")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("JUPYTER", "VIRTUAL_ENV", "PYTHON", "INFINSTOR"))
    }
    env["PATH"] = os.pathsep.join([str(bindir), _path_without_node()])
    env["JUPYTER_CONFIG_DIR"] = str(tmp_path / "config")  # no user-level settings leak in
    env["JUPYTER_DATA_DIR"] = str(tmp_path / "data")
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    py = str(bindir / "python")
    # The check itself: node really is out of reach for what follows.
    probe = subprocess.run(
        [py, "-c", "import shutil; print(shutil.which('node'))"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip() == "None"
    _run(
        [py, "-m", "pip", "install", "-q", str(wheel), "jupyterlab>=4.2,<5"], env=env, timeout=1100
    )

    labext = _run([str(bindir / "jupyter"), "labextension", "list"], env=env)
    assert re.search(r"infinstor_jlab v\S+ enabled\s+OK", labext), labext
    assert str(venv) in labext  # from the virtualenv's share/, not a developer install

    serverext = _run([str(bindir / "jupyter"), "server", "extension", "list"], env=env)
    assert re.search(r"infinstor_jlab\s+enabled", serverext), serverext
    assert re.search(r"infinstor_jlab \S+ OK", serverext), serverext

    # The command line came with it and reaches the index with the default location.
    cli = _run([str(bindir / "infinstor-jlab"), "timespec", "tm20261120100000", "--json"], env=env)
    assert '"end_ms": 1795168800999' in cli, cli
