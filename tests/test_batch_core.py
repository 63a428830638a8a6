"""The Rust pieces batch sweeps stand on: chunk columns of a grid and vectorized ``require``."""

from __future__ import annotations

import numpy as np
import pytest
from fastgrid import Expression, Grid, SpecError

SPEC = {
    "fast": {"type": "int", "low": 1, "high": 12},
    "slow": {"type": "int", "low": 2, "high": 30, "step": 2},
    "stop": {"type": "float", "low": 0.1, "high": 0.5, "step": 0.1},
    "mode": {"type": "grid", "values": ["long", "long_short"]},
    "cost": 0.001,
}


@pytest.mark.parametrize("constraints", [None, "fast < slow"])
@pytest.mark.parametrize("shuffled", [False, True])
def test_chunk_columns_are_slices_of_the_whole(constraints: str | None, shuffled: bool) -> None:
    grid = Grid(SPEC, constraints=constraints, flat=True)
    view = grid.shuffled(7) if shuffled else grid
    whole = view.columns()
    n = len(view)
    for start, stop in [(0, 1), (5, 133), (n - 17, n), (0, n), (40, 40)]:
        chunk = view.columns(start, stop, fixed="scalar")
        assert chunk["cost"] == 0.001 and isinstance(chunk["cost"], float)
        for path in ("fast", "slow", "stop", "mode"):
            assert chunk[path].dtype == whole[path].dtype
            assert chunk[path].tolist() == whole[path][start:stop].tolist()
        # The columns are the points themselves.
        for j in range(0, stop - start, 37):
            point = view[start + j]
            assert {p: chunk[p][j] for p in ("fast", "slow", "stop", "mode")} == {
                p: point[p] for p in ("fast", "slow", "stop", "mode")
            }


def test_fixed_values_are_columns_by_default_and_in_unions_where_they_differ() -> None:
    grid = Grid(SPEC, flat=True)
    assert grid.columns(0, 3)["cost"].tolist() == [0.001] * 3
    union = Grid([{"a": {"type": "int", "low": 1, "high": 2}, "k": 1}, {"a": 5, "k": 1}], flat=True)
    cols = union.columns(0, 3, fixed="scalar")
    assert cols["k"] == 1  # fixed and equal in every tree
    assert cols["a"].tolist() == [1, 2, 5]  # fixed in one tree only: a column
    other = Grid([{"a": 1, "k": 1}, {"a": 1, "k": 2}], flat=True).columns(fixed="scalar")
    assert other["a"] == 1 and other["k"].tolist() == [1, 2]


def test_chunk_column_arguments_are_checked() -> None:
    grid = Grid(SPEC, flat=True)
    with pytest.raises(ValueError, match=r"0 <= start <= stop <= \d+, got start=9, stop=3"):
        grid.columns(9, 3)
    with pytest.raises(ValueError, match="0 <= start <= stop"):
        grid.columns(0, len(grid) + 1)
    with pytest.raises(ValueError, match="0 <= start <= stop"):
        grid.columns(-1, 3)
    with pytest.raises(ValueError, match='fixed="row": expected "column" or "scalar"'):
        grid.columns(fixed="row")  # type: ignore[arg-type]


def test_evaluate_columns_agrees_with_evaluate_row_by_row() -> None:
    rng = np.random.default_rng(3)
    n = 500
    cols = {
        "sharpe": rng.normal(size=n),
        "trades": rng.integers(0, 40, size=n).astype(np.int32),
        "ok": rng.random(n) < 0.8,
        "dd": rng.random(n).astype(np.float32),
        "mode": np.array(rng.choice(["long", "long_short"], size=n), dtype=object),
    }
    cols["sharpe"][::50] = np.nan
    src = "(sharpe > 0.2 and trades >= 10 or not ok) and dd * 2 < 1.5 and mode != 'long'"
    expr = Expression(src)
    got = expr.evaluate_columns(cols)
    assert got.dtype == np.bool_ and got.shape == (n,)
    for i in range(n):
        row = {k: v[i].item() if hasattr(v[i], "item") else v[i] for k, v in cols.items()}
        assert got[i] == expr.evaluate(row), i


def test_evaluate_columns_scalars_and_lengths() -> None:
    expr = Expression("x > limit")
    assert expr.evaluate_columns({"x": [1, 5, 9], "limit": 4}).tolist() == [False, True, True]
    assert expr.evaluate_columns({"x": 5, "limit": 4}, length=3).tolist() == [True] * 3
    with pytest.raises(ValueError, match='column "limit" has 2 values, expected 3'):
        expr.evaluate_columns({"x": [1, 5, 9], "limit": [1, 2]})
    with pytest.raises(ValueError, match="2 dimensions"):
        expr.evaluate_columns({"x": np.zeros((2, 2)), "limit": 1})


def test_unknown_metric_is_an_error_with_a_suggestion_never_infeasible() -> None:
    expr = Expression("sharpe_ratio > 1")
    with pytest.raises(SpecError, match=r"unknown name 'sharpe_ratio' \(did you mean 'sharpe_ratio_'\?\)"):
        expr.evaluate_columns({"sharpe_ratio_": np.ones(3), "trades": np.ones(3)})
    with pytest.raises(SpecError, match=r"trades > 'many'"):
        Expression("trades > 'many'").evaluate_columns({"trades": np.ones(3)})
    with pytest.raises(TypeError, match="dict of names to columns"):
        expr.evaluate_columns([1, 2])  # type: ignore[arg-type]
