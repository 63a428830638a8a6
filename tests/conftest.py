"""Shared fixtures: one throwaway PostgreSQL server for the whole session."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from typing import Any

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Ctrl-C works as in a terminal, however the suite was started.

    A suite started as a background job (``scripts/test &`` from a script, some CI runners)
    inherits SIGINT ignored, and so does every process it starts: the tests that press Ctrl-C on
    fastgrid (or on themselves) then wait out their timeouts. SIGHUP is left alone (a suite under
    nohup must survive a hang-up); the test that sends one restores it in the run it signals.
    """
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A ``postgresql://`` URL of a loopback server started for this session (stopped after).

    Skips only when the server cannot be installed or started; ``scripts/test`` installs it.
    """
    from support.pgserver import PostgresUnavailable, running_server

    try:
        server = running_server()
        url = server.__enter__()
    except PostgresUnavailable as exc:
        pytest.skip(f"no PostgreSQL server for the distributed-mode tests: {exc}")
    try:
        yield url
    finally:
        server.__exit__(None, None, None)


@pytest.fixture(scope="module")
def own_server() -> Iterator[Any]:
    """A server of the module's own, with password logins and a role alice (password hunter2):
    for tests that restart or stop it, or log in with a password."""
    from support.pgserver import PostgresUnavailable, managed_server

    try:
        with managed_server(passwords=True) as server:
            server.psql("CREATE ROLE alice LOGIN PASSWORD 'hunter2'")
            yield server
    except PostgresUnavailable as exc:
        pytest.skip(f"no PostgreSQL server for this test: {exc}")


@pytest.fixture(autouse=True)
def _collect_rdb_connections(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a test on the PostgreSQL server, collect what it dropped, with ResourceWarning muted.

    Optuna's RDBStorage keeps its SQLAlchemy pool in reference cycles and has no close(): its psycopg
    connections are freed by whichever later garbage collection finds them, and psycopg warns then,
    which ``filterwarnings = error`` turns into a failure of an unrelated test. fastgrid's own
    PostgreSQL journal closes its connection when dropped: its tests (test_pg_*) are left out, so a
    leak of its own still fails them.
    """
    yield
    if "postgres_url" in request.fixturenames and not request.module.__name__.startswith("test_pg_"):
        import gc
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()
