"""Shared fixtures: one throwaway PostgreSQL server for the whole session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


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
