"""A throwaway PostgreSQL server for the distributed-mode tests.

Started from the Debian packages' binaries on loopback only, with a fresh data directory that is
deleted afterwards. The server refuses to run as root, so when the tests run as root (as CI does)
it is started as the ``postgres`` system user through ``runuser``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path


class PostgresUnavailable(RuntimeError):
    """The server binaries are missing or the server would not start; the message says why."""


def find_bindir() -> Path:
    """The newest installed server's bin directory (``initdb`` and ``pg_ctl`` live there)."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_major_version)
    if not candidates:
        on_path = shutil.which("initdb")
        if on_path is None:
            raise PostgresUnavailable(
                "PostgreSQL server binaries not found (install them with `apt-get install postgresql`)"
            )
        return Path(on_path).parent
    return Path(candidates[-1]).parent


def _major_version(initdb_path: str) -> int:
    try:
        return int(Path(initdb_path).parent.parent.name)
    except ValueError:
        return 0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_server_user(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    if shutil.which("runuser") is None:
        raise PostgresUnavailable(
            "running as root and `runuser` is missing: cannot drop to the postgres user"
        )
    return ["runuser", "-u", "postgres", "--", *argv]


@dataclasses.dataclass
class Server:
    """A running throwaway server: its URL, and stop/start/restart for the tests that need them."""

    bindir: Path
    root: Path
    port: int
    database: str

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{self.database}"

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    def start(self) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=off -c max_connections=200"
        )
        argv = [str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-o", options]
        started = _run([*argv, "-l", str(self.root / "server.log"), "-w", "start"])
        if started.returncode != 0:
            log = self.root / "server.log"
            text = log.read_text(errors="replace") if log.exists() else ""
            raise PostgresUnavailable(f"pg_ctl start failed: {started.stderr.strip()} {text[-2000:]}")

    def stop(self, mode: str = "fast") -> None:
        _run([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w", "stop"])

    def ensure_running(self) -> None:
        """Start the server if a test left it stopped."""
        status = _run([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "status"])
        if status.returncode != 0:
            self.start()

    def psql(self, sql: str, *, database: str | None = None) -> str:
        """Run ``sql`` as the superuser; returns its output (raises on an error)."""
        out = subprocess.run(
            [
                *(str(self.bindir / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"),
                *("-d", database or self.database, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode != 0:
            raise RuntimeError(f"psql failed: {out.stderr.strip()}")
        return out.stdout


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_as_server_user(argv), capture_output=True, text=True, timeout=120, check=False)


@contextlib.contextmanager
def managed_server(*, database: str = "fastgrid", passwords: bool = False) -> Iterator[Server]:
    """Starts a server, creates ``database`` and yields it; stops it and deletes its files after.

    With ``passwords``, TCP logins other than ``postgres`` need a password (scram-sha-256), so a
    test can log in with a wrong one.
    """
    bindir = find_bindir()
    root = Path(tempfile.mkdtemp(prefix="fastgrid-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, user="postgres")
    server = Server(bindir=bindir, root=root, port=_free_port(), database=database)
    try:
        init = _run(
            [str(bindir / "initdb"), "-D", str(server.datadir), "-U", "postgres", "-A", "trust", "--no-sync"]
        )
        if init.returncode != 0:
            raise PostgresUnavailable(f"initdb failed: {init.stderr.strip() or init.stdout.strip()}")
        if passwords:
            hba = [
                "local all all trust",
                "host all postgres 127.0.0.1/32 trust",
                "host all all 127.0.0.1/32 scram-sha-256",
            ]
            (server.datadir / "pg_hba.conf").write_text("\n".join(hba) + "\n")
        server.start()
        try:
            _create_database(bindir, server.port, database)
            yield server
        finally:
            server.stop("immediate")
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def running_server(*, database: str = "fastgrid") -> Iterator[str]:
    """Starts a server, creates ``database`` and yields its ``postgresql://`` URL; stops it after."""
    with managed_server(database=database) as server:
        yield server.url


def _create_database(bindir: Path, port: int, database: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        created = subprocess.run(
            [str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", database],
            capture_output=True,
            text=True,
            check=False,
        )
        if created.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise PostgresUnavailable(f"createdb failed: {created.stderr.strip()}")
        time.sleep(0.2)
