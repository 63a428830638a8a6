"""Evaluating one chunk: call the objective, check what it returned, isolate failing points.

Two kinds of objective:

- a *batch* objective ``fn(columns, config)`` is called once per chunk with the chunk's parameter
  columns and the read-only default config, and returns metric columns (a dict of arrays, a pandas
  DataFrame or a pyarrow Table), one row per point, in order;
- a per-point *callable* ``fn(config)`` is called once per point with the merged config, as in a
  per-trial sweep; the chunk only changes the bookkeeping.

An exception in a batch objective fails the piece it was called on; the piece is bisected until the
failing points are isolated (within a call budget), so one bad point does not fail its whole chunk.
A result of the wrong shape is not a per-point failure but a bug in the objective: it stops the
sweep with an error that names the objective, the metric and the chunk's slot range.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import os
import pickle
import select
import signal
import time
import warnings
from collections import deque
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fastgrid.exceptions import BatchObjectiveError
from fastgrid.lifeline import follow_parent
from fastgrid.objective import pick_value, short_message

__all__ = [
    "SUSPECT_CLAIMS",
    "ChunkResult",
    "check_metric_name",
    "evaluate_batch",
    "evaluate_isolated",
    "evaluate_points",
    "fail_not_finite",
    "metric_columns",
]

# Calls one chunk may spend isolating failures; past it, the pieces not yet split fail whole.
CALL_BUDGET = 512
# When every piece of a split this many ways fails with the root's reason, the whole chunk fails:
# a systematic error, not a few bad points.
UNIFORM_WIDTH = 32
# A chunk claimed again after its holder stopped without recording it (its process died in it: an
# os._exit or a segfault in the objective, the out-of-memory killer, a kill -9; or a Ctrl-C) is
# evaluated in forked child processes, a piece at a time: a point that kills its process then fails
# alone instead of taking down every worker and every resumed run. Only the chunks in flight pay.
SUSPECT_CLAIMS = 2
# Child processes one isolated chunk may spend; and when every piece of a split this many ways died,
# the chunk fails whole (the objective kills every process, not a few points).
FORK_BUDGET = 64
FORK_UNIFORM_WIDTH = 4


@dataclass
class ChunkResult:
    """A chunk's rows: metric columns (NaN where a point failed), the failed mask and reasons."""

    n: int
    metrics: dict[str, np.ndarray[Any, Any]]
    failed: np.ndarray[Any, Any]
    reasons: list[str | None]
    """Per point: why it failed (None for points that did not)."""
    calls: int = 0
    durations: np.ndarray[Any, Any] | None = None
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Verdict:
    """What a chunk's rows come to: ``failed`` (the objective's failures, and points whose objective
    metric is not finite), ``feasible`` (not failed, every ``require`` holds), and per point a
    ``codes`` index into ``vocab``: why it failed or which requirements it breaks (0: neither)."""

    failed: np.ndarray[Any, Any]
    feasible: np.ndarray[Any, Any]
    codes: np.ndarray[Any, Any]
    vocab: dict[str | None, int]
    n_failed: int
    n_infeasible: int

    def reason(self, i: int) -> str | None:
        """Point ``i``'s reason (None when it is feasible)."""
        code = int(self.codes[i])
        return None if code == 0 else list(self.vocab)[code]


def fail_not_finite(result: ChunkResult, metrics: Sequence[str]) -> ChunkResult:
    """Fails (in place) the points whose objective metric is NaN or infinite: Optuna could not
    rank them. A runner does it as soon as a chunk is evaluated, before fail-fast looks at it (an
    objective that gives every point NaN is as broken as one that raises); ``judge`` again, for
    results that did not come that way (the same points, the same reasons)."""
    for m in metrics:
        values = result.metrics.get(m)
        if values is None:
            continue
        bad = ~np.isfinite(values) & ~result.failed
        for i in np.flatnonzero(bad).tolist():
            result.reasons[i] = f"metric {m!r} is {'NaN' if math.isnan(values[i]) else values[i]}"
        result.failed |= bad
    return result


