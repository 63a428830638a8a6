"""The vectorized normal CDF against the standard library's (independent) erfc and NormalDist."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
from fastgrid.stats._normal import erfc, normal_cdf, normal_upper_quantile
from hypothesis import given, settings
from hypothesis import strategies as st

# The branch boundaries of Cody's approximation and the edge of the double range.
EDGES = [0.0, -0.0, 0.46875, -0.46875, 0.4687500001, 4.0, -4.0, 4.0000001, 26.5, 26.543, -26.6, 27.0, 40.0]


def relative_error(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    return np.abs(got - want) / np.maximum(np.abs(want), np.finfo(float).tiny)


def test_erfc_matches_the_standard_library_over_the_whole_range() -> None:
    x = np.concatenate([np.linspace(-27.0, 27.0, 100_001), EDGES])
    want = np.array([math.erfc(v) for v in x])
    normal_range = want > 1e-300  # below, both round into subnormals differently
    assert relative_error(erfc(x), want)[normal_range].max() < 1e-14
    assert (erfc(x)[~normal_range] < 1e-300).all()


@settings(max_examples=300, derandomize=True)
@given(st.floats(min_value=-26.0, max_value=26.0, allow_nan=False))
def test_erfc_of_any_float(x: float) -> None:
    assert relative_error(erfc(np.array([x])), np.array([math.erfc(x)]))[0] < 1e-14


def test_erfc_of_huge_arguments_is_exact_and_quiet() -> None:
    # Run under -W error in CI: no overflow warning may escape from the unused branches.
    np.testing.assert_array_equal(erfc(np.array([1e300, -1e300, 1e20, -27.0])), [0.0, 2.0, 0.0, 2.0])


def test_erfc_across_chunk_boundaries_keeps_order() -> None:
    x = np.random.default_rng(3).normal(scale=3.0, size=50_000)
    assert relative_error(erfc(x), np.array([math.erfc(v) for v in x])).max() < 1e-14


def test_normal_cdf_values_and_limits() -> None:
    z = np.array([-np.inf, -40.0, -1.959963984540054, 0.0, 1.0, 8.0, np.inf, np.nan])
    got = normal_cdf(z)
    want = [0.0, NormalDist().cdf(-40.0), 0.025, 0.5, NormalDist().cdf(1.0), NormalDist().cdf(8.0), 1.0]
    np.testing.assert_allclose(got[:-1], want, rtol=1e-14, atol=0)
    assert math.isnan(got[-1])
    assert normal_cdf(np.zeros((2, 3))).shape == (2, 3)


def test_upper_quantile_keeps_tail_precision() -> None:
    assert math.isclose(normal_upper_quantile(0.025), 1.959963984540054, rel_tol=1e-15)
    # 1 - 1e-18 rounds to 1.0, yet the quantile is found: its upper tail is 1e-18 again.
    z = normal_upper_quantile(1e-18)
    assert math.isclose(0.5 * math.erfc(z / math.sqrt(2.0)), 1e-18, rel_tol=1e-12)
