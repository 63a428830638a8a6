"""The Sharpe ratio, its standard error, the probabilistic and the deflated Sharpe ratio.

References (formulas and their assumptions are explained in ``docs/stats.md``):

- A. Lo (2002), "The statistics of Sharpe ratios", Financial Analysts Journal 58(4).
- P. Mertens (2002), "Comments on variance of the IID estimator in Lo (2002)".
- D. Bailey & M. López de Prado (2012), "The Sharpe ratio efficient frontier", Journal of Risk 15(2).
- D. Bailey & M. López de Prado (2014), "The deflated Sharpe ratio: correcting for selection bias,
  backtest overfitting and non-normality", Journal of Portfolio Management 40(5).

Every function broadcasts its array arguments like a numpy ufunc and returns a float when all of
them are scalars. Sharpe ratios are per period unless ``periods_per_year`` is given, in which case
Sharpe inputs and outputs are annualized (times √periods_per_year) and variances of Sharpe ratios too
(times periods_per_year); the number of periods is always a count of observations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from fastgrid.stats._checks import float_array, integer_array, positive_scalar
from fastgrid.stats._normal import normal_cdf, normal_upper_quantile

__all__ = [
    "ReturnsSummary",
    "deflated_sharpe_ratio",
    "describe_returns",
    "expected_maximum_sharpe",
    "probabilistic_sharpe_ratio",
    "sharpe_ratio",
    "sharpe_ratio_standard_error",
]

EULER_GAMMA = 0.5772156649015329

Floats = NDArray[np.float64]


def _result(value: Floats) -> Any:
    """A 0-d result as a Python float, anything else as the array."""
    return float(value) if value.ndim == 0 else value


def _per_period(periods_per_year: float | None) -> float:
    """The factor that turns an annualized Sharpe ratio into a per-period one (1 without a year)."""
    if periods_per_year is None:
        return 1.0
    year = positive_scalar(
        "periods_per_year", periods_per_year, "the number of return periods in a year: 252 for daily"
    )
    return 1.0 / math.sqrt(year)


class _Moments(NamedTuple):
    """Checked per-period Sharpe ratio, number of periods, skew and kurtosis (broadcastable)."""

    sharpe: Floats
    periods: Floats
    skew: Floats
    kurtosis: Floats


def _moments(
    sharpe: ArrayLike, periods: ArrayLike, skew: ArrayLike, kurtosis: ArrayLike, scale: float
) -> _Moments:
    sr = float_array("sharpe", sharpe)
    if scale != 1.0:
        sr = sr * scale
    t = integer_array("periods", periods, minimum=2, meaning="the number of returns the Sharpe ratio is of")
    g3 = float_array("skew", skew)
    g4 = float_array("kurtosis", kurtosis)
    # Every distribution has kurtosis ≥ 1 + skew² (Pearson's inequality); a value below it is
    # almost always an excess kurtosis passed where the plain one belongs (3 for normal returns).
    below = g4 < 1.0 + g3 * g3
    if below.any():
        index = np.unravel_index(int(np.argmax(below)), below.shape)
        k = float(np.broadcast_to(g4, below.shape)[index])
        s = float(np.broadcast_to(g3, below.shape)[index])
        raise ValueError(
            f"kurtosis {k!r} is below 1 + skew² = {1 + s * s!r}, which no distribution has: "
            "kurtosis is the plain (non-excess) one, 3 for normal returns; add 3 to an excess kurtosis"
        )
    return _Moments(sr, t, g3, g4)


def _variance(sr: Floats, periods: Floats, skew: Floats, kurtosis: Floats) -> Floats:
    """The variance of the Sharpe estimator: (1 - skew·SR + (kurtosis - 1)/4·SR²) / (periods - 1).

    Written by Horner's rule; ≥ 0 by Pearson's inequality, clipped for the rounding at its boundary.
    """
    variance = (kurtosis - 1.0) / 4.0 * sr - skew
    variance = variance * sr + 1.0
    return np.maximum(variance / (periods - 1.0), 0.0)


def _psr_kernel(sr: Floats, sr_star: Floats, periods: Floats, skew: Floats, kurtosis: Floats) -> Floats:
    difference = sr - sr_star
    se = np.sqrt(_variance(sr, periods, skew, kurtosis))
    # A zero standard error (only at the boundary kurtosis = 1 + skew²) leaves the sign of the gap.
    degenerate = se == 0
    if degenerate.any():
        se = np.where(degenerate, 1.0, se)
        difference = np.where(degenerate, np.sign(difference) * np.inf, difference)
    return normal_cdf(difference / se)


# Elements per pass of the PSR formula: a 10^6-element DSR runs its dozen array operations on
# cache-sized pieces (numpy's buffered iterator also does the broadcasting).
_CHUNK = 1 << 14


def _psr(m: _Moments, sr_star: Floats) -> Floats:
    operands = (m.sharpe, sr_star, m.periods, m.skew, m.kurtosis)
    shape = np.broadcast_shapes(*(a.shape for a in operands))
    if math.prod(shape) <= _CHUNK:
        return np.asarray(_psr_kernel(*operands), dtype=np.float64).reshape(shape)
    iterator = np.nditer(
        [*operands, None],  # type: ignore[arg-type]
        flags=["external_loop", "buffered"],
        op_flags=[["readonly"]] * len(operands) + [["writeonly", "allocate"]],  # type: ignore[arg-type]
        op_dtypes=[np.float64] * (len(operands) + 1),
        buffersize=_CHUNK,
    )
    with iterator:
        for *chunk, out in iterator:
            out[...] = _psr_kernel(*chunk)
        result: Floats = iterator.operands[-1]
    return result


# --- from returns --------------------------------------------------------------------------------


def _returns_matrix(returns: ArrayLike) -> Floats:
    r = float_array("returns", returns)
    if r.ndim not in (1, 2):
        raise ValueError(
            f"returns must be one series (1-D) or a periods x series matrix (2-D), got shape {r.shape}"
        )
    if r.shape[0] < 2:
        raise ValueError(f"returns has {r.shape[0]} period(s); a Sharpe ratio needs at least 2")
    return r


def _mean_std(r: Floats) -> tuple[Floats, Floats, Floats]:
    """Mean, sample standard deviation (ddof 1) and the deviations from the mean, per column."""
    mean = r.mean(axis=0)
    deviation = r - mean
    std = np.sqrt((deviation * deviation).sum(axis=0) / (r.shape[0] - 1))
    # A series whose values are all equal has no risk; make its deviation exactly 0 (the mean of n
    # equal floats can differ from them in the last bit).
    constant = r.max(axis=0) == r.min(axis=0)
    if constant.any():
        std = np.where(constant, 0.0, std)
        deviation = np.where(constant, 0.0, deviation)
        if (constant & (r[0] != 0.0)).any():
            column = int(np.argmax(constant & (r[0] != 0.0)))
            where = f"column {column} of returns" if r.ndim == 2 else "returns"
            value = float(r[0] if r.ndim == 1 else r[0, column])
            raise ValueError(
                f"{where} is the constant {value!r}: a riskless series has no Sharpe ratio; leave it out"
            )
    return mean, std, deviation


def sharpe_ratio(returns: ArrayLike, *, periods_per_year: float | None = None) -> Any:
    """The Sharpe ratio of a returns series (mean over sample standard deviation, ``ddof=1``).

    ``returns`` is one series (1-D, giving a float) or a periods x series matrix (2-D, giving one
    ratio per column). Pass excess returns (over the risk-free rate) for the textbook ratio. The
    result is per period; with ``periods_per_year`` (252 for daily returns) it is annualized by
    √periods_per_year, which assumes returns independent across periods. A series of zeros (a
    strategy that never traded) has Sharpe ratio 0; a constant non-zero series is an error.
    """
    r = _returns_matrix(returns)
    mean, std, _ = _mean_std(r)
    ratio = np.divide(mean, std, out=np.zeros_like(mean), where=std > 0)
    return _result(ratio / _per_period(periods_per_year))


@dataclass(frozen=True)
class ReturnsSummary:
    """What the Sharpe-ratio statistics need to know about a returns series (all per period).

    ``kurtosis`` is the plain (non-excess) kurtosis, 3 for normal returns; ``skew`` and
    ``kurtosis`` are the moment estimators m3/m2^1.5 and m4/m2² (as ``scipy.stats.skew`` and
    ``scipy.stats.kurtosis(fisher=False)`` with their default ``bias=True``). For a 2-D input each
    field but ``periods`` is an array with one value per column.
    """

    periods: int
    mean: Any
    std: Any
    sharpe: Any
    skew: Any
    kurtosis: Any
    sharpe_standard_error: Any


def describe_returns(returns: ArrayLike) -> ReturnsSummary:
    """Periods, mean, standard deviation, Sharpe ratio, skew, kurtosis and the Sharpe ratio's
    standard error of a returns series (1-D) or of each column of a periods x series matrix.

    The fields feed :func:`probabilistic_sharpe_ratio` and :func:`deflated_sharpe_ratio`. A series
    of zeros has Sharpe ratio 0, skew 0 and kurtosis 3 (the normal values, which leave the
    standard error at its normal-returns value).
    """
    r = _returns_matrix(returns)
    mean, std, deviation = _mean_std(r)
    sharpe = np.divide(mean, std, out=np.zeros_like(mean), where=std > 0)
    square = deviation * deviation
    m2 = square.mean(axis=0)
    m3 = (square * deviation).mean(axis=0)
    m4 = (square * square).mean(axis=0)
    flat = m2 == 0
    safe_m2 = np.where(flat, 1.0, m2)
    skew = np.where(flat, 0.0, m3 / safe_m2**1.5)
    kurtosis = np.where(flat, 3.0, m4 / (safe_m2 * safe_m2))
    periods = r.shape[0]
    # Rounding can leave a sample's kurtosis a hair under 1 + skew² (two-valued samples).
    kurtosis = np.maximum(kurtosis, 1.0 + skew * skew)
    se = np.sqrt((1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe * sharpe) / (periods - 1))
    return ReturnsSummary(
        periods=periods,
        mean=_result(mean),
        std=_result(std),
        sharpe=_result(sharpe),
        skew=_result(skew),
        kurtosis=_result(kurtosis),
        sharpe_standard_error=_result(se),
    )


# --- from the moments ----------------------------------------------------------------------------


@overload
def sharpe_ratio_standard_error(
    sharpe: float, *, periods: int, skew: float, kurtosis: float, periods_per_year: float | None = None
) -> float: ...
@overload
def sharpe_ratio_standard_error(
    sharpe: ArrayLike,
    *,
    periods: ArrayLike,
    skew: ArrayLike,
    kurtosis: ArrayLike,
    periods_per_year: float | None = None,
) -> Floats: ...
def sharpe_ratio_standard_error(
    sharpe: ArrayLike,
    *,
    periods: ArrayLike,
    skew: ArrayLike,
    kurtosis: ArrayLike,
    periods_per_year: float | None = None,
) -> Any:
    """The standard error of an estimated Sharpe ratio under non-normal (but IID) returns.

    ``sqrt((1 - skew·SR + (kurtosis - 1)/4 · SR²) / (periods - 1))`` (Mertens 2002, in the form of
    Bailey & López de Prado 2012); with normal returns (skew 0, kurtosis 3) it is Lo's (2002)
    ``sqrt((1 + SR²/2) / (periods - 1))``. ``kurtosis`` is non-excess (3 for normal returns).
    With ``periods_per_year`` the Sharpe ratio given and the error returned are annualized.
    """
    scale = _per_period(periods_per_year)
    m = _moments(sharpe, periods, skew, kurtosis, scale)
    return _result(np.sqrt(_variance(m.sharpe, m.periods, m.skew, m.kurtosis)) / scale)


@overload
def probabilistic_sharpe_ratio(
    sharpe: float,
    *,
    benchmark: float = 0.0,
    periods: int,
    skew: float,
    kurtosis: float,
    periods_per_year: float | None = None,
) -> float: ...
@overload
def probabilistic_sharpe_ratio(
    sharpe: ArrayLike,
    *,
    benchmark: ArrayLike = 0.0,
    periods: ArrayLike,
    skew: ArrayLike,
    kurtosis: ArrayLike,
    periods_per_year: float | None = None,
) -> Floats: ...
def probabilistic_sharpe_ratio(
    sharpe: ArrayLike,
    *,
    benchmark: ArrayLike = 0.0,
    periods: ArrayLike,
    skew: ArrayLike,
    kurtosis: ArrayLike,
    periods_per_year: float | None = None,
) -> Any:
    """The probability that the true Sharpe ratio exceeds ``benchmark``, given the estimate.

    PSR(SR*) = Φ((SR - SR*) / se(SR)) with se(SR) the standard error of
    :func:`sharpe_ratio_standard_error` (Bailey & López de Prado 2012). ``sharpe``, ``benchmark``
    are per period, or annualized when ``periods_per_year`` is given.
    """
    scale = _per_period(periods_per_year)
    m = _moments(sharpe, periods, skew, kurtosis, scale)
    sr_star = float_array("benchmark", benchmark) * scale
    return _result(_psr(m, sr_star))


def _expected_maximum_z(n_trials: Floats) -> Floats:
    """E[max of n standard normals], approximated as in Bailey & López de Prado (2014), eq. (7).

    ``(1 - gamma)·Φ⁻¹(1 - 1/N) + gamma·Φ⁻¹(1 - 1/(N·e))``; exactly 0 for one trial (there is no selection).
    Φ⁻¹ runs once per distinct N.
    """
    distinct, inverse = np.unique(n_trials, return_inverse=True)
    values = np.array(
        [
            0.0
            if n == 1
            else (1.0 - EULER_GAMMA) * normal_upper_quantile(1.0 / n)
            + EULER_GAMMA * normal_upper_quantile(1.0 / (n * math.e))
            for n in distinct.tolist()
        ],
        dtype=np.float64,
    )
    return values[inverse].reshape(n_trials.shape)


def _trials(n_trials: ArrayLike, trials_sharpe_variance: ArrayLike) -> tuple[Floats, Floats]:
    n = integer_array("n_trials", n_trials, minimum=1, meaning="how many configurations were tried")
    v = float_array("trials_sharpe_variance", trials_sharpe_variance)
    if (v < 0).any():
        raise ValueError(
            f"trials_sharpe_variance must be > 0, got {float(v.min())!r}: it is the variance of the "
            "trials' Sharpe ratios, e.g. numpy.var(sharpes, ddof=1)"
        )
    if ((v == 0) & (n > 1)).any():
        raise ValueError(
            "trials_sharpe_variance is 0 with more than one trial: it is the variance of the trials' "
            "Sharpe ratios (numpy.var(sharpes, ddof=1)), which is 0 only if every trial scored alike"
        )
    return n, v


@overload
def expected_maximum_sharpe(*, n_trials: int, trials_sharpe_variance: float) -> float: ...
@overload
def expected_maximum_sharpe(*, n_trials: ArrayLike, trials_sharpe_variance: ArrayLike) -> Floats: ...
def expected_maximum_sharpe(*, n_trials: ArrayLike, trials_sharpe_variance: ArrayLike) -> Any:
    """The expected largest Sharpe ratio of ``n_trials`` independent trials of no true skill.

    ``E[max SR] ≈ √V · ((1 - gamma)·Φ⁻¹(1 - 1/N) + gamma·Φ⁻¹(1 - 1/(N·e)))`` with gamma the Euler-Mascheroni
    constant and V the variance of the trials' Sharpe ratios (Bailey & López de Prado 2014, "False
    Strategy" theorem); 0 for a single trial. The result is in the units of the variance: per
    period for a per-period variance, annualized for an annualized one.
    """
    n, v = _trials(n_trials, trials_sharpe_variance)
    return _result(np.sqrt(v) * _expected_maximum_z(n))


@overload
def deflated_sharpe_ratio(
    sharpe: float,
    *,
    n_trials: int,
    trials_sharpe_variance: float,
    skew: float,
    kurtosis: float,
    periods: int,
    periods_per_year: float | None = None,
) -> float: ...
@overload
def deflated_sharpe_ratio(
    sharpe: ArrayLike,
    *,
    n_trials: ArrayLike,
    trials_sharpe_variance: ArrayLike,
    skew: ArrayLike,
    kurtosis: ArrayLike,
    periods: ArrayLike,
    periods_per_year: float | None = None,
) -> Floats: ...
def deflated_sharpe_ratio(
    sharpe: ArrayLike,
    *,
    n_trials: ArrayLike,
    trials_sharpe_variance: ArrayLike,
    skew: ArrayLike,
    kurtosis: ArrayLike,
    periods: ArrayLike,
    periods_per_year: float | None = None,
) -> Any:
    """The probability that the selected Sharpe ratio beats the best of ``n_trials`` lucky ones.

    DSR = PSR(SR₀) with SR₀ = :func:`expected_maximum_sharpe` of the trials (Bailey & López de
    Prado 2014): the probabilistic Sharpe ratio of ``sharpe`` against the Sharpe ratio that the
    best of ``n_trials`` skill-less trials would reach by chance. ``sharpe`` (the selected trial's),
    ``trials_sharpe_variance`` (the variance of all trials' Sharpe ratios), ``skew`` and
    ``kurtosis`` (non-excess: 3 for normal returns) of the selected trial's returns, and
    ``periods`` (its number of returns) are per period; with ``periods_per_year`` (252 for daily
    returns) ``sharpe`` and ``trials_sharpe_variance`` are annualized ones and are converted.
    """
    scale = _per_period(periods_per_year)
    m = _moments(sharpe, periods, skew, kurtosis, scale)
    n, v = _trials(n_trials, trials_sharpe_variance)
    sr0 = np.sqrt(v * (scale * scale)) * _expected_maximum_z(n)
    return _result(_psr(m, sr0))