def judge(
    result: ChunkResult,
    cols: Mapping[str, Any],
    *,
    metrics: Sequence[str],
    require: Sequence[tuple[str, Any]],
) -> Verdict:
    """The one rule for a chunk's outcome (recorded runs and ``fastgrid run --check`` alike):
    ``metrics`` are the objective metrics, ``require`` the result constraints as (source,
    compiled expression), evaluated on the parameter and metric columns at once."""
    n = result.n
    failed = fail_not_finite(result, metrics).failed.copy()
    # Why each point failed or is infeasible, dictionary-encoded (0: neither): failures are few and
    # get a loop; infeasible points, often half a chunk, get one code per combination of broken
    # constraints.
    vocab: dict[str | None, int] = {None: 0}
    codes = np.zeros(n, dtype=np.uint32)
    n_failed = int(np.count_nonzero(failed))
    if n_failed:
        for i in np.flatnonzero(failed).tolist():
            reason = result.reasons[i] or "failed"
            codes[i] = vocab.setdefault(reason, len(vocab))
    n_infeasible = 0
    feasible = ~failed
    if require and n_failed < n:
        # (A chunk whose points all failed may lack the metrics `require` names: nothing to check.)
        scope: dict[str, Any] = {**cols, **result.metrics}
        broken = np.stack([~expr.evaluate_columns(scope, length=n) for _, expr in require])
        infeasible = broken.any(axis=0) & ~failed
        n_infeasible = int(np.count_nonzero(infeasible))
        if n_infeasible:
            combos, inverse = np.unique(broken[:, infeasible].T, axis=0, return_inverse=True)
            sources = [src for src, _ in require]
            combo_codes = [
                vocab.setdefault(
                    "infeasible: " + "; ".join(src for src, b in zip(sources, combo, strict=True) if b),
                    len(vocab),
                )
                for combo in combos.tolist()
            ]
            codes[infeasible] = np.asarray(combo_codes, dtype=np.uint32)[inverse.reshape(-1)]
            feasible &= ~infeasible
    return Verdict(failed, feasible, codes, vocab, n_failed, n_infeasible)


class _Refused(Exception):
    """What is wrong with a returned column (the caller adds objective, metric and slots)."""


# Metric columns are float64: integers past 2**53 may not survive the conversion.
_EXACT = 2**53


def _inexact(values: Any) -> str | None:
    """Why integers (a numpy array or a list) cannot become a float64 column exactly, or None.

    A count or an id past 2**53 would be stored rounded (9007199254740993 as ...992) without a
    word; a per-trial sweep keeps it exactly in the trial's metrics.
    """
    if isinstance(values, np.ndarray):
        if values.dtype.kind not in "iu" or not len(values):
            return None
        big = (values > _EXACT) | (values < -_EXACT) if values.dtype.kind == "i" else values > _EXACT
        candidates: Any = (int(values[i]) for i in np.flatnonzero(big).tolist())
    else:
        candidates = (v for v in values if type(v) is int and not -_EXACT <= v <= _EXACT)
    for v in candidates:
        why = inexact_integer(v)
        if why is not None:
            return why
    return None


def inexact_integer(value: int) -> str | None:
    """Why the integer ``value`` cannot be a float64 exactly (None when it can)."""
    try:
        if int(float(value)) == value:
            return None
    except OverflowError:
        return f"an integer too large for a float ({value}); return floats or smaller units"
    return (
        f"integers past 2**53 that a float64 column cannot hold exactly ({value} would be stored "
        f"as {int(float(value))}); return floats if rounding is fine, or smaller units"
    )


