"""An Optuna journal backend on PostgreSQL: the log side of fastgrid's distributed store.

The log is one table of JSON texts numbered 1, 2, 3, ... with no gaps. ``fastgrid_append`` (a
server-side function, so an append is one round trip) writes one batch of entries with one multi-row
INSERT; a read is one indexed range scan of the rows after the last one the worker has replayed.

Why the numbering is safe for every reader (an identity column alone is not: two transactions may
take numbers 10 and 11 and commit 11 first, and a reader that then sees 11 moves past 10 for good):
each append takes a transaction-level advisory lock, so appends run one at a time, and numbers the
batch ``max(log_number) + 1, ...`` after taking it. PostgreSQL makes a committing transaction visible
to new snapshots *before* it releases its locks (``CommitTransaction``: ``ProcArrayEndTransaction``,
then the lock release), so the next appender, and any snapshot that sees its rows, also sees every
earlier batch. A reader's statement therefore always sees a prefix 1..k of the log. A rolled-back
append leaves no gap, since numbers are taken from the committed rows. The lock is an advisory lock
rather than ``LOCK TABLE``: every table lock mode that conflicts with itself also conflicts with the
SHARE UPDATE EXCLUSIVE lock autovacuum takes, so appends would stall behind a vacuum of the journal.

Each batch carries a client-generated id with a unique row in ``fastgrid_journal_batch``: when the
connection drops mid-append the client cannot know whether its COMMIT happened, so it reconnects and
sends the same batch again, and the function returns the batch's existing position instead of writing
it twice. Connection loss is retried for ``reconnect_timeout`` seconds (server restarts, failovers);
after that, and at once for a wrong password or a missing database, the error says what is wrong,
with the password masked.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from fastgrid.exceptions import StorageConnectionError
from fastgrid.storages.embedded import JournalLog

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "DEFAULT_RECONNECT_TIMEOUT",
    "SCHEMA_VERSION",
    "SCHEME",
    "PostgresJournalBackend",
    "PostgresTarget",
    "is_journal_url",
    "parse_url",
]

_T = TypeVar("_T")
_logger = logging.getLogger("fastgrid.postgres")

SCHEME = "fastgrid+postgresql"
# libpq (and Heroku-style URLs) also spell it postgres://; fastgrid takes both, as for postgresql://.
_SCHEMES = (SCHEME, "fastgrid+postgres")
# Bumped only if the tables or the append function change; tables of another version are refused.
SCHEMA_VERSION = 1
DEFAULT_RECONNECT_TIMEOUT = 60.0
_CONNECT_TIMEOUT = 10  # seconds, unless the URL sets connect_timeout
_READ_CHUNK = 20_000  # log rows per read statement: a late worker reads a long tail in a few round trips
_OUR_PARAMS = ("reconnect_timeout",)
# Serializes creating the tables (several workers may open a new database at once); taken only then.
_INIT_LOCK_KEY = 0x66617374_67726964  # b"fastgrid"

# Created in one transaction, so a database holds all of them or none. The advisory lock key of
# the appends is the journal table's OID under a fastgrid prefix, so two journals in two schemas of
# one database do not serialize each other; it is written into the function as a constant.
_TABLES = """
CREATE TABLE fastgrid_meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE fastgrid_journal (log_number bigint PRIMARY KEY, body text NOT NULL);
CREATE TABLE fastgrid_journal_batch (batch_id uuid PRIMARY KEY, first_log bigint NOT NULL);
CREATE TABLE fastgrid_snapshot (
    slot smallint PRIMARY KEY CHECK (slot IN (0, 1)),
    log_number bigint NOT NULL,
    tag text NOT NULL,
    data bytea NOT NULL
);
CREATE TABLE fastgrid_heartbeat (trial_id bigint PRIMARY KEY, beat timestamptz NOT NULL)
"""

_APPEND_FUNCTION = """
CREATE FUNCTION fastgrid_append(p_batch uuid, p_bodies text[], p_after bigint, p_max_rows integer)
RETURNS TABLE (o_first bigint, o_unread text, o_rows integer)
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $fn$
DECLARE
    v_first bigint;
