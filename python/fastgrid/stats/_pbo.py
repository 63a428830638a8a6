"""The probability of backtest overfitting by combinatorially symmetric cross-validation (CSCV).

D. Bailey, J. Borwein, M. López de Prado & Q. J. Zhu (2016), "The probability of backtest
overfitting", Journal of Computational Finance 20(4). ``docs/stats.md`` explains the numbers.

How it is fast: a Sharpe ratio needs only the count, sum and sum of squares of its returns, and
those of a union of blocks are the sums of the blocks'. So the T x N matrix is reduced once to
S x N block sums, and every combination's in-sample statistics are 8 row additions (for S = 16)
instead of a pass over T/2 rows; its out-of-sample ones are the totals minus them. Each
combination's complement is also a combination, so one pass over the C/2 combinations that hold
block 0 scores both halves of every pair. Only the selected strategy's out-of-sample rank is needed,
which is a count of the strategies below it (no sort). Combinations run in chunks that keep the
temporaries in cache and the memory flat.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from fastgrid.stats._checks import float_array, whole_scalar

__all__ = ["PBOResult", "pbo"]

_Array = TypeVar("_Array", bound="np.ndarray[Any, Any]")

# C(24, 12) = 2,704,156 combinations; C(26, 13) would be 10 million.
MAX_SPLITS = 24
# Strategy-combination cells scored per chunk (two float64 arrays of this size live at a time).
_CHUNK_CELLS = 1 << 17


def _frozen(array: _Array) -> _Array:
    array.flags.writeable = False
    return array


@dataclass(frozen=True, eq=False)
class PBOResult:
    """The outcome of CSCV over a (periods x strategies) returns matrix.

    One entry per combination of the ``splits`` blocks into an in-sample and an out-of-sample half,
    in the order of ``itertools.combinations(range(splits), splits // 2)`` (the in-sample blocks):

    - ``logits``: λ = ln(ω / (1 - ω)) of ω, the out-of-sample relative rank (rank / (N + 1), rank 1
      the worst) of the strategy that was best in-sample; λ > 0 means it beat the median.
    - ``selected``: the column of that strategy.
    - ``is_sharpe`` and ``oos_sharpe``: its Sharpe ratio (per period) in- and out-of-sample.

    And the summaries: ``pbo``, the fraction of combinations with λ ≤ 0 (the probability that the
    in-sample winner is no better than the median out of sample); ``degradation_slope`` and
    ``degradation_intercept`` of the least-squares line oos_sharpe ≈ intercept + slope · is_sharpe
    (NaN when the in-sample values do not vary); ``probability_of_loss``, the fraction of
    combinations where the winner's out-of-sample Sharpe ratio is below 0.
    """

    pbo: float
    logits: NDArray[np.float64] = field(repr=False)
    selected: NDArray[np.intp] = field(repr=False)
    is_sharpe: NDArray[np.float64] = field(repr=False)
    oos_sharpe: NDArray[np.float64] = field(repr=False)
    degradation_slope: float
    degradation_intercept: float
    probability_of_loss: float
    splits: int
    periods: int
    strategies: int

    @property
    def combinations(self) -> int:
        """How many in-sample/out-of-sample splits were scored: C(splits, splits/2)."""
        return int(self.logits.shape[0])


def _check(returns: ArrayLike, splits: object) -> tuple[NDArray[np.float64], int]:
    s = whole_scalar("splits", splits)
    if s < 2 or s % 2:
        raise ValueError(
            f"splits must be an even number ≥ 2 (the blocks are halved into in- and out-of-sample), "
            f"got {s}; 16 is the usual choice"
        )
    if s > MAX_SPLITS:
        raise ValueError(
            f"splits={s} gives {math.comb(s, s // 2):,} combinations; use at most {MAX_SPLITS} "
            "(16, giving 12,870, is the usual choice)"
        )
    m = float_array("returns", returns)
    if m.ndim != 2:
        raise ValueError(
            f"returns must be a 2-D periods x strategies matrix (one column per strategy), "
            f"got shape {m.shape}"
        )
    periods, strategies = m.shape
    if strategies < 2:
        raise ValueError(f"returns has {strategies} strategy column(s); PBO ranks at least 2")
    if periods < 2 * s:
        raise ValueError(
            f"returns has {periods} periods, too few for splits={s}: each split needs at least 2 "
            f"periods (at least {2 * s}); pass fewer splits or more periods"
        )
    constant = m.max(axis=0) == m.min(axis=0)
    nonzero = constant & (m[0] != 0.0)
    if nonzero.any():
        column = int(np.argmax(nonzero))
        raise ValueError(
            f"column {column} of returns is the constant {float(m[0, column])!r}: a riskless series has no "
            "Sharpe ratio; leave it out"
        )
    return m, s


def _sharpe(
    total: NDArray[np.float64],
    squares: NDArray[np.float64],
    count: NDArray[np.float64],
    shift: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Sharpe ratios from sums of returns centred by ``shift`` (per column) and their squares.

    Centring keeps the variance from cancelling catastrophically; a set of returns that does not
    vary (up to that cancellation) scores 0, as a strategy that did not trade.
    """
    n = count[:, None]
    mean = total / n
    variance = total * mean
    np.subtract(squares, variance, out=variance)
    flat = variance <= 1e-12 * squares
    variance /= n - 1.0
    np.sqrt(variance, out=variance)
    mean += shift
    with np.errstate(divide="ignore", invalid="ignore"):
        mean /= variance
    if flat.any():
        mean[flat] = 0.0
    return mean


def _winner_rank(
    is_sharpe: NDArray[np.float64], oos_sharpe: NDArray[np.float64]
) -> tuple[NDArray[np.intp], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Per row: the in-sample best column (first on ties), its in- and out-of-sample Sharpe ratios
    and its out-of-sample rank among the row (1 = worst; ties share their average rank)."""
    rows = np.arange(is_sharpe.shape[0])
    best = np.argmax(is_sharpe, axis=1)
    oos = oos_sharpe[rows, best]
    below = np.count_nonzero(oos_sharpe < oos[:, None], axis=1)
    tied = np.count_nonzero(oos_sharpe == oos[:, None], axis=1)
    return best, is_sharpe[rows, best], oos, below + (tied + 1) / 2.0


def pbo(returns: ArrayLike, *, splits: int = 16) -> PBOResult:
    """The probability of backtest overfitting of picking the best column by Sharpe ratio.

    ``returns`` is a periods x strategies matrix (numpy array or DataFrame): one column of
    per-period returns for every configuration a sweep tried, all over the same periods. Its rows
    are cut into ``splits`` contiguous blocks (an even number; when the rows do not divide evenly
    the first blocks get one row more, as ``numpy.array_split``). Every way of choosing half of the
    blocks as in-sample data (the rest is out-of-sample) picks the in-sample best strategy and
    ranks it out of sample; see :class:`PBOResult` for what is returned.
    """
    m, s = _check(returns, splits)
    periods, strategies = m.shape

    shift = m.mean(axis=0)
    centred = m - shift
    # Block sizes as numpy.array_split: the first (periods mod s) blocks get one row more.
    sizes = np.full(s, periods // s)
    sizes[: periods % s] += 1
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    bounds = np.append(starts, periods)
    block_sum = np.stack([centred[a:b].sum(axis=0) for a, b in itertools.pairwise(bounds)])
    block_sq = np.stack([np.square(centred[a:b]).sum(axis=0) for a, b in itertools.pairwise(bounds)])
    block_n = sizes.astype(np.float64)
    total_sum = block_sum.sum(axis=0)
    total_sq = block_sq.sum(axis=0)

    n_combos = math.comb(s, s // 2)
    # itertools lists the combinations in lexicographic order, so the C/2 that hold block 0 come
    # first and the complement of the i-th is the (C - 1 - i)-th. They are drawn in chunks: for
    # splits=24 the whole list would take gigabytes.
    half = n_combos // 2
    combos = itertools.combinations(range(s), s // 2)
    logits = np.empty(n_combos)
    selected = np.empty(n_combos, dtype=np.intp)
    is_values = np.empty(n_combos)
    oos_values = np.empty(n_combos)

    chunk = max(1, _CHUNK_CELLS // strategies)
    for lo in range(0, half, chunk):
        hi = min(half, lo + chunk)
        blocks = np.array(list(itertools.islice(combos, hi - lo)), dtype=np.intp)
        first_sum = block_sum[blocks[:, 0]]
        first_sq = block_sq[blocks[:, 0]]
        gathered = np.empty_like(first_sum)
        for j in range(1, s // 2):
            np.take(block_sum, blocks[:, j], axis=0, out=gathered)
            first_sum += gathered
            np.take(block_sq, blocks[:, j], axis=0, out=gathered)
            first_sq += gathered
        first_n = block_n[blocks].sum(axis=1)
        first = _sharpe(first_sum, first_sq, first_n, shift)
        second = _sharpe(total_sum - first_sum, total_sq - first_sq, periods - first_n, shift)
        mirror = np.arange(n_combos - 1 - lo, n_combos - 1 - hi, -1)
        for where, in_sample, out_of_sample in ((np.arange(lo, hi), first, second), (mirror, second, first)):
            best, is_best, oos_best, rank = _winner_rank(in_sample, out_of_sample)
            omega = rank / (strategies + 1.0)
            logits[where] = np.log(omega / (1.0 - omega))
            selected[where] = best
            is_values[where] = is_best
            oos_values[where] = oos_best

    x_mean = is_values.mean()
    dx = is_values - x_mean
    spread = float(dx @ dx)
    if spread > 0:
        slope = float(dx @ (oos_values - oos_values.mean())) / spread
        intercept = float(oos_values.mean() - slope * x_mean)
    else:
        slope = intercept = math.nan
    return PBOResult(
        pbo=float(np.count_nonzero(logits <= 0.0)) / n_combos,
        logits=_frozen(logits),
        selected=_frozen(selected),
        is_sharpe=_frozen(is_values),
        oos_sharpe=_frozen(oos_values),
        degradation_slope=slope,
        degradation_intercept=intercept,
        probability_of_loss=float(np.count_nonzero(oos_values < 0.0)) / n_combos,
        splits=s,
        periods=periods,
        strategies=strategies,
    )
