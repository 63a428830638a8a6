"""The columnar results store of batch sweeps: chunks of rows, in SQLite or (``_pgstore``) PostgreSQL.

:class:`ChunkStore` holds the logic both share (registering a sweep, claims, heartbeats, recording a
chunk, reads); a subclass gives the dialect: connection, write transaction, placeholders, the clock,
row locks and the bulk column write. Four tables beside the sweep's Optuna study (the embedded
store's ``fastgrid.db``, or the PostgreSQL database):

- ``fastgrid_batch_sweeps``: one row per batch sweep: grid size, chunk size, the next chunk never
  claimed, the grid's fingerprint and what the columns mean (paths, constants, metrics);
- ``fastgrid_batch_chunks``: one row per claimed chunk: its slot range, ``claimed`` or ``done``, the
  claiming worker and its last heartbeat, counts and timing;
- ``fastgrid_batch_columns``: one BLOB per (chunk, column): parameter, metric, ``feasible``,
  ``status``, ``reason`` and ``duration`` columns of the chunk's rows (see ``_codec``);
- ``fastgrid_batch_leaders``: which worker writes which top-K point to the Optuna study;
- ``fastgrid_batch_runs``: the runs of a sweep in progress (``run_batch`` calls: a ``fastgrid run``
  or ``fastgrid worker``), each with a heartbeat, from registering the sweep to their end: a run
  is live for its whole duration (between chunks too), so ``--fresh`` never deletes under it.

A chunk's columns and its ``done`` mark are written in one transaction, by the worker that holds
the claim (checked inside that transaction), so a chunk is recorded exactly once and a kill -9
loses only the chunks in flight. Why SQLite BLOBs rather than a table row per point or Parquet
files: measured in docs/batch.md (a row per point costs ~2 µs to insert from Python, so a million
points would take seconds; a BLOB per column costs a memcpy, needs no new dependency and commits
atomically with the claim bookkeeping).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from fastgrid.batch._codec import decode, encode
from fastgrid.exceptions import StoreMismatchError, SweepDeletedError
from fastgrid.sqlitefile import (
    BUSY_TIMEOUT_S,
    connect,
    open_file,
    retry_busy,
    store_errors,
    use_wal,
    write_transaction,
)

__all__ = ["LEADER_LEASE_S", "BatchStore", "Chunk", "ChunkStore", "owner_dead", "owner_id"]

_T = TypeVar("_T")

# One schema for both dialects: {int} is a 64-bit integer, {float} a double, {blob} bytes.
SCHEMA = """
CREATE TABLE IF NOT EXISTS fastgrid_batch_sweeps (
    name TEXT PRIMARY KEY,
    total {int} NOT NULL,
    chunk {int} NOT NULL,
    next_chunk {int} NOT NULL DEFAULT 0,
    space TEXT NOT NULL,
    meta TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS fastgrid_batch_chunks (
    sweep TEXT NOT NULL,
    chunk {int} NOT NULL,
    start {int} NOT NULL,
    stop {int} NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('claimed', 'done')),
    owner TEXT,
    beat {float},
    claims INTEGER NOT NULL DEFAULT 1,
    failed {int} NOT NULL DEFAULT 0,
    infeasible {int} NOT NULL DEFAULT 0,
    duration {float},
    info TEXT,
    PRIMARY KEY (sweep, chunk)
);
CREATE TABLE IF NOT EXISTS fastgrid_batch_columns (
    sweep TEXT NOT NULL,
    name TEXT NOT NULL,
    chunk {int} NOT NULL,
    data {blob} NOT NULL,
    PRIMARY KEY (sweep, name, chunk)
);
CREATE TABLE IF NOT EXISTS fastgrid_batch_leaders (
    sweep TEXT NOT NULL,
    slot {int} NOT NULL,
    owner TEXT NOT NULL,
    since {float} NOT NULL,
    PRIMARY KEY (sweep, slot)
);
CREATE TABLE IF NOT EXISTS fastgrid_batch_runs (
    sweep TEXT NOT NULL,
    owner TEXT NOT NULL,
    started {float} NOT NULL,
    beat {float} NOT NULL,
    PRIMARY KEY (sweep, owner)
)
"""


def schema_statements(*, int_type: str, float_type: str, blob_type: str) -> list[str]:
    """The CREATE TABLE statements of the store in one dialect's types."""
    text = SCHEMA.format(int=int_type, float=float_type, blob=blob_type)
    return [s.strip() for s in text.split(";") if s.strip()]


