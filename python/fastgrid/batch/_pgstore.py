"""The columnar results store of batch sweeps on PostgreSQL, for workers on several machines.

The tables and rules of :class:`fastgrid.batch.ChunkStore` (see ``_store``) in the database of the
sweep's Optuna study (``fastgrid+postgresql://``, fastgrid's journal, or ``postgresql://``, Optuna's
RDBStorage): a chunk's columns and its ``done`` mark are written in one transaction by the worker
that holds the claim (checked in that transaction, the chunk's row locked), so a chunk is recorded
exactly once. Claims serialize on the sweep's row (``SELECT ... FOR UPDATE``); a chunk's column
blobs go in with ``COPY``. Heartbeats and staleness use the server's clock, so workers on machines
whose clocks differ agree on which claims are stale. The connection is the journal's
(:class:`fastgrid.storages.postgres.PostgresSession`): libpq parameters in the URL, the password
masked, ``reconnect_timeout`` retries. Needs psycopg 3 (the ``postgres`` extra).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from fastgrid.batch._store import ChunkStore, schema_statements

__all__ = ["PgBatchStore", "is_postgres_url"]

_T = TypeVar("_T")
_SCHEMES = ("postgresql", "postgres", "fastgrid+postgresql", "fastgrid+postgres")


def is_postgres_url(location: object) -> bool:
    """``postgresql[+driver]://``, ``postgres://`` or fastgrid's ``fastgrid+postgresql://``."""
    if not isinstance(location, str) or "://" not in location:
        return False
    scheme = location.split("://", 1)[0].lower()
    return scheme in _SCHEMES or scheme.split("+", 1)[0] in ("postgresql", "postgres")


def _create(conn: Any) -> None:
    # Every worker's connection comes here: tables already there need no lock (the runs table is
    # created last, so it stands for all five; a database of an older fastgrid lacks it).
    row = conn.execute("SELECT to_regclass('fastgrid_batch_runs') IS NOT NULL").fetchone()
    if row is not None and row[0]:
        return
    # Two workers creating the tables at once would race on the catalog: one at a time.
    conn.execute("SELECT pg_advisory_xact_lock(hashtext('fastgrid_batch_schema'))")
    for statement in schema_statements(int_type="BIGINT", float_type="DOUBLE PRECISION", blob_type="BYTEA"):
        conn.execute(statement)


class PgBatchStore(ChunkStore):
    """Batch sweeps' chunks and columns in PostgreSQL (``fastgrid+postgresql://user:pass@host/db``
    or ``postgresql://...``).

    Raises ValueError (one line, password masked) for a malformed URL, a missing driver, a wrong
    password or a missing database, and ``StorageConnectionError`` for an unreachable server.
    """

    _LOCK_ROW = " FOR UPDATE"
    _SKIP_LOCKED = " FOR UPDATE SKIP LOCKED"
    _NOW = "extract(epoch from clock_timestamp())"

    def __init__(self, url: str) -> None:
        from fastgrid.storages import redact_url
        from fastgrid.storages.postgres import open_session

        super().__init__()
        self.url = url
        self.path = url  # what messages name (``label`` masks its password)
        self._session = open_session(url, display=redact_url(url))
        self._session.setup = _create
        self._session.transact(lambda conn: None)  # connect now: a bad URL or server is told at once

    def __getstate__(self) -> dict[str, Any]:
        return {"url": self.url}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["url"])  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"PgBatchStore({self._display()!r})"

    def _display(self) -> str:
        session = getattr(self, "_session", None)
        if session is not None:
            return str(session.display)
        from fastgrid.storages import redact_url

        return redact_url(self.url)

    @property
    def label(self) -> str:
        return repr(self)

    def _transact(self, op: Callable[[Any], _T]) -> _T:
        return self._session.transact(op)

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        return self._session.transact(lambda conn: list(self._exec(conn, sql, args).fetchall()))

    def _exec(self, conn: Any, sql: str, args: Sequence[Any] = ()) -> Any:
        return conn.execute(sql.replace("?", "%s"), args)

    def _in_list(self, values: Sequence[int]) -> tuple[str, list[Any]]:
        return "= ANY(?)", [list(values)]

    def _put_columns(self, conn: Any, rows: list[tuple[str, str, int, bytes]]) -> None:
        with conn.cursor().copy("COPY fastgrid_batch_columns (sweep, name, chunk, data) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def close(self) -> None:
        self._session.close()
