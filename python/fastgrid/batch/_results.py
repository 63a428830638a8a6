"""Reading a batch sweep's columnar results: counts, top points, failures, whole columns, frames.

Everything is read column by column from the store and aggregated in numpy: the top 20 of ten
million points reads the objective metric, ``failed`` and ``feasible`` columns (~100 MB) and then
the parameters of the 20 winners' chunks only.
"""

from __future__ import annotations

import csv
import json
import os
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from fastgrid.batch._store import ChunkStore
from fastgrid.files import open_text, replaced_on_success

if TYPE_CHECKING:
    from fastgrid.study import Row

__all__ = ["BatchResults", "as_row"]

PARAM, METRIC = "p:", "m:"
# The columns beside the parameters and metrics in every row (metrics may not take these names).
RESULT_COLUMNS = ("slot", "failed", "feasible", "reason", "duration")


class BatchResults:
    """The stored results of the batch sweep ``name`` (one row per evaluated point)."""

    def __init__(self, store: ChunkStore, name: str) -> None:
        stored = store.sweep(name)
        if stored is None:
            known = ", ".join(map(repr, store.sweeps())) or "none"
            raise KeyError(f"no batch sweep named {name!r} in {store.label} (batch sweeps: {known})")
        self.store = store
        self.name = name
        self.total: int = stored["total"]
        self.chunk: int = stored["chunk"]
        meta = stored["meta"]
        self.paths: list[str] = list(meta.get("paths", []))
        self.varying: list[str] = list(meta.get("varying", []))
        self.constants: dict[str, Any] = dict(meta.get("constants", {}))
        # Every metric any chunk returned (workers may finish in any order): from the stored columns.
        self.metric_names: list[str] = [
            c[len(METRIC) :] for c in store.column_names(name) if c.startswith(METRIC)
        ]
        self.objective_metrics: list[str] = list(meta.get("objective_metrics", []))
        # The objective metrics are known before any chunk is recorded (a grid constrained to no
        # point, a report read while the first chunks run): an empty column, not an unknown one.
        self.metric_names += [m for m in self.objective_metrics if m not in self.metric_names]
        self.directions: list[str] = list(meta.get("directions", ["minimize"]))

    def __repr__(self) -> str:
        c = self.counts()
        return f"<BatchResults {self.name!r}: {c['done']:,} of {self.total:,} points done>"

    # --- cheap -------------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """``total``, ``done``, ``complete`` (done and not failed), ``failed``, ``infeasible``,
        ``feasible``, chunk counts; from per-chunk sums, without reading a column."""
        c = self.store.counts(self.name)
        c["total"] = self.total
        c["feasible"] = c["complete"] - c["infeasible"]
        c["remaining"] = self.total - c["done"]
        return c

    # --- columns -----------------------------------------------------------------------------

    def _chunks(self) -> list[dict[str, Any]]:
        return self.store.chunks(self.name)

    def _concat(
        self, column: str, chunks: list[dict[str, Any]], fill: Any, dtype: Any
    ) -> np.ndarray[Any, Any]:
        parts = self.store.column(self.name, column, [c["chunk"] for c in chunks])
        out = []
        for c in chunks:
            got = parts.get(c["chunk"])
            n = c["stop"] - c["start"]
            out.append(got if got is not None else np.full(n, fill, dtype=dtype))
        if not out:
            return np.empty(0, dtype=dtype)
        return np.concatenate(out)

    def slots(self, chunks: list[dict[str, Any]] | None = None) -> np.ndarray[Any, Any]:
        chunks = self._chunks() if chunks is None else chunks
        if not chunks:
            return np.empty(0, dtype=np.int64)
        return np.concatenate([np.arange(c["start"], c["stop"], dtype=np.int64) for c in chunks])

    @property
    def column_names(self) -> list[str]:
        """Every column ``columns()`` knows, in its default order."""
        return ["slot", *self.paths, *self.metric_names, "failed", "feasible", "reason", "duration"]

    def iter_columns(
        self, names: Sequence[str] | None = None, *, chunks_per_part: int = 16
    ) -> Iterator[dict[str, np.ndarray[Any, Any]]]:
        """``columns(names)`` a few done chunks at a time (memory stays at a part's columns)."""
        chunks = self._chunks()
        for first in range(0, len(chunks), chunks_per_part):
            yield self.columns(names, chunks=chunks[first : first + chunks_per_part])

    def columns(
        self, names: Sequence[str] | None = None, *, chunks: list[dict[str, Any]] | None = None
    ) -> dict[str, np.ndarray[Any, Any]]:
        """Whole columns over every done chunk, in slot order: ``slot``, each parameter path
        (fixed values repeated), each metric, ``failed``, ``feasible``, ``reason`` (None for points
        that neither failed nor were infeasible) and ``duration`` (seconds per point).

        ``names`` picks some of them (default: all). Large sweeps: ask only for what you need, or
        read them part by part with ``iter_columns``.
        """
        chunks = self._chunks() if chunks is None else chunks
        wanted = (
            list(names)
            if names is not None
            else ["slot", *self.paths, *self.metric_names, "failed", "feasible", "reason", "duration"]
        )
        known = {"slot", *self.paths, *self.metric_names, "failed", "feasible", "reason", "duration"}
        unknown = [w for w in wanted if w not in known]
        if unknown:
            raise KeyError(
                f"unknown column {unknown[0]!r} of batch sweep {self.name!r} (columns: {sorted(known)})"
            )
        n = sum(c["stop"] - c["start"] for c in chunks)
        out: dict[str, np.ndarray[Any, Any]] = {}
        for w in wanted:
            if w == "slot":
                out[w] = self.slots(chunks)
            elif w in self.constants:
                value = self.constants[w]
                if isinstance(value, bool | int | float):
                    out[w] = np.full(n, value)
                else:
                    out[w] = np.empty(n, dtype=object)
                    out[w].fill(value)
            elif w in self.paths:
                out[w] = self._concat(PARAM + w, chunks, None, object)
            elif w in self.metric_names and w not in ("failed", "feasible", "reason", "duration"):
                out[w] = self._concat(METRIC + w, chunks, np.nan, np.float64)
            elif w in ("failed", "feasible"):
                out[w] = self._concat(w, chunks, w == "feasible", bool).astype(bool, copy=False)
            elif w == "reason":
                out[w] = self._concat("reason", chunks, None, object)
            elif w == "duration":
                per_chunk = self.store.column(self.name, "duration", [c["chunk"] for c in chunks])
                parts = []
                for c in chunks:
                    k = c["stop"] - c["start"]
                    got = per_chunk.get(c["chunk"])
                    share = (c["duration"] or 0.0) / max(k, 1)
                    parts.append(got.astype(np.float64) if got is not None else np.full(k, share))
                out[w] = np.concatenate(parts) if parts else np.empty(0)
        return out

    # --- aggregates --------------------------------------------------------------------------

    def top(
        self, n: int = 20, *, metric: str | None = None, direction: str | None = None
    ) -> list[dict[str, Any]]:
        """The ``n`` best feasible points by ``metric`` (default: the first objective metric), best
        first; ties go to the lower slot. Each row: slot, params (flat), metrics, duration."""
        metric = metric or (self.objective_metrics[0] if self.objective_metrics else None)
        if metric is None or metric not in self.metric_names:
            raise KeyError(f"unknown metric {metric!r} (metrics: {self.metric_names})")
        if direction is None:
            idx = self.objective_metrics.index(metric) if metric in self.objective_metrics else 0
            direction = self.directions[idx] if idx < len(self.directions) else "minimize"
        elif direction not in ("minimize", "maximize"):
            raise ValueError(f"direction: expected 'minimize' or 'maximize', got {direction!r}")
        if n <= 0:
            return []
        sign = -1.0 if direction == "maximize" else 1.0
        keys: list[np.ndarray[Any, Any]] = []
        where: list[np.ndarray[Any, Any]] = []
        # Chunk by chunk: each chunk's n best (ties to the lower slot), then the n best of those.
        chunks = self._chunks()
        for at, values, ok in self._scan([metric], chunks):
            key = sign * values[0]
            best = _smallest(np.where(ok, key, np.inf), n)
            best = best[ok[best]]
            keys.append(key[best])
            where.append(best + at)
        if not keys:
            return []
        key, positions = np.concatenate(keys), np.concatenate(where)
        order = np.lexsort((positions, key))[:n]
        return self.rows_at(positions[order], chunks)

    def pareto(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The feasible points no other feasible point dominates in the objective metrics (better or
        equal in each, better in one), ordered by the first objective, then by slot; at most
        ``limit`` of them. With one objective: its best points (ties included)."""
        metrics = self.objective_metrics or self.metric_names[:1]
        missing = [m for m in metrics if m not in self.metric_names]
        if missing:
            raise KeyError(f"unknown metric {missing[0]!r} (metrics: {self.metric_names})")
        signs = np.array(
            [-1.0 if d == "maximize" else 1.0 for d in self.directions[: len(metrics)]], dtype=np.float64
        )
        keys: list[np.ndarray[Any, Any]] = []
        where: list[np.ndarray[Any, Any]] = []
        chunks = self._chunks()
        for at, values, ok in self._scan(metrics, chunks):
            matrix = np.stack(values, axis=1)[ok] * signs
            front = _front(matrix)
            keys.append(matrix[front])
            where.append(np.flatnonzero(ok)[front] + at)
        if not keys:
            return []
        matrix, positions = np.concatenate(keys), np.concatenate(where)
        front = _front(matrix)
        matrix, positions = matrix[front], positions[front]
        order = np.lexsort((positions, *matrix.T[::-1]))
        if limit is not None:
            order = order[:limit]
        return self.rows_at(positions[order], chunks)

    def leaders(self, k: int) -> list[dict[str, Any]]:
        """The ``k`` points a batch sweep writes to its Optuna study: the ``k`` best by the objective
        metric; with several objectives, the Pareto front first (cut at ``k`` by the first objective)
        and then the best by the first objective, so Optuna's ``best_trials`` is the front."""
        if k <= 0:
            return []
        if len(self.objective_metrics) <= 1:
            return self.top(k)
        rows = self.pareto(limit=k)
        seen = {r["slot"] for r in rows}
        for r in self.top(k + len(rows)):
            if len(rows) >= k:
                break
            if r["slot"] not in seen:
                rows.append(r)
                seen.add(r["slot"])
        return rows

    def _scan(
        self, metrics: Sequence[str], chunks: list[dict[str, Any]]
    ) -> Iterator[tuple[int, list[np.ndarray[Any, Any]], np.ndarray[Any, Any]]]:
        """Per done chunk holding the metrics: its first position in ``columns()``, the metrics'
        float64 values, and which points count (feasible, not failed, finite metrics). Memory stays
        at 64 chunks of one column; failed/feasible are read only for chunks that have any."""
        flagged = [c["chunk"] for c in chunks if c["failed"] or c["infeasible"]]
        failed = self.store.column(self.name, "failed", flagged)
        feasible = self.store.column(self.name, "feasible", flagged)
        offset = 0
        for first in range(0, len(chunks), 64):
            part = chunks[first : first + 64]
            ids = [c["chunk"] for c in part]
            columns = [self.store.column(self.name, METRIC + m, ids) for m in metrics]
            for c in part:
                at, index = offset, c["chunk"]
                offset += c["stop"] - c["start"]
                got = [col.get(index) for col in columns]
                if any(g is None for g in got):
                    continue
                values = [g.astype(np.float64, copy=False) for g in got]  # type: ignore[union-attr]
                ok = np.logical_and.reduce([np.isfinite(v) for v in values])
                if index in failed:
                    ok &= ~failed[index].astype(bool)
                if index in feasible:
                    ok &= feasible[index].astype(bool)
                yield at, values, ok

    def rows_at(
        self, positions: np.ndarray[Any, Any], chunks: list[dict[str, Any]] | None = None
    ) -> list[dict[str, Any]]:
        """Full rows at positions of ``columns()`` (reads only the chunks holding them)."""
        chunks = self._chunks() if chunks is None else chunks
        sizes = np.array([c["stop"] - c["start"] for c in chunks], dtype=np.int64)
        ends = np.cumsum(sizes)
        which = np.searchsorted(ends, positions, side="right")
        need = sorted({int(chunks[w]["chunk"]) for w in which})
        by_chunk = {c["chunk"]: c for c in chunks}
        cache: dict[str, dict[int, np.ndarray[Any, Any]]] = {}

        def col(name: str) -> dict[int, np.ndarray[Any, Any]]:
            if name not in cache:
                cache[name] = self.store.column(self.name, name, need)
            return cache[name]

        rows = []
        for pos, w in zip(positions.tolist(), which.tolist(), strict=True):
            c = chunks[w]
            j = pos - int(ends[w] - sizes[w])
            ch = c["chunk"]
            params = {}
            for p in self.paths:
                if p in self.constants:
                    params[p] = self.constants[p]
                else:
                    params[p] = _item(col(PARAM + p)[ch][j])
            metrics = {m: float(col(METRIC + m)[ch][j]) for m in self.metric_names if ch in col(METRIC + m)}
            dur = col("duration").get(ch)
            reason = col("reason").get(ch)
            failed = col("failed").get(ch)
            feasible = col("feasible").get(ch)
            rows.append(
                {
                    "slot": c["start"] + j,
                    "params": params,
                    "metrics": metrics,
                    "failed": bool(failed[j]) if failed is not None else False,
                    "feasible": bool(feasible[j]) if feasible is not None else True,
                    "reason": reason[j] if reason is not None else None,
                    "duration": float(dur[j])
                    if dur is not None
                    else (by_chunk[ch]["duration"] or 0.0) / (c["stop"] - c["start"]),
                }
            )
        return rows

    def failures(self) -> dict[str, int]:
        """Failed points grouped by reason, most frequent first (reads only chunks with failures)."""
        return {g["reason"]: g["count"] for g in self.failure_groups()}

    def failure_groups(self) -> list[dict[str, Any]]:
        """Failed points grouped by reason, most frequent first: ``reason``, ``count`` and the
        ``first`` slot that failed so (reads only chunks with failures)."""
        chunks = [c for c in self._chunks() if c["failed"]]
        counter: Counter[str] = Counter()
        first: dict[str, int] = {}
        reasons = self.store.column(self.name, "reason", [c["chunk"] for c in chunks])
        failed = self.store.column(self.name, "failed", [c["chunk"] for c in chunks])
        for c in chunks:
            r, f = reasons.get(c["chunk"]), failed.get(c["chunk"])
            if r is None or f is None:
                continue
            at = np.flatnonzero(f.astype(bool))
            values, where, counts = np.unique(r[at].astype(str), return_index=True, return_counts=True)
            for value, i, count in zip(values.tolist(), where.tolist(), counts.tolist(), strict=True):
                counter[value] += count
                first.setdefault(value, c["start"] + int(at[i]))
        return [
            {"reason": reason, "count": count, "first": first[reason]}
            for reason, count in sorted(counter.items(), key=lambda kv: (-kv[1], first[kv[0]]))
        ]

    def factorize(self, column: str) -> tuple[list[Any], np.ndarray[Any, Any]]:
        """``(values, codes)``: the distinct values of a column over the done chunks (in first-seen
        order) and, per row of ``columns()``, the index of its value."""
        factors = _Factors()
        parts = [factors.codes(self.columns([column], chunks=part)[column]) for part in self.iter_chunks()]
        return factors.values, (np.concatenate(parts) if parts else np.empty(0, dtype=np.int64))

    def aggregate(
        self, x: str, y: str, metric: str, *, agg: str = "max", feasible_only: bool = True
    ) -> tuple[list[Any], list[Any], np.ndarray[Any, Any]]:
        """``metric`` over the cells of columns ``x`` and ``y`` (a heatmap): ``(xs, ys, grid)`` with
        ``grid[j, i]`` the ``agg`` (max, min or mean) of the finite values of the points whose ``x``
        is ``xs[i]`` and ``y`` is ``ys[j]`` (NaN for an empty cell), points that failed left out, and
        infeasible ones too with ``feasible_only``. Read a few chunks at a time and reduced in
        numpy, so memory stays at a part's columns (ten million rows take seconds)."""
        if agg not in ("max", "min", "mean"):
            raise ValueError(f"agg: expected max, min or mean, got {agg!r}")
        fx, fy = _Factors(), _Factors()
        keys: list[np.ndarray[Any, Any]] = []
        partial: list[np.ndarray[Any, Any]] = []
        counts: list[np.ndarray[Any, Any]] = []
        for part in self.iter_columns([x, y, metric, "failed", "feasible"]):
            cx, cy = fx.codes(part[x]), fy.codes(part[y])
            values = part[metric].astype(np.float64, copy=False)
            ok = np.isfinite(values) & ~part["failed"]
            if feasible_only:
                ok &= part["feasible"]
            key = (cx[ok] << 32) | cy[ok]
            cells, inverse = np.unique(key, return_inverse=True)
            inverse = inverse.reshape(-1)
            keys.append(cells)
            partial.append(_reduce(values[ok], inverse, len(cells), agg))
            counts.append(np.bincount(inverse, minlength=len(cells)).astype(np.float64))
        grid = np.full((len(fy.values), len(fx.values)), np.nan)
        if keys:
            cells, inverse = np.unique(np.concatenate(keys), return_inverse=True)
            inverse = inverse.reshape(-1)
            weights = np.concatenate(counts)
            if agg == "mean":
                sums = np.bincount(inverse, weights=np.concatenate(partial) * weights, minlength=len(cells))
                total = np.bincount(inverse, weights=weights, minlength=len(cells))
                reduced = sums / total
            else:
                reduced = _reduce(np.concatenate(partial), inverse, len(cells), agg)
            grid[cells & 0xFFFFFFFF, cells >> 32] = reduced
        return fx.values, fy.values, grid

    def iter_chunks(
        self, chunks: list[dict[str, Any]] | None = None, size: int = 16
    ) -> Iterator[list[dict[str, Any]]]:
        """The done chunks, ``size`` at a time."""
        chunks = self._chunks() if chunks is None else chunks
        for first in range(0, len(chunks), size):
            yield chunks[first : first + size]

    # --- exports -----------------------------------------------------------------------------

    def write_csv(self, path: str | os.PathLike[str] | IO[str], columns: Sequence[str] | None = None) -> int:
        """Every row to a CSV file (or a text stream, left open), a few chunks at a time; returns the
        rows written."""
        names = list(columns) if columns is not None else self.column_names
        rows = 0
        with open_text(path, newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(names)
            for part in self.iter_columns(names):
                lists = [_csv_cells(part[n]) for n in names]
                writer.writerows(zip(*lists, strict=True))
                rows += len(lists[0]) if lists else 0
        return rows

    def write_parquet(self, path: str | os.PathLike[str], columns: Sequence[str] | None = None) -> int:
        """Every row to a Parquet file (needs pyarrow), a few chunks per row group; returns the rows.

        Each column has one type for the whole file, the one ``to_arrow()`` gives it: the kinds
        of values a column holds are gathered over every chunk first (parameter columns and
        ``reason`` only: the others are numbers throughout), so a reason or a parameter value that
        first appears in a late chunk is written like the rest."""
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise ImportError("Parquet needs pyarrow: pip install pyarrow (or export to .csv)") from None
        names = list(columns) if columns is not None else self.column_names
        kinds = self._value_kinds([n for n in names if n == "reason" or n in self.paths])
        rows = 0
        # A file that fails midway (a full disk, an interrupt) must not stay as half the points.
        with replaced_on_success(path) as out:
            writer: Any = None
            try:
                for part in self.iter_columns(names):
                    table = pa.table({n: _arrow_column(part[n], kinds.get(n)) for n in names})
                    if writer is None:
                        writer = pq.ParquetWriter(os.fspath(out), table.schema)
                    writer.write_table(table.cast(writer.schema))
                    rows += table.num_rows
                if writer is None:
                    empty = self.columns(names, chunks=[])
                    pq.write_table(pa.table({n: _arrow_column(empty[n]) for n in names}), os.fspath(out))
            finally:
                if writer is not None:
                    writer.close()
        return rows

    def _value_kinds(self, names: Sequence[str]) -> dict[str, set[type]]:
        """Per column: the types of its values over every done chunk (None left out)."""
        kinds: dict[str, set[type]] = {n: set() for n in names}
        if names:
            for part in self.iter_columns(names):
                for n in names:
                    kinds[n] |= _kinds(part[n])
        return kinds

    # --- frames ------------------------------------------------------------------------------

    def to_pandas(self, columns: Sequence[str] | None = None) -> Any:
        """The results as a pandas DataFrame (needs pandas)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("to_pandas() needs pandas: pip install pandas") from None
        return pd.DataFrame(self.columns(columns))

    def to_arrow(self, columns: Sequence[str] | None = None) -> Any:
        """The results as a pyarrow Table (needs pyarrow)."""
        try:
            import pyarrow as pa
        except ImportError:
            raise ImportError("to_arrow() needs pyarrow: pip install pyarrow") from None
        return pa.table({k: _arrow_column(v) for k, v in self.columns(columns).items()})


def _smallest(key: np.ndarray[Any, Any], n: int) -> np.ndarray[Any, Any]:
    """Positions of the ``n`` smallest keys, ties to the lower position, in position order."""
    if n >= len(key):
        return np.arange(len(key))
    threshold = key[np.argpartition(key, n - 1)[n - 1]]
    below = np.flatnonzero(key < threshold)
    tied = np.flatnonzero(key == threshold)[: n - len(below)]
    return np.sort(np.concatenate((below, tied)))


def _front(keys: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Positions (ascending) of the rows of ``keys`` that no other row dominates (a row per point,
    a column per objective, smaller is better). In lexicographic order no row is dominated by a
    later one, so each row still standing when its turn comes is on the front and removes what it
    dominates: one vectorized pass per front member over the shrinking rest."""
    if len(keys) == 0:
        return np.empty(0, dtype=np.int64)
    order = np.lexsort(keys.T[::-1])
    rest, alive = keys[order], order
    front: list[int] = []
    while len(rest):
        head = rest[0]
        front.append(int(alive[0]))
        later = rest[1:]
        dominated = np.all(head <= later, axis=1) & np.any(head < later, axis=1)
        rest, alive = later[~dominated], alive[1:][~dominated]
    return np.sort(np.asarray(front, dtype=np.int64))


def as_row(row: Mapping[str, Any], objective_metrics: Sequence[str]) -> Row:
    """A batch sweep's point (a row of ``top``, ``pareto`` or ``rows_at``) as a
    :class:`fastgrid.study.Row`, the shape per-trial results have: ``number`` is its grid slot."""
    metrics = dict(row["metrics"])
    values = [metrics[m] for m in objective_metrics] if all(m in metrics for m in objective_metrics) else None
    return {
        "number": int(row["slot"]),
        "state": "FAIL" if row["failed"] else "COMPLETE",
        "values": values,
        "value": values[0] if values is not None and len(values) == 1 else None,
        "params": dict(row["params"]),
        "metrics": metrics,
        "key": None,
        "reused": None,
        "feasible": bool(row["feasible"]) and not row["failed"],
        "reason": row["reason"],
        "duration": row["duration"],
        "attempts": None,
        "result_path": None,
    }


class _Factors:
    """Distinct values in first-seen order, and codes of columns against them."""

    def __init__(self) -> None:
        self.values: list[Any] = []
        self._index: dict[Any, int] = {}

    def codes(self, column: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        if column.dtype.kind in "biuf":
            distinct, inverse = np.unique(column, return_inverse=True)
            local = [_item(v) for v in distinct]
        else:
            # Objects: a dict pass over the column (np.unique would compare strings with None).
            seen: dict[Any, int] = {}
            local = []
            inverse = np.empty(len(column), dtype=np.int64)
            for i, v in enumerate(column.tolist()):
                k = _hashable(v)
                j = seen.get(k)
                if j is None:
                    j = seen[k] = len(local)
                    local.append(v)
                inverse[i] = j
        lut = np.empty(len(local), dtype=np.int64)
        for j, v in enumerate(local):
            k = _hashable(v)
            code = self._index.get(k)
            if code is None:
                code = self._index[k] = len(self.values)
                self.values.append(v)
            lut[j] = code
        return lut[inverse.reshape(-1)] if len(local) else np.empty(0, dtype=np.int64)


def _reduce(
    values: np.ndarray[Any, Any], groups: np.ndarray[Any, Any], n: int, agg: str
) -> np.ndarray[Any, Any]:
    """Per group (``groups`` in ``0..n``): the max, min or mean of ``values``."""
    if agg == "mean":
        sizes = np.bincount(groups, minlength=n)
        return np.bincount(groups, weights=values, minlength=n) / np.maximum(sizes, 1)
    out = np.full(n, -np.inf if agg == "max" else np.inf)
    (np.maximum if agg == "max" else np.minimum).at(out, groups, values)
    return out


def _hashable(value: Any) -> Any:
    # Dict keys for factorizing: True and 1 differ (by type); lists and dicts by their JSON text.
    if isinstance(value, list | dict):
        return ("json", json.dumps(value, sort_keys=True))
    return (type(value), value)


def _csv_cells(column: np.ndarray[Any, Any]) -> list[Any]:
    cells = column.tolist()
    if column.dtype == object:
        return [json.dumps(v) if isinstance(v, list | dict) else v for v in cells]
    return cells


def _kinds(column: np.ndarray[Any, Any]) -> set[type]:
    """The types of a column's values (None left out; a numeric column's by its dtype)."""
    if column.dtype.kind == "b":
        return {bool}
    if column.dtype.kind in "iu":
        return {int}
    if column.dtype.kind == "f":
        return {float}
    return {type(v) for v in column.tolist() if v is not None}


def _arrow_column(column: np.ndarray[Any, Any], kinds: set[type] | None = None) -> Any:
    """A column for pyarrow, typed by the ``kinds`` of values the whole column holds (default:
    this part's): numbers as they are; text as strings; JSON text when values are lists or dicts
    or of several types (``True`` and ``1``, ``1`` and ``"a"``), so that no value changes."""
    import pyarrow as pa

    kinds = _kinds(column) if kinds is None else kinds
    if len(kinds) > 1 or kinds & {list, dict}:
        return pa.array([None if v is None else json.dumps(v) for v in column.tolist()], type=pa.string())
    if column.dtype != object:
        return column
    if not kinds or kinds == {str}:
        return pa.array(column.tolist(), type=pa.string())
    return column.tolist()


def _item(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
