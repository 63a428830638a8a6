"""The returns series an objective may return beside its metrics: checked, summarized, kept.

An objective returns its per-period returns under the reserved metrics key ``returns``
(``fastgrid.attrs.RETURNS``). Every trial that does stores the four numbers the deflated Sharpe
ratio needs (periods, Sharpe ratio, skew, kurtosis); the series itself is stored, packed, only for
trials among the best ``keep_returns`` seen so far — a trial in the final top K was in the top K
when it finished, so those are always kept, and a study of N trials keeps about K·(1 + ln(N/K)).
"""

from __future__ import annotations

import heapq
import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np

from fastgrid import attrs
from fastgrid.stats import describe_returns, pack_returns, returns_series
from fastgrid.study import direction_sign

__all__ = ["ReturnsKeeper", "TrialReturns", "take_returns"]


class TrialReturns:
    """A trial's checked series, its summary for ``returns_stats`` and its packed text on demand."""

    def __init__(self, value: Any) -> None:
        self.series = returns_series(value, "returns")
        summary = describe_returns(self.series)
        self.stats = {
            "periods": summary.periods,
            "sharpe": float(summary.sharpe),
            "skew": float(summary.skew),
            "kurtosis": float(summary.kurtosis),
        }

    def packed(self) -> str:
        return pack_returns(self.series)


def take_returns(metrics: dict[str, Any]) -> TrialReturns | str | None:
    """Remove a returns series from ``metrics``: the checked series, the reason it is unusable
    (a str: the trial fails with it), or None when there is none (a plain number named
    ``returns`` stays an ordinary metric)."""
    value = metrics.get(attrs.RETURNS)
    if value is None or isinstance(value, numbers.Number | str | bool | Mapping):
        return None
    del metrics[attrs.RETURNS]
    try:
        return TrialReturns(value)
    except ValueError as exc:
        return f"the objective's returns series: {exc}"


class ReturnsKeeper:
    """Decides which trials keep their series: the best ``keep`` by the first objective (``None``:
    all of them). Each worker counts the trials it knows of, so together they keep a superset."""

    def __init__(self, keep: int | str, direction: str) -> None:
        self.keep = None if keep == "all" else int(keep)
        self.sign = direction_sign(direction)
        self._worst_first: list[float] = []  # -(sign·value) of the best ``keep``: heap[0] is the worst

    def wants(self, value: float) -> bool:
        if self.keep is None:
            return True
        if self.keep == 0 or not np.isfinite(value):
            return False
        return len(self._worst_first) < self.keep or self.sign * value <= -self._worst_first[0]

    def note(self, value: float) -> None:
        """Count a completed feasible trial's value among those seen."""
        if self.keep is None or self.keep == 0:
            return
        heapq.heappush(self._worst_first, -(self.sign * value))
        if len(self._worst_first) > self.keep:
            heapq.heappop(self._worst_first)
