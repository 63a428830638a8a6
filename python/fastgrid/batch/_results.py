"""Reading a batch sweep's columnar results: counts, top points, failures, whole columns, frames.

Everything is read column by column from the store and aggregated in numpy: the top 20 of ten
million points reads the objective metric, ``failed`` and ``feasible`` columns (~100 MB) and then
the parameters of the 20 winners' chunks only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from fastgrid.batch._store import BatchStore

__all__ = ["BatchResults"]

PARAM, METRIC = "p:", "m:"


class BatchResults:
    """The stored results of the batch sweep ``name`` (one row per evaluated point)."""

    def __init__(self, store: BatchStore, name: str) -> None:
        stored = store.sweep(name)
        if stored is None:
            known = ", ".join(map(repr, store.sweeps())) or "none"
            raise KeyError(f"no batch sweep named {name!r} in {store.path} (batch sweeps: {known})")
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

    def columns(self, names: Sequence[str] | None = None) -> dict[str, np.ndarray[Any, Any]]:
        """Whole columns over every done chunk, in slot order: ``slot``, each parameter path
        (fixed values repeated), each metric, ``failed``, ``feasible``, ``reason`` (None for points
        that neither failed nor were infeasible) and ``duration`` (seconds per point).

        ``names`` picks some of them (default: all). Large sweeps: ask only for what you need.
        """
        chunks = self._chunks()
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
        if n <= 0:
            return []
        chunks = self._chunks()
        sign = -1.0 if direction == "maximize" else 1.0
        # Chunk by chunk: each chunk's n best (ties to the lower slot), then the n best of those.
        # Memory stays at a chunk's columns; failed/feasible are read only for chunks that have any.
        ids = [c["chunk"] for c in chunks]
        flagged = [c["chunk"] for c in chunks if c["failed"] or c["infeasible"]]
        failed = self.store.column(self.name, "failed", flagged)
        feasible = self.store.column(self.name, "feasible", flagged)
        keys: list[np.ndarray[Any, Any]] = []
        where: list[np.ndarray[Any, Any]] = []
        offset = 0
        for start in range(0, len(ids), 64):  # bounded reads: 64 chunks of one column at a time
            part = ids[start : start + 64]
            values = self.store.column(self.name, METRIC + metric, part)
            for c in chunks[start : start + 64]:
                size = c["stop"] - c["start"]
                got = values.get(c["chunk"])
                if got is not None:
                    key = sign * got.astype(np.float64, copy=False)
                    ok = np.isfinite(key)
                    if c["chunk"] in failed:
                        ok &= ~failed[c["chunk"]].astype(bool)
                    if c["chunk"] in feasible:
                        ok &= feasible[c["chunk"]].astype(bool)
                    best = _smallest(np.where(ok, key, np.inf), n)
                    best = best[ok[best]]
                    keys.append(key[best])
                    where.append(best + offset)
                offset += size
        if not keys:
            return []
        key, at = np.concatenate(keys), np.concatenate(where)
        order = np.lexsort((at, key))[:n]
        return self.rows_at(at[order], chunks)

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
        chunks = [c for c in self._chunks() if c["failed"]]
        counter: Counter[str] = Counter()
        reasons = self.store.column(self.name, "reason", [c["chunk"] for c in chunks])
        failed = self.store.column(self.name, "failed", [c["chunk"] for c in chunks])
        for c in chunks:
            r, f = reasons.get(c["chunk"]), failed.get(c["chunk"])
            if r is None or f is None:
                continue
            values, counts = np.unique(r[f.astype(bool)].astype(str), return_counts=True)
            counter.update(dict(zip(values.tolist(), counts.tolist(), strict=True)))
        return dict(counter.most_common())

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
        return pa.table(
            {k: (v.tolist() if v.dtype == object else v) for k, v in self.columns(columns).items()}
        )


def _smallest(key: np.ndarray[Any, Any], n: int) -> np.ndarray[Any, Any]:
    """Positions of the ``n`` smallest keys, ties to the lower position, in position order."""
    if n >= len(key):
        return np.arange(len(key))
    threshold = key[np.argpartition(key, n - 1)[n - 1]]
    below = np.flatnonzero(key < threshold)
    tied = np.flatnonzero(key == threshold)[: n - len(below)]
    return np.sort(np.concatenate((below, tied)))


def _item(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