def _row_order(index: Any, n: int) -> np.ndarray[Any, Any] | None:
    """Where each point's row is in a pandas object with this ``index``: None when the rows are in
    point order (an increasing index, e.g. the default one), else the positions to take. Rows that
    were reordered (``sort_values``, ``sample``) still carry their point's position as their label,
    and pandas aligns by label: reading them positionally would pin metrics on the wrong points."""
    if len(index) != n or (index.is_monotonic_increasing and index.is_unique):
        return None
    labels = np.asarray(index)
    if labels.dtype.kind in "iu" and np.array_equal(np.sort(labels), np.arange(n)):
        return np.argsort(labels, kind="stable")
    raise _Refused(
        "its rows' index is neither in increasing order nor the points' positions 0..n-1, so which "
        "row is which point is unknown: reset_index(drop=True) if the rows are in point order"
    )


def _numbers(values: Any, n: int) -> np.ndarray[Any, Any]:
    """One returned column as an array, missing values (pandas NA, arrow nulls, masked) as NaN."""
    if isinstance(values, np.ma.MaskedArray):
        if values.dtype.kind in "biuf":
            return np.ma.filled(values.astype(np.float64), np.nan)
        return np.asarray(values)
    if hasattr(values, "index") and hasattr(values, "to_numpy") and hasattr(values, "dtype"):
        order = _row_order(values.index, n)  # a pandas Series
        kind = getattr(values.dtype, "kind", "O")
        if kind in "iu":
            inexact = _inexact(values.dropna().to_numpy())
            if inexact is not None:
                raise _Refused(inexact)
        array = values.to_numpy(dtype=np.float64, na_value=np.nan) if kind in "biuf" else values.to_numpy()
        return np.asarray(array)[order] if order is not None else np.asarray(array)
    if hasattr(values, "null_count") and hasattr(values, "type") and hasattr(values, "cast"):
        import pyarrow as pa  # a pyarrow Array or ChunkedArray

        kind = values.type
        if pa.types.is_dictionary(kind):
            values, kind = values.cast(kind.value_type), kind.value_type
        if pa.types.is_integer(kind):
            inexact = _inexact(values.drop_null().to_numpy())
            if inexact is not None:
                raise _Refused(inexact)
        if (
            pa.types.is_integer(kind)
            or pa.types.is_floating(kind)
            or pa.types.is_boolean(kind)
            or (pa.types.is_decimal(kind))
        ):
            return np.asarray(values.cast(pa.float64()).to_numpy(zero_copy_only=False))
        return np.asarray(values.to_numpy(zero_copy_only=False))
    return np.asarray(values)


def _as_mapping(result: Any, n: int) -> Mapping[str, Any] | None:
    if not isinstance(result, Mapping) and callable(getattr(result, "to_arrow", None)):
        result = result.to_arrow()  # a polars DataFrame (or another frame that speaks Arrow)
    columns = getattr(result, "column_names", None)  # pyarrow.Table / RecordBatch
    if columns is not None and hasattr(result, "column"):
        names = [str(c) for c in columns]
        _unique(names)
        return {name: result.column(i) for i, name in enumerate(names)}
    if hasattr(result, "columns") and hasattr(result, "index") and hasattr(result, "iloc"):
        names = [str(c) for c in result.columns]  # a pandas DataFrame
        _unique(names)
        order = _row_order(result.index, n) if len(result.columns) else None
        frame = result.iloc[order] if order is not None else result
        return {name: frame.iloc[:, i].reset_index(drop=True) for i, name in enumerate(names)}
    if isinstance(result, Mapping):
        return result
    return None


def _type_name(value: Any) -> str:
    kind = type(value)
    return kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def _unique(names: list[str]) -> None:
    twice = sorted({c for c in names if names.count(c) > 1})
    if twice:
        raise _Refused(
            f"it has more than one column named {', '.join(map(repr, twice))}: "
            "which one is the metric is unknown; give each column its own name"
        )