# A worker that took slots to write as Optuna trials and stopped beating gives them up after this.
LEADER_LEASE_S = 120.0
# The holder of a top-K slot already written to the study (never a worker: no host, no pid).
WRITTEN = "written"

# A checkpoint copies the WAL into the database file and fsyncs both. Inside a commit (SQLite's
# autocheckpoint, every 4 MB) it put an fsync on every chunk's clock: two thirds of the time spent
# writing columns, measured on this machine (issue 13). The writer turns autocheckpoints off and a
# thread with its own connection checkpoints after every _CHECKPOINT_BYTES written, beside the work.
_CHECKPOINT_BYTES = 32 << 20


# Connections a forked child inherited: never closed by the child (see BatchStore._connection).
_INHERITED: list[Any] = []
_CHUNK_KEYS = (
    "chunk",
    "start",
    "stop",
    "state",
    "owner",
    "beat",
    "claims",
    "failed",
    "infeasible",
    "duration",
)


class _Checkpointer:
    """A thread that runs a passive WAL checkpoint of ``path`` each time it is kicked."""

    def __init__(self, path: Path) -> None:
        self.pid = os.getpid()
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(
            target=self._run, args=(path,), name="fastgrid-batch-checkpoint", daemon=True
        )
        self._thread.start()

    def kick(self) -> None:
        self._wake.set()

    def _run(self, path: Path) -> None:
        try:
            conn = connect(path)
        except sqlite3.Error:  # the work goes on without checkpoints; SQLite's next open does one
            return
        try:
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._stopping:
                    return
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        finally:
            conn.close()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout=BUSY_TIMEOUT_S)


def owner_id() -> str:
    """Who holds a claim: host and pid (a dead pid on this host frees its claims at once) and a nonce."""
    return f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"


