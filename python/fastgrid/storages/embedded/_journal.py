"""An Optuna journal backend on one SQLite file in WAL mode (the log side of the embedded store).

Optuna's journal storages replay an append-only log of operations; this backend keeps that log in a
SQLite table so that appends are atomic transactions (a SIGKILL mid-write leaves either the whole batch
or nothing) and reads are indexed range scans instead of re-reading a text file.

Durability trade, chosen on purpose: ``journal_mode=WAL`` with ``synchronous=NORMAL`` survives any crash
of the *process* (the WAL is written before a commit returns), but a power loss or OS crash may drop the
last few commits (never corrupt the file). ``synchronous=FULL`` would fsync every commit and cost
milliseconds per trial, which is the very overhead this store exists to avoid.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from fastgrid.exceptions import StoreError
from fastgrid.sqlitefile import open_file, retry_busy, store_errors, use_wal, write_transaction
from fastgrid.storages.embedded._log import JournalLog

__all__ = ["SQLiteJournalBackend"]

_T = TypeVar("_T")


# Bumped only if the table layout changes; a file with another version is refused, not misread.
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS fastgrid_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS journal (log_number INTEGER PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS snapshot (
    slot INTEGER PRIMARY KEY CHECK (slot IN (0, 1)),
    log_number INTEGER NOT NULL,
    tag TEXT NOT NULL,
    data BLOB NOT NULL
);
"""


def _decode(bodies: list[str]) -> list[dict[str, Any]]:
    # One JSON array instead of one document per entry: the decoder's per-call overhead was a third
    # of decoding a trial's ten small entries, and repeated keys are decoded once per batch.
    if len(bodies) < 2:
        return [json.loads(body) for body in bodies]
    logs = json.loads("[" + ",".join(bodies) + "]")
    if len(logs) != len(bodies):
        # Only a body that is not one JSON value gets here; decode one by one to name it.
        return [json.loads(body) for body in bodies]
    return logs


_OURS = frozenset({"journal", "snapshot"})


def _foreign(path: Path, tables: set[str]) -> str:
    if {"studies", "trials"} <= tables or "alembic_version" in tables:
        return (
            "this is an Optuna RDB (SQLite) database, not a fastgrid store; open it with "
            f'storage = "sqlite:///{path}" (or give the embedded store another path)'
        )
    shown = ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
    return f"an SQLite database of another program (tables: {shown}), not a fastgrid store; give another path"


