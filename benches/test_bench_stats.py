"""Statistics benchmarks: fastgrid.stats against the straightforward numpy way in the same group.

Measure (after ``maturin develop --release``)::

    python -m pytest benches/test_bench_stats.py --benchmark-enable --benchmark-only \
        --benchmark-columns=median,min,rounds

- ``dsr``: the deflated Sharpe ratio of 10^6 trials' Sharpe ratios. The straightforward way is the
  formula in numpy with the normal CDF from ``math.erfc`` element by element (numpy has no erf);
  SciPy's compiled ``ndtr`` runs too when SciPy is installed, as the ceiling.
- ``pbo``: PBO by CSCV of a 2,000 x 1,000 returns matrix with 16 splits (12,870 combinations). The
  straightforward way recomputes every column's Sharpe ratio on each combination's rows, as the
  paper's recipe reads (about two minutes, so it runs once).

With benchmarks disabled (the default test run) each function runs once on a small slice, and
every benchmark still asserts that its result equals the other implementations'.
"""

from __future__ import annotations

import itertools
import math
from statistics import NormalDist
from typing import Any

import numpy as np
import pytest
from fastgrid import stats

GAMMA = 0.5772156649015329
TRIALS = dict(n_trials=1_000_000, trials_sharpe_variance=0.0004, skew=-0.8, kurtosis=7.0, periods=1260)


@pytest.fixture(scope="module")
def full(request: pytest.FixtureRequest) -> bool:
    # pytest-benchmark's own rule: disabled by addopts unless --benchmark-enable is given.
    config = request.config
    return bool(config.getoption("benchmark_enable") or not config.getoption("benchmark_disable"))


# --- deflated Sharpe ratio -----------------------------------------------------------------------


def dsr_numpy(
    sharpe: np.ndarray,
    *,
    n_trials: int,
    trials_sharpe_variance: float,
    skew: float,
    kurtosis: float,
    periods: int,
) -> np.ndarray:
    nd = NormalDist()
    sr0 = math.sqrt(trials_sharpe_variance) * (
        (1 - GAMMA) * nd.inv_cdf(1 - 1 / n_trials) + GAMMA * nd.inv_cdf(1 - 1 / (n_trials * math.e))
    )
    se = np.sqrt((1 - skew * sharpe + (kurtosis - 1) / 4 * sharpe**2) / (periods - 1))
    z = (sharpe - sr0) / se
    return 0.5 * np.frompyfunc(math.erfc, 1, 1)(-z / math.sqrt(2)).astype(np.float64)


def dsr_scipy(
    sharpe: np.ndarray,
    *,
    n_trials: int,
    trials_sharpe_variance: float,
    skew: float,
    kurtosis: float,
    periods: int,
) -> np.ndarray:
    from scipy.special import ndtr, ndtri

    sr0 = math.sqrt(trials_sharpe_variance) * (
        (1 - GAMMA) * ndtri(1 - 1 / n_trials) + GAMMA * ndtri(1 - 1 / (n_trials * math.e))
    )
    se = np.sqrt((1 - skew * sharpe + (kurtosis - 1) / 4 * sharpe**2) / (periods - 1))
    return ndtr((sharpe - sr0) / se)


@pytest.fixture(scope="module")
def sharpes(full: bool) -> np.ndarray:
    size = 1_000_000 if full else 10_000
    # Daily Sharpe ratios of a sweep: mostly noise around 0, a spread of 0.02.
    return np.random.default_rng(16).normal(0.0, 0.02, size=size) + 0.1


@pytest.fixture(scope="module")
def dsr_expected(sharpes: np.ndarray) -> np.ndarray:
    fast = stats.deflated_sharpe_ratio(sharpes, **TRIALS)
    # 1 - 1/N loses digits the tail-quantile form keeps: agreement to ~1e-9, not 1e-15.
    np.testing.assert_allclose(fast, dsr_numpy(sharpes, **TRIALS), rtol=1e-9, atol=1e-300)
    return fast


