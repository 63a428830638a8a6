"""What one trial produced, and how the objective value is picked from its metrics."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

__all__ = ["Objective", "TrialOutcome", "check_metric_names", "lookup_metric", "pick_value"]


@dataclass(frozen=True, slots=True)
class TrialOutcome:
    """The result of running one trial (after all its attempts).

    ``ok`` is False for every failure of the trial itself (crash, non-zero exit, timeout, bad or
    missing output, missing or NaN metric); ``reason`` then says what happened. ``metrics`` holds
    every metric read (empty on failure) and ``value`` the objective value(s) picked from it: a
    float for one metric, a tuple for several. ``duration`` is the wall time of the whole run,
    retries and backoff included; ``attempts`` how many times the objective was started (0 when a
    placeholder value was refused before anything ran). ``metrics`` is a plain dict so outcomes
    pickle across worker processes. ``pruned`` is True (with ``ok`` False) when the objective
    raised ``optuna.TrialPruned``: the pruner stopped it, which is not a failure.
    """

    ok: bool
    metrics: Mapping[str, Any] = field(default_factory=dict)
    value: float | tuple[float, ...] | None = None
    reason: str | None = None
    duration: float = 0.0
    attempts: int = 0
    result_path: str | None = None
    stdout_tail: str = ""
    stderr_tail: str = ""
    returncode: int | None = None
    pruned: bool = False


@runtime_checkable
class Objective(Protocol):
    """Anything that runs one trial: the sweep runner only ever calls ``run``."""

    def run(
        self, config: dict, *, trial_number: int, trial_dir: Path, params: Mapping[str, Any]
    ) -> TrialOutcome: ...


def check_metric_names(metrics: Sequence[str] | str) -> tuple[str, ...]:
    """Validate the ``metrics`` option; a lone string means one metric (not its characters)."""
    names = (metrics,) if isinstance(metrics, str) else tuple(metrics)
    if not names:
        raise ValueError("metrics: name at least one metric, e.g. metrics=['sharpe']")
    for i, name in enumerate(names):
        if not isinstance(name, str) or not name:
            raise ValueError(f"metrics[{i}]: expected a non-empty metric name, got {name!r}")
    seen = set()
    for name in names:
        if name in seen:
            raise ValueError(f"metrics: {name!r} is listed twice")
        seen.add(name)
    return names


def _keys_hint(metrics: Mapping[Any, Any]) -> str:
    keys = sorted(_text(k) for k in metrics)
    shown = ", ".join(keys[:20])
    return shown + (f", ... ({len(keys)} keys)" if len(keys) > 20 else "") if keys else "none"


def _text(value: Any, show: Any = str) -> str:
    try:
        return str(show(value))
    except Exception:  # a hostile object's __str__/__repr__ must not fail the runner
        return f"<{type(value).__name__}>"


def _short(value: Any) -> str:
    text = _text(value, repr)
    return text if len(text) <= 60 else text[:57] + "..."


def lookup_metric(metrics: Mapping[Any, Any], name: str) -> tuple[bool, Any]:
    """``(found, value)`` of a metric: the flat key ``name``, else the dotted path into nested
    results (``metrics.sharpe`` in ``{"metrics": {"sharpe": 1.2}}``, issue 11)."""
    if name in metrics:
        return True, metrics[name]
    node: Any = metrics
    for part in name.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def pick_value(
    metrics: Mapping[Any, Any], names: Sequence[str], *, source: str
) -> float | tuple[float, ...] | str:
    """The objective value(s) named by ``names``, or the reason they cannot be used (a str).

    NaN and infinities are refused: Optuna cannot rank a NaN, and one infinite value would
    dominate every later comparison of the study.
    """
    values: list[float] = []
    for name in names:
        found, raw = lookup_metric(metrics, name)
        if not found:
            return f"metric {name!r} missing from {source} (keys: {_keys_hint(metrics)})"
        if isinstance(raw, bool) or not isinstance(raw, numbers.Real):
            return f"metric {name!r} is not a number: {_short(raw)} ({type(raw).__name__})"
        try:
            number = float(raw)
        except OverflowError:
            return f"metric {name!r} is too large for a float: {_short(raw)}"
        except Exception:  # a Real whose __float__ raises
            return f"metric {name!r} is not a number: {_short(raw)} ({type(raw).__name__})"
        if math.isnan(number):
            return f"metric {name!r} is NaN"
        if math.isinf(number):
            return f"metric {name!r} is infinite ({number})"
        values.append(number)
    return values[0] if len(values) == 1 else tuple(values)
