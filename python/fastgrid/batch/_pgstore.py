"""The columnar results store of batch sweeps on PostgreSQL, for workers on several machines.

The same three tables and the same rules as :class:`fastgrid.batch.BatchStore` on SQLite (see
``_store``): a chunk's columns and its ``done`` mark are written in one transaction by the worker
that holds the claim (checked in that transaction, the chunk's row locked), so a chunk is recorded
exactly once. Claims serialize on the sweep's row (``SELECT ... FOR UPDATE``); a chunk's column
blobs go in with ``COPY``. Heartbeats and staleness use the server's clock, so workers on machines
whose clocks differ agree on which claims are stale. Needs psycopg 3 (the ``postgres`` extra).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from fastgrid.batch._codec import decode, encode
from fastgrid.batch._store import LEADER_LEASE_S, Chunk, owner_dead
from fastgrid.exceptions import StoreMismatchError

__all__ = ["PgBatchStore", "is_postgres_url"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS fastgrid_batch_sweeps (
    name TEXT PRIMARY KEY,
    total BIGINT NOT NULL,
    chunk BIGINT NOT NULL,
    next_chunk BIGINT NOT NULL DEFAULT 0,
    space TEXT NOT NULL,
    meta TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS fastgrid_batch_chunks (
    sweep TEXT NOT NULL,
    chunk BIGINT NOT NULL,
    start BIGINT NOT NULL,
    stop BIGINT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('claimed', 'done')),
    owner TEXT,
    beat DOUBLE PRECISION,
    claims INTEGER NOT NULL DEFAULT 1,
    failed BIGINT NOT NULL DEFAULT 0,
    infeasible BIGINT NOT NULL DEFAULT 0,
    duration DOUBLE PRECISION,
    info TEXT,
    PRIMARY KEY (sweep, chunk)
);
CREATE TABLE IF NOT EXISTS fastgrid_batch_columns (
    sweep TEXT NOT NULL,
    name TEXT NOT NULL,
    chunk BIGINT NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (sweep, name, chunk)
);
CREATE TABLE IF NOT EXISTS fastgrid_batch_leaders (
    sweep TEXT NOT NULL,
    slot BIGINT NOT NULL,
    owner TEXT NOT NULL,
    since DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (sweep, slot)
)
"""
_NOW = "extract(epoch from clock_timestamp())"
_SET_META = "UPDATE fastgrid_batch_sweeps SET meta = %s WHERE name = %s"
# A forked child must never close (and so end the server session of) its parent's connection:
# the child keeps the object it inherited alive and opens its own.
_INHERITED: list[Any] = []


def is_postgres_url(location: object) -> bool:
    return isinstance(location, str) and location.split("://", 1)[0].split("+", 1)[0] in (
        "postgresql",
        "postgres",
    )


def _libpq_url(url: str) -> str:
    scheme, rest = url.split("://", 1)
    return "postgresql://" + rest if scheme.split("+", 1)[0] in ("postgresql", "postgres") else url