@pytest.mark.benchmark(group="dsr")
def test_dsr_fastgrid(benchmark: Any, sharpes: np.ndarray, dsr_expected: np.ndarray) -> None:
    got = benchmark(stats.deflated_sharpe_ratio, sharpes, **TRIALS)
    np.testing.assert_array_equal(got, dsr_expected)


@pytest.mark.benchmark(group="dsr")
def test_dsr_numpy_math_erfc(benchmark: Any, sharpes: np.ndarray, dsr_expected: np.ndarray) -> None:
    got = benchmark(dsr_numpy, sharpes, **TRIALS)
    np.testing.assert_allclose(got, dsr_expected, rtol=1e-9, atol=1e-300)


@pytest.mark.benchmark(group="dsr")
def test_dsr_scipy_ndtr(benchmark: Any, sharpes: np.ndarray, dsr_expected: np.ndarray) -> None:
    pytest.importorskip("scipy.special")
    got = benchmark(dsr_scipy, sharpes, **TRIALS)
    np.testing.assert_allclose(got, dsr_expected, rtol=1e-9, atol=1e-300)


# --- probability of backtest overfitting ---------------------------------------------------------


def pbo_numpy(returns: np.ndarray, splits: int) -> tuple[float, np.ndarray]:
    """CSCV as the paper reads: every combination recomputes each column's Sharpe ratio on its rows."""
    periods, strategies = returns.shape
    blocks = np.array_split(np.arange(periods), splits)
    logits = []
    for chosen in itertools.combinations(range(splits), splits // 2):
        train = returns[np.concatenate([blocks[b] for b in chosen])]
        test = returns[np.concatenate([blocks[b] for b in range(splits) if b not in chosen])]
        is_sharpe = train.mean(axis=0) / train.std(axis=0, ddof=1)
        oos_sharpe = test.mean(axis=0) / test.std(axis=0, ddof=1)
        rank = oos_sharpe.argsort().argsort()[np.argmax(is_sharpe)] + 1
        omega = rank / (strategies + 1)
        logits.append(math.log(omega / (1 - omega)))
    values = np.array(logits)
    return float(np.mean(values <= 0)), values


def assert_same_pbo(fast: stats.PBOResult, plain: tuple[float, np.ndarray]) -> None:
    assert fast.pbo == plain[0]
    np.testing.assert_allclose(fast.logits, plain[1], rtol=1e-12)


@pytest.fixture(scope="module")
def returns(full: bool) -> tuple[np.ndarray, int]:
    rng = np.random.default_rng(2016)
    if full:
        # 1,000 configurations of 8 years of daily returns; a few with a little true edge.
        m = rng.normal(0.0, 0.01, size=(2000, 1000))
        m[:, :20] += 0.0005
        return m, 16
    return rng.normal(0.0, 0.01, size=(240, 30)), 8


@pytest.fixture(scope="module")
def small_returns() -> np.ndarray:
    return np.random.default_rng(7).normal(0.0, 0.01, size=(160, 40))


@pytest.mark.benchmark(group="pbo")
def test_pbo_fastgrid(benchmark: Any, returns: tuple[np.ndarray, int], small_returns: np.ndarray) -> None:
    assert_same_pbo(stats.pbo(small_returns, splits=8), pbo_numpy(small_returns, 8))
    m, splits = returns
    result = benchmark(stats.pbo, m, splits=splits)
    assert result.combinations == math.comb(splits, splits // 2)
    assert 0.0 <= result.pbo <= 1.0


@pytest.mark.benchmark(group="pbo")
def test_pbo_numpy_loop(benchmark: Any, returns: tuple[np.ndarray, int], small_returns: np.ndarray) -> None:
    assert_same_pbo(stats.pbo(small_returns, splits=8), pbo_numpy(small_returns, 8))
    m, splits = returns
    plain = benchmark.pedantic(pbo_numpy, args=(m, splits), rounds=1, iterations=1)
    assert_same_pbo(stats.pbo(m, splits=splits), plain)
