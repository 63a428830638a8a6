"""Objectives: how one trial runs and what it produced.

- :class:`CallableObjective` calls a Python function in the calling process.
- :class:`CommandObjective` runs an argv list (never a shell) in its own process group.

Both write the merged config to ``trial_dir/config.json`` and return a :class:`TrialOutcome`;
a trial's own failure never raises.
"""

from fastgrid.objective._callables import CallableObjective
from fastgrid.objective._capped import DEFAULT_LOG_LIMIT
from fastgrid.objective._commands import CommandObjective
from fastgrid.objective._outcome import Objective, TrialOutcome, lookup_metric
from fastgrid.objective._results import ResultsSpec

__all__ = [
    "DEFAULT_LOG_LIMIT",
    "CallableObjective",
    "CommandObjective",
    "Objective",
    "ResultsSpec",
    "TrialOutcome",
    "lookup_metric",
]
