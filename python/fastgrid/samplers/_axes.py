"""Grid axes as Optuna sees them: distributions, and choices encoded as the scalars Optuna stores.

Axes are the plain dicts the grid engine returns (``Grid.axes``, ``parse_parameters``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from optuna.distributions import (
    BaseDistribution,
    CategoricalChoiceType,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

__all__ = [
    "axis_distribution",
    "axis_field",
    "decode_choice",
    "encode_choice",
    "encode_choices",
    "exact_in_optuna",
    "get_path",
    "recorded_distributions",
    "single_value",
    "stepped_high",
]

EXACT_INT = 2**53
"""Optuna keeps a numeric parameter as a float: integers beyond this lose their last digits."""

_SCALAR = (type(None), bool, int, float, str)


def encode_choice(
    value: Any, choices: Sequence[CategoricalChoiceType] | None = None
) -> CategoricalChoiceType:
    """Optuna stores only scalars as categorical choices: lists and dicts travel as JSON text.

    Strings that would read back as JSON containers are wrapped too, so decoding is unambiguous.
    With ``choices`` (an axis's :func:`encode_choices`): the choice that stands for ``value``
    there, its JSON text when a value equal to it came earlier on the axis.
    """
    if choices is not None and isinstance(value, bool | int | float):
        wrapped = _as_json(value)
        if wrapped in choices:
            return wrapped
    if isinstance(value, _SCALAR) and not (isinstance(value, str) and value.startswith("\x00json:")):
        return value
    return _as_json(value)


def encode_choices(values: Sequence[Any]) -> list[CategoricalChoiceType]:
    """An axis's values as Optuna choices (``encode_choice`` of each).

    Optuna records a categorical value as the index of the first choice ``==`` to it, so of
    ``True``, ``1`` and ``1.0`` (or ``False``, ``0``, ``0.0`` and ``-0.0``) on one axis every trial
    would record the first: the later ones go as their JSON text, which decodes to them exactly.
    Axes without such values get their values as they are (a stored study's choices are kept).
    """
    out: list[CategoricalChoiceType] = []
    first: dict[Any, Any] = {}
    for value in values:
        choice = encode_choice(value)
        if isinstance(choice, bool | int | float) and choice == choice:  # NaN equals nothing
            earlier = first.setdefault(choice, choice)
            if (type(earlier), repr(earlier)) != (type(choice), repr(choice)):
                choice = _as_json(value)
        out.append(choice)
    return out


def _as_json(value: Any) -> str:
    return "\x00json:" + json.dumps(value, sort_keys=False, separators=(",", ":"))


def decode_choice(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("\x00json:"):
        return json.loads(value[len("\x00json:") :])
    return value


def get_path(point: dict[str, Any], parts: Sequence[str]) -> Any:
    node: Any = point
    for part in parts:
        node = node[part]
    return node


def stepped_high(low: float, high: float, step: float) -> float:
    """The last on-step value ≤ high (Optuna warns and shifts ``high`` itself otherwise)."""
    lo, hi, st = Decimal(repr(low)), Decimal(repr(high)), Decimal(repr(step))
    return float(lo + ((hi - lo) // st) * st)


def axis_distribution(axis: Any) -> BaseDistribution | None:
    """The Optuna distribution that holds every value of a grid axis (None for a fixed value)."""
    kind = axis_field(axis, "kind")
    if kind == "fixed":
        return None
    if kind == "int":
        ilow, ihigh, istep = (
            int(axis_field(axis, "low")),
            int(axis_field(axis, "high")),
            int(axis_field(axis, "step") or 1),
        )
        return IntDistribution(ilow, ilow + ((ihigh - ilow) // istep) * istep, step=istep)
    if kind == "float":
        low, high = float(axis_field(axis, "low")), float(axis_field(axis, "high"))
        step, log = axis_field(axis, "step"), bool(axis_field(axis, "log"))
        if step is not None and not log:
            return FloatDistribution(low, stepped_high(low, high, float(step)), step=float(step))
        return FloatDistribution(low, high, log=log)
    values = axis_field(axis, "values")
    return CategoricalDistribution(encode_choices(values))


def recorded_distributions(axes: Sequence[Any]) -> dict[str, BaseDistribution]:
    """The Optuna distributions a grid's trials record, by path: one per varying axis whose every
    value Optuna holds exactly. Left out: parameters of one value (a grid of 100,000 constants
    would record each on every trial), int ranges past ±2**53 (Optuna keeps ints as floats and
    would round them), and every parameter of a union whose trees share a path (no one
    distribution describes it). Runners record each point exactly beside (user attr ``params``)."""
    paths = [axis_field(a, "path") for a in axes]
    if len(paths) != len(set(paths)):
        return {}
    return {
        axis_field(a, "path"): d
        for a in axes
        if not single_value(a)[0] and exact_in_optuna(a) and (d := axis_distribution(a)) is not None
    }


def single_value(axis: Any) -> tuple[bool, Any]:
    """``(True, value)`` for an axis that holds one value (a fixed value, a one-element list, a
    range of one step), else ``(False, None)``.

    Such a parameter needs no Optuna distribution: recording it on every trial would cost a log
    entry per trial and parameter for a value the study stores once (issue 12, item 8).
    """
    kind = axis_field(axis, "kind")
    if kind == "fixed":
        return True, axis_field(axis, "value")
    if axis_field(axis, "size") != 1:
        return False, None
    if kind in ("int", "float"):
        return True, axis_field(axis, "low")
    values = axis_field(axis, "values")
    if isinstance(values, list) and len(values) == 1:
        return True, values[0]
    return False, None


def exact_in_optuna(axis: Any) -> bool:
    """Whether Optuna records every value of the axis exactly: an int range reaching past ±2**53
    does not (its internal float rounds 1700000000000000001 to 1700000000000000000; issue 12,
    item 16). Choices and fixed values are stored as given, floats are floats."""
    if axis_field(axis, "kind") != "int":
        return True
    return max(abs(int(axis_field(axis, "low"))), abs(int(axis_field(axis, "high")))) <= EXACT_INT


def axis_field(axis: Any, name: str) -> Any:
    """Axes are plain dicts from the grid engine (attribute access accepted too)."""
    if isinstance(axis, dict):
        return axis.get(name)
    return getattr(axis, name, None)