def check_metric_name(
    name: str, *, objective: str, slots: tuple[int, int], reserved: Collection[str]
) -> None:
    """Refuses (:class:`BatchObjectiveError`) an empty metric name or one that a parameter or a
    result column (``slot``, ``failed``, ...) already takes in the results table."""
    problem = None
    if not name.strip():
        problem = f"a metric name is empty ({name!r}): name every metric column"
    elif name in reserved:
        problem = (
            f"metric {name!r} has the name of a parameter or of a result column (slot, failed, "
            "feasible, reason, duration), which share the results table: rename the metric"
        )
    if problem is not None:
        raise BatchObjectiveError(
            f"objective {objective!r}, chunk slots {slots[0]}..{slots[1] - 1}: {problem}",
            objective=objective,
            metric=name,
            slots=slots,
        )


def metric_columns(
    result: Any,
    n: int,
    *,
    objective: str,
    slots: tuple[int, int],
    expected: Sequence[str] = (),
    reserved: Collection[str] = (),
    scalars: bool = False,
) -> dict[str, np.ndarray[Any, Any]]:
    """Checks a batch objective's result and returns float64 metric columns of length ``n``.

    ``reserved``: names a metric may not take (the parameters' paths and the result columns
    ``slot``, ``failed``, ... share one table with the metrics). ``scalars``: the objective got
    only scalars (a one-point grid: every parameter fixed), so numpy math on them gives a scalar,
    which is then that one point's value; otherwise a scalar is refused (one number for a chunk)."""
    where = f"objective {objective!r}, chunk slots {slots[0]}..{slots[1] - 1}"

    def refuse(text: str, metric: str | None) -> BatchObjectiveError:
        return BatchObjectiveError(f"{where}: {text}", objective=objective, metric=metric, slots=slots)

    try:
        mapping = _as_mapping(result, n)
    except _Refused as exc:
        raise refuse(f"its metric columns are ambiguous: {exc}", None) from None
    if mapping is None:
        raise refuse(
            f"returned {_type_name(result)}; a batch objective returns a dict of metric columns "
            "(name → array of one value per point), a pandas or polars DataFrame or a pyarrow Table",
            None,
        )
    out: dict[str, np.ndarray[Any, Any]] = {}
    for name, values in mapping.items():
        if not isinstance(name, str):
            raise refuse(f"metric names must be strings, got {name!r}", None)
        check_metric_name(name, objective=objective, slots=slots, reserved=reserved)
        try:
            array = _numbers(values, n)
        except _Refused as exc:
            raise refuse(f"metric {name!r}: {exc}", name) from None
        if array.ndim == 0 and scalars and n == 1 and array.dtype.kind in "biuf":
            array = array.reshape(1)
        if array.ndim != 1 or len(array) != n:
            if array.ndim == 0:
                got = "a scalar" if array.dtype.kind != "O" else f"a {type(values).__name__}"
            else:
                got = f"shape {array.shape}"
            raise refuse(f"metric {name!r} has {got}, expected {n} values (one per point, in order)", name)
        if array.dtype.kind not in "biuf":
            kind = "mixed or non-numeric values" if array.dtype.kind == "O" else f"dtype {array.dtype}"
            raise refuse(
                f"metric {name!r} is not numeric ({kind}); return numbers (int, float or bool arrays)",
                name,
            )
        inexact = _inexact(array)
        if inexact is not None:
            raise refuse(f"metric {name!r}: {inexact}", name)
        out[name] = array.astype(np.float64, copy=False)
    missing = [m for m in expected if m not in out]
    if missing:
        raise refuse(
            f"missing metric {', '.join(map(repr, missing))} (got {', '.join(map(repr, out)) or 'none'})",
            missing[0],
        )
    return out


def _take(columns: Mapping[str, Any], lo: int, hi: int) -> dict[str, Any]:
    return {k: v[lo:hi] if isinstance(v, np.ndarray) else v for k, v in columns.items()}