class SQLiteJournalBackend(JournalLog):
    """Journal log and snapshot in one SQLite file; safe for threads and for several processes.

    Log numbers are the table's integer primary key minus one: rows are only ever appended inside a
    transaction, so the numbers stay dense and ``read_logs(n)`` is an index range scan.
    """

    def __init__(self, path: str | os.PathLike[str], *, readonly: bool = False) -> None:
        self._path = Path(path)
        # Read-only (reports): nothing is created or written; a missing file reads as an empty store.
        self.readonly = readonly
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = -1
        # Journal appends made through this object (other storages may share it): with
        # ``data_version`` it tells a reader whether anything was written since it last looked.
        self.appended = 0
        self._dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
        with self._lock:
            self._connection(create=True)

    @property
    def path(self) -> Path:
        return self._path

    # Connections cannot cross fork() and must not be pickled; each process opens its own.
    def __getstate__(self) -> dict[str, Any]:
        return {"_path": self._path, "readonly": self.readonly}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["_path"], readonly=state.get("readonly", False))  # type: ignore[misc]

    def _connection(self, *, create: bool = False) -> sqlite3.Connection:
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        conn = open_file(self._path, self._prepare, readonly=self.readonly, create=create)
        self._conn = conn
        self._pid = os.getpid()
        return conn

    def _prepare(self, conn: sqlite3.Connection) -> None:
        # Before anything is written (WAL mode changes the file): a file of another program, an
        # Optuna RDB database above all, is refused rather than turned into a store beside its tables.
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        # fastgrid's own tables (the store's, batch sweeps' fastgrid_batch_*) may be there first.
        foreign = {t for t in tables if not t.startswith(("fastgrid_", "sqlite_")) and t not in _OURS}
        if foreign and "fastgrid_meta" not in tables:
            raise StoreError(str(self._path), _foreign(self._path, foreign))
        if self.readonly:
            if "fastgrid_meta" not in tables:  # no store yet: an empty one, as a new one would be
                for statement in filter(None, (s.strip() for s in _SCHEMA.split(";"))):
                    conn.execute(statement.replace("CREATE TABLE", "CREATE TEMP TABLE"))
                return
            row = conn.execute("SELECT value FROM fastgrid_meta WHERE key = 'schema'").fetchone()
            self._check_schema(row)
            return
        use_wal(conn, self._path)
        with write_transaction(conn):
            for statement in filter(None, (s.strip() for s in _SCHEMA.split(";"))):
                conn.execute(statement)
            row = conn.execute("SELECT value FROM fastgrid_meta WHERE key = 'schema'").fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO fastgrid_meta (key, value) VALUES ('schema', ?)", (str(SCHEMA_VERSION),)
                )
            self._check_schema(row)

    def _check_schema(self, row: Any) -> None:
        if row is not None and row[0] != str(SCHEMA_VERSION):
            raise ValueError(
                f"{self._path}: fastgrid store schema version {row[0]}, this fastgrid reads "
                f"version {SCHEMA_VERSION}"
            )

    def _errors(self) -> contextlib.AbstractContextManager[None]:
        """SQLite's own errors as one StoreError naming the file and what to do (issue 12, item 6)."""
        return store_errors(self._path, readonly=self.readonly)

    def _retry(self, op: Callable[[], _T]) -> _T:
        with self._errors():
            return retry_busy(op)

    def read_logs(self, log_number_from: int) -> Iterable[dict[str, Any]]:
        with self._lock:
            conn = self._connection()
            rows = self._retry(
                lambda: conn.execute(
                    "SELECT body FROM journal WHERE log_number > ? ORDER BY log_number", (log_number_from,)
                ).fetchall()
            )
        return _decode([body for (body,) in rows])

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        if not logs:
            return
        dumps = self._dumps
        bodies = [(dumps(log),) for log in logs]
        with self._lock:
            conn = self._connection()

            def write() -> None:
                with write_transaction(conn):
                    # NULL primary key → max + 1, so numbers stay dense under concurrent writers.
                    conn.executemany("INSERT INTO journal (body) VALUES (?)", bodies)

            self._retry(write)
            self.appended += 1

    def encode(self, log: dict[str, Any]) -> str:
        """The JSON text a log is stored as (raises TypeError/ValueError if it is not JSON data)."""
        return self._dumps(log)

    def append_and_read(self, bodies: list[str], log_number_from: int) -> list[dict[str, Any]]:
        """Append encoded logs (see ``encode``); return every log from ``log_number_from`` on, in order.

        One transaction instead of an append followed by a read: JournalStorage reads back after
        every write, and this halves the statements per operation. Our own logs come back decoded
        from their JSON (not the dicts passed in) so this process sees exactly what others will.
        """
        rows_in = [(b,) for b in bodies]
        with self._lock:
            conn = self._connection()

            def write() -> list[tuple[str]]:
                with write_transaction(conn):
                    unread = conn.execute(
                        "SELECT body FROM journal WHERE log_number > ? ORDER BY log_number",
                        (log_number_from,),
                    ).fetchall()
                    if rows_in:
                        conn.executemany("INSERT INTO journal (body) VALUES (?)", rows_in)
                return unread

            unread = self._retry(write)
            if rows_in:
                self.appended += 1
        return _decode([body for (body,) in unread] + bodies)

    def data_version(self) -> int:
        """SQLite's ``PRAGMA data_version``: it changes whenever ANOTHER connection commits.

        Cheap (no table is read): a storage compares it, with :attr:`appended`, to what it saw
        before its last read, to know whether its replayed state may be out of date.
        """
        with self._lock:
            conn = self._connection()
            row = self._retry(lambda: conn.execute("PRAGMA data_version").fetchone())
        return int(row[0])

    def log_count(self) -> int:
        """How many log entries the file holds (committed ones only)."""
        with self._lock:
            conn = self._connection()
            row = self._retry(
                lambda: conn.execute("SELECT COALESCE(MAX(log_number), 0) FROM journal").fetchone()
            )
        return int(row[0])

    # BaseJournalSnapshot, for a plain Optuna JournalStorage over this file. It gets its own slot: its
    # snapshots carry no log number to order them by, and fastgrid's own snapshots (slot 0) pickle a
    # fastgrid class that a process without fastgrid could not load.
    def save_snapshot(self, snapshot: bytes) -> None:
        self.save_tagged_snapshot(snapshot, log_number=-1, tag="optuna", slot=1)

    def load_snapshot(self) -> bytes | None:
        found = self.load_tagged_snapshot(slot=1)
        return None if found is None else found[2]

    def save_tagged_snapshot(self, data: bytes, *, log_number: int, tag: str, slot: int = 0) -> None:
        """Store ``data`` unless the file already holds a snapshot that covers more of the log.

        Several processes snapshot the same file; without the guard a slow one could replace a newer
        snapshot with an older one (harmless for correctness, but resume would replay more).
        """
        with self._lock:
            conn = self._connection()

            def write() -> None:
                with write_transaction(conn):
                    conn.execute(
                        "INSERT INTO snapshot (slot, log_number, tag, data) VALUES (?, ?, ?, ?) "
                        "ON CONFLICT (slot) DO UPDATE SET log_number = excluded.log_number, "
                        "tag = excluded.tag, data = excluded.data "
                        "WHERE excluded.log_number >= snapshot.log_number OR excluded.log_number < 0",
                        (slot, log_number, tag, sqlite3.Binary(data)),
                    )

            self._retry(write)

    def load_tagged_snapshot(self, *, slot: int = 0) -> tuple[int, str, bytes] | None:
        """The stored snapshot as ``(log_number, tag, data)``, or None."""
        with self._lock:
            conn = self._connection()
            row = self._retry(
                lambda: conn.execute(
                    "SELECT log_number, tag, data FROM snapshot WHERE slot = ?", (slot,)
                ).fetchone()
            )
        if row is None:
            return None
        return int(row[0]), str(row[1]), bytes(row[2])

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None