BEGIN
    -- One appender at a time until COMMIT (see fastgrid/storages/postgres/_journal.py).
    PERFORM pg_advisory_xact_lock({lock_key});
    SELECT b.first_log INTO v_first FROM fastgrid_journal_batch AS b WHERE b.batch_id = p_batch;
    IF NOT FOUND THEN
        -- A new snapshot per statement (READ COMMITTED): this max sees every earlier append.
        SELECT COALESCE(max(j.log_number), 0) + 1 INTO v_first FROM fastgrid_journal AS j;
        INSERT INTO fastgrid_journal_batch (batch_id, first_log) VALUES (p_batch, v_first);
        INSERT INTO fastgrid_journal (log_number, body)
            SELECT v_first + u.i - 1, u.body FROM unnest(p_bodies) WITH ORDINALITY AS u (body, i);
    END IF;
    -- The entries between what the caller has replayed and its own batch, at most p_max_rows.
    RETURN QUERY
        SELECT v_first, string_agg(s.body, ',' ORDER BY s.log_number), count(*)::integer
        FROM (
            SELECT j.log_number, j.body FROM fastgrid_journal AS j
            WHERE j.log_number > p_after AND j.log_number < v_first
            ORDER BY j.log_number LIMIT p_max_rows
        ) AS s;
END
$fn$
"""

_READ = (
    "SELECT string_agg(s.body, ',' ORDER BY s.log_number), count(*)::integer FROM ("
    "SELECT log_number, body FROM fastgrid_journal WHERE log_number > %s AND log_number <= %s "
    "ORDER BY log_number LIMIT %s) AS s"
)

# Connection failures whose cause a retry cannot fix (by SQLSTATE, and by libpq's text at connect
# time, when no SQLSTATE is available).
_FATAL_STATES = {"28P01": "auth", "28000": "auth", "3D000": "database"}
_FATAL_TEXTS = {
    "password authentication failed": "auth",
    "no password supplied": "auth",
    "authentication failed": "auth",
    "no pg_hba.conf entry": "auth",
    "does not exist": "database",  # database "x" / role "x" does not exist
}
_HINTS = {
    "auth": "check the user and password (in the URL, PGPASSWORD or ~/.pgpass)",
    "database": "create it first (createdb / CREATE DATABASE / CREATE ROLE) or fix the URL",
    "unreachable": "is the server running and reachable at that host and port?",
}


@dataclass(frozen=True)
class PostgresTarget:
    """A parsed ``fastgrid+postgresql://`` URL.

    ``conninfo`` is what libpq connects with (the password included); ``display`` is the URL as
    shown in messages, with the password masked.
    """

    conninfo: str
    display: str
    password: str | None
    reconnect_timeout: float
    # The URL's application_name, if it sets one; else each connection names its worker's pid.
    application_name: str | None = None


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        return None
    return psycopg


def parse_url(url: str, *, display: str) -> PostgresTarget:
    """Parse ``fastgrid+postgresql://user:password@host:port/db?libpq-params&reconnect_timeout=S``.

    Everything after the scheme is a libpq connection URI (``sslmode``, ``options``, ``host`` for a
    socket directory, ...); ``reconnect_timeout`` is fastgrid's own. ``display`` is the URL with its
    password masked, for messages. Raises ValueError (one line, password masked) on a malformed URL
    or a missing driver.
    """
    psycopg = _psycopg()
    if psycopg is None:
        raise ValueError(
            f"storage {display!r}: the PostgreSQL driver psycopg is not installed; "
            "install it with: pip install 'fastgrid[postgres]'"
        )
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in _SCHEMES:
        raise ValueError(f"storage {display!r}: a fastgrid PostgreSQL URL starts with {SCHEME}://")
    head, _, query = rest.partition("?")
    kept: list[str] = []
    reconnect_timeout = DEFAULT_RECONNECT_TIMEOUT
    for pair in filter(None, query.split("&")):
        key, _, value = pair.partition("=")
        if key not in _OUR_PARAMS:
            kept.append(pair)  # left percent-encoded, exactly as libpq will read it
            continue
        try:
            reconnect_timeout = float(value)
        except ValueError:
            reconnect_timeout = -1.0
        if not 0 <= reconnect_timeout < float("inf"):
            raise ValueError(
                f"storage {display!r}: reconnect_timeout must be a number of seconds ≥ 0, got {value!r}"
            )
    uri = "postgresql://" + head + ("?" + "&".join(kept) if kept else "")
    try:
        params: dict[str, Any] = conninfo_to_dict(uri)
    except psycopg.Error as exc:
        password = _password_in(head)
        raise ValueError(f"storage {display!r}: {_one_line(exc, password)}") from None
    params.setdefault("connect_timeout", _CONNECT_TIMEOUT)
    # A server that vanishes without closing the socket (host down, network cut) is noticed within
    # ~30 s instead of when the OS gives up on the connection (hours).
    params.setdefault("keepalives", 1)
    params.setdefault("keepalives_idle", 15)
    params.setdefault("keepalives_interval", 5)
    params.setdefault("keepalives_count", 3)
    password = params.get("password")
    return PostgresTarget(
        conninfo=make_conninfo("", **params),
        display=display,
        password=str(password) if password else None,
        reconnect_timeout=reconnect_timeout,
        application_name=params.get("application_name"),
    )


def is_journal_url(url: str) -> bool:
    """Whether ``url`` names fastgrid's PostgreSQL journal (``fastgrid+postgresql://``, or
    ``fastgrid+postgres://``)."""
    scheme, sep, _ = url.partition("://")
    return bool(sep) and scheme.lower() in _SCHEMES


