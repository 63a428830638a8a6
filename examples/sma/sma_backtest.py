"""A tiny moving-average crossover backtest, the callable objective of ``sma_sweep.toml``.

It trades a synthetic, deterministic price series so the example runs anywhere in a second.
"""

from __future__ import annotations

import math
import random
from typing import Any

_PRICES: list[float] = []


def _prices() -> list[float]:
    # Built once per process: every trial of a worker shares the same data.
    if not _PRICES:
        rng = random.Random(7)
        price = 100.0
        for i in range(2_000):
            price *= 1.0 + 0.0004 * math.sin(i / 90.0) + rng.gauss(0.0, 0.01)
            _PRICES.append(price)
    return _PRICES


def run(config: dict[str, Any]) -> dict[str, float]:
    """Long when the fast average is above the slow one; returns sharpe, trades and max_drawdown."""
    prices = _prices()
    fast, slow = int(config["signal"]["fast"]), int(config["signal"]["slow"])
    stop = float(config["risk"]["stop_loss"])
    cost = float(config["costs"]["per_trade"])
    fast_sum, slow_sum = sum(prices[slow - fast : slow]), sum(prices[:slow])
    returns, trades, position, entry = [], 0, 0, 0.0
    equity, peak, drawdown = 1.0, 1.0, 0.0
    for i in range(slow, len(prices)):
        r = prices[i] / prices[i - 1] - 1.0
        step = position * r
        if position and prices[i] < entry * (1.0 - stop):
            position, step = 0, step - cost
        want = 1 if fast_sum / fast > slow_sum / slow else 0
        if want != position:
            position, trades, entry = want, trades + 1, prices[i]
            step -= cost
        returns.append(step)
        equity *= 1.0 + step
        peak = max(peak, equity)
        drawdown = max(drawdown, 1.0 - equity / peak)
        fast_sum += prices[i] - prices[i - fast]
        slow_sum += prices[i] - prices[i - slow]
    mean = sum(returns) / len(returns)
    var = sum((x - mean) ** 2 for x in returns) / len(returns)
    sharpe = mean / math.sqrt(var) * math.sqrt(252) if var > 0 else 0.0
    return {"sharpe": sharpe, "trades": float(trades), "max_drawdown": drawdown}