class PgBatchStore:
    """Batch sweeps' chunks and columns in PostgreSQL (``postgresql://user:pass@host/db``)."""

    def __init__(self, url: str) -> None:
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise ImportError(
                "batch sweeps on PostgreSQL need psycopg 3: pip install 'fastgrid[postgres]'"
            ) from None
        self.url = url
        self.path = url  # what messages name (the URL; its password is never printed by fastgrid)
        self._lock = threading.RLock()
        self._conn: Any = None
        self._pid = -1
        self._host = socket.gethostname()
        with self._lock:
            self._connection()

    def __getstate__(self) -> dict[str, Any]:
        return {"url": self.url}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["url"])  # type: ignore[misc]

    def __repr__(self) -> str:
        from fastgrid.storages import redact_url

        return f"PgBatchStore({redact_url(self.url)!r})"

    def _connection(self) -> Any:
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        if self._conn is not None:
            _INHERITED.append(self._conn)
        import psycopg

        conn = psycopg.connect(_libpq_url(self.url), autocommit=False)
        with conn.transaction():
            # Two workers creating the tables at once would race on the catalog: one at a time.
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('fastgrid_batch_schema'))")
            for statement in filter(None, (s.strip() for s in _SCHEMA.split(";"))):
                conn.execute(statement)
        self._conn, self._pid = conn, os.getpid()
        return conn

    @contextlib.contextmanager
    def _write(self) -> Iterator[Any]:
        with self._lock:
            conn = self._connection()
            with conn.transaction():
                yield conn

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            conn = self._connection()
            with conn.transaction():
                return list(conn.execute(sql, args).fetchall())

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None

    def stop_checkpoints(self) -> None:
        """Nothing to do: PostgreSQL checkpoints on its own."""

    # --- sweeps -------------------------------------------------------------------------------

    def sweep(self, name: str) -> dict[str, Any] | None:
        rows = self._read(
            "SELECT total, chunk, next_chunk, space, meta FROM fastgrid_batch_sweeps WHERE name = %s", (name,)
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
        self, name: str, *, total: int, chunk: int, space: Mapping[str, Any], meta: Mapping[str, Any]
    ) -> dict[str, Any]:
        with self._write() as conn:
            conn.execute(
                "INSERT INTO fastgrid_batch_sweeps (name, total, chunk, space, meta) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (name) DO NOTHING",
                (name, total, chunk, json.dumps(space, sort_keys=True), json.dumps(meta)),
            )
            row = conn.execute(
                "SELECT chunk, space FROM fastgrid_batch_sweeps WHERE name = %s FOR UPDATE", (name,)
            ).fetchone()
            stored_space = json.loads(row[1])
            if stored_space != json.loads(json.dumps(space, sort_keys=True)):
                changed = sorted(k for k in {*stored_space, *space} if stored_space.get(k) != space.get(k))
                raise StoreMismatchError(
                    f"batch sweep {name!r} in {self!r} was started with a different {', '.join(changed)}; "
                    "use another sweep name, or fresh=True (--fresh) to delete its stored results"
                )
            if int(row[0]) != chunk:
                raise StoreMismatchError(
                    f"batch sweep {name!r} in {self!r} was started with chunk = {row[0]}, this run asks "
                    f"for {chunk}; chunk boundaries cannot change mid-sweep (leave chunk unset to continue, "
                    "or use fresh=True / --fresh)"
                )
            conn.execute(
                "UPDATE fastgrid_batch_sweeps SET meta = %s WHERE name = %s", (json.dumps(meta), name)
            )
        stored = self.sweep(name)
        assert stored is not None
        return stored

    def update_meta(self, name: str, meta: Mapping[str, Any]) -> None:
        with self._write() as conn:
            conn.execute(
                "UPDATE fastgrid_batch_sweeps SET meta = %s WHERE name = %s", (json.dumps(meta), name)
            )

    def delete(self, name: str) -> None:
        with self._write() as conn:
            conn.execute("DELETE FROM fastgrid_batch_leaders WHERE sweep = %s", (name,))
            conn.execute("DELETE FROM fastgrid_batch_columns WHERE sweep = %s", (name,))
            conn.execute("DELETE FROM fastgrid_batch_chunks WHERE sweep = %s", (name,))
            conn.execute("DELETE FROM fastgrid_batch_sweeps WHERE name = %s", (name,))

    # --- claims -------------------------------------------------------------------------------

    def claim(self, name: str, owner: str, *, grace: float, limit: int | None = None) -> Chunk | None:
        with self._write() as conn:
            sweep = conn.execute(
                f"SELECT total, chunk, next_chunk, {_NOW} FROM fastgrid_batch_sweeps "
                "WHERE name = %s FOR UPDATE",
                (name,),
            ).fetchone()
            if sweep is None:
                raise KeyError(f"no batch sweep named {name!r} in {self!r}")
            total, size, index, now = int(sweep[0]), int(sweep[1]), int(sweep[2]), float(sweep[3])
            for chunk, start, stop, claims, holder, beat in conn.execute(
                "SELECT chunk, start, stop, claims, owner, beat FROM fastgrid_batch_chunks "
                "WHERE sweep = %s AND state = 'claimed' ORDER BY chunk",
                (name,),
            ).fetchall():
                if holder == owner:
                    continue
                if (beat is not None and beat < now - grace) or owner_dead(holder, self._host):
                    conn.execute(
                        "UPDATE fastgrid_batch_chunks SET owner = %s, beat = %s, claims = claims + 1 "
                        "WHERE sweep = %s AND chunk = %s",
                        (owner, now, name, chunk),
                    )
                    return Chunk(int(chunk), int(start), int(stop), int(claims) + 1)
            start = index * size
            if start >= (total if limit is None else min(total, limit)):
                return None
            stop = min(start + size, total)
            conn.execute(
                "INSERT INTO fastgrid_batch_chunks (sweep, chunk, start, stop, state, owner, beat) "
                "VALUES (%s, %s, %s, %s, 'claimed', %s, %s)",
                (name, index, start, stop, owner, now),
            )
            conn.execute(
                "UPDATE fastgrid_batch_sweeps SET next_chunk = %s WHERE name = %s", (index + 1, name)
            )
            return Chunk(index, start, stop, 1)

    def claim_failed(self, name: str, owner: str, *, run: str) -> Chunk | None:
        with self._write() as conn:
            for chunk, start, stop, claims, info in conn.execute(
                "SELECT chunk, start, stop, claims, info FROM fastgrid_batch_chunks "
                "WHERE sweep = %s AND state = 'done' AND failed > 0 ORDER BY chunk FOR UPDATE SKIP LOCKED",
                (name,),
            ).fetchall():
                if info and json.loads(info).get("run") == run:
                    continue
                conn.execute(
                    f"UPDATE fastgrid_batch_chunks SET state = 'claimed', owner = %s, beat = {_NOW}, "
                    "claims = claims + 1 WHERE sweep = %s AND chunk = %s",
                    (owner, name, chunk),
                )
                return Chunk(int(chunk), int(start), int(stop), int(claims) + 1)
        return None

    def claim_leaders(self, name: str, owner: str, slots: Sequence[int]) -> list[int]:
        """As ``BatchStore.claim_leaders``: which of ``slots`` ``owner`` writes to the study."""
        mine = []
        with self._write() as conn:
            # One writer at a time per sweep: the sweep's row is the lock.
            conn.execute("SELECT 1 FROM fastgrid_batch_sweeps WHERE name = %s FOR UPDATE", (name,))
            now = float(conn.execute(f"SELECT {_NOW}").fetchone()[0])
            for slot in slots:
                row = conn.execute(
                    "SELECT owner, since FROM fastgrid_batch_leaders WHERE sweep = %s AND slot = %s",
                    (name, slot),
                ).fetchone()
                taken = row is not None and row[0] != owner and row[1] > now - LEADER_LEASE_S
                if taken and not owner_dead(row[0], self._host):
                    continue
                conn.execute(
                    "INSERT INTO fastgrid_batch_leaders (sweep, slot, owner, since) VALUES (%s, %s, %s, %s) "
                    "ON CONFLICT (sweep, slot) DO UPDATE SET owner = EXCLUDED.owner, since = EXCLUDED.since",
                    (name, slot, owner, now),
                )
                mine.append(slot)
        return mine

    def beat(self, name: str, owner: str) -> None:
        with self._write() as conn:
            conn.execute(
                f"UPDATE fastgrid_batch_chunks SET beat = {_NOW} "
                "WHERE sweep = %s AND owner = %s AND state = 'claimed'",
                (name, owner),
            )

    def release(self, name: str, owner: str) -> None:
        with self._write() as conn:
            conn.execute(
                "UPDATE fastgrid_batch_chunks SET owner = NULL, beat = 0 "
                "WHERE sweep = %s AND owner = %s AND state = 'claimed'",
                (name, owner),
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
        blobs = [
            (col, values if isinstance(values, bytes) else encode(np.asarray(values)))
            for col, values in columns.items()
        ]
        with self._write() as conn:
            row = conn.execute(
                "SELECT owner, state FROM fastgrid_batch_chunks WHERE sweep = %s AND chunk = %s FOR UPDATE",
                (name, chunk.index),
            ).fetchone()
            if row is None or row[0] != owner or row[1] != "claimed":
                return False
            conn.execute(
                "DELETE FROM fastgrid_batch_columns WHERE sweep = %s AND chunk = %s", (name, chunk.index)
            )
            with conn.cursor().copy(
                "COPY fastgrid_batch_columns (sweep, name, chunk, data) FROM STDIN"
            ) as copy:
                for column, data in blobs:
                    copy.write_row((name, column, chunk.index, data))
            conn.execute(
                f"UPDATE fastgrid_batch_chunks SET state = 'done', beat = {_NOW}, failed = %s, "
                "infeasible = %s, duration = %s, info = %s WHERE sweep = %s AND chunk = %s",
                (failed, infeasible, duration, json.dumps(info), name, chunk.index),
            )
        return True

    # --- reading ------------------------------------------------------------------------------

    def chunks(self, name: str, *, state: str | None = "done") -> list[dict[str, Any]]:
        sql = (
            "SELECT chunk, start, stop, state, owner, beat, claims, failed, infeasible, duration, info "
            "FROM fastgrid_batch_chunks WHERE sweep = %s"
        )
        args: list[Any] = [name]
        if state is not None:
            sql += " AND state = %s"
            args.append(state)
        keys = (
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
        out = []
        for row in self._read(sql + " ORDER BY chunk", args):
            d = dict(zip(keys, row[:-1], strict=True))
            for k in ("chunk", "start", "stop", "claims", "failed", "infeasible"):
                d[k] = int(d[k])
            d["info"] = json.loads(row[-1]) if row[-1] else {}
            out.append(d)
        return out

    def counts(self, name: str) -> dict[str, int]:
        row = self._read(
            "SELECT COALESCE(SUM(CASE WHEN state = 'done' THEN stop - start END), 0), "
            "COALESCE(SUM(failed), 0), COALESCE(SUM(infeasible), 0), "
            "COUNT(*) FILTER (WHERE state = 'done'), "
            "COUNT(*) FILTER (WHERE state = 'claimed' AND owner IS NOT NULL), "
            "COALESCE(SUM(CASE WHEN state = 'claimed' AND owner IS NOT NULL THEN stop - start END), 0) "
            "FROM fastgrid_batch_chunks WHERE sweep = %s",
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
                "SELECT DISTINCT name FROM fastgrid_batch_columns WHERE sweep = %s ORDER BY name", (name,)
            )
        ]

    def chunk_columns(self, name: str, chunk: int) -> dict[str, np.ndarray[Any, Any]]:
        rows = self._read(
            "SELECT name, data FROM fastgrid_batch_columns WHERE sweep = %s AND chunk = %s", (name, chunk)
        )
        return {str(column): decode(bytes(data)) for column, data in rows}

    def column(
        self, name: str, column: str, chunks: Sequence[int] | None = None
    ) -> dict[int, np.ndarray[Any, Any]]:
        sql = "SELECT chunk, data FROM fastgrid_batch_columns WHERE sweep = %s AND name = %s"
        args: list[Any] = [name, column]
        if chunks is not None:
            if not chunks:
                return {}
            sql += " AND chunk = ANY(%s)"
            args.append([int(c) for c in chunks])
        return {int(c): decode(bytes(data)) for c, data in self._read(sql, args)}
