"""The ``[validate]`` step: re-run the top trials on held-out data and pick the best there.

A sweep that optimizes on one window of data overfits it; re-running the top ``top`` trials with a
config override (typically a later data window) and choosing among them by the held-out score is
the simplest guard. The validation runs are not Optuna trials (they must not steer the sampler):
they are recorded as the study user attr ``fastgrid.validation`` so reports can show them.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fastgrid.search import nest

if TYPE_CHECKING:
    from fastgrid.sweep import Sweep, SweepResult, _RunState

__all__ = ["ATTR_VALIDATION", "apply_override", "top_rows", "validate"]

ATTR_VALIDATION = "fastgrid.validation"


def apply_override(config: Mapping[str, Any], override: Mapping[str, Any], *, strict: bool) -> dict[str, Any]:
    """A deep copy of ``config`` with each dotted path of ``override`` set.

    With ``strict`` (a default config exists) a path the config lacks is an error: a typo must not
    silently validate on the training window.
    """
    out = copy.deepcopy(dict(config))
    for path, value in override.items():
        parts = path.split(".")
        node: Any = out
        for depth, part in enumerate(parts[:-1]):
            nxt = node.get(part) if isinstance(node, dict) else None
            if not isinstance(nxt, dict):
                if strict or (nxt is not None):
                    where = ".".join(parts[: depth + 1])
                    raise ValueError(f"validate.override[{path!r}]: the config has no table {where!r}")
                nxt = node[part] = {}
            node = nxt
        if strict and parts[-1] not in node:
            raise ValueError(f"validate.override[{path!r}]: the config has no key {path!r}")
        node[parts[-1]] = copy.deepcopy(value)
    return out


def top_rows(rows: list[dict[str, Any]], direction: str, top: int) -> list[dict[str, Any]]:
    """The ``top`` best completed feasible rows, one per point (reused trials repeat a point)."""
    sign = -1.0 if direction == "maximize" else 1.0
    done = [r for r in rows if r["state"] == "COMPLETE" and r["feasible"] and r["values"]]
    done.sort(key=lambda r: (sign * r["values"][0], r["number"]))
    out: list[dict[str, Any]] = []
    seen: set[Any] = set()
    for row in done:
        key = row["key"] if row["key"] is not None else repr(sorted(row["params"].items()))
        if key in seen:
            continue
        seen.add(key)
        out.append(row)
        if len(out) == top:
            break
    return out


def validate(sweep: Sweep, state: _RunState, result: SweepResult) -> list[dict[str, Any]]:
    """Run the validation step; returns one row per re-run trial, best validated first.

    Each row: ``number``, ``params``, ``value`` (the search score), ``validated`` (the held-out
    score, None when the re-run failed or is infeasible), ``metrics`` (of the re-run),
    ``feasible`` and ``reason``.
    """
    from fastgrid import _parts
    from fastgrid.worker import _holds, _objective

    spec = sweep.spec
    section = spec.validate_
    if section is None:
        return []
    direction = spec.sweep.all_directions[0]
    metric = spec.sweep.objective_metrics
    objective = _objective(sweep, metric)
    require = [(src, _parts.Expression(src)) for src in spec.constraints.require]
    strict = spec.config is not None
    out = []
    for row in top_rows(result.rows, direction, section.top):
        config = apply_override(state.config().merged(nest(row["params"])), section.override, strict=strict)
        outcome = objective.run(
            config,
            trial_number=row["number"],
            trial_dir=sweep.directory / "runs" / sweep.name / f"validate_{row['number']}",
            params=row["params"],
        )
        validated: float | None = None
        reason = None if outcome.ok else (outcome.reason or "failed")
        feasible = False
        if outcome.ok:
            value = outcome.value[0] if isinstance(outcome.value, list | tuple) else outcome.value
            broken = [src for src, expr in require if not _holds(expr, outcome.metrics)]
            if value is None or not math.isfinite(float(value)):
                reason = f"metric {metric[0]!r} is missing or not finite"
            elif broken:
                reason = "infeasible: " + "; ".join(broken)
            else:
                validated, feasible = float(value), True
        out.append(
            {
                "number": row["number"],
                "params": row["params"],
                "value": row["values"][0],
                "validated": validated,
                "metrics": dict(outcome.metrics or {}),
                "feasible": feasible,
                "reason": reason,
            }
        )
    sign = -1.0 if direction == "maximize" else 1.0
    out.sort(key=lambda r: (r["validated"] is None, sign * (r["validated"] or 0.0), r["number"]))
    return out
