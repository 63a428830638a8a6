"""Optuna's search samplers and pruners by the names a sweep file uses."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from fastgrid import attrs

__all__ = ["PRUNERS", "SEARCH_SAMPLERS", "constraint_values", "make_pruner", "search_sampler"]

SEARCH_SAMPLERS: dict[str, Any] = {
    "tpe": optuna.samplers.TPESampler,
    "random": optuna.samplers.RandomSampler,
    "cmaes": optuna.samplers.CmaEsSampler,
    "qmc": optuna.samplers.QMCSampler,
    "nsga2": optuna.samplers.NSGAIISampler,
}
PRUNERS: dict[str, Any] = {
    "none": optuna.pruners.NopPruner,
    "median": optuna.pruners.MedianPruner,
    "percentile": optuna.pruners.PercentilePruner,
    "hyperband": optuna.pruners.HyperbandPruner,
    "successive_halving": optuna.pruners.SuccessiveHalvingPruner,
    "threshold": optuna.pruners.ThresholdPruner,
    "patient": optuna.pruners.PatientPruner,
}


def constraint_values(trial: FrozenTrial) -> Sequence[float]:
    """Optuna's ``constraints_func``: one value per ``require`` expression, <= 0 when satisfied."""
    return list(trial.user_attrs.get(attrs.CONSTRAINTS, []))


def search_sampler(
    name: str, options: Mapping[str, Any], *, seed: int | None, worker: int = 0, constrained: bool = False
) -> optuna.samplers.BaseSampler:
    """The search sampler ``name`` with ``options``; worker processes get distinct seeds so that
    they do not suggest in lockstep."""
    kwargs = dict(options)
    kwargs.setdefault("seed", seed)
    if kwargs["seed"] is not None:
        kwargs["seed"] = int(kwargs["seed"]) + worker
    # Optuna >= 5 reads constraints that the worker sets on each trial; older ones need this.
    if constrained and name in ("tpe", "nsga2") and not hasattr(optuna.Trial, "set_constraint"):
        kwargs.setdefault("constraints_func", constraint_values)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler: optuna.samplers.BaseSampler = SEARCH_SAMPLERS[name](**kwargs)
    return sampler


def make_pruner(name: str, options: Mapping[str, Any]) -> optuna.pruners.BasePruner:
    pruner: optuna.pruners.BasePruner = PRUNERS[name](**options)
    return pruner
