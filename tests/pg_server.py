"""A real PostgreSQL server for the tests: Debian's ``postgresql`` binaries, a cluster made by
``initdb`` in a temp directory and started with ``pg_ctl`` (as pytest-postgresql does), never
a mock.

PostgreSQL refuses to run as root, and CI machines run as root: the cluster then belongs to
the ``postgres`` user and its commands run through ``runuser``. The server listens on
127.0.0.1 on a free port and on a Unix socket in its own directory; every test gets a fresh
database from :meth:`PostgresServer.new_database`.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Sequence

PG_USER = "postgres"


def find_pg_bin() -> str | None:
    """The directory holding initdb and pg_ctl: ``INFINSTOR_TEST_PG_BIN``, else the newest
    ``/usr/lib/postgresql/<version>/bin`` (Debian's layout), else one on PATH."""
    explicit = os.environ.get("INFINSTOR_TEST_PG_BIN")
    if explicit:
        return explicit
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0,
    )
    if candidates:
        return os.path.dirname(candidates[-1])
    on_path = shutil.which("initdb")
    return os.path.dirname(on_path) if on_path else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    """One throwaway cluster. ``url`` is a libpq URL for the ``postgres`` superuser over TCP."""

    def __init__(self, bin_dir: str) -> None:
        self.bin_dir = bin_dir
        self.as_root = os.geteuid() == 0
        self.base = tempfile.mkdtemp(prefix="infinstor-pg-")
        self.data = os.path.join(self.base, "data")
        self.socket_dir = os.path.join(self.base, "sock")
        os.makedirs(self.socket_dir)
        self.port = _free_port()
        self.user = PG_USER if self.as_root else (os.environ.get("USER") or "postgres")
        if self.as_root:
            shutil.chown(self.base, PG_USER)
            shutil.chown(self.socket_dir, PG_USER)
            os.chmod(self.base, 0o755)

    def _run(self, argv: Sequence[str]) -> None:
        cmd = list(argv)
        if self.as_root:
            cmd = ["runuser", "-u", PG_USER, "--", *cmd]
        done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(
                f"{' '.join(argv[:2])} failed ({done.returncode}): {done.stderr or done.stdout}"
            )

    def start(self) -> None:
        self._run(
            [
                os.path.join(self.bin_dir, "initdb"),
                "-D",
                self.data,
                "-A",
                "trust",
                "-U",
                self.user,
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ]
        )
        # fsync off and small shared memory: a test cluster, not a durable one.
        options = (
            f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200"
        )
        self._run(
            [
                os.path.join(self.bin_dir, "pg_ctl"),
                "-D",
                self.data,
                "-o",
                options,
                "-l",
                os.path.join(self.base, "server.log"),
                "-w",
                "-t",
                "60",
                "start",
            ]
        )

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/postgres"

    def database_url(self, name: str) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{name}"

    def new_database(self) -> str:
        """Create an empty database and return its URL."""
        name = "t_" + uuid.uuid4().hex[:16]
        self._run(
            [
                os.path.join(self.bin_dir, "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                self.user,
                name,
            ]
        )
        return self.database_url(name)

    def stop(self) -> None:
        try:
            self._run(
                [os.path.join(self.bin_dir, "pg_ctl"), "-D", self.data, "-m", "immediate", "stop"]
            )
        finally:
            shutil.rmtree(self.base, ignore_errors=True)
