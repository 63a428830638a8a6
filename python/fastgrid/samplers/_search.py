"""Search mode: a parameters tree mapped onto Optuna's ``suggest_*`` calls.

Ints map to ``suggest_int``, float ranges to ``suggest_float`` (a step is taken from ``low`` and
the top is the last on-step value, so a value never leaves [low, high]; log ranges stay log),
choice lists to ``suggest_categorical`` (lists and dicts encoded as JSON text and decoded back
before the objective sees them). Fixed values are not registered with Optuna.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import optuna

from fastgrid.samplers._axes import (
    EXACT_INT,
    axis_field,
    decode_choice,
    encode_choices,
    exact_in_optuna,
    stepped_high,
)

__all__ = ["SearchSpace"]


class SearchSpace:
    """The suggest calls of a parameters tree's axes (``Grid.axes``-shaped plain data)."""

    def __init__(self, axes: Sequence[Any]) -> None:
        self._axes = [dict(a) if isinstance(a, dict) else {k: axis_field(a, k) for k in _KEYS} for a in axes]
        for axis in self._axes:
            if not exact_in_optuna(axis):
                # Optuna samples and stores ints as floats: past 2**53 it would suggest (and record)
                # values that are not the ones it reports, some outside the range.
                exc = ValueError(
                    f"integers beyond ±2**53 ({EXACT_INT}) cannot be searched exactly (Optuna keeps "
                    "them as floats); use sampler = 'grid', or a narrower range"
                )
                exc.path = axis["path"]  # type: ignore[attr-defined]
                raise exc
            if axis["kind"] == "grid":
                axis["choices"] = encode_choices(axis["values"])
            elif axis["kind"] == "float" and axis.get("step") is not None and not axis.get("log"):
                axis["top"] = stepped_high(float(axis["low"]), float(axis["high"]), float(axis["step"]))
            elif axis["kind"] == "float" and axis.get("num") and not axis.get("log"):
                num = int(axis["num"])
                axis["step"] = (float(axis["high"]) - float(axis["low"])) / (num - 1) if num > 1 else None
                axis["top"] = float(axis["high"])

    @property
    def paths(self) -> list[str]:
        return [a["path"] for a in self._axes]

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """Ask Optuna for every varying parameter; return the flat point (dotted path → value)."""
        flat: dict[str, Any] = {}
        for axis in self._axes:
            path, kind = axis["path"], axis["kind"]
            if kind == "fixed":
                flat[path] = axis["value"]
            elif kind == "int":
                ilow, ihigh, istep = int(axis["low"]), int(axis["high"]), int(axis.get("step") or 1)
                log = bool(axis.get("log"))
                flat[path] = trial.suggest_int(
                    path, ilow, ilow + (ihigh - ilow) // istep * istep, step=istep if not log else 1, log=log
                )
            elif kind == "float":
                low, high = float(axis["low"]), float(axis["high"])
                fstep = axis.get("step")
                if fstep is not None and not axis.get("log"):
                    raw = trial.suggest_float(path, low, axis["top"], step=float(fstep))
                    flat[path] = _on_step(raw, low, float(fstep), axis["top"])
                else:
                    flat[path] = trial.suggest_float(path, low, high, log=bool(axis.get("log")))
            else:
                flat[path] = decode_choice(trial.suggest_categorical(path, axis["choices"]))
        return flat


_KEYS = ("path", "kind", "low", "high", "step", "num", "log", "values", "value")


def _on_step(value: float, low: float, step: float, top: float) -> float:
    """Snap to low + k·step computed in decimal, so 0.18 + 2·0.04 is 0.26, not 0.26000000000000001."""
    lo, st = Decimal(repr(low)), Decimal(repr(step))
    k = round((Decimal(repr(value)) - lo) / st)
    exact = float(lo + k * st)
    return min(max(exact, low), top)