def _password_in(authority_and_path: str) -> str | None:
    userinfo = authority_and_path.rpartition("@")[0]
    return userinfo.partition(":")[2] or None if userinfo else None


def _one_line(error: BaseException | str, password: str | None) -> str:
    """A driver or server message on one line, without the password even if it was echoed.

    A server error is its primary message only: psycopg's text adds the statement's context.
    """
    diag = getattr(error, "diag", None)
    text = (getattr(diag, "message_primary", None) if diag is not None else None) or str(error)
    if password:
        text = text.replace(password, "***")
    text = text.replace("connection failed: ", "")
    return " ".join(text.split())


def _kind(exc: Exception) -> str | None:
    """``auth``/``database`` for failures no retry can fix, else None."""
    state = getattr(exc, "sqlstate", None)
    if state in _FATAL_STATES:
        return _FATAL_STATES[state]
    text = str(exc).lower()
    for needle, kind in _FATAL_TEXTS.items():
        if needle in text:
            return kind
    return None


def _unreachable_hint(exc: Exception) -> str | None:
    # libpq says it itself for a refused connection ("Is the server running on that host ...?").
    return None if "server running" in str(exc) else _HINTS["unreachable"]


def _starting_up(exc: Exception) -> bool:
    # 57P03 (cannot_connect_now): the server is starting, shutting down or in recovery.
    return getattr(exc, "sqlstate", None) == "57P03" or "the database system is" in str(exc).lower()


def _close_quietly(conn: Any, pid: int) -> None:
    if os.getpid() != pid:
        return  # the parent's connection, inherited through fork(): not ours to close
    try:
        conn.close()
    except Exception as exc:  # a broken socket may fail to close cleanly: it is gone anyway
        _logger.debug(f"closing a connection: {exc!r}")


def _decode(text: str | None, bodies: list[str] | None = None) -> list[dict[str, Any]]:
    # The server joins the rows' JSON texts with commas: one parse of one array per chunk.
    parts = [p for p in (text, ",".join(bodies) if bodies else None) if p]
    if not parts:
        return []
    logs: list[dict[str, Any]] = json.loads("[" + ",".join(parts) + "]")
    return logs