def evaluate_batch(
    fn: Callable[..., Any],
    columns: Mapping[str, Any],
    config: Any,
    n: int,
    *,
    objective: str,
    start: int,
    expected: Sequence[str],
    retry_failed: int = 0,
    budget: int = CALL_BUDGET,
    reserved: Collection[str] = (),
) -> ChunkResult:
    """Calls a batch objective on the chunk, bisecting pieces that raise (breadth first)."""
    t0 = time.perf_counter()
    scalars = not any(isinstance(v, np.ndarray) for v in columns.values())
    metrics: dict[str, np.ndarray[Any, Any]] = {}
    failed = np.zeros(n, dtype=bool)
    reasons: list[str | None] = [None] * n
    names: list[str] | None = None
    calls = 0
    # (lo, hi, depth, reason of the parent that failed)
    queue: deque[tuple[int, int, int, str | None]] = deque([(0, n, 0, None)])
    level_fail: dict[int, set[str]] = {}
    level_ok: set[int] = set()
    tries: dict[tuple[int, int], int] = {}

    def fail(lo: int, hi: int, reason: str) -> None:
        failed[lo:hi] = True
        for i in range(lo, hi):
            reasons[i] = reason

    while queue:
        lo, hi, depth, parent = queue.popleft()
        width = 1 << depth
        uniform = level_fail.get(depth - 1)
        if (
            parent is not None
            and width > UNIFORM_WIDTH
            and depth - 1 not in level_ok
            and uniform is not None
            and len(uniform) == 1
        ):
            fail(lo, hi, parent)  # every piece of the previous split failed the same way
            continue
        if calls >= budget and parent is not None:
            fail(lo, hi, f"{parent} (not isolated further: {budget} calls spent on this chunk)")
            continue
        calls += 1
        try:
            raw = fn(_take(columns, lo, hi), config)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # SystemExit too: the piece fails, as a per-trial trial would
            reason = short_message(exc)
            level_fail.setdefault(depth, set()).add(reason)
            if hi - lo == 1:
                tried = tries.get((lo, hi), 0)
                if tried < retry_failed:
                    tries[(lo, hi)] = tried + 1
                    queue.append((lo, hi, depth, reason))
                else:
                    fail(lo, hi, reason)
                continue
            mid = (lo + hi) // 2
            queue.append((lo, mid, depth + 1, reason))
            queue.append((mid, hi, depth + 1, reason))
            continue
        level_ok.add(depth)
        got = metric_columns(
            raw,
            hi - lo,
            objective=objective,
            slots=(start + lo, start + hi),
            expected=expected,
            reserved=reserved,
            scalars=scalars,
        )
        if names is None:
            names = list(got)
            if hi - lo == n:
                metrics = got  # the whole chunk in one call: its columns as they are
                continue
            metrics = {k: np.full(n, np.nan) for k in names}
        elif set(got) != set(names):
            raise BatchObjectiveError(
                f"objective {objective!r}, chunk slots {start + lo}..{start + hi - 1}: returned metrics "
                f"{sorted(got)}, but other points of the chunk returned {sorted(names)}",
                objective=objective,
                metric=None,
                slots=(start + lo, start + hi),
            )
        for k, v in got.items():
            metrics[k][lo:hi] = v
    if names is None:
        metrics = {k: np.full(n, np.nan) for k in expected}
    return ChunkResult(
        n=n, metrics=metrics, failed=failed, reasons=reasons, calls=calls, seconds=time.perf_counter() - t0
    )


