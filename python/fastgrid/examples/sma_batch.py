"""The moving-average crossover of :mod:`fastgrid.examples.sma`, vectorized over a batch chunk.

``run(columns, config)`` is a batch objective: it scores every ``(fast, slow, mode, cost)`` point of
a chunk and returns the same metrics as the per-trial ``sma.run`` gives point by point (up to
floating-point summation order, about 1e-12). Only the crossings of the two averages cost a pass
over the bars, once per ``(fast, slow)`` pair of the chunk; a position is constant between its
changes, so each point's sums, equity and drawdown come from its runs between changes, through
prefix sums of the bar returns and a sparse table of the log equity of holding long or short:
about 15-50 microseconds a point on a 3,000-bar series (one numpy pass over the bars per point
took ~200), more where the windows are short and cross often."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from fastgrid.examples.sma import _BARS_PER_YEAR, _sma, backtest, load_bars

__all__ = ["backtest_many", "run"]

# Points per block: their crossings, change lists and runs are computed together.
POINTS = 4096
# (fast, slow) pairs whose averages are compared at once (2 x ROWS x bars float64 temporaries).
ROWS = 128


def backtest_many(
    close: np.ndarray[Any, Any],
    fast: np.ndarray[Any, Any],
    slow: np.ndarray[Any, Any],
    long_short: np.ndarray[Any, Any],
    *,
    cost: float | np.ndarray[Any, Any] = 0.0005,
    bars_per_year: float = 8_760,
) -> dict[str, np.ndarray[Any, Any]]:
    """``sma.backtest`` for many points: metric columns (one value per point) of the crossover."""
    close = np.asarray(close, dtype=float)
    fast, slow = np.asarray(fast, dtype=np.int64), np.asarray(slow, dtype=np.int64)
    long_short = np.asarray(long_short, dtype=bool)
    n, bars = len(fast), len(close)
    costs = np.broadcast_to(np.asarray(cost, dtype=float), (n,))
    out = {k: np.zeros(n) for k in ("sharpe", "total_return", "max_drawdown", "trades", "win_rate")}
    if not n:
        return out
    if not ((fast >= 1) & (fast < slow)).all():
        raise ValueError("expected 1 <= fast < slow for every point")
    if bars <= int(slow.max()) + 1:
        raise ValueError(f"need more than slow + 1 = {int(slow.max()) + 1} bars, got {bars}")
    bar_ret = np.concatenate(([0.0], close[1:] / close[:-1] - 1.0))
    # Inclusive prefix sums over bars: the sums of any run of bars in O(1).
    r1, r2 = np.cumsum(bar_ret), np.cumsum(bar_ret * bar_ret)
    with np.errstate(divide="ignore", invalid="ignore"):
        grow = {1: np.cumsum(np.log1p(bar_ret)), -1: np.cumsum(np.log1p(-bar_ret))}
    tables = {v: _level_tables(x) for v, x in grow.items()}
    windows, inverse = np.unique(np.concatenate([fast, slow]), return_inverse=True)
    table = np.stack([_sma(close, int(w)) for w in windows])
    pair_key = inverse[:n] * len(windows) + inverse[n:]
    for lo in range(0, n, POINTS):
        hi = min(lo + POINTS, n)
        _block(
            out,
            slice(lo, hi),
            pair_key[lo:hi],
            len(windows),
            table,
            slow[lo:hi],
            long_short[lo:hi],
            costs[lo:hi],
            bar_ret,
            r1,
            r2,
            grow,
            tables,
            bars_per_year,
        )
    return out


def _block(
    out: dict[str, np.ndarray[Any, Any]],
    where: slice,
    pair_key: np.ndarray[Any, Any],
    width: int,
    table: np.ndarray[Any, Any],
    slow: np.ndarray[Any, Any],
    long_short: np.ndarray[Any, Any],
    cost: np.ndarray[Any, Any],
    bar_ret: np.ndarray[Any, Any],
    r1: np.ndarray[Any, Any],
    r2: np.ndarray[Any, Any],
    grow: dict[int, np.ndarray[Any, Any]],
    tables: dict[int, tuple[np.ndarray[Any, Any], ...]],
    bars_per_year: float,
) -> None:
    """The metrics of one block of points, from the crossings of their (fast, slow) pairs.

    The position is constant between changes, so every metric is a sum over the runs between
    them (prefix sums of the bar returns) plus the change bars themselves; the drawdown combines
    each run's (max, min, drawdown) of log equity from a sparse table of the whole series.
    """
    bars = len(bar_ret)
    m = len(pair_key)
    pairs, pair_of = np.unique(pair_key, return_inverse=True)
    pair_slow = np.zeros(len(pairs), dtype=np.int64)
    pair_slow[pair_of] = slow
    # above[u, i]: the fast average is above the slow one at bar i's close (False while either is NaN).
    above = np.empty((len(pairs), bars), dtype=bool)
    for i in range(0, len(pairs), ROWS):  # a few MB of float rows at a time
        part = pairs[i : i + ROWS]
        np.greater(table[part // width], table[part % width], out=above[i : i + ROWS])
    start = pair_slow - 1  # the first bar whose signal is defined
    start_above = above[np.arange(len(pairs)), start]
    flips = above[:, 1:] != above[:, :-1]
    row, col = np.nonzero(flips)
    at = col + 1  # signal index i flips at i; the position changes at bar i + 1
    keep = (at >= start[row] + 1) & (at <= bars - 2)
    row, at = row[keep], at[keep]
    n_cross = np.bincount(row, minlength=len(pairs))
    cross_ptr = np.concatenate(([0], np.cumsum(n_cross)))
    # Every point's changes: the first one (long/short: always; long: when it starts above), then
    # each crossing of its pair.
    first = long_short | start_above[pair_of]
    counts = first.astype(np.int64) + n_cross[pair_of]
    total = int(counts.sum())
    offsets = np.concatenate(([0], np.cumsum(counts)))
    point = np.repeat(np.arange(m), counts)
    k = np.arange(total) - offsets[point]  # the change's rank in its point's list
    is_first = first[point] & (k == 0)
    cross_rank = k - first[point]
    signal_at = start[pair_of][point]
    crossing = np.flatnonzero(~is_first)
    signal_at[crossing] = at[cross_ptr[pair_of][point][crossing] + cross_rank[crossing]]
    up = above[pair_of[point], signal_at]
    ls = long_short[point]
    value = np.where(up, 1, np.where(ls, -1, 0))
    change = np.where(is_first, 1.0, np.where(ls, 2.0, 1.0))
    bar = signal_at + 1  # the change bar
    last = np.empty(total, dtype=np.int64)  # the last bar of the run that starts at the change
    last[:-1] = bar[1:] - 1
    ends = offsets[1:][counts > 0] - 1
    last[ends] = bars - 1
    if total:
        last[-1] = bars - 1
    c = cost[point] * change
    first_ret = value * bar_ret[bar] - c  # the change bar's return, with the cost of the change
    a = np.log1p(first_ret)
    s1 = value * (r1[last] - r1[bar]) + first_ret
    s2 = (value != 0) * (r2[last] - r2[bar]) + first_ret * first_ret
    # Log equity over the run, relative to before the change bar: a, then a + grow[t] - grow[bar].
    rmax, rmin, rdd = np.full(total, 0.0), np.full(total, 0.0), np.full(total, 0.0)
    span = np.zeros(total)
    longer = last > bar
    for v in (1, -1):
        sel = np.flatnonzero((value == v) & longer)
        if len(sel):
            x = grow[v]
            hi_, lo_, dd_ = _range(tables[v], x, bar[sel] + 1, last[sel])
            base = x[bar[sel]]
            rmax[sel], rmin[sel], rdd[sel] = hi_ - base, lo_ - base, dd_
            span[sel] = x[last[sel]] - base
    seg_max = a + np.maximum(rmax, 0.0)
    seg_min = a + np.minimum(rmin, 0.0)
    seg_dd = np.maximum(rdd, -np.minimum(rmin, 0.0))  # a peak at the change bar, a trough after it
    gain = a + span  # the run's log growth
    # Log equity before each run: the point's gains so far (an exclusive cumulative sum per point).
    # Summed row by row (a padded matrix), so a point's value never depends on the others in its
    # block (a flat cumulative sum would carry their rounding).
    padded = np.zeros((m, int(counts.max()) if total else 0))
    padded[point, k] = gain
    before = np.cumsum(padded, axis=1)[point, k] - gain
    peak = _running_max_before(before + seg_max, point)  # the best equity before the run (>= 0: flat start)
    drawdown = np.maximum(seg_dd, peak - (before + seg_min))
    nonempty = counts > 0
    starts = offsets[:-1][nonempty]
    idx = np.flatnonzero(nonempty)
    final = np.zeros(m)
    worst = np.zeros(m)
    sum1 = np.zeros(m)
    sum2 = np.zeros(m)
    trades = np.zeros(m)
    wins = np.zeros(m)
    if total:
        final[idx] = np.add.reduceat(gain, starts)
        worst[idx] = np.maximum.reduceat(drawdown, starts)
        sum1[idx] = np.add.reduceat(s1, starts)
        sum2[idx] = np.add.reduceat(s2, starts)
        trades[idx] = np.add.reduceat((value != 0).astype(float), starts)
        wins[idx] = np.add.reduceat(((value != 0) & (gain > 0)).astype(float), starts)
    count = bars - slow
    mean = sum1 / count
    var = np.maximum(sum2 / count - mean * mean, 0.0)
    std = np.sqrt(var)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["sharpe"][where] = np.where(std > 0, mean / std * np.sqrt(bars_per_year), 0.0)
    out["total_return"][where] = np.expm1(final)
    out["max_drawdown"][where] = -np.expm1(-np.maximum(worst, 0.0))
    out["trades"][where] = trades
    out["win_rate"][where] = np.where(trades > 0, wins / np.maximum(trades, 1), 0.0)


def _running_max_before(values: np.ndarray[Any, Any], group: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """For each element, the largest of the elements before it in its group, at least 0 (the flat
    equity before the first change); ``group`` is sorted. Exact: a running max of integer keys
    (group, rank of the value) never carries one group's maximum into the next."""
    if not len(values):
        return values
    order = np.argsort(values, kind="stable")
    rank = np.empty(len(values), dtype=np.int64)
    rank[order] = np.arange(len(values))
    keys = np.maximum.accumulate(group.astype(np.int64) * len(values) + rank)
    best = values[order[keys % len(values)]]
    before = np.empty_like(values)
    before[1:] = best[:-1]
    new_group = np.ones(len(values), dtype=bool)
    new_group[1:] = group[1:] != group[:-1]
    before[new_group] = 0.0
    return np.maximum(before, 0.0)