class RetryWindow:
    """The one retry loop of fastgrid's PostgreSQL connections (the journal backend and the
    :class:`PostgresSession` of the batch chunk store): an operation whose connection was lost is
    run again on a new connection for up to ``reconnect_timeout`` seconds; a wrong password or a
    missing database, and an error no retry helps with (a dropped table, a revoked privilege), is
    one ValueError line at once. After the window has run out once, later calls try once without
    waiting, so a worker that is shutting down after the error does not wait the window again for
    each statement it still has to send."""

    def __init__(self, target: PostgresTarget) -> None:
        self.target = target
        self.gave_up = False  # the last operation exhausted the reconnect window

    def message(self, exc: BaseException, hint: str | None = None) -> str:
        text = _one_line(exc, self.target.password)
        return f"storage {self.target.display!r}: {text}" + (f"; {hint}" if hint else "")

    def lost(self, error: BaseException) -> str:
        text = _one_line(error, self.target.password)
        return (
            f"storage {self.target.display!r}: lost the connection to the server and could not "
            f"reconnect within {self.target.reconnect_timeout:g} s ({text}); what was committed is "
            "kept: run again once the server is back"
        )

    def connect(self, *, autocommit: bool, first: bool) -> Any:
        """A new connection; ``first``: wait (up to the window) while the server says it is starting
        up, and report an unreachable one at once as a StorageConnectionError. Otherwise a lost
        server's error is raised as it is, for :meth:`run` to retry and word."""
        psycopg = _psycopg()
        start = time.monotonic()
        while True:
            try:
                # Named by pid so that pg_stat_activity tells the workers apart.
                name = self.target.application_name or f"fastgrid (pid {os.getpid()})"
                return psycopg.connect(self.target.conninfo, autocommit=autocommit, application_name=name)
            except psycopg.OperationalError as exc:
                kind = _kind(exc)
                if kind is not None:
                    raise ValueError(self.message(exc, _HINTS[kind])) from None
                if not first:
                    raise
                if not _starting_up(exc) or time.monotonic() - start > self.target.reconnect_timeout:
                    raise StorageConnectionError(self.message(exc, _unreachable_hint(exc))) from None
                time.sleep(0.5)

    def run(self, attempt: Callable[[bool], _T], drop: Callable[[], None], *, wait: bool = True) -> _T:
        """``attempt(first)`` (``first``: the first try of this call), and after a lost connection
        ``drop()`` and ``attempt(False)`` again until it succeeds or the window runs out; ``wait``
        False tries once (reconnecting once). The attempt must be safe to run twice: a commit whose
        reply was lost may have happened."""
        psycopg = _psycopg()
        deadline: float | None = None
        delay = 0.05
        while True:
            try:
                result = attempt(deadline is None)
            except psycopg.OperationalError as exc:
                kind = _kind(exc)
                if kind is not None:
                    raise ValueError(self.message(exc, _HINTS[kind])) from None
                error: Exception = exc
            except psycopg.ProgrammingError as exc:
                # fastgrid's tables or function dropped, or a privilege revoked: no retry helps.
                raise ValueError(self.message(exc)) from None
            else:
                if deadline is not None:
                    _logger.warning(f"storage {self.target.display!r}: reconnected")
                self.gave_up = False
                return result
            drop()
            now = time.monotonic()
            window = self.target.reconnect_timeout
            if deadline is None:
                if self.gave_up or not wait:
                    raise StorageConnectionError(self.lost(error)) from None
                deadline = now + window
                _logger.warning(
                    f"storage {self.target.display!r}: connection lost "
                    f"({_one_line(error, self.target.password)}); retrying for up to {window:g} s"
                )
            if now >= deadline:
                self.gave_up = True
                raise StorageConnectionError(self.lost(error)) from None
            time.sleep(min(delay * (1 + random.random()), max(deadline - now, 0.0)))
            delay = min(delay * 2, 2.0)


