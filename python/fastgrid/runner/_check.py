"""``fastgrid run --check``: one point of a sweep, in the foreground, recording nothing.

When a sweep fails (or is about to run for hours), the quickest question is "what does one trial
do?": this runs the objective on one point exactly as a trial would (the same merged config,
placeholders, result reading and ``require`` check) in a temporary trial folder, prints the full
traceback or logs and the metrics, and opens no storage.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any, TextIO

import optuna

from fastgrid._core import Expression, parse_parameters
from fastgrid.dotted import nest
from fastgrid.exceptions import SweepFileError
from fastgrid.runner._evaluate import Constraints, UnknownMetricError, build_objective, holds
from fastgrid.runner._plan import SweepPlan
from fastgrid.runner._state import RunState
from fastgrid.samplers import SearchSpace

__all__ = ["check_point"]

_SEARCH_TRIES = 1000


def _point(plan: SweepPlan, index: int) -> dict[str, Any]:
    """Grid mode: point ``index`` of the grid (negative from the end). Search mode: the point a
    random sampler seeded with ``index`` suggests (inside ``where``), so ``--point`` still picks
    a reproducible one."""
    if plan.grid_mode:
        grid = plan.grid()
        size = grid.size
        if not -size <= index < size:
            raise SweepFileError(
                plan.source, [f"--point {index}: the grid has {size} points (0..{size - 1})"]
            )
        return dict(grid[index])
    assert isinstance(plan.spec.parameters, dict)
    space = SearchSpace(parse_parameters(plan.spec.parameters))
    wheres = [Expression(src) for src in plan.spec.sweep.where]
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=index))
    for _ in range(_SEARCH_TRIES):
        flat = space.suggest(study.ask())
        if all(holds(expr, flat) for expr in wheres):
            return nest(flat)
    raise SweepFileError(plan.source, [f"sweep.where: no point of {_SEARCH_TRIES} random ones holds it"])


def check_point(plan: SweepPlan, state: RunState, index: int = 0, *, out: TextIO) -> bool:
    """Run one point; print what happened to ``out``. True when the trial completed and is feasible."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "study created in memory" line
    point = _point(plan, index)
    metrics_names = plan.spec.sweep.objective_metrics
    print(f"checking point {index} of sweep {plan.name}: {json.dumps(point, default=str)}", file=out)
    config = state.config().merged(point)
    objective = build_objective(plan, metrics_names)
    with tempfile.TemporaryDirectory(prefix="fastgrid-check-") as folder:
        trial_dir = Path(folder) / "trial"
        try:
            outcome = objective.run(config, trial_number=index, trial_dir=trial_dir, params=point)
        finally:
            close = getattr(objective, "close", None)
            if close is not None:
                close()
        for log in ("stdout.log", "stderr.log", "error.log"):
            path = trial_dir / log
            if path.is_file() and path.stat().st_size:
                print(f"--- {log}", file=out)
                print(path.read_text(errors="replace").rstrip("\n"), file=out)
    if not outcome.ok:
        print(f"FAIL: {outcome.reason}", file=out)
        return False
    metrics = dict(outcome.metrics or {})
    print(f"metrics: {json.dumps(metrics, default=str)}", file=out)
    print(f"value: {outcome.value} ({', '.join(metrics_names)}) in {outcome.duration:.3f}s", file=out)
    try:
        feasible, _, broken = Constraints(plan.spec.constraints.require).check(metrics)
    except UnknownMetricError as exc:
        print(f"FAIL: {exc}", file=out)
        return False
    if not feasible:
        print(f"infeasible: {'; '.join(broken)}", file=out)
    print("nothing was recorded (no storage was opened)", file=out)
    return feasible
