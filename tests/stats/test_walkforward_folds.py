"""Walk-forward folds, the packed returns series and the rank correlation."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
from fastgrid import stats
from hypothesis import given, settings
from hypothesis import strategies as st


def windows(folds: list[stats.Fold]) -> list[tuple[tuple, tuple]]:
    return [(f.train, f.test) for f in folds]


def test_rolling_folds_over_bar_indices() -> None:
    folds = stats.walk_forward_folds(start=0, end=5000, train=2000, test=600)
    assert windows(folds) == [
        ((0, 2000), (2000, 2600)),
        ((600, 2600), (2600, 3200)),
        ((1200, 3200), (3200, 3800)),
        ((1800, 3800), (3800, 4400)),
        ((2400, 4400), (4400, 5000)),
    ]
    assert [f.index for f in folds] == [0, 1, 2, 3, 4]


def test_anchored_folds_grow_from_the_start() -> None:
    folds = stats.walk_forward_folds(start=100, end=1000, train=400, test=200, anchored=True)
    assert windows(folds) == [((100, 500), (500, 700)), ((100, 700), (700, 900))]


def test_step_shorter_than_test_overlaps_the_tests() -> None:
    folds = stats.walk_forward_folds(start=0, end=100, train=50, test=20, step=10)
    assert windows(folds)[:2] == [((0, 50), (50, 70)), ((10, 60), (60, 80))]
    assert windows(folds)[-1] == ((30, 80), (80, 100))


def test_date_folds_keep_the_form_given() -> None:
    folds = stats.walk_forward_folds(start="2020-01-31", end="2021-01-01", train="6mo", test="1mo")
    assert windows(folds)[0] == (("2020-01-31", "2020-07-31"), ("2020-07-31", "2020-08-31"))
    # Month arithmetic from the anchor, clamped to the month's last day.
    assert windows(folds)[1] == (("2020-02-29", "2020-08-29"), ("2020-08-29", "2020-09-29"))
    dated = stats.walk_forward_folds(start=dt.date(2020, 1, 1), end=dt.date(2020, 3, 1), train=28, test="2w")
    assert dated[0].train == (dt.date(2020, 1, 1), dt.date(2020, 1, 29))
    assert dated[0].test == (dt.date(2020, 1, 29), dt.date(2020, 2, 12))


@settings(max_examples=200, derandomize=True)
@given(
    start=st.integers(-1000, 1000),
    span=st.integers(1, 5000),
    train=st.integers(1, 2000),
    test=st.integers(1, 500),
    step=st.none() | st.integers(1, 500),
    anchored=st.booleans(),
)
def test_folds_never_look_ahead_and_stay_inside(
    start: int, span: int, train: int, test: int, step: int | None, anchored: bool
) -> None:
    end = start + span
    try:
        folds = stats.walk_forward_folds(
            start=start, end=end, train=train, test=test, step=step, anchored=anchored
        )
    except ValueError as exc:
        assert train + test > span and "no fold fits" in str(exc)
        return
    move = step or test
    for i, f in enumerate(folds):
        assert f.train[1] == f.test[0]  # the test starts where training ends
        assert f.test[1] - f.test[0] == test
        assert start <= f.train[0] < f.train[1] and f.test[1] <= end
        assert f.train[0] == (start if anchored else start + i * move)
        assert f.train[1] == start + i * move + train
    assert folds[-1].test[1] + move > end  # no further fold fits


def test_explicit_windows() -> None:
    folds = stats.explicit_folds(
        [{"train": [0, 100], "test": [100, 150]}, {"train": [50, 150], "test": [160, 200]}]
    )
    assert windows(folds) == [((0, 100), (100, 150)), ((50, 150), (160, 200))]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start": 0, "end": 0, "train": 1, "test": 1}, r"start \(0\) must come before end \(0\)"),
        ({"start": 0, "end": 100, "train": 0, "test": 1}, r"train must be positive"),
        ({"start": 0, "end": 100, "train": 10, "test": 1.5}, r"test must be a whole number of bars"),
        ({"start": 0, "end": 100, "train": 90, "test": 20}, r"no fold fits in \[0, 100\)"),
        (
            {"start": 0.5, "end": 100, "train": 10, "test": 5},
            r"start must be a whole number \(a bar index\) or a date",
        ),
        (
            {"start": "2020-01-01", "end": "2020-13-01", "train": 5, "test": 5},
            r"end must be a date written YYYY-MM-DD",
        ),
        (
            {"start": "2020-01-01", "end": "2021-01-01", "train": "6m", "test": 5},
            r"train must be days, or text like",
        ),
        ({"start": 0, "end": 100, "train": 10, "test": 5, "step": -1}, r"step must be positive"),
    ],
)
def test_bad_fold_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        stats.walk_forward_folds(**kwargs)


@pytest.mark.parametrize(
    ("windows_", "message"),
    [
        ([], r"windows must be a non-empty list"),
        ([{"train": [0, 10]}], r"windows\[0\] must have exactly the keys 'train' and 'test'"),
        ([{"train": [0, 10], "test": [5, 20]}], r"windows\[0\]: the test window starts at 5, before"),
        ([{"train": [10, 0], "test": [20, 30]}], r"windows\[0\].train: start 10 must come before end 0"),
        ([{"train": [0, 10], "test": [10]}], r"windows\[0\].test must be \[start, end\]"),
    ],
)
def test_bad_explicit_windows(windows_: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        stats.explicit_folds(windows_)


# --- packed returns ------------------------------------------------------------------------------


@settings(max_examples=50, derandomize=True)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False, width=64), min_size=2, max_size=300))
def test_pack_returns_round_trips_exactly(values: list[float]) -> None:
    packed = stats.pack_returns(values)
    assert packed.startswith("fgr1:") and packed.isascii()
    np.testing.assert_array_equal(stats.unpack_returns(packed), np.array(values))


def test_packed_returns_are_smaller_than_the_floats() -> None:
    raw_base64 = 5000 * 8 * 4 / 3
    noise = np.random.default_rng(0).normal(0.0, 0.01, size=5000)
    assert len(stats.pack_returns(noise)) < 0.92 * raw_base64  # only sign and exponent repeat
    flat_half = np.where(np.arange(5000) % 2 == 0, 0.0, noise)  # a strategy out of the market half the time
    assert len(stats.pack_returns(flat_half)) < 0.6 * raw_base64


def test_bad_returns_series() -> None:
    with pytest.raises(ValueError, match=r"returns contains nan at index \(2,\)"):
        stats.pack_returns([0.1, 0.2, math.nan])
    with pytest.raises(ValueError, match=r"returns must be one series of per-period returns \(1-D\)"):
        stats.pack_returns([[0.1, 0.2]])
    with pytest.raises(ValueError, match=r"returns has 1 period\(s\)"):
        stats.pack_returns([0.1])
    with pytest.raises(ValueError, match=r"not a packed returns series"):
        stats.unpack_returns("[0.1, 0.2]")
    with pytest.raises(ValueError, match=r"damaged packed returns series"):
        stats.unpack_returns("fgr1:not base64!")


# --- rank correlation ----------------------------------------------------------------------------


def test_rank_correlation_values() -> None:
    assert stats.rank_correlation([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert stats.rank_correlation([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # Ties share their average rank: ranks (1.5, 1.5, 3) against (1, 2, 3).
    assert stats.rank_correlation([5, 5, 9], [1, 2, 3]) == pytest.approx(math.sqrt(3) / 2)
    assert math.isnan(stats.rank_correlation([1, 1, 1], [1, 2, 3]))


def test_rank_correlation_agrees_with_scipy() -> None:
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(3)
    x = rng.integers(0, 8, size=50).astype(float)
    y = x + rng.normal(size=50)
    assert stats.rank_correlation(x, y) == pytest.approx(scipy_stats.spearmanr(x, y).statistic, rel=1e-12)
