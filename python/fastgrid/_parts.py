"""The parts the runner composes, in one place: grid, expressions, keys, config, storage, objectives."""

from fastgrid._core import Expression, Grid, trial_key
from fastgrid._core import parse_parameters as search_axes
from fastgrid.config import ConfigCache
from fastgrid.objective import CallableObjective, CommandObjective, ResultsSpec, TrialOutcome
from fastgrid.storage import open_storage, redact_url

__all__ = [
    "CallableObjective",
    "CommandObjective",
    "ConfigCache",
    "Expression",
    "Grid",
    "ResultsSpec",
    "TrialOutcome",
    "open_storage",
    "redact_url",
    "search_axes",
    "trial_key",
]
