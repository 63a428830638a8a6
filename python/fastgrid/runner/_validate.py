"""The ``[validate]`` step: re-run the top trials on held-out data and pick the best there.

A sweep that optimizes on one window of data overfits it; re-running the top ``top`` trials with a
config override (typically a later data window) and choosing among them by the held-out score is
the simplest guard. The validation runs are not Optuna trials (they must not steer the sampler):
they are recorded as the study user attr ``fastgrid.validation`` so reports can show them.
"""

from __future__ import annotations

from typing import Any

from fastgrid.dotted import apply_override, nest
from fastgrid.runner._evaluate import Constraints, build_objective, objective_values
from fastgrid.runner._plan import SweepPlan
from fastgrid.runner._returns import take_returns
from fastgrid.runner._state import RunState
from fastgrid.study import Row, direction_sign, top_rows

__all__ = ["apply_override", "best_validated_first", "validate"]


def validate(plan: SweepPlan, state: RunState, rows: list[Row]) -> list[dict[str, Any]]:
    """Run the validation step; returns one row per re-run trial, best validated first.

    Each row: ``number``, ``params``, ``value`` (the search score), ``validated`` (the held-out
    score, None when the re-run failed or is infeasible), ``metrics`` (of the re-run),
    ``feasible`` and ``reason``.
    """
    spec = plan.spec
    section = spec.validate_
    if section is None:
        return []
    direction = spec.sweep.all_directions[0]
    metric = spec.sweep.objective_metrics
    objective = build_objective(plan, metric)
    require = Constraints(spec.constraints.require)
    strict = plan.has_config
    out: list[dict[str, Any]] = []
    for row in top_rows(rows, direction, section.top, feasible_only=True, distinct=True):
        config = apply_override(state.config().merged(nest(row["params"])), section.override, strict=strict)
        outcome = objective.run(
            config,
            trial_number=row["number"],
            trial_dir=plan.runs_dir / f"validate_{row['number']}",
            params=row["params"],
        )
        validated: float | None = None
        reason = None if outcome.ok else (outcome.reason or "failed")
        feasible = False
        metrics = dict(outcome.metrics or {})
        returns = take_returns(metrics)
        if outcome.ok:
            values = objective_values(metric, metrics, outcome.value)
            if isinstance(returns, str) and not isinstance(values, str):
                values = returns
            ok, _, broken = require.check(metrics)
            if isinstance(values, str):
                reason = values
            elif not ok:
                reason = "infeasible: " + "; ".join(broken)
            else:
                validated, feasible = values[0], True
        out.append(
            {
                "number": row["number"],
                "params": row["params"],
                "value": row["values"][0] if row["values"] else None,
                "validated": validated,
                "metrics": metrics,
                "feasible": feasible,
                "reason": reason,
                # The held-out returns, packed: what a walk-forward stitches across its folds.
                "returns": returns.packed() if returns is not None and not isinstance(returns, str) else None,
            }
        )
    return best_validated_first(out, direction)


def best_validated_first(out: list[dict[str, Any]], direction: str) -> list[dict[str, Any]]:
    """Validation rows ordered as stored: by held-out score (ties to the lower number), then the
    rows without one (a batch sweep's validation orders its points by the same rule)."""
    sign = direction_sign(direction)
    out.sort(key=lambda r: (r["validated"] is None, sign * (r["validated"] or 0.0), r["number"]))
    return out
