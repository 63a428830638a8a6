"""A plain pure-Python reference expander for parameter trees, written from the spec (not from the
Rust code): depth-first expansion in declaration order, last parameter fastest, decimal steps."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

Leaf = tuple[tuple[str, ...], list[Any]]


def _decimal(x: float | int) -> Decimal:
    return Decimal(repr(x)) if isinstance(x, float) else Decimal(x)


def leaf_values(leaf: Any) -> list[Any]:
    if not isinstance(leaf, dict):
        return [leaf]
    kind = leaf["type"]
    if kind == "grid":
        return list(leaf["values"])
    if kind == "fixed":
        return [leaf["value"]]
    if kind == "int":
        return list(range(leaf["low"], leaf["high"] + 1, leaf.get("step", 1)))
    if kind == "float" and "step" in leaf:
        low, high, step = _decimal(leaf["low"]), _decimal(leaf["high"]), _decimal(leaf["step"])
        out = []
        k = 0
        while low + k * step <= high:
            out.append(float(str(low + k * step)))
            k += 1
        return out
    raise ValueError(f"the reference does not expand {leaf!r}")


def _insert(shape: dict[str, Any], tree: dict[str, Any], prefix: tuple[str, ...]) -> None:
    for key, value in tree.items():
        segments = (*prefix, *key.split("."))
        if isinstance(value, dict) and "type" not in value:
            node = shape
            for s in segments:
                node = node.setdefault(s, {})
            _insert(shape, value, segments)
        else:
            node = shape
            for s in segments[:-1]:
                node = node.setdefault(s, {})
            node[segments[-1]] = ("leaf", value)


def leaves(tree: dict[str, Any]) -> list[Leaf]:
    """Leaves in point order: dotted keys merged into their namespaces, then depth first."""
    shape: dict[str, Any] = {}
    _insert(shape, tree, ())
    out: list[Leaf] = []

    def walk(node: dict[str, Any], prefix: tuple[str, ...]) -> None:
        for k, v in node.items():
            if isinstance(v, tuple):
                out.append(((*prefix, k), leaf_values(v[1])))
            else:
                walk(v, (*prefix, k))

    walk(shape, ())
    return out


def expand(tree: dict[str, Any] | list[dict[str, Any]], *, flat: bool = False) -> list[dict[str, Any]]:
    """Every point of a tree (or the concatenation for a list of trees)."""
    if isinstance(tree, list):
        return [p for t in tree for p in expand(t, flat=flat)]
    shape: dict[str, Any] = {}
    _insert(shape, tree, ())
    ls = leaves(tree)

    def build(node: dict[str, Any], values: Any) -> dict[str, Any]:
        return {k: _copy(next(values)) if isinstance(v, tuple) else build(v, values) for k, v in node.items()}

    points = []
    for combo in itertools.product(*(values for _, values in ls)):
        if flat:
            points.append({".".join(path): _copy(v) for (path, _), v in zip(ls, combo, strict=True)})
        else:
            points.append(build(shape, iter(combo)))
    return points


def _copy(v: Any) -> Any:
    if isinstance(v, list):
        return [_copy(x) for x in v]
    if isinstance(v, dict):
        return {k: _copy(x) for k, x in v.items()}
    return v


def strict(v: Any) -> Any:
    """A comparison key that keeps True, 1 and 1.0 apart (dict equality does not)."""
    if isinstance(v, dict):
        return ("dict", tuple((k, strict(x)) for k, x in v.items()))
    if isinstance(v, list):
        return ("list", tuple(strict(x) for x in v))
    if isinstance(v, float):
        return ("float", repr(v))
    return (type(v).__name__, v)
