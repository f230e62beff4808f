"""``jupyter server`` as a real subprocess with the infinstor_jlab extension, for tests and
benchmarks that need the whole stack: process start-up, signals, kernels, real HTTP.

Plain Python (no pytest): ``tests/test_openapi.py``, ``tests/test_server_process.py`` and
``benchmarks/api_bench.py`` use it. Each start gets its own port and log file; a server can be
stopped with any signal and started again on the same index.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing_extensions import Self

#: Server extensions installed in the environment that only slow a test server's start.
OTHER_EXTENSIONS = ("jupyterlab", "jupyter_lsp", "notebook_shim", "jupyter_server_terminals")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """One ``python -m jupyter_server`` process (restartable) with only this extension.

    ``env`` overrides the inherited environment (a value of None removes the variable);
    ``args`` are extra command-line options such as ``--InfinstorApp.sqs_wait_seconds=1``.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        index_url: str | None = None,
        s3_endpoint: str | None = None,
        args: list[str] | tuple[str, ...] = (),
        env: dict[str, str | None] | None = None,
    ) -> None:
        self.workdir = Path(workdir)
        self.token = uuid.uuid4().hex
        self.args = list(args)
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.log_path = self.workdir / "server-0.log"
        self._log: Any = None
        home = self.workdir / "jupyter"
        environ = dict(os.environ)
        if index_url is not None:
            environ["INFINSTOR_INDEX_URL"] = index_url
        if s3_endpoint is not None:
            environ["AWS_ENDPOINT_URL"] = s3_endpoint
        environ.update(
            {
                "JUPYTER_CONFIG_DIR": str(home / "config"),
                "JUPYTER_DATA_DIR": str(home / "data"),
                "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
                "PYTHONUNBUFFERED": "1",
            }
        )
        for name, value in (env or {}).items():
            if value is None:
                environ.pop(name, None)
            else:
                environ[name] = value
        self.env = environ
        (home / "config").mkdir(parents=True, exist_ok=True)
        others = {name: False for name in OTHER_EXTENSIONS}
        (home / "config" / "jupyter_server_config.json").write_text(
            json.dumps({"ServerApp": {"jpserver_extensions": {**others, "infinstor_jlab": True}}})
        )
        self.root = self.workdir / "root"
        self.root.mkdir(parents=True, exist_ok=True)
        self._session: Any = None

    # -- urls and http ----------------------------------------------------------------------
    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, *parts: str) -> str:
        return "/".join([self.base, *(p.strip("/") for p in parts)])

    @property
    def session(self) -> Any:
        """A ``requests`` session that sends the token."""
        import requests

        if self._session is None:
            self._session = requests.Session()
            self._session.headers["Authorization"] = f"token {self.token}"
        return self._session

    def api(
        self,
        method: str,
        path: str,
        *,
        expect: int | tuple[int, ...] | None = 200,
        timeout: float = 30,
        **kwargs: Any,
    ) -> Any:
        """``<base>/infinstor/<path>``; asserts the status, returns the decoded JSON (or
        None for an empty body)."""
        resp = self.session.request(method, self.url("infinstor", path), timeout=timeout, **kwargs)
        if expect is not None:
            codes = (expect,) if isinstance(expect, int) else expect
            assert resp.status_code in codes, (method, path, resp.status_code, resp.text)
        return resp.json() if resp.content else None

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> LiveServer:
        """Start the process (without waiting for it to serve: see :meth:`wait_ready`)."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.close_log()
        self.port = free_port()
        self.starts += 1
        self.log_path = self.workdir / f"server-{self.starts}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyter_server",
                f"--IdentityProvider.token={self.token}",
                f"--ServerApp.port={self.port}",
                "--ServerApp.port_retries=0",
                "--ServerApp.ip=127.0.0.1",
                "--ServerApp.open_browser=False",
                "--ServerApp.allow_root=True",
                f"--ServerApp.root_dir={self.root}",
                *(f"--ServerApp.jpserver_extensions={name}=False" for name in OTHER_EXTENSIONS),
                "--ServerApp.jpserver_extensions=infinstor_jlab=True",
                *self.args,
            ],
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        return self

    def wait_ready(self, timeout: float = 60) -> LiveServer:
        """Wait until ``GET /infinstor/health`` answers 200."""
        import requests

        deadline = time.monotonic() + timeout
        while True:
            assert self.proc is not None
            assert self.proc.poll() is None, "server exited:\n" + self.log_text()
            try:
                resp = self.session.get(self.url("infinstor", "health"), timeout=5)
                if resp.status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "server did not start:\n" + self.log_text()
            time.sleep(0.1)

    def log_text(self) -> str:
        if self._log is not None:
            self._log.flush()
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        """Wait for the process to exit; returns its exit code (raises TimeoutExpired)."""
        assert self.proc is not None
        return self.proc.wait(timeout)

    def kill(self) -> None:
        """SIGKILL: no cleanup at all, as in a crash or an OOM kill."""
        if self.running():
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait(10)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int | None:
        """Stop with ``sig``; SIGKILL if it has not exited after ``timeout`` seconds."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def close(self) -> None:
        self.stop()
        self.close_log()
        if self._session is not None:
            self._session.close()
            self._session = None

    def __enter__(self) -> Self:
        if self.proc is None:
            self.start()
        return self.wait_ready()

    def __exit__(self, *exc: object) -> None:
        self.close()
