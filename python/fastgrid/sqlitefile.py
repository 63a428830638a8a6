"""How fastgrid opens and writes its SQLite files: one home for the rules both users of ``fastgrid.db``
follow (the embedded store's journal, ``fastgrid.storages.embedded``, and the batch sweeps' chunk
store, ``fastgrid.batch``), which open the same file from several processes at once.

- :func:`open_file`: a store file opened to write (created, or only reopened), or to read only
  (nothing created or written, also in a read-only folder).
- :func:`connect`: autocommit (writers issue ``BEGIN IMMEDIATE`` themselves, see
  :func:`write_transaction`), usable from any thread, SQLite's busy handler set to
  :data:`BUSY_TIMEOUT_S`.
- :func:`use_wal`: WAL journal with ``synchronous=NORMAL``, or a :class:`StoreError` if the file
  system refuses WAL; two processes creating the file at once do not deadlock (see there).
- :func:`retry_busy`: SQLite reports "database is locked" even with a busy handler: where waiting
  could deadlock, after the WAL switch's short wait, and for WAL readers while a checkpoint resets
  the log (https://sqlite.org/wal.html#sometimes_queries_return_sqlite_busy_in_wal_mode). Such an
  operation failed as a whole and is retried with jittered backoff.
- :func:`store_errors`: SQLite's own errors as one :class:`StoreError` line naming the file and
  what to do, never a traceback.
"""

from __future__ import annotations

import contextlib
import random
import sqlite3
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from fastgrid.exceptions import StoreError

__all__ = [
    "BUSY_TIMEOUT_S",
    "connect",
    "describe",
    "is_busy",
    "open_file",
    "retry_busy",
    "store_errors",
    "use_wal",
    "write_transaction",
]

_T = TypeVar("_T")

# How long SQLite's busy handler waits for a lock before a statement fails "database is locked".
BUSY_TIMEOUT_S = 60.0
# How long the switch to WAL waits for another connection's lock before it lets go (see use_wal).
_SWITCH_WAIT_MS = 100
# Retries of an operation that failed busy anyway (see retry_busy): backoff 1 ms doubling to 0.5 s.
_RETRIES = 20


def connect(target: str | Path, *, uri: bool = False) -> sqlite3.Connection:
    """A connection to ``target`` (a path, or a ``file:`` URI with ``uri=True``).

    isolation_level=None: writers issue BEGIN IMMEDIATE themselves, so a writer takes the write lock
    up front instead of upgrading a read lock mid-transaction (the classic SQLITE_BUSY deadlock).
    """
    conn = sqlite3.connect(
        target, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False, uri=uri
    )
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    except BaseException:
        conn.close()
        raise
    return conn


def use_wal(conn: sqlite3.Connection, path: str | Path) -> None:
    """Puts the file in WAL mode with ``synchronous=NORMAL`` (call it inside :func:`retry_busy`).

    WAL is what lets several processes read while one writes; NORMAL survives any crash of a process
    (the WAL is written before a commit returns) and costs no fsync per commit. A file system that
    cannot do WAL (shared memory beside the file: network file systems) is refused in one line.

    The switch (once per file: the mode is stored in it) needs the exclusive lock while holding a
    read lock. Two processes creating the file at once each hold a read lock and wait for the
    other's to go: with the full busy timeout both waited a minute and then one failed (two
    ``fastgrid worker`` started together). Here the switch waits briefly, fails busy, lets go of its
    read lock, and :func:`retry_busy` tries again after a jittered pause that breaks the tie.
    """
    mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    if str(mode).lower() != "wal":
        conn.execute(f"PRAGMA busy_timeout = {_SWITCH_WAIT_MS}")
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        finally:
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    if str(mode).lower() != "wal":
        raise StoreError(str(path), f"SQLite refused WAL mode (got {mode!r}); is it on a network filesystem?")
    conn.execute("PRAGMA synchronous = NORMAL")


