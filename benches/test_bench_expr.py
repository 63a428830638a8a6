"""Result constraints from Python: `Expression.evaluate` against the pure-Python ways.

Each group times one evaluation of the same constraint on the same metrics dict:
- fastgrid: `Expression.evaluate` (parsed once, evaluated in Rust);
- python-eval: `eval` of a pre-compiled code object with no builtins (fast, but runs arbitrary code);
- python-ast: a small safe evaluator walking a pre-parsed `ast` tree (what a careful pure-Python
  runner would write instead of `eval`).

The grid engine's hot path (10^8 evaluations of a compiled constraint) is measured in Rust by
`cargo bench --bench expr`.

    python -m pytest benches/test_bench_expr.py --benchmark-enable --benchmark-only \
        --benchmark-columns=median,min,rounds
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable
from typing import Any

import pytest
from fastgrid import Expression

CASES = {
    "fast<slow": ("fast < slow", {"fast": 10, "slow": 50}),
    "stop<=tp*0.5": (
        "exit.stop_loss <= exit.take_profit * 0.5",
        {"exit.stop_loss": 0.02, "exit.take_profit": 0.05},
    ),
    "mode-or-leverage": ("mode == 'long' or leverage <= 2", {"mode": "short", "leverage": 2}),
    "metrics": (
        "trades >= 20 and max_drawdown <= 0.25 and sharpe > 1",
        {"trades": 57, "max_drawdown": 0.18, "sharpe": 1.4, "profit": 0.3},
    ),
}

_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Mod: operator.mod,
}
_COMPARE: dict[type, Callable[[Any, Any], bool]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}


def _ast_evaluator(source: str) -> Callable[[dict[str, Any]], bool]:
    """A safe pure-Python evaluator: names are resolved from the dict (dotted names as flat keys)."""
    tree = ast.parse(source, mode="eval").body

    def name_of(node: ast.expr) -> str:
        if isinstance(node, ast.Name):
            return node.id
        if isinstance(node, ast.Attribute):
            return f"{name_of(node.value)}.{node.attr}"
        raise ValueError(f"unsupported {ast.dump(node)}")

    def ev(node: ast.expr, values: dict[str, Any]) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name | ast.Attribute):
            return values[name_of(node)]
        if isinstance(node, ast.BinOp):
            return _BINARY[type(node.op)](ev(node.left, values), ev(node.right, values))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -ev(node.operand, values)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return not ev(node.operand, values)
        if isinstance(node, ast.BoolOp):
            if isinstance(node.op, ast.And):
                return all(ev(v, values) for v in node.values)
            return any(ev(v, values) for v in node.values)
        if isinstance(node, ast.Compare):
            left = ev(node.left, values)
            for op, comparator in zip(node.ops, node.comparators, strict=True):
                right = ev(comparator, values)
                if not _COMPARE[type(op)](left, right):
                    return False
                left = right
            return True
        raise ValueError(f"unsupported {ast.dump(node)}")

    return lambda values: bool(ev(tree, values))


def _python_eval(source: str) -> Callable[[dict[str, Any]], bool]:
    code = compile(source.replace("exit.", "exit_"), "<constraint>", "eval")
    no_builtins: dict[str, Any] = {"__builtins__": {}}
    if "." not in source:
        return lambda values: bool(eval(code, no_builtins, values))
    # Dotted names are attribute access in Python: flatten them to identifiers first.
    return lambda values: bool(eval(code, no_builtins, {k.replace(".", "_"): v for k, v in values.items()}))


def _expected(source: str, values: dict[str, Any]) -> bool:
    return _ast_evaluator(source)(values)


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("way", ["fastgrid", "python-eval", "python-ast"])
def test_bench_evaluate(benchmark: Any, case: str, way: str) -> None:
    source, values = CASES[case]
    benchmark.group = f"expr-evaluate {case}"
    if way == "fastgrid":
        expr = Expression(source)
        fn: Callable[[dict[str, Any]], bool] = expr.evaluate
    elif way == "python-eval":
        fn = _python_eval(source)
    else:
        fn = _ast_evaluator(source)
    result = benchmark(fn, values)
    assert result is _expected(source, values)
    assert result is Expression(source).evaluate(values)


@pytest.mark.parametrize("way", ["fastgrid", "python-ast"])
def test_bench_parse(benchmark: Any, way: str) -> None:
    source = "exit.stop_loss <= exit.take_profit * 0.5 and (mode == 'long' or leverage <= 2)"
    benchmark.group = "expr-parse"
    if way == "fastgrid":
        result = benchmark(Expression, source)
        assert result.names == ("exit.stop_loss", "exit.take_profit", "mode", "leverage")
    else:
        result = benchmark(ast.parse, source, mode="eval")
        assert isinstance(result, ast.Expression)
