"""fastgrid.Expression: the constraint language seen from Python.

Python's own ``eval`` appears here only as an oracle for random well-typed expressions; the
library never evaluates constraints as Python.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Iterator, Mapping
from typing import Any

import fastgrid
import numpy as np
import pytest
from fastgrid import Expression, SpecError
from hypothesis import assume, given, settings
from hypothesis import strategies as st

# --- the oracle --------------------------------------------------------------------------------

NAMES = ("a", "b", "c.d")
# Python cannot read `c.d` as one name; the oracle sees it as `c_d`.
ORACLE_NAME = {"a": "a", "b": "b", "c.d": "c_d"}


def _paren(s: str, wrap: bool) -> str:
    return f"({s})" if wrap else s


def _numbers() -> st.SearchStrategy[tuple[str, str]]:
    """Numeric expressions as (source for fastgrid, source for Python)."""
    leaf = st.one_of(
        st.sampled_from(NAMES).map(lambda n: (n, ORACLE_NAME[n])),
        st.integers(-50, 50).map(lambda i: (str(i), str(i))),
        st.floats(-50, 50, allow_nan=False).map(lambda f: (repr(f), repr(f))),
    )

    def extend(inner: st.SearchStrategy[tuple[str, str]]) -> st.SearchStrategy[tuple[str, str]]:
        binary = st.tuples(inner, st.sampled_from("+-*/%"), inner, st.booleans(), st.booleans()).map(
            lambda t: (
                f"{_paren(t[0][0], t[3])} {t[1]} {_paren(t[2][0], t[4])}",
                f"{_paren(t[0][1], t[3])} {t[1]} {_paren(t[2][1], t[4])}",
            )
        )
        unary = st.tuples(st.sampled_from("-+"), inner).map(
            lambda t: (f"{t[0]}({t[1][0]})", f"{t[0]}({t[1][1]})")
        )
        return st.one_of(binary, unary)

    # At most 8 leaves keeps products of ints below 2**53, where fastgrid's overflow-to-float
    # and Python's big ints would start to differ.
    return st.recursive(leaf, extend, max_leaves=8)


def _conditions() -> st.SearchStrategy[tuple[str, str]]:
    num = _numbers()
    ops = st.sampled_from(["<", "<=", ">", ">=", "==", "!="])
    compare = st.tuples(num, ops, num, st.booleans()).map(
        lambda t: (
            _paren(f"{t[0][0]} {t[1]} {t[2][0]}", t[3]),
            _paren(f"{t[0][1]} {t[1]} {t[2][1]}", t[3]),
        )
    )
    chain = st.tuples(num, ops, num, ops, num).map(
        lambda t: (
            f"({t[0][0]} {t[1]} {t[2][0]} {t[3]} {t[4][0]})",
            f"({t[0][1]} {t[1]} {t[2][1]} {t[3]} {t[4][1]})",
        )
    )
    literal = st.sampled_from([("true", "True"), ("False", "False")])
    leaf = st.one_of(compare, compare, chain, literal)

    def extend(inner: st.SearchStrategy[tuple[str, str]]) -> st.SearchStrategy[tuple[str, str]]:
        logical = st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(
            lambda t: (f"({t[0][0]}) {t[1]} ({t[2][0]})", f"({t[0][1]}) {t[1]} ({t[2][1]})")
        )
        bare = st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(
            lambda t: (f"{t[0][0]} {t[1]} {t[2][0]}", f"{t[0][1]} {t[1]} {t[2][1]}")
        )
        negated = inner.map(lambda e: (f"not ({e[0]})", f"not ({e[1]})"))
        return st.one_of(logical, bare, negated)

    return st.recursive(leaf, extend, max_leaves=4)


_values = st.one_of(st.integers(-50, 50), st.floats(-50, 50, allow_nan=False))


@settings(max_examples=400, deadline=None)
@given(expr=_conditions(), a=_values, b=_values, cd=_values)
def test_evaluate_agrees_with_python(expr: tuple[str, str], a: float, b: float, cd: float) -> None:
    source, python_source = expr
    try:
        expected = eval(python_source, {"__builtins__": {}}, {"a": a, "b": b, "c_d": cd})
    except ZeroDivisionError:
        # Python raises; fastgrid follows IEEE (inf/NaN), checked separately below.
        assume(False)
    got = Expression(source).evaluate({"a": a, "b": b, "c": {"d": cd}})
    assert got is expected, source


@settings(max_examples=200, deadline=None)
@given(x=st.integers(-(2**63), 2**63 - 1), y=st.floats(allow_nan=False))
def test_int_float_comparisons_are_exact_like_python(x: int, y: float) -> None:
    for op in ("<", "<=", "==", "!=", ">", ">="):
        expected = eval(f"x {op} y", {"__builtins__": {}}, {"x": x, "y": y})
        assert Expression(f"x {op} y").evaluate({"x": x, "y": y}) is expected, (x, op, y)


# --- semantics that differ from Python on purpose ------------------------------------------------


def test_bools_are_not_numbers() -> None:
    assert Expression("x == 1").evaluate({"x": True}) is False
    assert Expression("x == 1").evaluate({"x": 1}) is True
    assert Expression("x == 1.0").evaluate({"x": 1}) is True
    with pytest.raises(SpecError, match=r"'\+' needs numbers, but 'x' is bool"):
        Expression("x + 1 > 0").evaluate({"x": True})
    with pytest.raises(SpecError, match=r"'and' needs true or false, but 'n' is int"):
        Expression("n and true").evaluate({"n": 3})


def test_division_by_zero_follows_ieee() -> None:
    assert Expression("x / 0 > 1e308").evaluate({"x": 1}) is True
    assert Expression("x / 0 < -1e308").evaluate({"x": -1}) is True
    nan = Expression("x / 0 == x / 0")
    assert nan.evaluate({"x": 0}) is False
    assert Expression("x % 0 != x % 0").evaluate({"x": 5}) is True
    assert Expression("x < y or x >= y").evaluate({"x": math.nan, "y": 1}) is False


def test_int_overflow_falls_back_to_float() -> None:
    big = 2**63 - 1
    assert Expression("x + 1 > x").evaluate({"x": big}) is True
    assert Expression("x * x > 8.5e37 and x * x < 8.6e37").evaluate({"x": big}) is True


# --- lookup of names ---------------------------------------------------------------------------


def test_flat_key_first_then_nested_path() -> None:
    e = Expression("exit.stop_loss <= exit.take_profit * 0.5")
    assert e.names == ("exit.stop_loss", "exit.take_profit")
    assert e.evaluate({"exit": {"stop_loss": 0.02, "take_profit": 0.05}}) is True
    assert e.evaluate({"exit.stop_loss": 0.03, "exit.take_profit": 0.05}) is False
    # The flat key wins over the nested one.
    mixed = {"exit.stop_loss": 0.01, "exit": {"stop_loss": 0.9, "take_profit": 0.05}}
    assert e.evaluate(mixed) is True


class _Metrics(Mapping[str, Any]):
    """A read-only mapping that is not a dict."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