def evaluate_points(
    fn: Callable[[Any], Any],
    columns: Mapping[str, Any],
    n: int,
    *,
    merge: Callable[[dict[str, Any]], Any],
    retry_failed: int = 0,
    expected: Sequence[str] = (),
    objective: str = "?",
    start: int = 0,
) -> ChunkResult:
    """Calls a per-point callable on every point of the chunk with its merged config.

    It may return what it returns in a per-trial sweep: a dict of metrics, one number (the one
    objective metric), or a pandas Series (its scalar numbers). A point that returns something else,
    lacks an objective metric (``expected``) or gives it a value that is not a number fails with
    the reason; side metrics that are not numbers are not recorded (the columns hold numbers).

    The loop is the whole per-point overhead of batch mode: a dict per point from the columns'
    Python lists, the merge, two clock reads and appending the returned metrics.
    """
    t0 = time.perf_counter()
    varying = [k for k, v in columns.items() if isinstance(v, np.ndarray)]
    constants = {k: v for k, v in columns.items() if not isinstance(v, np.ndarray)}
    lists = [columns[k].tolist() for k in varying]
    keys, head = [*constants, *varying], tuple(constants.values())
    names: list[str] = []
    values: list[list[Any]] = []
    failed = np.zeros(n, dtype=bool)
    reasons: list[str | None] = [None] * n
    durations: list[float] = []
    clock = time.perf_counter
    rows = zip(*lists, strict=True) if lists else ((),) * n

    def other(i: int, out: dict[str, Any]) -> None:
        """A point whose metrics are not the names so far: new names get columns (NaN before)."""
        out = {str(k): v for k, v in out.items()}  # {1: 0.5} names a metric "1", as per trial
        for k in out:
            if k not in names:
                names.append(k)
                values.append([math.nan] * i)
        for k, column in zip(names, values, strict=True):
            column.append(out.get(k, math.nan))
        missing = [m for m in expected if m not in out]
        if missing:
            failed[i] = True
            reasons[i] = f"missing metric {missing[0]!r} (got {', '.join(map(str, out)) or 'none'})"

    # The common path (a dict of the same metrics every time) is kept to the bare minimum: this loop
    # is the per-point overhead of batch mode over calling the function (issue 13: <= 3 us).
    for i, row in enumerate(rows):
        point = dict(zip(keys, head + row, strict=True))
        started = clock()
        try:
            out = fn(merge(point))
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # SystemExit too: the point fails, as a per-trial trial would
            out, reason = _retry(fn, merge, point, retry_failed, exc)
            if reason is not None:
                durations.append(clock() - started)
                failed[i] = True
                reasons[i] = reason
                for column in values:
                    column.append(math.nan)
                continue
        durations.append(clock() - started)
        if type(out) is not dict:
            got = _point_metrics(out, expected)
            if isinstance(got, str):
                failed[i] = True
                reasons[i] = got
                for column in values:
                    column.append(math.nan)
                continue
            out = got
        if len(out) != len(names):
            other(i, out)
            continue
        try:
            for k, column in zip(names, values, strict=True):
                column.append(out[k])
        except KeyError:
            for column in values:
                del column[i:]
            other(i, out)
    metrics: dict[str, np.ndarray[Any, Any]] = {}
    wanted = set(expected)

    def fail(i: int, why: str) -> None:
        failed[i] = True
        reasons[i] = why

    for k, column in zip(names, values, strict=True):
        if k in wanted and not _BOOLS.isdisjoint(map(type, column)):  # (C-speed scan)
            # A bool is no objective value, as per trial ("is not a number: True (bool)"); numpy
            # would read it as 1.0 and rank the point (the same callable scored in two modes).
            for i in [i for i, v in enumerate(column) if type(v) in _BOOLS and not failed[i]]:
                why = pick_value({k: column[i]}, [k], source="the callable's result")
                fail(i, why if isinstance(why, str) else f"metric {k!r} is not a number")
                column[i] = math.nan
        try:
            array = np.asarray(column, dtype=np.float64)
            if array.ndim != 1:
                raise ValueError(k)
            # An int past 2**53 may have been rounded on its way in (9007199254740993 -> ...992):
            # its point fails rather than keep a value it did not return.
            for i in np.flatnonzero(np.abs(array) >= _EXACT).tolist():
                v = column[i]
                inexact = inexact_integer(v) if type(v) is int and not failed[i] else None
                if inexact is not None:
                    fail(i, f"metric {k!r}: {inexact}")
                    array[i] = math.nan
        except (TypeError, ValueError, OverflowError):
            array = np.full(n, np.nan)
            for i, v in enumerate(column):
                number = _real(v)
                inexact = inexact_integer(v) if number is not None and type(v) is int else None
                if number is not None and inexact is None:
                    array[i] = number
                elif failed[i]:
                    continue
                elif inexact is not None:
                    fail(i, f"metric {k!r}: {inexact}")
                elif k in wanted or type(v) is int:
                    # why, as a per-trial sweep says it ("is not a number", "is too large for a
                    # float"); an int no float holds fails its point even as a side metric
                    why = pick_value({k: v}, [k], source="the callable's result")
                    fail(i, why if isinstance(why, str) else f"metric {k!r} is not a number")
            if k not in wanted and np.isnan(array).all():
                continue  # a side metric that never was a number (a note, a trade list)
        metrics[k] = array
    return ChunkResult(
        n=n,
        metrics=metrics,
        failed=failed,
        reasons=reasons,
        calls=n,
        durations=np.asarray(durations, dtype=np.float32),
        seconds=time.perf_counter() - t0,
    )


