"""fastgrid: fast, safe parameter sweeps of expensive evaluations, on a Rust core.

The compiled core lives in the private module ``fastgrid._core``; this package re-exports its public
classes and adds the Python policy layers (sweep file, config cache, Optuna integration, CLI).
"""

from fastgrid._core import (
    ConfigError,
    ConfigTemplate,
    Expression,
    Grid,
    PatternError,
    SpecError,
    __version__,
    parse_parameters,
    trial_key,
)
from fastgrid.config import ConfigCache
from fastgrid.objective import CallableObjective, CommandObjective, ResultsSpec, TrialOutcome
from fastgrid.results import ResultIndex
from fastgrid.sampler import GridSampler
from fastgrid.storage import open_storage
from fastgrid.sweep import Sweep, SweepResult
from fastgrid.sweepfile import SweepFileError

__all__ = [
    "CallableObjective",
    "CommandObjective",
    "ConfigCache",
    "ConfigError",
    "ConfigTemplate",
    "Expression",
    "Grid",
    "GridSampler",
    "PatternError",
    "ResultIndex",
    "ResultsSpec",
    "SpecError",
    "Sweep",
    "SweepFileError",
    "SweepResult",
    "TrialOutcome",
    "__version__",
    "open_storage",
    "parse_parameters",
    "trial_key",
]