class PostgresJournalBackend(JournalLog):
    """Journal log, snapshots and heartbeats in PostgreSQL; safe for threads, processes and hosts.

    One connection per process (reopened after fork), in autocommit mode: every statement is its own
    transaction, and an append (lock, number, insert, read what came before) is one function call.
    """

    def __init__(self, target: PostgresTarget, *, readonly: bool = False) -> None:
        self._target = target
        # A reader (a report, an export's source) creates no tables and writes nothing.
        self.readonly = readonly
        # Log entries this process appended: data_version() subtracts them (see there).
        self.appended = 0
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None
        self._closer: weakref.finalize[..., PostgresJournalBackend] | None = None  # per connection
        self._pid = -1
        self._retries = RetryWindow(target)
        self._local = threading.local()  # .no_wait: this thread's operations try once
        self._dumps = json.JSONEncoder(ensure_ascii=True, separators=(",", ":")).encode
        with self._lock:
            self._open(first=True)

    @property
    def path(self) -> str:
        return self._target.display

    @property
    def target(self) -> PostgresTarget:
        return self._target

    # Connections cannot cross fork() and must not be pickled; each process opens its own.
    def __getstate__(self) -> dict[str, Any]:
        return {"_target": self._target, "readonly": self.readonly}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["_target"], readonly=state.get("readonly", False))  # type: ignore[misc]

    # -- connections ------------------------------------------------------------------------------
    def _open(self, *, first: bool = False) -> psycopg.Connection[Any]:
        """This process's connection, (re)connecting if needed; the tables are checked on the first."""
        if self._conn is not None and self._pid == os.getpid() and not self._conn.closed:
            return self._conn
        self._conn = None
        conn = self._retries.connect(autocommit=True, first=first)
        try:
            # Appends rely on each statement of fastgrid_append seeing what committed before it.
            conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED")
            if first:
                self._prepare(conn)
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        self._pid = os.getpid()
        # A dropped backend closes its connection (psycopg warns about one collected open). A
        # finalizer, not __del__: in a garbage cycle it runs before the connection's own __del__.
        self._closer = weakref.finalize(self, _close_quietly, conn, self._pid)
        self._closer.atexit = False  # at exit the process's end closes it, after the exit snapshot
        return conn

    def _window(self) -> float:
        return self._target.reconnect_timeout

    def _message(self, exc: BaseException, hint: str | None = None) -> str:
        return self._retries.message(exc, hint)

    def _prepare(self, conn: psycopg.Connection[Any]) -> None:
        """Create the tables in a new database, or check the version of existing ones."""
        psycopg = _psycopg()
        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_INIT_LOCK_KEY,))
                row = conn.execute("SELECT to_regclass('fastgrid_meta') IS NOT NULL").fetchone()
                if row is not None and row[0]:
                    found = conn.execute("SELECT value FROM fastgrid_meta WHERE key = 'schema'").fetchone()
                    version = None if found is None else found[0]
                    if version != str(SCHEMA_VERSION):
                        raise ValueError(
                            f"storage {self._target.display!r}: its fastgrid tables are of schema "
                            f"version {version}, this fastgrid reads version {SCHEMA_VERSION}; use "
                            "another database (or schema), or the fastgrid that wrote them"
                        )
                    return
                if self.readonly:
                    raise ValueError(
                        f"storage {self._target.display!r}: holds no fastgrid journal (no sweep has run "
                        "there); check the database and the search_path schema in the URL"
                    )
                for statement in filter(None, (s.strip() for s in _TABLES.split(";"))):
                    conn.execute(statement)
                oid = conn.execute("SELECT 'fastgrid_journal'::regclass::oid::bigint").fetchone()
                assert oid is not None
                key = (0x6667 << 32) | int(oid[0])  # b"fg" over the table's OID
                conn.execute(_APPEND_FUNCTION.format(lock_key=key))
                conn.execute(
                    "INSERT INTO fastgrid_meta (key, value) VALUES ('schema', %s)", (str(SCHEMA_VERSION),)
                )
        except psycopg.Error as exc:
            if isinstance(exc, psycopg.OperationalError) and _kind(exc) is None:
                raise StorageConnectionError(self._message(exc, _unreachable_hint(exc))) from None
            raise ValueError(self._message(exc, "cannot create or read fastgrid's tables")) from None

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and self._pid == os.getpid():
            if self._closer is not None:
                self._closer.detach()
            _close_quietly(conn, self._pid)

    def _run(self, op: Callable[[psycopg.Connection[Any]], _T]) -> _T:
        """Run ``op`` on this process's connection, reconnecting and retrying it while the server
        is unreachable (:class:`RetryWindow`). Call with ``self._lock`` held. ``op`` must be safe
        to run twice (appends are, by their batch id)."""
        return self._retries.run(
            lambda _first: op(self._open()), self._drop, wait=not getattr(self._local, "no_wait", False)
        )

    @contextlib.contextmanager
    def without_waiting(self) -> Iterator[None]:
        """Operations of this thread inside the block try once (reconnecting once), never waiting
        for the server: for optional work, such as the snapshot a worker leaves when it exits."""
        self._local.no_wait = True
        try:
            yield
        finally:
            self._local.no_wait = False

    # -- the log ----------------------------------------------------------------------------------
    def encode(self, log: dict[str, Any]) -> str:
        """The JSON text a log is stored as (ASCII: any server encoding takes it, NUL included)."""
        return self._dumps(log)

    def read_logs(self, log_number_from: int) -> list[dict[str, Any]]:
        with self._lock:
            return self._read(log_number_from, None)

    def _read(self, after: int, upto: int | None) -> list[dict[str, Any]]:
        """Entries numbered ``after + 1 .. upto`` (or to the end), in chunks; lock held."""
        last = (1 << 63) - 1 if upto is None else upto
        logs: list[dict[str, Any]] = []
        while after < last:
            args = (after, last, _READ_CHUNK)
            row = self._run(lambda conn, args=args: conn.execute(_READ, args).fetchone())  # type: ignore[misc]
            assert row is not None
            text, count = row
            logs.extend(_decode(text))
            after += count
            if count < _READ_CHUNK:
                break
        if upto is not None and after != upto:
            raise RuntimeError(f"{self.path}: journal rows {after + 1}..{upto} are missing")
        return logs

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        if logs:
            self._append([self._dumps(log) for log in logs], None)

    def append_and_read(self, bodies: list[str], log_number_from: int) -> list[dict[str, Any]]:
        """Append encoded logs (see ``encode``); return every log from ``log_number_from`` on, in order.

        One round trip in the usual case: the append function returns the entries written by others
        since this worker last read, and our own come back decoded from their JSON (not the dicts
        the caller holds) so this process sees exactly what the others will.
        """
        if not bodies:
            return self.read_logs(log_number_from)
        return self._append(bodies, log_number_from)

    def _append(self, bodies: list[str], after: int | None) -> list[dict[str, Any]]:
        if self.readonly:
            raise ValueError(f"storage {self._target.display!r}: opened read-only (a report), not written")
        batch = uuid.uuid4()  # one id for every attempt: a retried append is written once
        read_from = -1 if after is None else after
        with self._lock:
            row = self._run(
                lambda conn: conn.execute(
                    "SELECT o_first, o_unread, o_rows FROM fastgrid_append(%s, %s, %s, %s)",
                    (batch, bodies, read_from, _READ_CHUNK if after is not None else 0),
                ).fetchone()
            )
            assert row is not None
            first, text, count = row
            self.appended += len(bodies)  # counted once per batch, however many attempts it took
            if after is None:
                return []
            if after > first - 1:
                raise RuntimeError(f"{self.path}: read past our own batch at {first} (from {after})")
            unread = _decode(text)
            if after + count < first - 1:
                unread.extend(self._read(after + count, first - 1))
        return unread + _decode(None, bodies)

    def log_count(self) -> int:
        """How many log entries the journal holds (committed ones only)."""
        with self._lock:
            row = self._run(
                lambda conn: conn.execute(
                    "SELECT COALESCE(max(log_number), 0) FROM fastgrid_journal"
                ).fetchone()
            )
        assert row is not None
        return int(row[0])

    def data_version(self) -> int:
        """The number of log entries other processes appended (the log's length minus ours): it
        changes only when another process writes, as SQLite's ``PRAGMA data_version`` does."""
        return self.log_count() - self.appended

    # -- snapshots --------------------------------------------------------------------------------
    # BaseJournalSnapshot, for a plain Optuna JournalStorage over this backend: slot 1, as in the
    # SQLite backend (fastgrid's own snapshots, slot 0, are of a format Optuna cannot read).
    def save_snapshot(self, snapshot: bytes) -> None:
        self.save_tagged_snapshot(snapshot, log_number=-1, tag="optuna", slot=1)

    def load_snapshot(self) -> bytes | None:
        found = self.load_tagged_snapshot(slot=1)
        return None if found is None else found[2]

    def save_tagged_snapshot(self, data: bytes, *, log_number: int, tag: str, slot: int = 0) -> None:
        """Store ``data`` unless the journal already holds a snapshot that covers more of the log."""
        if self.readonly:
            return
        with self._lock:
            self._run(
                lambda conn: conn.execute(
                    "INSERT INTO fastgrid_snapshot AS s (slot, log_number, tag, data) "
                    "VALUES (%s, %s, %s, %b) "
                    "ON CONFLICT (slot) DO UPDATE SET log_number = excluded.log_number, "
                    "tag = excluded.tag, data = excluded.data "
                    "WHERE excluded.log_number >= s.log_number OR excluded.log_number < 0",
                    (slot, log_number, tag, data),
                )
            )

    def load_tagged_snapshot(self, *, slot: int = 0) -> tuple[int, str, bytes] | None:
        """The stored snapshot as ``(log_number, tag, data)``, or None."""
        with self._lock:
            row = self._run(
                lambda conn: (
                    conn.cursor(binary=True)
                    .execute("SELECT log_number, tag, data FROM fastgrid_snapshot WHERE slot = %s", (slot,))
                    .fetchone()
                )
            )
        if row is None:
            return None
        return int(row[0]), str(row[1]), bytes(row[2])

    def snapshot_position(self, *, slot: int = 0) -> tuple[int, str] | None:
        """``(log_number, tag)`` of the stored snapshot, without its data (to decide whether to write one)."""
        with self._lock:
            row = self._run(
                lambda conn: conn.execute(
                    "SELECT log_number, tag FROM fastgrid_snapshot WHERE slot = %s", (slot,)
                ).fetchone()
            )
        return None if row is None else (int(row[0]), str(row[1]))

    # -- heartbeats -------------------------------------------------------------------------------
    # Kept out of the log (each beat would be replayed by every worker forever) and timed by the
    # server's clock, so workers on hosts whose clocks disagree still judge staleness alike.
    def beat(self, trial_id: int) -> None:
        with self._lock:
            self._run(
                lambda conn: conn.execute(
                    "INSERT INTO fastgrid_heartbeat (trial_id, beat) VALUES (%s, now()) "
                    "ON CONFLICT (trial_id) DO UPDATE SET beat = excluded.beat",
                    (trial_id,),
                )
            )

    def stale(self, trial_ids: list[int], grace: float) -> list[int]:
        """Those of ``trial_ids`` (running trials) with no beat for ``grace`` seconds.

        A trial with no beat yet is timed from the first time a worker asks about it (the insert
        below), so a worker killed before its first beat still has its trial failed; and no trial is
        stale within ``grace`` of the server starting, since no worker could beat while it was down.
        """
        if not trial_ids:
            return []
        with self._lock:
            rows = self._run(
                lambda conn: conn.execute(
                    "WITH seen AS (INSERT INTO fastgrid_heartbeat (trial_id, beat) "
                    "SELECT unnest(%s::bigint[]), now() ON CONFLICT (trial_id) DO NOTHING) "
                    "SELECT trial_id FROM fastgrid_heartbeat WHERE trial_id = ANY(%s::bigint[]) "
                    "AND greatest(beat, pg_postmaster_start_time()) < now() - make_interval(secs => %s)",
                    (trial_ids, trial_ids, grace),
                ).fetchall()
            )
        return sorted(int(r[0]) for r in rows)

    def close(self) -> None:
        with self._lock:
            self._drop()