def _level_tables(x: np.ndarray[Any, Any]) -> tuple[np.ndarray[Any, Any], ...]:
    """A disjoint sparse table of ``x`` for (max, min, drawdown) over any range in O(1).

    Level ``h`` splits the (padded) series into blocks of ``2**(h+1)``; an index in a block's left
    half holds the aggregate from it to the middle, one in the right half from the middle to it.
    A range ``[a, b]`` (``a < b``) is the left entry of ``a`` and the right entry of ``b`` at the
    level of the highest bit of ``a ^ b``. Drawdown: the largest ``x[u] - x[t]`` with ``u <= t``.
    """
    levels = max(1, int(len(x) - 1).bit_length())
    size = 1 << levels
    padded = np.concatenate([x, np.full(size - len(x), x[-1])])
    tmax = np.empty((levels, size))
    tmin = np.empty((levels, size))
    tdd = np.empty((levels, size))
    for h in range(levels):
        half = 1 << h
        blocks = padded.reshape(-1, 2, half)
        left, right = blocks[:, 0, ::-1], blocks[:, 1]  # the left half read from the middle outwards
        lmax, lmin = np.maximum.accumulate(left, axis=1), np.minimum.accumulate(left, axis=1)
        # Left entry i covers [i, mid): a peak at u >= i before a trough after it (so: reversed).
        ldd = np.maximum.accumulate(left - lmin, axis=1)
        rmax, rmin = np.maximum.accumulate(right, axis=1), np.minimum.accumulate(right, axis=1)
        rdd = np.maximum.accumulate(rmax - right, axis=1)
        for table, lv, rv in ((tmax, lmax, rmax), (tmin, lmin, rmin), (tdd, ldd, rdd)):
            view = table[h].reshape(-1, 2, half)
            view[:, 0] = lv[:, ::-1]
            view[:, 1] = rv
    return tmax, tmin, tdd


