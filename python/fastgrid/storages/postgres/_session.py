"""A process's connection to a fastgrid PostgreSQL database, for stores beside the journal.

The batch sweeps' chunk store (``fastgrid.batch``) keeps its tables in the database of the sweep's
journal and must meet the same rules: libpq parameters in the URL, the password masked in every
message, ``reconnect_timeout`` seconds of retries when the connection drops, and one clear line for
a wrong password, a missing database, an unreachable server or a missing driver. A
:class:`PostgresSession` gives it that: :meth:`PostgresSession.transact` runs a function in one
transaction on this process's connection (reopened after fork) and runs it again on a new
connection when the old one was lost, so the function must be safe to run twice.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from fastgrid.exceptions import StorageConnectionError
from fastgrid.storages.postgres._journal import (
    PostgresTarget,
    RetryWindow,
    _kind,
    _psycopg,
    _unreachable_hint,
    parse_url,
)

__all__ = ["PostgresSession", "open_session"]

_T = TypeVar("_T")
_logger = logging.getLogger("fastgrid.postgres")
# A forked child must never close (and so end the server session of) its parent's connection: it
# keeps the object it inherited alive here and opens its own.
_INHERITED: list[Any] = []


def open_session(url: str, *, display: str) -> PostgresSession:
    """A session on the database of ``url``: ``fastgrid+postgresql://``, ``postgresql[+driver]://``
    or the ``postgres`` spellings of both; ``display`` is ``url`` with its password masked.

    Raises:
        ValueError: a malformed URL, no driver (naming ``pip install 'fastgrid[postgres]'``), a wrong
            password or a missing database (one line, password masked).
        StorageConnectionError: the server cannot be reached.
    """
    _, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"storage {display!r}: expected a postgresql:// URL")
    return PostgresSession(parse_url("fastgrid+postgresql://" + rest, display=display))


class PostgresSession:
    """One connection per process (autocommit off), with retries inside the reconnect window."""

    def __init__(self, target: PostgresTarget, *, setup: Callable[[Any], None] | None = None) -> None:
        self.target = target
        # Run in a transaction on each new connection (creating or checking tables).
        self.setup = setup
        self._conn: Any = None
        self._pid = -1
        self._lock = threading.RLock()
        self._retries = RetryWindow(target)

    @property
    def display(self) -> str:
        return self.target.display

    def message(self, exc: BaseException, hint: str | None = None) -> str:
        return self._retries.message(exc, hint)

    def connection(self, *, first: bool = False) -> Any:
        """This process's connection, opened if needed (``first``: also wait while the server
        starts up, and report an unreachable one at once). Call with the lock held."""
        if self._conn is not None and self._pid == os.getpid() and not self._conn.closed:
            return self._conn
        if self._conn is not None and self._pid != os.getpid():
            _INHERITED.append(self._conn)
        self._conn = None
        psycopg = _psycopg()
        conn = self._retries.connect(autocommit=False, first=first)
        try:
            if self.setup is not None:
                with conn.transaction():
                    self.setup(conn)
        except psycopg.Error as exc:
            conn.close()
            if isinstance(exc, psycopg.OperationalError) and _kind(exc) is None:
                raise StorageConnectionError(self.message(exc, _unreachable_hint(exc))) from None
            raise ValueError(self.message(exc)) from None
        except BaseException:
            conn.close()
            raise
        self._conn, self._pid = conn, os.getpid()
        return conn

    def transact(self, op: Callable[[Any], _T]) -> _T:
        """``op(connection)`` in one transaction, retried on a new connection while the server is
        unreachable, for up to ``reconnect_timeout`` seconds (:class:`RetryWindow`, as the journal
        does; a commit whose reply was lost may have happened: ``op`` must be safe to run again)."""

        def attempt(first: bool) -> _T:
            # A session's first connection waits while the server starts up, as the journal's does.
            conn = self.connection(first=first and self._conn is None)
            with conn.transaction():
                return op(conn)

        with self._lock:
            return self._retries.run(attempt, self._drop)

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and self._pid == os.getpid():
            try:
                conn.close()
            except Exception as exc:  # a broken socket may fail to close cleanly: it is gone anyway
                _logger.debug(f"closing a connection: {exc!r}")

    def close(self) -> None:
        with self._lock:
            self._drop()
