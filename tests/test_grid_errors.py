"""The SpecError catalogue: every bad spec names the parameter path and says what to do."""

from __future__ import annotations

import math
from typing import Any

import pytest
from fastgrid import Grid, SpecError

CASES: list[tuple[str, Any, str, str]] = [
    ("step <= 0", {"a": {"b": {"type": "float", "low": 0, "high": 1, "step": 0}}}, "a.b", "positive"),
    ("negative int step", {"n": {"type": "int", "low": 0, "high": 1, "step": -1}}, "n", "positive"),
    ("low > high", {"x": {"type": "int", "low": 5, "high": 1}}, "x", "greater than"),
    ("float low > high", {"x": {"type": "float", "low": 0.5, "high": 0.1, "step": 0.1}}, "x", "greater than"),
    ("NaN bound", {"x": {"type": "float", "low": math.nan, "high": 1.0, "step": 0.1}}, "x", "finite"),
    ("inf bound", {"x": {"type": "float", "low": 0.0, "high": math.inf, "num": 3}}, "x", "finite"),
    ("string bound", {"x": {"type": "float", "low": "0", "high": 1.0, "step": 0.1}}, "x", "number"),
    ("bool bound", {"x": {"type": "int", "low": True, "high": 3}}, "x", "integer"),
    ("float bound of an int", {"x": {"type": "int", "low": 0.5, "high": 3}}, "x", "integer"),
    ("empty values", {"m": {"type": "grid", "values": []}}, "m", "at least one"),
    ("values not a list", {"m": {"type": "grid", "values": 3}}, "m", "list"),
    ("unknown type", {"m": {"type": "choice", "values": [1]}}, "m", "unknown type"),
    ("type not a string", {"m": {"type": 3}}, "m", "string"),
    ("missing values", {"m": {"type": "grid"}}, "m", "`values`"),
    ("missing low", {"m": {"type": "int", "high": 3}}, "m", "`low`"),
    ("missing value", {"m": {"type": "fixed"}}, "m", "`value`"),
    ("unknown field", {"m": {"type": "int", "low": 1, "high": 3, "stpe": 1}}, "m", "unknown field"),
    ("step and num", {"m": {"type": "float", "low": 0, "high": 1, "step": 0.5, "num": 3}}, "m", "not both"),
    ("log with step", {"m": {"type": "float", "low": 1, "high": 10, "step": 1, "log": True}}, "m", "num"),
    ("log from zero", {"m": {"type": "float", "low": 0, "high": 1, "num": 3, "log": True}}, "m", "> 0"),
    ("bad num", {"m": {"type": "float", "low": 0, "high": 1, "num": 0}}, "m", "num"),
    ("continuous", {"m": {"type": "float", "low": 0, "high": 1}}, "m", "`step"),
    ("defined twice", {"exit.stop": 1, "exit": {"stop": 2}}, "exit.stop", "twice"),
    ("value and namespace", {"exit": 1, "exit.stop": 2}, "exit", "namespace"),
    ("namespace and value", {"exit.stop": 2, "exit": {"type": "fixed", "value": 1}}, "exit", "namespace"),
    ("empty key segment", {"a..b": 1}, "", "empty segment"),
    ("too many digits", {"m": {"type": "float", "low": 0, "high": 1, "step": 1e-30}}, "m", "decimal"),
    ("beyond u128", {f"p{i}": {"type": "int", "low": 0, "high": 2**62} for i in range(3)}, "", "2^128"),
    ("union tree", [{"a": 1}, {"b": {"type": "nope"}}], "[1].b", "unknown type"),
    ("root not a dict", 3, "", "dict"),
]


@pytest.mark.parametrize(("tree", "path", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_spec_errors_name_the_path(tree: Any, path: str, words: str) -> None:
    with pytest.raises(SpecError) as e:
        Grid(tree)
    assert e.value.path == path
    assert words in str(e.value)
    if path:
        assert str(e.value).startswith(f"{path}: ")


TREE = {
    "fast": {"type": "int", "low": 1, "high": 5},
    "slow": {"type": "int", "low": 2, "high": 9},
    "mode": {"type": "grid", "values": ["long", "short"]},
    "exit": {"stop": {"type": "float", "low": 0.01, "high": 0.03, "step": 0.01}},
}


@pytest.mark.parametrize(
    ("constraint", "column", "words"),
    [
        ("fast <", 7, "expected a value"),
        ("fast < < slow", 8, "expected a value"),
        ("fast < slw", 8, "did you mean 'slow'"),
        ("stop > 0.01", 1, "did you mean 'exit.stop'"),
        ("mode > 3", 6, "needs two numbers or two strings"),
        ("mode == 3", 6, "never true"),
        ("fast and slow", 6, "needs true or false"),
    ],
)
def test_constraint_errors_carry_expression_and_column(constraint: str, column: int, words: str) -> None:
    with pytest.raises(SpecError) as e:
        Grid(TREE, constraints=[constraint])
    assert e.value.expr == constraint  # type: ignore[attr-defined]
    assert e.value.column == column  # type: ignore[attr-defined]
    assert words in str(e.value)


def test_constraint_for_no_tree_of_a_union() -> None:
    with pytest.raises(SpecError, match="no tree"):
        Grid([{"a": [1]}, {"b": [2]}], constraints=["c > 1"])
    g = Grid(
        [{"a": {"type": "int", "low": 0, "high": 3}}, {"b": {"type": "int", "low": 0, "high": 3}}],
        constraints=["a > 1"],
    )
    assert [p for p in g][:2] == [{"a": 2}, {"a": 3}]
    assert len(g) == 6


def test_non_json_values_and_constraint_types() -> None:
    with pytest.raises(TypeError, match="m"):
        Grid({"m": {"type": "grid", "values": [object()]}})
    with pytest.raises(TypeError, match="string"):
        Grid(TREE, constraints=[3])  # type: ignore[list-item]