def test_any_mapping_and_numpy_scalars() -> None:
    e = Expression("trades >= 20 and max_drawdown <= 0.25 and ok")
    metrics = {"trades": np.int64(25), "max_drawdown": np.float64(0.2), "ok": np.bool_(True)}
    assert e.evaluate(_Metrics(metrics)) is True
    assert e.evaluate({**metrics, "trades": np.int32(3)}) is False
    with pytest.raises(TypeError, match="needs a mapping"):
        e.evaluate([("trades", 25)])  # type: ignore[arg-type]


def test_missing_name_suggests_the_closest_key() -> None:
    e = Expression("trades >= 20 and sharpe > 1")
    with pytest.raises(SpecError, match=r"unknown name 'sharpe' \(did you mean 'sharpe_ratio'\?\)") as info:
        e.evaluate({"trades": 30, "sharpe_ratio": 2.0})
    assert info.value.column == 18
    assert info.value.expr == "trades >= 20 and sharpe > 1"
    with pytest.raises(SpecError, match=r"unknown name 'stop_loss' \(did you mean 'exit.stop_loss'\?\)"):
        Expression("stop_loss < 1").evaluate({"exit": {"stop_loss": 0.5}})


def test_type_error_names_the_operand_and_types() -> None:
    with pytest.raises(SpecError) as info:
        Expression("mode < 3").evaluate({"mode": "long"})
    assert str(info.value) == (
        "constraint \"mode < 3\", column 6: '<' needs two numbers or two strings, "
        "but 'mode' is str and 3 is int"
    )
    assert info.value.column == 6


