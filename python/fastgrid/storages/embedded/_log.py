"""What fastgrid's journal storage needs from the log it replays: a SQLite file or PostgreSQL.

``EmbeddedStorage`` (the replay, indexes and snapshots) runs over any ``JournalLog``;
``SQLiteJournalBackend`` (here) and ``PostgresJournalBackend`` (``fastgrid.storages.postgres``) are
the two. Each is also a plain Optuna
journal backend (``read_logs``/``append_logs`` and ``save_snapshot``/``load_snapshot``), so a stock
``optuna.storages.JournalStorage`` reads the same log.
"""

from __future__ import annotations

import abc
import os
import threading
from typing import Any

from optuna.storages.journal import BaseJournalBackend
from optuna.storages.journal._base import BaseJournalSnapshot

__all__ = ["JournalLog"]


class JournalLog(BaseJournalBackend, BaseJournalSnapshot):
    """An Optuna journal backend with the batched and tagged operations fastgrid's storage uses."""

    # Held by the backend around every statement; a storage being dropped by the GC checks it
    # so as not to wait on a lock its own thread holds (see EmbeddedStorage.__del__).
    _lock: threading.Lock
    # A log opened only to read (a report) never writes, snapshots included.
    readonly: bool = False
    # Rows this process appended: with data_version(), whether another process wrote since.
    appended: int = 0

    @abc.abstractmethod
    def log_count(self) -> int:
        """How many log entries the log holds."""

    def data_version(self) -> int:
        """A number that changes whenever another process appended to the log.

        A storage compares it (with :attr:`appended`) to what it saw before its last read, to know
        whether its replayed state may be out of date. This default is the log's length (a query);
        a backend with a cheaper signal overrides it (SQLite: ``PRAGMA data_version``).
        """
        return self.log_count()

    @property
    @abc.abstractmethod
    def path(self) -> str | os.PathLike[str]:
        """Where the log lives, as shown in messages (a file path, or a URL without its password)."""

    @abc.abstractmethod
    def encode(self, log: dict[str, Any]) -> str:
        """The text one log entry is stored as (raises TypeError/ValueError if it is not JSON data)."""

    @abc.abstractmethod
    def append_and_read(self, bodies: list[str], log_number_from: int) -> list[dict[str, Any]]:
        """Append encoded entries (see ``encode``) atomically; return every entry from
        ``log_number_from`` on, in log order, ending with the appended ones."""

    @abc.abstractmethod
    def save_tagged_snapshot(self, data: bytes, *, log_number: int, tag: str, slot: int = 0) -> None:
        """Store ``data`` unless a stored snapshot covers more of the log."""

    @abc.abstractmethod
    def load_tagged_snapshot(self, *, slot: int = 0) -> tuple[int, str, bytes] | None:
        """The stored snapshot as ``(log_number, tag, data)``, or None."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the connection (the backend reconnects if used again)."""
