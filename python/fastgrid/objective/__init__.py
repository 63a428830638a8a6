"""Objectives: how one trial runs and what it produced.

- :class:`CallableObjective` calls a Python function in the calling process.
- :class:`CommandObjective` runs an argv list (never a shell) in its own process group.

Both write the merged config to ``trial_dir/config.json`` and return a :class:`TrialOutcome`;
a trial's own failure never raises.
"""

from fastgrid.objective.callables import CallableObjective
from fastgrid.objective.commands import CommandObjective
from fastgrid.objective.outcome import Objective, TrialOutcome
from fastgrid.objective.results import ResultsSpec

__all__ = ["CallableObjective", "CommandObjective", "Objective", "ResultsSpec", "TrialOutcome"]
