"""fastgrid: fast, safe parameter sweeps of expensive evaluations, on a Rust core.

The compiled core lives in the private module ``fastgrid._core``; this package re-exports its public
classes and the Python layers built on it, one subpackage per concern, imported one way only::

    _core  <-  leaf modules (exceptions, attrs, files, refs, dotted, config, results, objective,
               samplers, storages, sweepfile)  <-  study  <-  runner  <-  reporting  <-  cli

``tests/test_layout.py`` holds the package to that direction. Only the compiled core and the
exceptions are imported with the package; every other name is imported on first use
(:mod:`fastgrid.lazy`), so ``import fastgrid`` and ``fastgrid --help`` start in milliseconds.
"""

from typing import TYPE_CHECKING

from fastgrid import exceptions
from fastgrid._core import (
    ConfigTemplate,
    Expression,
    Grid,
    __version__,
    parse_parameters,
    trial_key,
)
from fastgrid.exceptions import (
    BatchFailedError,
    BatchObjectiveError,
    ConfigChangedWarning,
    ConfigError,
    DocumentError,
    PatternError,
    SpecError,
    StoreMismatchError,
    SweepChangedError,
    SweepFileError,
)
from fastgrid.lazy import lazy_exports

# Eager above: the compiled core and the exceptions (cheap). Below, on first use: everything that
# pulls in Optuna, numpy or pydantic, so `import fastgrid` and `fastgrid --help` start at once.
if TYPE_CHECKING:
    from fastgrid import reporting, study
    from fastgrid.config import ConfigCache
    from fastgrid.objective import CallableObjective, CommandObjective, ResultsSpec, TrialOutcome
    from fastgrid.reporting import load
    from fastgrid.results import ResultIndex
    from fastgrid.runner import BatchSweepResult, Sweep, SweepResult
    from fastgrid.samplers import GridSampler
    from fastgrid.storages import open_storage
else:
    # (Hidden from type checkers: they would type any misspelt name as __getattr__'s Any.)
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "fastgrid.config": ["ConfigCache"],
            "fastgrid.objective": ["CallableObjective", "CommandObjective", "ResultsSpec", "TrialOutcome"],
            "fastgrid.reporting": ["load", "reporting"],
            "fastgrid.results": ["ResultIndex"],
            "fastgrid.runner": ["BatchSweepResult", "Sweep", "SweepResult"],
            "fastgrid.samplers": ["GridSampler"],
            "fastgrid.storages": ["open_storage"],
            "fastgrid.study": ["study"],
        },
    )

__all__ = [
    "BatchFailedError",
    "BatchObjectiveError",
    "BatchSweepResult",
    "CallableObjective",
    "CommandObjective",
    "ConfigCache",
    "ConfigChangedWarning",
    "ConfigError",
    "ConfigTemplate",
    "DocumentError",
    "Expression",
    "Grid",
    "GridSampler",
    "PatternError",
    "ResultIndex",
    "ResultsSpec",
    "SpecError",
    "StoreMismatchError",
    "Sweep",
    "SweepChangedError",
    "SweepFileError",
    "SweepResult",
    "TrialOutcome",
    "__version__",
    "exceptions",
    "load",
    "open_storage",
    "parse_parameters",
    "reporting",
    "study",
    "trial_key",
]
