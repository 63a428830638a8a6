"""Batch sweep files (``[sweep] mode = "batch"``): the sweep-file model mapped onto ``run_batch``.

``Sweep.from_file(...).run()`` (and so ``fastgrid run`` / ``fastgrid worker``) and
``run_batch_file`` both go through :func:`batch_options`; relative paths resolve against the file,
as for per-trial sweeps.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fastgrid.batch._runner import BatchRun, run_batch
from fastgrid.exceptions import SweepFileError
from fastgrid.sweepfile import SweepFile, load_sweep_file

__all__ = ["batch_options", "run_batch_file"]


def batch_options(spec: SweepFile, *, import_path: str | None, directory: Path) -> dict[str, Any]:
    """``run_batch`` keywords (all but ``parameters``) for a validated batch sweep file."""
    sweep, objective = spec.sweep, spec.objective
    options: dict[str, Any] = {
        "name": sweep.name or "sweep",
        "direction": sweep.all_directions,
        "metric": sweep.metric,
        "metrics": sweep.metrics,
        "where": list(sweep.where),
        "require": list(spec.constraints.require),
        "order": sweep.order,
        "seed": sweep.seed,
        "chunk": sweep.chunk,
        "workers": sweep.workers,
        "storage": sweep.storage,
        "top_k": sweep.top_k,
        "retry_failed": sweep.retry_failed,
        "heartbeat_interval": float(sweep.heartbeat_interval),
        "grace_period": float(sweep.grace),
        "timeout": sweep.timeout,
        "max_points": sweep.max_trials,
        "directory": directory,
        "import_path": import_path,
    }
    if objective.timeout is not None:
        options["objective_timeout"] = float(objective.timeout)
    if "fail_fast" in sweep.model_fields_set:
        options["fail_fast"] = sweep.fail_fast  # [sweep] fail_fast: chunks here, trials per trial
    if spec.config is not None:
        options.update(
            config=spec.config.path, config_model=spec.config.model, allow_new=spec.config.allow_new
        )
    if objective.batch is not None:
        options["batch"] = objective.batch
    else:
        options["callable"] = objective.callable
    return options


def run_batch_file(path: str | os.PathLike[str], **overrides: Any) -> BatchRun:
    """Runs (or resumes) the batch sweep file at ``path``; ``overrides`` are ``run_batch`` keywords
    (``workers``, ``chunk``, ``directory``, ``fresh``, ``max_chunks``, ``progress``...)."""
    spec = load_sweep_file(Path(path))
    if spec.sweep.mode != "batch":
        raise SweepFileError(str(path), ["sweep.mode: run_batch_file needs mode = 'batch'"])
    options = batch_options(spec, import_path=str(Path(path).resolve().parent), directory=Path.cwd())
    options.update(overrides)
    return run_batch(spec.parameters, **options)