def _real(value: Any) -> float | None:
    """A returned metric value as a float, None when it is none (not a number, or an int too large
    for a float)."""
    if not isinstance(value, numbers.Real):
        return None
    try:
        return float(value)
    except Exception:  # OverflowError (10**400), or a Real whose __float__ raises
        return None


_BOOLS = frozenset((bool, np.bool_))


def _point_metrics(out: Any, expected: Sequence[str]) -> dict[str, Any] | str:
    """A per-point callable's result that is not a dict, as metrics (or why it cannot be one), as
    a per-trial sweep reads it."""
    if isinstance(out, Mapping):
        return {str(k): v for k, v in out.items()}
    if (
        not isinstance(out, str | bytes)
        and callable(getattr(out, "items", None))
        and callable(getattr(out, "keys", None))
    ):
        # A pandas Series, e.g. backtesting.py's stats: its scalar numbers are the metrics.
        return {str(k): v for k, v in out.items() if isinstance(v, numbers.Real)}
    if isinstance(out, numbers.Real) and not isinstance(out, bool):
        if len(expected) == 1:
            return {expected[0]: out}
        return (
            f"callable returned one number but {len(expected)} metrics are expected "
            f"({', '.join(expected)}): return a dict"
        )
    return f"callable returned {type(out).__name__}; expected a number, a dict of metrics or a pandas Series"


def _retry(
    fn: Callable[[Any], Any],
    merge: Callable[[dict[str, Any]], Any],
    point: dict[str, Any],
    times: int,
    exc: BaseException,
) -> tuple[Any, str | None]:
    """After a point raised ``exc``: up to ``times`` more calls; (result, None) or (None, reason)."""
    for _ in range(times):
        try:
            return fn(merge(point)), None
        except KeyboardInterrupt:
            raise
        except BaseException as again:
            exc = again
    return None, short_message(exc)


