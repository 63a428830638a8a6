"""Deterministic synthetic OHLC prices: a seeded geometric random walk that switches regimes.

No dataset of clear licence ships with fastgrid, so the example trades generated prices. The
regimes (trending up, trending down, choppy) give a moving-average strategy something to find:
the same seed always gives the same bars, on every machine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["OHLC", "generate_ohlc"]

# (drift per bar, volatility per bar) of each regime.
_REGIMES = np.array([[0.0006, 0.008], [-0.0005, 0.010], [0.0, 0.006]])


@dataclass(frozen=True)
class OHLC:
    """Bars of one synthetic symbol: four float arrays of equal length."""

    symbol: str
    timeframe: str
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray

    def __len__(self) -> int:
        return len(self.close)

    def window(self, start: int, end: int | None) -> OHLC:
        """Bars ``start`` (inclusive) to ``end`` (exclusive), like a slice."""
        s = slice(start, end)
        return OHLC(self.symbol, self.timeframe, self.open[s], self.high[s], self.low[s], self.close[s])


def generate_ohlc(
    *, bars: int = 4000, seed: int = 7, symbol: str = "SYNTH", timeframe: str = "1h", start: float = 100.0
) -> OHLC:
    """``bars`` bars of a regime-switching geometric random walk starting at ``start``."""
    if bars < 2:
        raise ValueError(f"bars: expected at least 2, got {bars}")
    rng = np.random.default_rng(seed)
    # Regimes last a geometric number of bars (mean 250), long enough for trends to be tradeable.
    lengths = rng.geometric(1 / 250, size=bars)
    labels = np.repeat(rng.integers(0, len(_REGIMES), size=bars), lengths)[:bars]
    drift, vol = _REGIMES[labels, 0], _REGIMES[labels, 1]
    log_ret = drift - 0.5 * vol**2 + vol * rng.standard_normal(bars)
    close = start * np.exp(np.cumsum(log_ret))
    open_ = np.concatenate(([start], close[:-1]))
    # Intrabar range: a positive excursion beyond the open/close on each side.
    wick = np.abs(rng.standard_normal((2, bars))) * vol * close * 0.5
    high = np.maximum(open_, close) + wick[0]
    low = np.maximum(np.minimum(open_, close) - wick[1], 1e-9)
    return OHLC(symbol, timeframe, open_, high, low, close)
