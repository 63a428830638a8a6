"""The names a sweep file gives Optuna's search samplers and pruners, without importing Optuna.

Reading a sweep file (``fastgrid grid``, ``fastgrid results``) checks these names; only a run
needs the classes (``_factory``, keyed by the same names in the same order).
"""

from __future__ import annotations

__all__ = ["PRUNER_NAMES", "SEARCH_SAMPLER_NAMES"]

SEARCH_SAMPLER_NAMES = ("tpe", "random", "cmaes", "qmc", "nsga2")
PRUNER_NAMES = ("none", "median", "percentile", "hyperband", "successive_halving", "threshold", "patient")
