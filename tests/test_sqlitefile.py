"""Opening fastgrid.db from several processes at once (fastgrid.sqlitefile).

Two `fastgrid worker` started together once crashed with ``sqlite3.OperationalError: database is
locked`` at the switch of the new file to WAL: each process held a read lock and waited for the
other's, a minute, until one gave up. The switch now waits briefly, lets go and retries.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from fastgrid.batch import BatchStore
from fastgrid.exceptions import StoreError
from fastgrid.sqlitefile import connect, retry_busy, store_errors, use_wal
from fastgrid.storages.embedded import SQLiteJournalBackend


def _hold_read_lock(path: Path) -> sqlite3.Connection:
    """A connection in the middle of a read of a new (rollback-mode) file."""
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("CREATE TABLE IF NOT EXISTS fastgrid_probe (a)")  # fastgrid's own name: not refused
    other.execute("BEGIN")
    other.execute("SELECT count(*) FROM fastgrid_probe").fetchall()
    return other


@pytest.mark.parametrize("opener", [BatchStore, SQLiteJournalBackend], ids=["chunk-store", "journal"])
def test_a_store_opens_as_soon_as_a_reader_of_the_new_file_lets_go(tmp_path: Path, opener: Any) -> None:
    path = tmp_path / "fastgrid.db"
    other = _hold_read_lock(path)
    released = threading.Timer(0.3, lambda: other.execute("COMMIT"))
    released.start()
    try:
        store = opener(path)
    finally:
        released.join()
    assert store._connection().execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.close()
    other.close()


@pytest.mark.timeout(45)  # the busy handler alone waited 60 s here before it failed
def test_a_reader_that_never_lets_go_is_one_line_naming_the_file_not_a_long_hang(tmp_path: Path) -> None:
    path = tmp_path / "fastgrid.db"
    other = _hold_read_lock(path)
    with pytest.raises(StoreError) as raised:
        BatchStore(path)
    assert str(raised.value) == f"{path}: " + (
        "the store stayed locked by another process for too long; is a process stuck holding it?"
    )
    other.execute("COMMIT")
    other.close()


def _open_at_once(path: str, start: Any, done: Any) -> None:
    start.wait()
    try:
        SQLiteJournalBackend(path).close()
        BatchStore(path).close()
        done.put("ok")
    except BaseException as exc:  # reported to the test
        done.put(f"{type(exc).__name__}: {exc}")


@pytest.mark.timeout(120)
def test_processes_creating_the_store_at_the_same_moment_all_open_it(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    for round_ in range(4):
        path = tmp_path / f"r{round_}" / "fastgrid.db"
        start, done = ctx.Event(), ctx.Queue()
        procs = [ctx.Process(target=_open_at_once, args=(str(path), start, done)) for _ in range(4)]
        for p in procs:
            p.start()
        start.set()
        outcomes = [done.get(timeout=100) for _ in procs]
        for p in procs:
            p.join()
        assert outcomes == ["ok"] * len(procs)


def test_retry_busy_retries_only_a_busy_database() -> None:
    calls: list[int] = []

    def locked_twice() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise sqlite3.OperationalError("database is locked")
        return "done"

    assert retry_busy(locked_twice) == "done"
    assert len(calls) == 3

    def broken() -> None:
        calls.append(1)
        raise sqlite3.OperationalError("no such table: t")

    calls.clear()
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        retry_busy(broken)
    assert len(calls) == 1


def test_sqlite_errors_become_one_line_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    path.write_bytes(b"this is not an SQLite database, just text " * 100)
    with pytest.raises(StoreError) as raised, store_errors(path):
        conn = connect(path)
        use_wal(conn, path)
    assert str(raised.value).startswith(f"{path}: not a fastgrid store")
