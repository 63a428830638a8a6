"""Running a batch sweep file (``[sweep] mode = "batch"``) with ``run_batch``.

Until the runner dispatches on ``mode`` itself, this maps the validated sweep-file model onto
``run_batch``'s keywords; relative paths resolve against the file, as for per-trial sweeps.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fastgrid.batch._runner import BatchRun, run_batch
from fastgrid.exceptions import SweepFileError
from fastgrid.sweepfile import load_sweep_file

__all__ = ["run_batch_file"]


def run_batch_file(path: str | os.PathLike[str], **overrides: Any) -> BatchRun:
    """Runs (or resumes) the batch sweep file at ``path``; ``overrides`` are ``run_batch`` keywords
    (``workers``, ``chunk``, ``directory``, ``fresh``, ``max_chunks``, ``progress``...)."""
    spec = load_sweep_file(Path(path))
    sweep, objective = spec.sweep, spec.objective
    if sweep.mode != "batch":
        raise SweepFileError(str(path), ["sweep.mode: run_batch_file needs mode = 'batch'"])
    kwargs: dict[str, Any] = {
        "name": sweep.name or "sweep",
        "direction": sweep.direction if isinstance(sweep.direction, str) else list(sweep.direction),
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
        "directory": Path.cwd(),
        "import_path": str(Path(path).resolve().parent),
    }
    if spec.config is not None:
        kwargs.update(
            config=spec.config.path, config_model=spec.config.model, allow_new=spec.config.allow_new
        )
    if objective.batch is not None:
        kwargs["batch"] = objective.batch
    else:
        kwargs["callable"] = objective.callable
    kwargs.update(overrides)
    return run_batch(spec.parameters, **kwargs)