def open_file(
    path: Path, prepare: Callable[[sqlite3.Connection], None], *, readonly: bool = False, create: bool = True
) -> sqlite3.Connection:
    """A connection to the store file ``path``, after ``prepare(conn)`` ran on it (in
    :func:`retry_busy`; it checks the file and, when writing, sets WAL and creates the tables).

    - writing, ``create``: the file and its folder are made if missing;
    - writing, not ``create`` (a process reconnecting after fork or close): the file must still be
      there; a store deleted or moved meanwhile is an error, never silently a new empty one;
    - ``readonly``: nothing is created or written; a missing file is an empty in-memory database
      (``prepare`` sees no tables); a file in a read-only folder whose log was checkpointed (no
      ``-wal`` beside it) is read as immutable, since SQLite cannot make its shared-memory index there.

    SQLite's errors come out as one :class:`StoreError` naming ``path`` (:func:`store_errors`).
    """
    uri = True
    if readonly:
        if not path.exists():
            target: str | Path = ":memory:"
            uri = False
        else:
            target = "file:" + urllib.parse.quote(str(path.resolve())) + "?mode=ro"
    elif create:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(str(path), f"cannot create its folder ({exc.strerror or exc})") from None
        target, uri = path, False
    else:
        if not path.exists():
            raise StoreError(str(path), "the store was deleted or moved while in use")
        target = "file:" + urllib.parse.quote(str(path.resolve())) + "?mode=rw"
    with store_errors(path, readonly=readonly):
        conn = connect(target, uri=uri)
        try:
            retry_busy(lambda: prepare(conn))
        except sqlite3.OperationalError as exc:
            conn.close()
            wal = Path(f"{path}-wal")
            if not (readonly and uri and "unable to open" in str(exc)) or (
                wal.exists() and wal.stat().st_size > 0
            ):
                raise
            # With a -wal file, immutable would skip its commits: not then.
            conn = connect(f"{target}&immutable=1", uri=True)
            try:
                retry_busy(lambda: prepare(conn))
            except BaseException:
                conn.close()
                raise
        except BaseException:
            conn.close()
            raise
    return conn


@contextlib.contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """One ``BEGIN IMMEDIATE`` transaction: the write lock is taken up front (so a busy database
    fails at BEGIN, where :func:`retry_busy` can wait, not at COMMIT); rolled back on any exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def is_busy(exc: sqlite3.OperationalError) -> bool:
    """Whether SQLite failed only because another connection held a lock (worth retrying)."""
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def retry_busy(op: Callable[[], _T]) -> _T:
    """``op()``, retried with jittered backoff while SQLite reports the database busy or locked.

    ``op`` must be safe to run again after such a failure: a statement or a whole transaction that
    was rolled back (what :func:`write_transaction` does), or a connection's setup.
    """
    delay = 0.001
    for attempt in range(_RETRIES):
        try:
            return op()
        except sqlite3.OperationalError as exc:
            if not is_busy(exc) or attempt == _RETRIES - 1:
                raise
            time.sleep(delay * (1 + random.random()))
            delay = min(delay * 2, 0.5)
    raise AssertionError("unreachable")


# SQLite's message (lowercased) → what it means for a store, and what to do.
_SQLITE_PROBLEMS = (
    (
        "file is not a database",
        "not a fastgrid store: the file is not an SQLite database (or its header is damaged)",
    ),
    (
        "malformed",
        "the store is damaged (SQLite: database disk image is malformed); move it away and run again",
    ),
    ("disk is full", "the disk is full; free some space and run again (what was recorded is kept)"),
    ("disk i/o error", "a disk I/O error (SQLite); check the disk, then run again"),
    ("readonly", "cannot write the store: the file or its folder is read-only"),
    (
        "unable to open",
        "cannot open the store: its folder is missing or not writable, or the file is not readable",
    ),
    (
        "locked",
        "the store stayed locked by another process for too long; is a process stuck holding it?",
    ),
)


def describe(exc: sqlite3.DatabaseError, *, readonly: bool = False) -> str:
    """What SQLite's error means for a store opened for writing (or for reading: ``readonly``)."""
    text = str(exc).lower()
    for needle, reason in _SQLITE_PROBLEMS:
        if needle in text:
            if needle == "unable to open" and readonly:
                return "cannot open the store for reading (is the file readable?)"
            return reason
    return f"SQLite error: {exc}"


@contextlib.contextmanager
def store_errors(path: str | Path, *, readonly: bool = False) -> Iterator[None]:
    """SQLite's own errors inside the block as one :class:`StoreError` naming ``path`` and what to do."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        raise StoreError(str(path), describe(exc, readonly=readonly)) from None
