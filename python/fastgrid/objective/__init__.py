"""Objectives: how one trial runs and what it produced.

- :class:`CallableObjective` calls a Python function in the calling process.
- :class:`CommandObjective` runs an argv list (never a shell) in its own process group.

Both write the merged config to ``trial_dir/config.json`` and return a :class:`TrialOutcome`;
a trial's own failure never raises.
"""

from typing import TYPE_CHECKING

from fastgrid.lazy import lazy_exports

if TYPE_CHECKING:
    from fastgrid.objective._base import short_message
    from fastgrid.objective._callables import CallableObjective
    from fastgrid.objective._capped import DEFAULT_LOG_LIMIT
    from fastgrid.objective._commands import CommandObjective
    from fastgrid.objective._outcome import Objective, TrialOutcome, lookup_metric, pick_value
    from fastgrid.objective._results import ResultsSpec
else:
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "fastgrid.objective._base": ["short_message"],
            "fastgrid.objective._callables": ["CallableObjective"],
            "fastgrid.objective._capped": ["DEFAULT_LOG_LIMIT"],
            "fastgrid.objective._commands": ["CommandObjective"],
            "fastgrid.objective._outcome": ["Objective", "TrialOutcome", "lookup_metric", "pick_value"],
            "fastgrid.objective._results": ["ResultsSpec"],
        },
    )

__all__ = [
    "DEFAULT_LOG_LIMIT",
    "CallableObjective",
    "CommandObjective",
    "Objective",
    "ResultsSpec",
    "TrialOutcome",
    "lookup_metric",
    "pick_value",
    "short_message",
]
