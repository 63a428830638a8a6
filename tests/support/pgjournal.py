"""Helpers for the tests of fastgrid's PostgreSQL journal (``fastgrid+postgresql://``)."""

from __future__ import annotations

import time
import uuid
from typing import Any


def journal_url(postgres_url: str, schema: str) -> str:
    """The ``fastgrid+postgresql://`` URL of ``postgres_url`` with its tables in ``schema``."""
    sep = "&" if "?" in postgres_url else "?"
    return f"fastgrid+{postgres_url}{sep}options=-csearch_path%3D{schema}"


def fresh_journal_url(postgres_url: str) -> str:
    """A journal URL on a new, empty schema: each test gets its own tables on the session server."""
    import psycopg

    schema = "t_" + uuid.uuid4().hex[:16]
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")  # type: ignore[arg-type]
    return journal_url(postgres_url, schema)


def schema_of(url: str) -> str:
    return url.rsplit("%3D", 1)[1]


def alice_url(server: Any, **query: str) -> str:
    """A journal URL logging in as alice (password hunter2; the ``own_server`` fixture creates her)
    to a fresh schema she owns, with ``query`` as extra URL parameters."""
    schema = f"a_{time.monotonic_ns()}"
    server.psql(f"CREATE SCHEMA {schema} AUTHORIZATION alice")
    url = journal_url(f"postgresql://alice:hunter2@127.0.0.1:{server.port}/{server.database}", schema)
    return url + "".join(f"&{k}={v}" for k, v in query.items())
