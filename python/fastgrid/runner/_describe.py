"""The start block of a run: one screen that says what is about to run, before any trial does.

Issue 11: a user whose bare list was a fixed value (not an axis), or whose sweep silently
minimized, only found out after the whole grid ran. The block names the direction and metric,
the varying parameters with their counts, the fixed ones, the constraints, the total and the
budget (which limits count per study and which per run).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["BARE_LIST_HINT", "axis_text", "objective_text", "start_lines"]

_MAX_LINES = 12  # per group: the block stays one screen for trees of hundreds of parameters
BARE_LIST_HINT = 'a bare list is ONE fixed value; an axis is { type = "grid", values = [...] }'


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, default=str) if isinstance(value, list | dict | str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def objective_text(directions: Sequence[str], metrics: Sequence[str]) -> str:
    """``maximize sharpe`` or ``maximize sharpe, minimize max_drawdown``."""
    return ", ".join(f"{d} {m}" for d, m in zip(directions, metrics, strict=True))


def axis_text(axis: Mapping[str, Any]) -> str:
    """One varying parameter: how many values and which (``10 values 5..50 step 5``)."""
    kind, size = axis["kind"], axis.get("size")
    count = f"{size} values " if size is not None else ""
    if kind == "grid":
        values = axis["values"]
        shown = ", ".join(_short(v, 20) for v in values[:6]) + (", ..." if len(values) > 6 else "")
        return f"{count}{shown}"
    low, high = axis.get("low"), axis.get("high")
    log = " log" if axis.get("log") else ""
    if axis.get("step") is not None and not (kind == "int" and axis["step"] == 1):
        spacing = f" step {axis['step']}"
    elif axis.get("num") is not None:
        spacing = ""
    elif kind == "float":
        spacing = " continuous"
    else:
        spacing = ""
    return f"{count}{low}..{high}{spacing}{log}".strip()


def _group(label: str, items: list[str]) -> list[str]:
    if not items:
        return []
    shown = items[:_MAX_LINES]
    more = [f"{'':9}... and {len(items) - len(shown)} more"] if len(items) > len(shown) else []
    return [f"  {label:<8} {shown[0]}", *(f"  {'':<8} {item}" for item in shown[1:]), *more]


def start_lines(
    *,
    name: str,
    directions: Sequence[str],
    metrics: Sequence[str],
    axes: Sequence[Mapping[str, Any]],
    sampler: str,
    total: int | None,
    before_where: int | None,
    where: Sequence[str],
    require: Sequence[str],
    workers: int,
    budget: str,
    bare_lists: Sequence[str] = (),
) -> list[str]:
    """The start block; ``bare_lists`` are the paths of fixed values written as bare lists."""
    if sampler == "grid":
        filtered = f" ({before_where:,} before where)" if before_where not in (None, total) else ""
        space = f"a grid of {total:,} points{filtered}" if total is not None else "a grid"
    else:
        space = f"a {sampler} search"
    head = f"sweep {name}: {objective_text(directions, metrics)} over {space}"
    head += f", {workers} workers" if workers > 1 else ""
    varying, fixed = [], []
    for axis in axes:
        if axis["kind"] == "fixed":
            hint = f"  ({BARE_LIST_HINT})" if axis["path"] in bare_lists else ""
            fixed.append(f"{axis['path']} = {_short(axis['value'])}{hint}")
        else:
            varying.append(f"{axis['path']}: {axis_text(axis)}")
    return [
        head,
        *_group("varying", varying),
        *_group("fixed", fixed),
        *_group("where", list(where)),
        *_group("require", list(require)),
        *_group("budget", [budget] if budget else []),
    ]
