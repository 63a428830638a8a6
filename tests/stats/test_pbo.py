"""PBO by CSCV against a plain loop over the combinations, and its statistical behaviour."""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest
from fastgrid import stats
from hypothesis import given, settings
from hypothesis import strategies as st


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their average, by sorting (as ``scipy.stats.rankdata``)."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    ranks = np.empty(len(values))
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and ordered[j + 1] == ordered[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def column_sharpe(m: np.ndarray) -> np.ndarray:
    std = m.std(axis=0, ddof=1)
    return np.where(std > 0, m.mean(axis=0) / np.where(std > 0, std, 1.0), 0.0)


def cscv_loop(m: np.ndarray, splits: int) -> dict[str, np.ndarray]:
    """CSCV as the paper states it, one combination at a time."""
    periods, strategies = m.shape
    blocks = np.array_split(np.arange(periods), splits)
    out: dict[str, list[float]] = {"logits": [], "selected": [], "is": [], "oos": []}
    for chosen in itertools.combinations(range(splits), splits // 2):
        train = np.concatenate([blocks[b] for b in chosen])
        test = np.concatenate([blocks[b] for b in range(splits) if b not in chosen])
        is_sr, oos_sr = column_sharpe(m[train]), column_sharpe(m[test])
        best = int(np.argmax(is_sr))
        omega = average_ranks(oos_sr)[best] / (strategies + 1)
        out["logits"].append(math.log(omega / (1 - omega)))
        out["selected"].append(best)
        out["is"].append(is_sr[best])
        out["oos"].append(oos_sr[best])
    return {key: np.array(value) for key, value in out.items()}


def assert_matches_loop(m: np.ndarray, splits: int) -> None:
    got = stats.pbo(m, splits=splits)
    want = cscv_loop(m, splits)
    np.testing.assert_array_equal(got.selected, want["selected"])
    np.testing.assert_allclose(got.logits, want["logits"], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got.is_sharpe, want["is"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got.oos_sharpe, want["oos"], rtol=1e-9, atol=1e-12)
    assert got.pbo == np.mean(want["logits"] <= 0)
    assert got.probability_of_loss == np.mean(want["oos"] < 0)
    if np.ptp(want["is"]) > 0:
        slope, intercept = np.polyfit(want["is"], want["oos"], 1)
        assert got.degradation_slope == pytest.approx(slope, rel=1e-8, abs=1e-10)
        assert got.degradation_intercept == pytest.approx(intercept, rel=1e-8, abs=1e-10)
    assert (got.splits, got.periods, got.strategies) == (splits, *m.shape)
    assert got.combinations == math.comb(splits, splits // 2)


@pytest.mark.parametrize(
    ("periods", "strategies", "splits"), [(203, 7, 8), (64, 5, 2), (150, 12, 6), (97, 3, 4)]
)
def test_matches_the_loop(periods: int, strategies: int, splits: int) -> None:
    m = np.random.default_rng(periods).normal(0.0, 0.01, size=(periods, strategies))
    assert_matches_loop(m, splits)


def test_matches_the_loop_with_ties_and_a_strategy_that_never_trades() -> None:
    rng = np.random.default_rng(8)
    m = rng.normal(0.0005, 0.01, size=(120, 6))
    m[:, 3] = m[:, 1]  # two parameter sets that trade alike
    m[:, 5] = 0.0  # one that never trades
    m[:, 4] = np.round(m[:, 4], 3)  # coarse returns
    assert_matches_loop(m, 8)


@settings(max_examples=40, derandomize=True, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    periods=st.integers(20, 160),
    strategies=st.integers(2, 9),
    half=st.integers(1, 5),
)
def test_matches_the_loop_on_any_shape(seed: int, periods: int, strategies: int, half: int) -> None:
    splits = 2 * half
    if periods < 2 * splits:
        periods = 2 * splits
    m = np.random.default_rng(seed).standard_t(4, size=(periods, strategies)) * 0.02
    assert_matches_loop(m, splits)


def test_sixteen_splits_give_the_papers_12870_combinations() -> None:
    m = np.random.default_rng(0).normal(size=(64, 3))
    assert stats.pbo(m).combinations == 12_870


@settings(max_examples=10, derandomize=True, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_pure_noise_is_overfit_half_of_the_time(seed: int) -> None:
    """With no skill anywhere, the in-sample winner is a random draw out of sample: PBO ≈ 0.5.

    One matrix's PBO is itself noisy (its combinations share data), so average over 32 matrices.
    """
    rng = np.random.default_rng(seed)
    values = [stats.pbo(rng.normal(size=(320, 31)), splits=8).pbo for _ in range(32)]
    assert abs(float(np.mean(values)) - 0.5) < 0.12


@settings(max_examples=10, derandomize=True, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_one_strategy_with_a_strong_edge_is_not_overfit(seed: int) -> None:
    rng = np.random.default_rng(seed)
    m = rng.normal(size=(400, 30))
    m[:, 7] += 0.5  # Sharpe 0.5 a period against 29 noise strategies
    result = stats.pbo(m, splits=8)
    assert result.pbo < 0.05
    assert np.mean(result.selected == 7) > 0.9
    assert result.probability_of_loss == 0.0


def test_results_are_frozen() -> None:
    result = stats.pbo(np.random.default_rng(1).normal(size=(40, 4)), splits=4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.pbo = 0.0  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        result.logits[0] = 1.0
    assert "pbo=" in repr(result) and "logits" not in repr(result)


def test_accepts_nested_lists() -> None:
    rows = np.random.default_rng(2).normal(size=(16, 3)).tolist()
    assert stats.pbo(rows, splits=4).combinations == 6


@pytest.mark.parametrize(
    ("returns", "splits", "message"),
    [
        ((64, 4), 7, r"splits must be an even number ≥ 2 .*got 7"),
        ((64, 4), 0, r"splits must be an even number ≥ 2"),
        ((64, 4), 2.0, r"splits must be a whole number, got 2.0"),
        ((64, 4), True, r"splits must be a whole number, got True"),
        ((64, 4), 26, r"splits=26 gives 10,400,600 combinations; use at most 24"),
        ((31, 4), 16, r"returns has 31 periods, too few for splits=16: .*at least 32"),
        ((64,), 4, r"returns must be a 2-D periods x strategies matrix .*got shape \(64,\)"),
        ((64, 1), 4, r"returns has 1 strategy column\(s\); PBO ranks at least 2"),
    ],
)
def test_rejects_bad_input(returns: tuple[int, ...], splits: object, message: str) -> None:
    m = np.random.default_rng(0).normal(size=returns)
    with pytest.raises(ValueError, match=message):
        stats.pbo(m, splits=splits)  # type: ignore[arg-type]


def test_rejects_missing_values_and_riskless_columns() -> None:
    m = np.random.default_rng(0).normal(size=(40, 3))
    m[5, 2] = np.nan
    with pytest.raises(ValueError, match=r"returns contains nan at index \(5, 2\)"):
        stats.pbo(m, splits=4)
    m[5, 2] = 0.0
    m[:, 1] = 0.0002
    with pytest.raises(ValueError, match=r"column 1 of returns is the constant 0.0002"):
        stats.pbo(m, splits=4)