def _range(
    tables: tuple[np.ndarray[Any, Any], ...],
    x: np.ndarray[Any, Any],
    a: np.ndarray[Any, Any],
    b: np.ndarray[Any, Any],
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """(max, min, drawdown) of ``x`` over ``[a, b]`` for arrays of ranges with ``a <= b``."""
    tmax, tmin, tdd = tables
    single = a == b
    level = np.floor(np.log2(np.maximum(a ^ b, 1))).astype(np.int64)  # the highest differing bit
    lmax, lmin, ldd = tmax[level, a], tmin[level, a], tdd[level, a]
    rmax, rmin, rdd = tmax[level, b], tmin[level, b], tdd[level, b]
    big = np.maximum(lmax, rmax)
    small = np.minimum(lmin, rmin)
    dd = np.maximum(np.maximum(ldd, rdd), lmax - rmin)
    xa = x[a]
    return np.where(single, xa, big), np.where(single, xa, small), np.where(single, 0.0, dd)


def _value(columns: Mapping[str, Any], config: Mapping[str, Any], path: str, n: int) -> np.ndarray[Any, Any]:
    """A parameter's column, or its value (a fixed parameter, else the default config) repeated."""
    if path in columns:
        return np.broadcast_to(np.asarray(columns[path]), (n,))
    node: Any = config
    for part in path.split("."):
        node = node[part]
    return np.full(n, node)


def run(
    columns: Mapping[str, Any], config: Mapping[str, Any], *, returns: bool = False
) -> dict[str, np.ndarray[Any, Any]]:
    """The batch objective: a chunk's parameter columns and the default config in, metric columns
    out. ``returns=True`` (fastgrid asks it for the few points whose series a report needs: the
    best ``keep_returns`` and a sample) adds ``returns``: each point's return on every bar, one row
    per point, as the per-trial ``sma.run`` returns it."""
    n = max((len(v) for v in columns.values() if isinstance(v, np.ndarray)), default=1)
    data_cfg = config["data"]
    bars = load_bars(
        str(data_cfg["symbol"]), str(data_cfg["timeframe"]), int(data_cfg["bars"]), int(data_cfg["seed"])
    )
    window = bars.window(int(data_cfg["start"]), data_cfg.get("end"))
    mode = _value(columns, config, "signal.mode", n)
    unknown = set(np.unique(mode).tolist()) - {"long", "long_short"}
    if unknown:
        raise ValueError(f"signal.mode: expected 'long' or 'long_short', got {sorted(unknown)}")
    fast = _value(columns, config, "signal.fast", n)
    slow = _value(columns, config, "signal.slow", n)
    cost = _value(columns, config, "costs.per_trade", n).astype(float)
    bars_per_year = _BARS_PER_YEAR.get(bars.timeframe, 8_760)
    out = backtest_many(
        window.close, fast, slow, mode == "long_short", cost=cost, bars_per_year=bars_per_year
    )
    if returns:
        # A few points: the per-point backtest's series (the one the per-trial example returns).
        out["returns"] = np.stack(
            [
                backtest(
                    window.close,
                    fast=int(f),
                    slow=int(s),
                    mode=str(m),
                    cost=float(c),
                    bars_per_year=bars_per_year,
                    with_returns=True,
                )["returns"]
                for f, s, m, c in zip(fast, slow, mode, cost, strict=True)
            ]
        )
    return out