def owner_dead(owner: str | None, host: str) -> bool:
    """Whether the worker ``owner`` (``host/pid/nonce``) is known dead: on this host, its pid is gone."""
    if not owner:
        return True
    parts = owner.split("/")
    if len(parts) != 3 or parts[0] != host:
        return False  # another machine: only its heartbeat can tell
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, ValueError):
        return False
    # A runner killed by kill -9 stays a zombie until its parent reaps it: dead, though kill(0) works.
    try:
        with open(f"/proc/{int(parts[1])}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


@dataclass(frozen=True)
class Chunk:
    """A claimed chunk: rows ``start..stop`` of the sweep's (possibly shuffled) grid order."""

    index: int
    start: int
    stop: int
    claims: int

    def __len__(self) -> int:
        return self.stop - self.start

    @property
    def label(self) -> str:
        return f"chunk {self.index} (slots {self.start}..{self.stop - 1})"


class ChunkStore:
    """Batch sweeps' chunks and columns: the logic every dialect shares.

    A subclass gives ``_transact(op)`` (``op(conn)`` in one write transaction, rows locked by
    ``_LOCK_ROW``), ``_read(sql, args)``, ``_exec(conn, sql, args)`` (SQL written with ``?``
    placeholders), ``_put_columns`` (a chunk's column blobs in bulk), ``_NOW`` (an SQL expression
    of the clock in epoch seconds) and ``label`` (how messages name the store).
    """

    # SQL suffixes that lock the rows a write transaction reads (nothing where the transaction
    # already holds the database, as SQLite's BEGIN IMMEDIATE does).
    _LOCK_ROW = ""
    _SKIP_LOCKED = ""
    _NOW = ""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._host = socket.gethostname()

    # --- the dialect ------------------------------------------------------------------------

    @property
    def label(self) -> str:
        raise NotImplementedError

    def _transact(self, op: Callable[[Any], _T]) -> _T:
        raise NotImplementedError

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        raise NotImplementedError

    def _exec(self, conn: Any, sql: str, args: Sequence[Any] = ()) -> Any:
        raise NotImplementedError

    def _put_columns(self, conn: Any, rows: list[tuple[str, str, int, bytes]]) -> None:
        raise NotImplementedError

    def _in_list(self, values: Sequence[int]) -> tuple[str, list[Any]]:
        """An SQL ``IN``-like test of ``values`` and its arguments."""
        return f"IN ({','.join('?' * len(values))})", list(values)

    def _written(self, size: int) -> None:
        """``size`` bytes of columns were committed (SQLite checkpoints its WAL by this)."""

    def close(self) -> None:
        raise NotImplementedError

    def stop_checkpoints(self) -> None:
        """Stops the store's background work before a worker ends (a fork must not see it)."""

    # --- sweeps -------------------------------------------------------------------------------

    def sweep(self, name: str) -> dict[str, Any] | None:
        """The stored sweep: ``total``, ``chunk``, ``next_chunk``, ``space`` and ``meta`` (dicts)."""
        rows = self._read(
            "SELECT total, chunk, next_chunk, space, meta FROM fastgrid_batch_sweeps WHERE name = ?", (name,)
        )
        if not rows:
            return None
        total, chunk, next_chunk, space, meta = rows[0]
        return {
            "total": int(total),
            "chunk": int(chunk),
            "next_chunk": int(next_chunk),
            "space": json.loads(space),
            "meta": json.loads(meta),
        }

    def sweeps(self) -> list[str]:
        return [r[0] for r in self._read("SELECT name FROM fastgrid_batch_sweeps ORDER BY name")]

    def register(
        self,
        name: str,
        *,
        total: int,
        chunk: int,
        space: Mapping[str, Any],
        meta: Mapping[str, Any],
        run: str | None = None,
    ) -> dict[str, Any]:
        """Records the sweep, or checks that the stored one has the same grid and chunk size, and
        (``run``: an ``owner_id``) registers that run of it in the same transaction, so no
        ``--fresh`` can delete the sweep between the two (``leave`` ends the registration).

        Returns the stored sweep (see ``sweep``) with ``new``: whether this call recorded it.
        Raises StoreMismatchError naming what differs (the caller decides about ``--fresh``).
        """
        space_text = json.dumps(space, sort_keys=True)

        def op(conn: Any) -> bool:
            inserted = self._exec(
                conn,
                "INSERT INTO fastgrid_batch_sweeps (name, total, chunk, space, meta) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (name) DO NOTHING",
                (name, total, chunk, space_text, json.dumps(meta)),
            ).rowcount
            row = self._exec(
                conn,
                f"SELECT chunk, space FROM fastgrid_batch_sweeps WHERE name = ?{self._LOCK_ROW}",
                (name,),
            ).fetchone()
            stored_space = json.loads(row[1])
            if stored_space != json.loads(space_text):
                changed = sorted(k for k in {*stored_space, *space} if stored_space.get(k) != space.get(k))
                raise StoreMismatchError(
                    f"batch sweep {name!r} in {self.label} was started with a different "
                    f"{', '.join(changed)}; use another sweep name, or fresh=True (--fresh) to delete "
                    "its stored results"
                )
            if int(row[0]) != chunk:
                raise StoreMismatchError(
                    f"batch sweep {name!r} in {self.label} was started with chunk = {row[0]}, this run "
                    f"asks for {chunk}; chunk boundaries cannot change mid-sweep (leave chunk unset to "
                    "continue, or use fresh=True / --fresh)"
                )
            self._exec(
                conn, "UPDATE fastgrid_batch_sweeps SET meta = ? WHERE name = ?", (json.dumps(meta), name)
            )
            if run is not None:
                self._exec(
                    conn,
                    "INSERT INTO fastgrid_batch_runs (sweep, owner, started, beat) "
                    f"VALUES (?, ?, {self._NOW}, {self._NOW}) "
                    "ON CONFLICT (sweep, owner) DO UPDATE SET beat = excluded.beat",
                    (name, run),
                )
            return bool(inserted == 1)

        new = self._transact(op)
        stored = self.sweep(name)
        assert stored is not None
        return {**stored, "new": new}

    def update_meta(self, name: str, meta: Mapping[str, Any]) -> None:
        self._transact(
            lambda conn: self._exec(
                conn, "UPDATE fastgrid_batch_sweeps SET meta = ? WHERE name = ?", (json.dumps(meta), name)
            )
        )

    def delete(self, name: str) -> None:
        """Removes the sweep and every chunk and column of it (and its runs' registrations)."""
        self._transact(lambda conn: self._delete(conn, name))

    def _delete(self, conn: Any, name: str) -> None:
        for table, key in (
            ("fastgrid_batch_runs", "sweep"),
            ("fastgrid_batch_leaders", "sweep"),
            ("fastgrid_batch_columns", "sweep"),
            ("fastgrid_batch_chunks", "sweep"),
            ("fastgrid_batch_sweeps", "name"),
        ):
            self._exec(conn, f"DELETE FROM {table} WHERE {key} = ?", (name,))

    def delete_unless_live(self, name: str, *, grace: float) -> list[dict[str, Any]]:
        """What ``--fresh`` does: deletes the sweep (as ``delete``) unless a run of it is live (see
        ``live_runs``); returns those runs, deleting nothing, when there are. One transaction on
        the sweep's locked row, so no run registers itself between the check and the delete."""

        def op(conn: Any) -> list[dict[str, Any]]:
            if self._exec(
                conn, f"SELECT name FROM fastgrid_batch_sweeps WHERE name = ?{self._LOCK_ROW}", (name,)
            ).fetchone():
                live = self._live(conn, name, grace)
                if live:
                    return live
            self._delete(conn, name)
            return []

        return self._transact(op)

    # --- claims -------------------------------------------------------------------------------

    def _stale(self, holder: str | None, beat: float | None, now: float, grace: float) -> bool:
        """Whether a claim's worker is gone: its heartbeat is older than ``grace`` seconds by the
        store's clock, or (this host) its process is dead. ``claim`` takes such a chunk over."""
        return (beat is not None and float(beat) < now - grace) or owner_dead(holder, self._host)

    def live_runs(self, name: str, *, grace: float) -> list[dict[str, Any]]:
        """Who runs sweep ``name`` now: its registered runs that are not stale (the rule ``claim``
        applies to a chunk's worker), else (an older fastgrid registers no run) the workers of its
        live claims. Each: ``owner``, ``host``, ``pid``, ``age`` (seconds since its heartbeat, by
        the store's clock) and, for a claim, ``chunk``."""
        return self._transact(lambda conn: self._live(conn, name, grace))

    def _live(self, conn: Any, name: str, grace: float) -> list[dict[str, Any]]:
        def who(holder: str, beat: Any, now: Any) -> dict[str, Any]:
            host, pid, _ = [*holder.split("/", 2), "", ""][:3]
            return {"owner": holder, "host": host, "pid": pid, "age": float(now) - float(beat or now)}

        runs = [
            who(holder, beat, now)
            for holder, beat, now in self._exec(
                conn,
                f"SELECT owner, beat, {self._NOW} FROM fastgrid_batch_runs WHERE sweep = ? ORDER BY started",
                (name,),
            ).fetchall()
            if not self._stale(holder, beat, float(now), grace)
        ]
        if runs:
            return runs
        return [
            {**who(holder, beat, now), "chunk": int(chunk)}
            for chunk, holder, beat, now in self._exec(
                conn,
                f"SELECT chunk, owner, beat, {self._NOW} FROM fastgrid_batch_chunks "
                "WHERE sweep = ? AND state = 'claimed' ORDER BY chunk",
                (name,),
            ).fetchall()
            if holder and not self._stale(holder, beat, float(now), grace)
        ]

    def _deleted(self, name: str, *, registration: bool = False) -> SweepDeletedError:
        """The error of a run whose sweep (or, ``registration``, whose run's registration) is gone."""
        if registration:
            return SweepDeletedError(
                f"batch sweep {name!r}: this run's registration in {self.label} was removed (its "
                "heartbeat had stopped for longer than grace_period, so another process took the sweep "
                "as unused, and may have deleted it with --fresh); this run stopped and wrote nothing "
                "more. Run it again to continue or start over"
            )
        return SweepDeletedError(
            f"no batch sweep named {name!r} in {self.label}: it was deleted while this run was running "
            "it (by --fresh of another process or an older fastgrid, or by hand); this run stopped and "
            "wrote nothing more. Run it again to start over"
        )

    def _check_run(self, conn: Any, name: str, run: str | None) -> None:
        """Raises SweepDeletedError when the run ``run`` (None: none to check) is no longer
        registered: its sweep was deleted, or taken as unused, under it."""
        if (
            run is not None
            and not self._exec(
                conn, "SELECT 1 FROM fastgrid_batch_runs WHERE sweep = ? AND owner = ?", (name, run)
            ).fetchone()
        ):
            raise self._deleted(name, registration=True)

    def claim(
        self, name: str, owner: str, *, grace: float, limit: int | None = None, run: str | None = None
    ) -> Chunk | None:
        """The next chunk for ``owner``: a stale claim (its worker stopped beating or died on this
        host) first, then the next never-claimed chunk (only one starting below slot ``limit``,
        when given). None when every chunk is done or held. Claims serialize on the sweep's row.
        Raises SweepDeletedError when the sweep is gone, or the run ``owner`` works for (``run``)
        is no longer registered."""

        def op(conn: Any) -> Chunk | None:
            sweep = self._exec(
                conn,
                f"SELECT total, chunk, next_chunk, {self._NOW} FROM fastgrid_batch_sweeps "
                f"WHERE name = ?{self._LOCK_ROW}",
                (name,),
            ).fetchone()
            if sweep is None:
                raise self._deleted(name)
            self._check_run(conn, name, run)
            total, size, index, now = int(sweep[0]), int(sweep[1]), int(sweep[2]), float(sweep[3])
            for chunk, start, stop, claims, holder, beat in self._exec(
                conn,
                "SELECT chunk, start, stop, claims, owner, beat FROM fastgrid_batch_chunks "
                "WHERE sweep = ? AND state = 'claimed' ORDER BY chunk",
                (name,),
            ).fetchall():
                if holder == owner:
                    continue
                if self._stale(holder, beat, now, grace):
                    self._exec(
                        conn,
                        "UPDATE fastgrid_batch_chunks SET owner = ?, beat = ?, claims = claims + 1 "
                        "WHERE sweep = ? AND chunk = ?",
                        (owner, now, name, chunk),
                    )
                    return Chunk(int(chunk), int(start), int(stop), int(claims) + 1)
            start = index * size
            if start >= (total if limit is None else min(total, limit)):
                return None
            stop = min(start + size, total)
            self._exec(
                conn,
                "INSERT INTO fastgrid_batch_chunks (sweep, chunk, start, stop, state, owner, beat) "
                "VALUES (?, ?, ?, ?, 'claimed', ?, ?)",
                (name, index, start, stop, owner, now),
            )
            self._exec(
                conn, "UPDATE fastgrid_batch_sweeps SET next_chunk = ? WHERE name = ?", (index + 1, name)
            )
            return Chunk(index, start, stop, 1)

        return self._transact(op)

    def claim_failed(self, name: str, owner: str, *, run: str, registered: str | None = None) -> Chunk | None:
        """A recorded chunk with failed points that no worker of run ``run`` recorded, claimed again
        for ``owner`` (its rows stay until the retry's rows replace them). None when there is none.
        ``registered``: as ``claim``'s ``run``."""

        def op(conn: Any) -> Chunk | None:
            self._check_run(conn, name, registered)
            for chunk, start, stop, claims, info in self._exec(
                conn,
                "SELECT chunk, start, stop, claims, info FROM fastgrid_batch_chunks "
                f"WHERE sweep = ? AND state = 'done' AND failed > 0 ORDER BY chunk{self._SKIP_LOCKED}",
                (name,),
            ).fetchall():
                if info and json.loads(info).get("run") == run:
                    continue
                self._exec(
                    conn,
                    f"UPDATE fastgrid_batch_chunks SET state = 'claimed', owner = ?, beat = {self._NOW}, "
                    "claims = claims + 1 WHERE sweep = ? AND chunk = ?",
                    (owner, name, chunk),
                )
                return Chunk(int(chunk), int(start), int(stop), int(claims) + 1)
            return None

        return self._transact(op)

    def claim_leaders(self, name: str, owner: str, slots: Sequence[int]) -> list[int]:
        """Which of ``slots`` (points the Optuna study lacks) ``owner`` writes to the study: those
        no other worker took, or whose taker died or took them over ``LEADER_LEASE_S`` ago, so
        that workers finishing together never write a point twice."""

        def op(conn: Any) -> list[int]:
            # One writer at a time per sweep: the sweep's row is the lock.
            row = self._exec(
                conn, f"SELECT {self._NOW} FROM fastgrid_batch_sweeps WHERE name = ?{self._LOCK_ROW}", (name,)
            ).fetchone()
            if row is None:
                raise self._deleted(name)
            now = float(row[0])
            mine = []
            for slot in slots:
                held = self._exec(
                    conn,
                    "SELECT owner, since FROM fastgrid_batch_leaders WHERE sweep = ? AND slot = ?",
                    (name, slot),
                ).fetchone()
                taken = held is not None and held[0] != owner and held[1] > now - LEADER_LEASE_S
                if taken and not owner_dead(held[0], self._host):
                    continue
                self._exec(
                    conn,
                    "INSERT INTO fastgrid_batch_leaders (sweep, slot, owner, since) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (sweep, slot) DO UPDATE SET owner = excluded.owner, since = excluded.since",
                    (name, slot, owner, now),
                )
                mine.append(slot)
            return mine

        return self._transact(op)

    def mark_leaders(self, name: str, owner: str, slots: Sequence[int]) -> None:
        """``owner`` wrote ``slots`` to the study: other workers skip them (without reading the
        study) for ``LEADER_LEASE_S``; after that a worker that claims them finds them written."""

        def op(conn: Any) -> None:
            for slot in slots:
                self._exec(
                    conn,
                    f"UPDATE fastgrid_batch_leaders SET owner = ?, since = {self._NOW} "
                    "WHERE sweep = ? AND slot = ? AND owner = ?",
                    (WRITTEN, name, slot, owner),
                )

        self._transact(op)

    def release_leaders(self, name: str, owner: str, slots: Sequence[int]) -> None:
        """``owner`` gives up ``slots`` it claimed (``claim_leaders``) without marking them written:
        the next worker to claim them gets them at once."""

        def op(conn: Any) -> None:
            for slot in slots:
                self._exec(
                    conn,
                    "DELETE FROM fastgrid_batch_leaders WHERE sweep = ? AND slot = ? AND owner = ?",
                    (name, slot, owner),
                )

        self._transact(op)

    def beat(self, name: str, owner: str, *, run: bool = False) -> bool:
        """Heartbeat: every claim of ``owner`` (and, ``run``, its registration as a run) is alive
        now. False when the sweep is gone, or (``run``) the registration: the run must stop."""

        def op(conn: Any) -> bool:
            self._exec(
                conn,
                f"UPDATE fastgrid_batch_chunks SET beat = {self._NOW} "
                "WHERE sweep = ? AND owner = ? AND state = 'claimed'",
                (name, owner),
            )
            if (
                run
                and not self._exec(
                    conn,
                    f"UPDATE fastgrid_batch_runs SET beat = {self._NOW} WHERE sweep = ? AND owner = ?",
                    (name, owner),
                ).rowcount
            ):
                return False
            return bool(
                self._exec(conn, "SELECT 1 FROM fastgrid_batch_sweeps WHERE name = ?", (name,)).fetchone()
            )

        return self._transact(op)

    def leave(self, name: str, owner: str) -> None:
        """Ends the registration of the run ``owner`` (its clean end)."""
        self._transact(
            lambda conn: self._exec(
                conn, "DELETE FROM fastgrid_batch_runs WHERE sweep = ? AND owner = ?", (name, owner)
            )
        )

    def release(self, name: str, owner: str) -> None:
        """Gives up ``owner``'s unfinished claims (Ctrl-C): another worker may take them at once."""
        self._transact(
            lambda conn: self._exec(
                conn,
                "UPDATE fastgrid_batch_chunks SET owner = NULL, beat = 0 "
                "WHERE sweep = ? AND owner = ? AND state = 'claimed'",
                (name, owner),
            )
        )

    def finish(
        self,
        name: str,
        owner: str,
        chunk: Chunk,
        columns: Mapping[str, np.ndarray[Any, Any] | bytes],
        *,
        failed: int,
        infeasible: int,
        duration: float,
        info: Mapping[str, Any],
    ) -> bool:
        """Writes a chunk's columns and marks it done, in one transaction, if ``owner`` still holds
        it (a column is an array, or bytes ``_codec`` already encoded). Returns False (and writes
        nothing) when the claim was lost (another worker took it over as stale): that worker
        records the chunk, so no row is ever written twice."""
        blobs = [
            (name, col, chunk.index, values if isinstance(values, bytes) else encode(np.asarray(values)))
            for col, values in columns.items()
        ]

        def op(conn: Any) -> bool:
            row = self._exec(
                conn,
                "SELECT owner, state FROM fastgrid_batch_chunks "
                f"WHERE sweep = ? AND chunk = ?{self._LOCK_ROW}",
                (name, chunk.index),
            ).fetchone()
            if row is None:
                # A claimed chunk's row goes only with its sweep: deleted (and perhaps created
                # again) under this run, which must not write into what stands there now.
                raise self._deleted(name)
            if row[0] != owner or row[1] != "claimed":
                return False
            # A retried or taken-over chunk may hold rows of an earlier attempt: replace them all.
            self._exec(
                conn, "DELETE FROM fastgrid_batch_columns WHERE sweep = ? AND chunk = ?", (name, chunk.index)
            )
            self._put_columns(conn, blobs)
            self._exec(
                conn,
                f"UPDATE fastgrid_batch_chunks SET state = 'done', beat = {self._NOW}, failed = ?, "
                "infeasible = ?, duration = ?, info = ? WHERE sweep = ? AND chunk = ?",
                (failed, infeasible, duration, json.dumps(info), name, chunk.index),
            )
            return True

        done = self._transact(op)
        if done:
            self._written(sum(len(b[3]) for b in blobs))
        return done

    # --- reading ------------------------------------------------------------------------------

    def chunks(self, name: str, *, state: str | None = "done") -> list[dict[str, Any]]:
        """Chunk rows in chunk order (``state=None``: every state)."""
        sql = (
            "SELECT chunk, start, stop, state, owner, beat, claims, failed, infeasible, duration, info "
            "FROM fastgrid_batch_chunks WHERE sweep = ?"
        )
        args: list[Any] = [name]
        if state is not None:
            sql += " AND state = ?"
            args.append(state)
        out = []
        for row in self._read(sql + " ORDER BY chunk", args):
            d = dict(zip(_CHUNK_KEYS, row[:-1], strict=True))
            for k in ("chunk", "start", "stop", "claims", "failed", "infeasible"):
                d[k] = int(d[k])
            d["info"] = json.loads(row[-1]) if row[-1] else {}
            out.append(d)
        return out

    def counts(self, name: str) -> dict[str, int]:
        """Points done, failed and infeasible, and chunks done and in flight, by SQL sums (no BLOB read)."""
        row = self._read(
            "SELECT COALESCE(SUM(CASE WHEN state = 'done' THEN stop - start END), 0), "
            "COALESCE(SUM(failed), 0), COALESCE(SUM(infeasible), 0), "
            "COALESCE(SUM(CASE WHEN state = 'done' THEN 1 ELSE 0 END), 0), "
            "COALESCE(SUM(CASE WHEN state = 'claimed' AND owner IS NOT NULL THEN 1 ELSE 0 END), 0), "
            "COALESCE(SUM(CASE WHEN state = 'claimed' AND owner IS NOT NULL THEN stop - start END), 0) "
            "FROM fastgrid_batch_chunks WHERE sweep = ?",
            (name,),
        )[0]
        done, failed, infeasible, chunks_done, in_flight, points_in_flight = (int(x) for x in row)
        return {
            "points_in_flight": points_in_flight,
            "done": done,
            "failed": failed,
            "infeasible": infeasible,
            "complete": done - failed,
            "chunks_done": chunks_done,
            "chunks_in_flight": in_flight,
        }

    def column_names(self, name: str) -> list[str]:
        return [
            r[0]
            for r in self._read(
                "SELECT DISTINCT name FROM fastgrid_batch_columns WHERE sweep = ? ORDER BY name", (name,)
            )
        ]

    def chunk_columns(self, name: str, chunk: int) -> dict[str, np.ndarray[Any, Any]]:
        """Every stored column of one chunk."""
        rows = self._read(
            "SELECT name, data FROM fastgrid_batch_columns WHERE sweep = ? AND chunk = ?", (name, chunk)
        )
        return {str(column): decode(bytes(data)) for column, data in rows}

    def column(
        self, name: str, column: str, chunks: Sequence[int] | None = None
    ) -> dict[int, np.ndarray[Any, Any]]:
        """One column's values per done chunk (chunk index → array); chunks lacking it are absent."""
        sql = "SELECT chunk, data FROM fastgrid_batch_columns WHERE sweep = ? AND name = ?"
        args: list[Any] = [name, column]
        if chunks is not None:
            if not chunks:
                return {}
            test, values = self._in_list([int(c) for c in chunks])
            sql += f" AND chunk {test}"
            args.extend(values)
        return {int(c): decode(bytes(data)) for c, data in self._read(sql, args)}


class BatchStore(ChunkStore):
    """Batch sweeps' chunks and columns in one SQLite file (the embedded store's ``fastgrid.db``).

    Safe for threads and for processes: each process opens its own connection (also after fork),
    every write is one ``BEGIN IMMEDIATE`` transaction (which holds the database: no row locks).
    """

    # Epoch seconds (SQLite's 'now' is UTC to the millisecond).
    _NOW = "((julianday('now') - 2440587.5) * 86400.0)"

    def __init__(self, path: str | os.PathLike[str], *, readonly: bool = False) -> None:
        super().__init__()
        self.path = Path(path)
        # Read-only (reports): nothing is created or written, also in a read-only folder.
        self.readonly = readonly
        self._conn: sqlite3.Connection | None = None
        self._pid = -1
        self._opened = False  # a reconnect (after fork or close) never creates the file again
        self._checkpointer: _Checkpointer | None = None
        self._unchecked = 0  # bytes written since the last checkpoint was asked for
        with self._lock:
            self._connection()

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "readonly": self.readonly}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"], readonly=state.get("readonly", False))  # type: ignore[misc]

    @property
    def label(self) -> str:
        return str(self.path)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        if self._conn is not None:
            # Forked: the parent's connection must not be closed (or used) here; keep it alive.
            _INHERITED.append(self._conn)
        conn = open_file(self.path, self._prepare, readonly=self.readonly, create=not self._opened)
        self._conn, self._pid, self._opened = conn, os.getpid(), True
        return conn

    def _prepare(self, conn: sqlite3.Connection) -> None:
        statements = schema_statements(int_type="INTEGER", float_type="REAL", blob_type="BLOB")
        if self.readonly:
            # Tables not there yet (no batch sweep stored): empty ones, as a new store would have
            # (only those: a temporary table would hide a stored one of the same name).
            stored = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            prefix = "CREATE TABLE IF NOT EXISTS "
            for statement in statements:
                if statement[len(prefix) :].split(maxsplit=1)[0] not in stored:
                    conn.execute("CREATE TEMP TABLE " + statement[len(prefix) :])
            return
        use_wal(conn, self.path)
        conn.execute("PRAGMA wal_autocheckpoint = 0")  # see _Checkpointer

        def create(c: sqlite3.Connection) -> None:
            for statement in statements:
                c.execute(statement)

        self._begin(conn, create)

    def _begin(self, conn: sqlite3.Connection, op: Callable[[sqlite3.Connection], _T]) -> _T:
        with write_transaction(conn):
            return op(conn)

    # A transaction that failed busy was rolled back whole: ChunkStore's operations are safe to run
    # again (PgBatchStore runs them again after a lost connection too).
    def _transact(self, op: Callable[[Any], _T]) -> _T:
        with self._lock:
            conn = self._connection()
            with store_errors(self.path):
                return retry_busy(lambda: self._begin(conn, op))

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            conn = self._connection()
            with store_errors(self.path):
                return retry_busy(lambda: conn.execute(sql, args).fetchall())

    def _exec(self, conn: Any, sql: str, args: Sequence[Any] = ()) -> Any:
        return conn.execute(sql, args)

    def _put_columns(self, conn: Any, rows: list[tuple[str, str, int, bytes]]) -> None:
        conn.executemany(
            "INSERT OR REPLACE INTO fastgrid_batch_columns (sweep, name, chunk, data) VALUES (?, ?, ?, ?)",
            rows,
        )

    def close(self) -> None:
        self.stop_checkpoints()
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None

    def _written(self, size: int) -> None:
        self._unchecked += size
        if self._unchecked < _CHECKPOINT_BYTES:
            return
        self._unchecked = 0
        if self._checkpointer is None or self._checkpointer.pid != os.getpid():
            self._checkpointer = _Checkpointer(self.path)
        self._checkpointer.kick()

    def stop_checkpoints(self) -> None:
        """Stops the checkpoint thread (a worker does before it ends; a fork must not see it)."""
        checkpointer, self._checkpointer = self._checkpointer, None
        if checkpointer is not None and checkpointer.pid == os.getpid():
            checkpointer.stop()
