"""The moving-average crossover of :mod:`fastgrid.examples.sma`, vectorized over a batch chunk.

``run(columns, config)`` is a batch objective: it scores every ``(fast, slow, mode)`` point of a
chunk in numpy passes over a (points x bars) matrix, a block of points at a time so the matrices
stay small, and returns the same metrics as the per-trial ``sma.run`` gives point by point (up to
floating-point summation order). Each window's moving average is computed once per chunk.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from fastgrid.examples.sma import _BARS_PER_YEAR, _sma, load_bars

__all__ = ["backtest_many", "run"]

# Points per numpy pass: a block's matrices are BLOCK x bars float64 (3000 bars: ~6 MB each).
BLOCK = 256


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
    if n and not ((fast >= 1) & (fast < slow)).all():
        raise ValueError("expected 1 <= fast < slow for every point")
    if n and bars <= int(slow.max()) + 1:
        raise ValueError(f"need more than slow + 1 = {int(slow.max()) + 1} bars, got {bars}")
    windows, inverse = np.unique(np.concatenate([fast, slow]), return_inverse=True)
    table = np.stack([_sma(close, int(w)) for w in windows]) if n else np.empty((0, bars))
    fast_row, slow_row = inverse[:n], inverse[n:]
    bar_ret = np.concatenate(([0.0], close[1:] / close[:-1] - 1.0))
    cols = np.arange(bars)
    out = {k: np.empty(n) for k in ("sharpe", "total_return", "max_drawdown", "trades", "win_rate")}
    for lo in range(0, n, BLOCK):
        hi = min(lo + BLOCK, n)
        m = hi - lo
        diff = table[fast_row[lo:hi]] - table[slow_row[lo:hi]]
        short = np.where(long_short[lo:hi], -1.0, 0.0)[:, None]
        signal = np.where(diff > 0, 1.0, short)
        signal[np.isnan(diff)] = 0.0
        position = np.zeros_like(signal)
        position[:, 1:] = signal[:, :-1]
        changes = np.abs(np.diff(position, axis=1, prepend=0.0))
        strat = position * bar_ret - costs[lo:hi, None] * changes
        equity = np.cumprod(1.0 + strat, axis=1)
        drawdown = 1.0 - equity / np.maximum.accumulate(equity, axis=1)
        active = cols[None, :] >= slow[lo:hi, None]
        count = active.sum(axis=1)
        mean = np.where(active, strat, 0.0).sum(axis=1) / count
        std = np.sqrt(np.where(active, (strat - mean[:, None]) ** 2, 0.0).sum(axis=1) / count)
        with np.errstate(divide="ignore", invalid="ignore"):
            sharpe = np.where(std > 0, mean / std * np.sqrt(bars_per_year), 0.0)
        entries = (changes > 0) & (position != 0)
        trades = entries.sum(axis=1)
        trade_id = np.cumsum(entries, axis=1)
        in_trade = (position != 0) & (trade_id > 0)
        rows = np.broadcast_to(np.arange(m)[:, None], (m, bars))
        per_trade = np.bincount(
            (rows[in_trade] * (bars + 1) + trade_id[in_trade] - 1),
            weights=np.log1p(strat[in_trade]),
            minlength=m * (bars + 1),
        ).reshape(m, bars + 1)
        wins = (per_trade > 0).sum(axis=1)
        out["sharpe"][lo:hi] = sharpe
        out["total_return"][lo:hi] = equity[:, -1] - 1.0
        out["max_drawdown"][lo:hi] = drawdown.max(axis=1)
        out["trades"][lo:hi] = trades
        out["win_rate"][lo:hi] = np.where(trades > 0, wins / np.maximum(trades, 1), 0.0)
    return out


def _value(columns: Mapping[str, Any], config: Mapping[str, Any], path: str, n: int) -> np.ndarray[Any, Any]:
    """A parameter's column, or its value (a fixed parameter, else the default config) repeated."""
    if path in columns:
        return np.broadcast_to(np.asarray(columns[path]), (n,))
    node: Any = config
    for part in path.split("."):
        node = node[part]
    return np.full(n, node)


def run(columns: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, np.ndarray[Any, Any]]:
    """The batch objective: a chunk's parameter columns and the default config in, metric columns out."""
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
    return backtest_many(
        window.close,
        _value(columns, config, "signal.fast", n),
        _value(columns, config, "signal.slow", n),
        mode == "long_short",
        cost=_value(columns, config, "costs.per_trade", n).astype(float),
        bars_per_year=_BARS_PER_YEAR.get(bars.timeframe, 8_760),
    )