def test_strings_nulls_lists() -> None:
    e = Expression("mode == 'long' or leverage <= 2")
    assert e.evaluate({"mode": "long", "leverage": 10}) is True
    assert e.evaluate({"mode": "short", "leverage": 2}) is True
    assert e.evaluate({"mode": "short", "leverage": 3}) is False
    assert Expression("x == None or x > 2").evaluate({"x": None}) is True
    assert Expression('s == "a\\"b" and t < "é"').evaluate({"s": 'a"b', "t": "z"}) is True
    assert Expression("xs == ys").evaluate({"xs": [1, 2], "ys": [1, 2]}) is True
    assert Expression("xs != ys").evaluate({"xs": [1, 2], "ys": (1, 3)}) is True


# --- the object --------------------------------------------------------------------------------


def test_repr_eq_hash_pickle() -> None:
    e = Expression("fast < slow")
    assert repr(e) == "Expression('fast < slow')"
    assert e.source == "fast < slow"
    assert e == Expression("fast < slow")
    assert e != Expression("fast <= slow")
    assert hash(e) == hash(Expression("fast < slow"))
    clone = pickle.loads(pickle.dumps(e))
    assert clone == e and clone.evaluate({"fast": 1, "slow": 2}) is True
    assert fastgrid.Expression is Expression


# --- the catalogue of malformed expressions ---------------------------------------------------

MALFORMED = [
    ("fast <", 7, "expected a value after '<'"),
    ("", 1, "expected a condition, found an empty expression"),
    ("(a < b", 7, "expected ')' to close the '(' at column 1"),
    ("a < b)", 6, "unmatched ')'"),
    ("a b", 3, "expected an operator or the end of the expression, found 'b'"),
    ("a < < b", 5, "expected a value after '<', found '<'"),
    ("a = b", 3, "'=' is not an operator; use '==' to compare"),
    ("a & b", 3, "unexpected '&'; use 'and' (or '&&')"),
    ("x $ y", 3, "unexpected character '$'"),
    ("'abc", 1, "unterminated string: expected a closing '"),
    ("a.", 3, "expected a name after '.' in 'a.'"),
    ("a..b < 1", 3, "expected a name after '.' in 'a.'"),
    ("1e < x", 1, "malformed number '1e'"),
    ("x < 1.2.3", 5, "malformed number '1.2.3'"),
    ("not", 4, "expected a value after 'not'"),
    ("a and", 6, "expected a value after 'and'"),
    ("a < not b", 5, "expected a value after '<', found 'not'"),
    ("()", 2, "expected a value after '(', found ')'"),
    ("x is None", 3, "'is' is not supported; use '==' or '!='"),
    ("x in y", 3, "'in' is not supported; use '==' with 'or'"),
    ("f(x) > 1", 2, "expected an operator before '(' (function calls are not supported)"),
    ("x ** 2 > 1", 3, "'**' (power) is not supported"),
    ("x == 'a\\q'", 8, "unknown escape '\\q' (use \\\\, \\', \\\", \\n, \\t, \\r, \\0 or \\uXXXX)"),
    ("é < x <", 1, "unexpected character 'é'"),
    ("'é' < x <", 10, "expected a value after '<'"),
]


@pytest.mark.parametrize(("source", "column", "message"), MALFORMED)
def test_malformed_expression_reports_the_column(source: str, column: int, message: str) -> None:
    with pytest.raises(SpecError) as info:
        Expression(source)
    err = info.value
    assert isinstance(err, ValueError)
    assert err.column == column
    assert err.expr == source
    assert str(err) == f"constraint {_rust_debug(source)}, column {column}: {message}"


def _rust_debug(s: str) -> str:
    """Rust's `{:?}` of a plain string, as used in the error text."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def test_hostile_nesting_is_an_error_not_a_crash() -> None:
    with pytest.raises(SpecError, match="nested too deeply"):
        Expression("(" * 100_000 + "x" + ")" * 100_000)
    with pytest.raises(SpecError, match="nested too deeply"):
        Expression("-" * 100_000 + "1 > 0")