def evaluate_isolated(
    call: Callable[[Mapping[str, Any], int, int], ChunkResult],
    columns: Mapping[str, Any],
    n: int,
    *,
    start: int,
    timeout: float | None = None,
    budget: int = FORK_BUDGET,
) -> ChunkResult:
    """``call(columns, n, start)`` (an evaluation as above) in a forked child process; a piece whose
    process dies or runs past ``timeout`` seconds is split in two, breadth first, until the points
    that kill it are isolated and fail with how it died. Within ``budget`` processes; when every
    piece of a ``FORK_UNIFORM_WIDTH``-way split died, the rest of the chunk fails whole."""
    t0 = time.perf_counter()
    failed = np.zeros(n, dtype=bool)
    reasons: list[str | None] = [None] * n
    parts: list[tuple[int, ChunkResult]] = []
    queue: deque[tuple[int, int, int, str | None]] = deque([(0, n, 0, None)])
    died: dict[int, int] = {}
    forks = calls = 0

    def fail(lo: int, hi: int, reason: str) -> None:
        failed[lo:hi] = True
        reasons[lo:hi] = [reason] * (hi - lo)

    while queue:
        lo, hi, depth, parent = queue.popleft()
        width = 1 << (depth - 1) if depth else 0  # the previous level's pieces (all died: whole)
        if parent is not None and width >= FORK_UNIFORM_WIDTH and died.get(depth - 1) == width:
            fail(lo, hi, parent)
            continue
        if forks >= budget and parent is not None:
            fail(lo, hi, f"{parent} (not isolated further: {budget} processes spent on this chunk)")
            continue
        forks += 1
        got, death = _in_child(call, _take(columns, lo, hi), hi - lo, start + lo, timeout)
        if got is not None:
            parts.append((lo, got))
            calls += got.calls
            continue
        died[depth] = died.get(depth, 0) + 1
        if hi - lo == 1:
            fail(lo, hi, death)
            continue
        mid = (lo + hi) // 2
        queue.append((lo, mid, depth + 1, death))
        queue.append((mid, hi, depth + 1, death))
    names: list[str] = []
    for _, part in parts:
        names += [m for m in part.metrics if m not in names]
    metrics = {m: np.full(n, np.nan) for m in names}
    durations = np.zeros(n, dtype=np.float32) if any(p.durations is not None for _, p in parts) else None
    for lo, part in parts:
        hi = lo + part.n
        for m, values in part.metrics.items():
            metrics[m][lo:hi] = values
        failed[lo:hi] = part.failed
        reasons[lo:hi] = part.reasons
        if durations is not None and part.durations is not None:
            durations[lo:hi] = part.durations
    result = ChunkResult(
        n=n,
        metrics=metrics,
        failed=failed,
        reasons=reasons,
        calls=calls + forks,
        durations=durations,
        seconds=time.perf_counter() - t0,
    )
    result.extra["deaths"] = sum(died.values())
    return result


def _in_child(
    call: Callable[[Mapping[str, Any], int, int], ChunkResult],
    columns: Mapping[str, Any],
    n: int,
    start: int,
    timeout: float | None,
) -> tuple[ChunkResult | None, str]:
    """(the child's result, "") or (None, how its process died)."""
    read, write = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns when a process with threads forks: the child only runs the objective
        # and writes to its pipe (no lock of the heartbeat or checkpoint threads is taken).
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child (its outcome is what the tests check)
        os.close(read)
        try:
            # SIGTERM (also sent when the worker dies, below) ends the child at once, even inside a
            # C loop that never returns to Python: nothing of it is worth a graceful exit.
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            follow_parent(os.getppid())
            payload = pickle.dumps(("ok", call(columns, n, start)), protocol=pickle.HIGHEST_PROTOCOL)
        except KeyboardInterrupt:
            os._exit(130)
        except BatchObjectiveError as exc:
            payload = pickle.dumps(("bad", str(exc), exc.objective, exc.metric, exc.slots))
        except BaseException as exc:
            payload = pickle.dumps(("error", short_message(exc)))
        try:
            with os.fdopen(write, "wb") as f:
                f.write(payload)
        finally:
            os._exit(0)
    os.close(write)
    data = bytearray()
    deadline = None if timeout is None else time.monotonic() + timeout
    timed_out = False
    try:
        while True:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([read], [], [], wait)
            if not ready:
                timed_out = True
                os.kill(pid, signal.SIGKILL)
                break
            block = os.read(read, 1 << 20)
            if not block:
                break
            data += block
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        raise
    finally:
        os.close(read)
        _, status = os.waitpid(pid, 0)
    if timed_out:
        return None, f"timeout after {timeout:g}s"
    code = os.waitstatus_to_exitcode(status)
    if data and code == 0:
        kind, *rest = pickle.loads(bytes(data))
        if kind == "ok":
            return rest[0], ""
        if kind == "bad":
            raise BatchObjectiveError(rest[0], objective=rest[1], metric=rest[2], slots=tuple(rest[3]))
        failed = np.ones(n, dtype=bool)
        return ChunkResult(n=n, metrics={}, failed=failed, reasons=[rest[0]] * n), ""
    if code == 130:
        raise KeyboardInterrupt
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:  # a signal number Python has no name for
            name = str(-code)
        return None, f"the objective's process was killed by {name}"
    return None, f"the objective's process exited with code {code} (os._exit in the objective?)"
