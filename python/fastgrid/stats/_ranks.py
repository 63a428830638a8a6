"""Spearman's rank correlation, for how well in-sample scores order out-of-sample ones."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from fastgrid.stats._checks import float_array

__all__ = ["rank_correlation"]


def _average_ranks(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """1-based ranks; tied values share the average of the ranks they span."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    ends = np.append(starts[1:], len(values))
    group_rank = (starts + ends + 1) / 2.0  # mean of start+1 .. end
    ranks = np.empty(len(values))
    ranks[order] = np.repeat(group_rank, ends - starts)
    return ranks


def rank_correlation(x: ArrayLike, y: ArrayLike) -> float:
    """Spearman's rho of paired scores: +1 when ``y`` orders the pairs exactly as ``x`` does, -1 when
    it reverses them, about 0 when unrelated. Ties share their average rank; NaN when either side
    does not vary."""
    a, b = float_array("x", x), float_array("y", y)
    if a.ndim != 1 or b.ndim != 1 or a.shape != b.shape:
        raise ValueError(f"x and y must be 1-D of the same length, got shapes {a.shape} and {b.shape}")
    if a.size < 2:
        raise ValueError(f"x and y have {a.size} pair(s); a rank correlation needs at least 2")
    ra, rb = _average_ranks(a), _average_ranks(b)
    ra -= ra.mean()
    rb -= rb.mean()
    spread = math.sqrt(float(ra @ ra) * float(rb @ rb))
    return float(ra @ rb) / spread if spread > 0 else math.nan
