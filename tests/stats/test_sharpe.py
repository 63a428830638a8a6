"""Sharpe ratio, its standard error, PSR, the expected maximum Sharpe ratio and the DSR.

Checked against the worked example printed in Bailey & López de Prado (2014), against the exact
expectation of a maximum (numerical integration), against Monte Carlo simulation, and against
straightforward scalar re-implementations written from the papers' formulas.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest
from fastgrid import stats
from hypothesis import given, settings
from hypothesis import strategies as st

GAMMA = 0.5772156649015329


def scalar_dsr(sr: float, n: int, v: float, skew: float, kurt: float, t: int) -> float:
    """The paper's formulas, one number at a time, with the standard library's normal distribution
    (Φ through ``math.erfc``: ``NormalDist.cdf`` goes through ``erf`` and loses the far tails)."""
    nd = NormalDist()
    sr0 = (
        0.0
        if n == 1
        else math.sqrt(v) * ((1 - GAMMA) * -nd.inv_cdf(1 / n) + GAMMA * -nd.inv_cdf(1 / (n * math.e)))
    )
    z = (sr - sr0) * math.sqrt(t - 1) / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr * sr)
    return 0.5 * math.erfc(-z / math.sqrt(2))


# --- the published worked example ----------------------------------------------------------------
# Bailey & López de Prado (2014), "The deflated Sharpe ratio", numerical example: N = 100 trials,
# V[SR_n] = 1/2 (annualized), T = 1250 daily returns (250 a year), skew -3, kurtosis 10 and a
# selected annualized Sharpe ratio of 2.5 give SR0 ≈ 0.1132 (per day) and DSR ≈ 0.9004.
EXAMPLE = dict(n_trials=100, skew=-3.0, kurtosis=10.0, periods=1250)


def test_paper_example_expected_maximum_per_day() -> None:
    sr0 = stats.expected_maximum_sharpe(n_trials=100, trials_sharpe_variance=0.5 / 250)
    assert round(sr0, 4) == 0.1132


def test_paper_example_dsr_from_per_period_inputs() -> None:
    dsr = stats.deflated_sharpe_ratio(2.5 / math.sqrt(250), trials_sharpe_variance=0.5 / 250, **EXAMPLE)
    assert round(dsr, 4) == 0.9004


def test_paper_example_dsr_from_annualized_inputs() -> None:
    per_period = stats.deflated_sharpe_ratio(
        2.5 / math.sqrt(250), trials_sharpe_variance=0.5 / 250, **EXAMPLE
    )
    annual = stats.deflated_sharpe_ratio(2.5, trials_sharpe_variance=0.5, periods_per_year=250, **EXAMPLE)
    assert annual == pytest.approx(per_period, rel=1e-14)


def test_paper_example_fewer_trials_clear_the_95_percent_bar() -> None:
    # Same example: the selection would have been significant at 95% after at most 46 trials.
    def dsr(n: int) -> float:
        return stats.deflated_sharpe_ratio(
            2.5,
            n_trials=n,
            trials_sharpe_variance=0.5,
            skew=-3.0,
            kurtosis=10.0,
            periods=1250,
            periods_per_year=250,
        )

    assert dsr(46) > 0.95 > dsr(47)


# --- the expected maximum ------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "tolerance"), [(10, 0.03), (100, 0.01), (1000, 0.005), (10**6, 0.0015)])
def test_expected_maximum_is_close_to_the_exact_expectation(n: int, tolerance: float) -> None:
    x = np.linspace(-10.0, 12.0, 100_001)
    density = np.exp(-x * x / 2) / math.sqrt(2 * math.pi)
    cdf = 0.5 * np.array([math.erfc(-v / math.sqrt(2)) for v in x])
    exact = float(np.trapezoid(x * n * density * cdf ** (n - 1), x))
    approx = stats.expected_maximum_sharpe(n_trials=n, trials_sharpe_variance=1.0)
    assert approx == pytest.approx(exact, rel=tolerance)


def test_expected_maximum_by_simulation() -> None:
    rng = np.random.default_rng(11)
    best = rng.normal(scale=0.3, size=(4000, 50)).max(axis=1)
    approx = stats.expected_maximum_sharpe(n_trials=50, trials_sharpe_variance=0.09)
    assert approx == pytest.approx(best.mean(), rel=0.03)


def test_expected_maximum_grows_with_trials_and_is_zero_for_one() -> None:
    n = np.array([1, 2, 10, 100, 10**4, 10**8])
    values = stats.expected_maximum_sharpe(n_trials=n, trials_sharpe_variance=0.25)
    assert values[0] == 0.0
    assert (np.diff(values) > 0).all()
    assert stats.expected_maximum_sharpe(n_trials=1, trials_sharpe_variance=0.0) == 0.0


# --- standard error and PSR ----------------------------------------------------------------------


def test_standard_error_of_normal_returns_is_los() -> None:
    se = stats.sharpe_ratio_standard_error(0.1, periods=500, skew=0.0, kurtosis=3.0)
    assert se == pytest.approx(math.sqrt((1 + 0.1**2 / 2) / 499), rel=1e-14)


def test_standard_error_is_mertens_form() -> None:
    sr, skew, kurt, t = 0.2, -1.5, 9.0, 300
    mertens = (1 + sr * sr / 2 - skew * sr + (kurt - 3) / 4 * sr * sr) / (t - 1)
    assert stats.sharpe_ratio_standard_error(sr, periods=t, skew=skew, kurtosis=kurt) == pytest.approx(
        math.sqrt(mertens), rel=1e-14
    )


def test_standard_error_annualized() -> None:
    daily = stats.sharpe_ratio_standard_error(0.1, periods=500, skew=-1.0, kurtosis=6.0)
    annual = stats.sharpe_ratio_standard_error(
        0.1 * math.sqrt(252), periods=500, skew=-1.0, kurtosis=6.0, periods_per_year=252
    )
    assert annual == pytest.approx(daily * math.sqrt(252), rel=1e-14)


@pytest.mark.parametrize("shape", ["normal", "skewed"])
def test_standard_error_by_simulation(shape: str) -> None:
    """The formula predicts the spread of Sharpe ratios estimated from many IID samples."""
    rng = np.random.default_rng(5)
    t = 400
    if shape == "normal":
        draws = rng.normal(0.1, 1.0, size=(6000, t))
        skew, kurt, true_sr = 0.0, 3.0, 0.1
    else:
        # A shifted exponential: skew 2, kurtosis 9, mean 0.3 - 0.2 over std 1.
        draws = rng.exponential(1.0, size=(6000, t)) - 0.9
        skew, kurt, true_sr = 2.0, 9.0, 0.1
    estimates = draws.mean(axis=1) / draws.std(axis=1, ddof=1)
    se = stats.sharpe_ratio_standard_error(true_sr, periods=t, skew=skew, kurtosis=kurt)
    assert estimates.std(ddof=1) == pytest.approx(se, rel=0.05)


def test_psr_is_the_normal_probability_of_the_standardized_gap() -> None:
    sr, bench, t, skew, kurt = 0.12, 0.05, 750, -0.7, 5.5
    se = math.sqrt((1 - skew * sr + (kurt - 1) / 4 * sr * sr) / (t - 1))
    want = 0.5 * math.erfc(-(sr - bench) / se / math.sqrt(2))
    got = stats.probabilistic_sharpe_ratio(sr, benchmark=bench, periods=t, skew=skew, kurtosis=kurt)
    assert got == pytest.approx(want, rel=1e-13)
    assert stats.probabilistic_sharpe_ratio(sr, benchmark=sr, periods=t, skew=skew, kurtosis=kurt) == 0.5


# --- vectorization -------------------------------------------------------------------------------


@settings(max_examples=60, derandomize=True)
@given(
    sr=st.floats(-0.5, 0.5),
    n=st.integers(1, 10**7),
    v=st.floats(1e-6, 0.05),
    skew=st.floats(-3, 3),
    excess=st.floats(0, 20),
    t=st.integers(2, 10**5),
)
def test_dsr_matches_the_scalar_formulas(
    sr: float, n: int, v: float, skew: float, excess: float, t: int
) -> None:
    kurt = 1 + skew * skew + excess
    got = stats.deflated_sharpe_ratio(
        sr, n_trials=n, trials_sharpe_variance=v, skew=skew, kurtosis=kurt, periods=t
    )
    assert isinstance(got, float)
    assert got == pytest.approx(scalar_dsr(sr, n, v, skew, kurt, t), rel=1e-11, abs=1e-300)


def test_dsr_over_an_array_equals_the_scalar_loop() -> None:
    rng = np.random.default_rng(2)
    sharpes = rng.normal(0.05, 0.04, size=2000)
    got = stats.deflated_sharpe_ratio(
        sharpes, n_trials=500, trials_sharpe_variance=0.0016, skew=-0.5, kurtosis=4.0, periods=1000
    )
    assert isinstance(got, np.ndarray)
    assert got.shape == (2000,)
    want = [scalar_dsr(s, 500, 0.0016, -0.5, 4.0, 1000) for s in sharpes]
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_dsr_over_a_large_broadcast_runs_in_pieces_and_agrees() -> None:
    # 3 x 40,000 results: more than one piece of the buffered iterator, with broadcasting inside.
    rng = np.random.default_rng(6)
    sharpes = rng.normal(0.05, 0.04, size=40_000)
    periods = np.array([[250], [1000], [4000]])
    got = stats.deflated_sharpe_ratio(
        sharpes,
        n_trials=[[10], [1000], [10**6]],
        trials_sharpe_variance=0.0016,
        skew=-0.5,
        kurtosis=4.0,
        periods=periods,
    )
    assert got.shape == (3, 40_000)
    for row, (n, t) in enumerate([(10, 250), (1000, 1000), (10**6, 4000)]):
        for column in (0, 16_383, 16_384, 39_999):
            want = scalar_dsr(sharpes[column], n, 0.0016, -0.5, 4.0, t)
            assert got[row, column] == pytest.approx(want, rel=1e-11, abs=1e-300)


def test_dsr_broadcasts_every_argument() -> None:
    got = stats.deflated_sharpe_ratio(
        np.array([[0.1], [0.2]]),
        n_trials=np.array([1, 10, 100]),
        trials_sharpe_variance=0.001,
        skew=0.0,
        kurtosis=3.0,
        periods=[500, 1000, 2000],
    )
    assert got.shape == (2, 3)
    assert got[1, 2] == pytest.approx(scalar_dsr(0.2, 100, 0.001, 0.0, 3.0, 2000), rel=1e-12)


# --- from returns --------------------------------------------------------------------------------


def test_describe_returns_matches_direct_formulas() -> None:
    r = np.random.default_rng(9).standard_t(5, size=777) * 0.01 + 0.0005
    summary = stats.describe_returns(r)
    d = r - r.mean()
    m2 = (d**2).mean()
    assert summary.periods == 777
    assert summary.mean == pytest.approx(r.mean(), rel=1e-14)
    assert summary.std == pytest.approx(r.std(ddof=1), rel=1e-14)
    assert summary.sharpe == pytest.approx(r.mean() / r.std(ddof=1), rel=1e-13)
    assert summary.skew == pytest.approx((d**3).mean() / m2**1.5, rel=1e-12)
    assert summary.kurtosis == pytest.approx((d**4).mean() / m2**2, rel=1e-12)
    assert summary.sharpe_standard_error == pytest.approx(
        stats.sharpe_ratio_standard_error(
            summary.sharpe, periods=777, skew=summary.skew, kurtosis=summary.kurtosis
        ),
        rel=1e-13,
    )


def test_describe_returns_agrees_with_scipy() -> None:
    scipy_stats = pytest.importorskip("scipy.stats")
    r = np.random.default_rng(4).lognormal(size=(500, 3)) - 1.5
    summary = stats.describe_returns(r)
    np.testing.assert_allclose(summary.skew, scipy_stats.skew(r), rtol=1e-12)
    np.testing.assert_allclose(summary.kurtosis, scipy_stats.kurtosis(r, fisher=False), rtol=1e-12)


def test_sharpe_ratio_of_columns_and_annualized() -> None:
    r = np.random.default_rng(1).normal(0.001, 0.01, size=(300, 4))
    got = stats.sharpe_ratio(r)
    np.testing.assert_allclose(got, r.mean(axis=0) / r.std(axis=0, ddof=1), rtol=1e-13)
    annual = stats.sharpe_ratio(r[:, 0], periods_per_year=252)
    assert annual == pytest.approx(got[0] * math.sqrt(252), rel=1e-13)


def test_a_strategy_that_never_traded_has_sharpe_zero() -> None:
    r = np.zeros((50, 2))
    r[:, 1] = np.linspace(-0.01, 0.02, 50)
    assert stats.sharpe_ratio(r)[0] == 0.0
    summary = stats.describe_returns(np.zeros(50))
    assert (summary.sharpe, summary.skew, summary.kurtosis) == (0.0, 0.0, 3.0)


# --- bad input: one ValueError naming the argument -----------------------------------------------

GOOD = dict(n_trials=10, trials_sharpe_variance=0.01, skew=0.0, kurtosis=3.0, periods=100)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"sharpe": math.nan}, r"sharpe contains nan"),
        ({"sharpe": [0.1, math.inf]}, r"sharpe contains inf at index \(1,\)"),
        ({"sharpe": "high"}, r"sharpe must be a number"),
        ({"n_trials": 0}, r"n_trials must be at least 1"),
        ({"n_trials": 2.5}, r"n_trials must be a whole number"),
        ({"n_trials": True}, r"n_trials must be a whole number"),
        ({"periods": 1}, r"periods must be at least 2"),
        ({"trials_sharpe_variance": -0.1}, r"trials_sharpe_variance must be > 0"),
        ({"trials_sharpe_variance": 0.0}, r"trials_sharpe_variance is 0 with more than one trial"),
        ({"kurtosis": 0.0}, r"kurtosis 0.0 is below 1 \+ skew² .*add 3 to an excess kurtosis"),
        ({"skew": 2.0, "kurtosis": 4.0}, r"kurtosis 4.0 is below 1 \+ skew² = 5.0"),
        ({"periods_per_year": 0}, r"periods_per_year must be a positive number"),
        ({"periods_per_year": "daily"}, r"periods_per_year must be a positive number"),
    ],
)
def test_dsr_rejects_bad_input(change: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {"sharpe": 0.1, **GOOD, **change}
    sharpe = arguments.pop("sharpe")
    with pytest.raises(ValueError, match=message):
        stats.deflated_sharpe_ratio(sharpe, **arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("returns", "message"),
    [
        (np.array([0.01]), r"returns has 1 period\(s\); a Sharpe ratio needs at least 2"),
        (np.zeros((3, 2, 2)), r"returns must be one series \(1-D\) or a periods x series matrix"),
        (np.array([0.01, np.nan, 0.02]), r"returns contains nan at index \(1,\)"),
        (np.full(10, 0.001), r"returns is the constant 0.001: a riskless series has no Sharpe ratio"),
        (np.column_stack([np.arange(5.0), np.full(5, 2.0)]), r"column 1 of returns is the constant 2.0"),
    ],
)
def test_sharpe_ratio_rejects_bad_returns(returns: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        stats.sharpe_ratio(returns)
