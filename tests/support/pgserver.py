"""A throwaway PostgreSQL server for the distributed-mode tests.

Started from the Debian packages' binaries on loopback only, with a fresh data directory that is
deleted afterwards. The server refuses to run as root, so when the tests run as root (as CI does)
it is started as the ``postgres`` system user through ``runuser``.
"""

from __future__ import annotations

import contextlib
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


@contextlib.contextmanager
def running_server(*, database: str = "fastgrid") -> Iterator[str]:
    """Starts a server, creates ``database`` and yields its ``postgresql://`` URL; stops it after."""
    bindir = find_bindir()
    root = Path(tempfile.mkdtemp(prefix="fastgrid-pg-"))
    datadir = root / "data"
    port = _free_port()
    if os.geteuid() == 0:
        shutil.chown(root, user="postgres")
    run = lambda argv: subprocess.run(  # noqa: E731 - a local shorthand, not an API
        _as_server_user(argv), capture_output=True, text=True, timeout=120, check=False
    )
    try:
        init = run([str(bindir / "initdb"), "-D", str(datadir), "-U", "postgres", "-A", "trust", "--no-sync"])
        if init.returncode != 0:
            raise PostgresUnavailable(f"initdb failed: {init.stderr.strip() or init.stdout.strip()}")
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off -c max_connections=200"
        start = run(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(datadir),
                "-o",
                options,
                "-l",
                str(root / "server.log"),
                "-w",
                "start",
            ]
        )
        if start.returncode != 0:
            log = (root / "server.log").read_text(errors="replace") if (root / "server.log").exists() else ""
            raise PostgresUnavailable(f"pg_ctl start failed: {start.stderr.strip()} {log[-2000:]}")
        try:
            _create_database(bindir, port, database)
            yield f"postgresql://postgres@127.0.0.1:{port}/{database}"
        finally:
            run([str(bindir / "pg_ctl"), "-D", str(datadir), "-m", "immediate", "-w", "stop"])
    finally:
        shutil.rmtree(root, ignore_errors=True)


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
