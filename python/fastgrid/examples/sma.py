"""A vectorized moving-average crossover backtest: the callable objective of the bundled sweeps.

The strategy holds a long position (or, in ``long_short`` mode, a short one too) while the fast
simple moving average is above (below) the slow one, decided on a bar's close and held from the
next bar on; every change of position pays ``costs.per_trade`` (a fraction of equity). It runs
on a window of the synthetic bars of :mod:`fastgrid.examples.data`, chosen by ``data.start`` and
``data.end``, so a validation step can re-run a trial on held-out bars with a config override.
Besides its metrics, :func:`run` returns the strategy's per-bar returns under the reserved key
``returns``, from which fastgrid computes the deflated Sharpe ratio and PBO of a sweep.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from fastgrid.examples.data import OHLC, generate_ohlc

__all__ = ["backtest", "load_bars", "run"]

_BARS_PER_YEAR = {"1m": 525_600, "5m": 105_120, "15m": 35_040, "1h": 8_760, "4h": 2_190, "1d": 365}


@functools.lru_cache(maxsize=8)
def load_bars(symbol: str, timeframe: str, bars: int, seed: int) -> OHLC:
    """The generated bars, built once per process and shared by every trial (never mutated)."""
    data = generate_ohlc(bars=bars, seed=seed, symbol=symbol, timeframe=timeframe)
    for arr in (data.open, data.high, data.low, data.close):
        arr.flags.writeable = False
    return data


def _sma(close: np.ndarray, n: int) -> np.ndarray:
    """Simple moving average; NaN for the first ``n - 1`` bars."""
    out = np.full(len(close), np.nan)
    if n <= len(close):
        csum = np.cumsum(np.concatenate(([0.0], close)))
        out[n - 1 :] = (csum[n:] - csum[:-n]) / n
    return out


def backtest(
    close: np.ndarray,
    *,
    fast: int,
    slow: int,
    mode: str = "long",
    cost: float = 0.0005,
    bars_per_year: float = 8_760,
    with_returns: bool = False,
) -> dict[str, Any]:
    """Metrics of the crossover strategy on ``close``: sharpe, total_return, max_drawdown, trades, win_rate.

    ``sharpe`` is annualized with ``bars_per_year``; ``max_drawdown`` is a positive fraction;
    ``win_rate`` is the fraction of round trips (entry to exit or to the last bar) that gained.
    ``with_returns`` adds ``returns``: the strategy's return on every bar of ``close`` (0 while
    it holds no position), so that every configuration's series covers the same bars.
    """
    if not 1 <= fast < slow:
        raise ValueError(f"expected 1 <= fast < slow, got fast={fast}, slow={slow}")
    if mode not in ("long", "long_short"):
        raise ValueError(f"mode: expected 'long' or 'long_short', got {mode!r}")
    close = np.asarray(close, dtype=float)
    if len(close) <= slow + 1:
        raise ValueError(f"need more than slow + 1 = {slow + 1} bars, got {len(close)}")
    diff = _sma(close, fast) - _sma(close, slow)
    signal = np.where(diff > 0, 1.0, -1.0 if mode == "long_short" else 0.0)
    signal[np.isnan(diff)] = 0.0
    # Decided on bar i's close, held over bar i + 1: no look-ahead.
    position = np.concatenate(([0.0], signal[:-1]))
    bar_ret = np.concatenate(([0.0], close[1:] / close[:-1] - 1.0))
    changes = np.abs(np.diff(position, prepend=0.0))
    strat = position * bar_ret - cost * changes
    equity = np.cumprod(1.0 + strat)
    drawdown = 1.0 - equity / np.maximum.accumulate(equity)
    active = strat[slow:]
    std = active.std()
    sharpe = float(active.mean() / std * np.sqrt(bars_per_year)) if std > 0 else 0.0
    # Round trips: a new one starts wherever the position changes to a non-zero value.
    entries = (changes > 0) & (position != 0)
    trade_id = np.cumsum(entries)
    in_trade = (position != 0) & (trade_id > 0)
    trades = int(entries.sum())
    if trades:
        log_growth = np.log1p(strat[in_trade])
        per_trade = np.bincount(trade_id[in_trade] - 1, weights=log_growth, minlength=trades)
        win_rate = float((per_trade > 0).mean())
    else:
        win_rate = 0.0
    metrics: dict[str, Any] = {
        "sharpe": sharpe,
        "total_return": float(equity[-1] - 1.0),
        "max_drawdown": float(drawdown.max()),
        "trades": float(trades),
        "win_rate": win_rate,
    }
    if with_returns:
        metrics["returns"] = strat
    return metrics


def run(config: dict[str, Any]) -> dict[str, Any]:
    """The sweep's objective: the merged config in, the backtest's metrics and returns out."""
    data_cfg = config["data"]
    bars = load_bars(
        str(data_cfg["symbol"]), str(data_cfg["timeframe"]), int(data_cfg["bars"]), int(data_cfg["seed"])
    )
    window = bars.window(int(data_cfg["start"]), data_cfg.get("end"))
    return backtest(
        window.close,
        fast=int(config["signal"]["fast"]),
        slow=int(config["signal"]["slow"]),
        mode=str(config["signal"]["mode"]),
        cost=float(config["costs"]["per_trade"]),
        bars_per_year=_BARS_PER_YEAR.get(bars.timeframe, 8_760),
        with_returns=True,
    )
