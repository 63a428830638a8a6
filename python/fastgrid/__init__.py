"""fastgrid: fast, safe parameter sweeps of expensive evaluations, on a Rust core.

The compiled core lives in the private module ``fastgrid._core``; this package re-exports its public
classes and adds the Python policy layers (sweep file, config cache, Optuna integration, CLI).
"""

from fastgrid._core import (
    ConfigError,
    ConfigTemplate,
    Expression,
    PatternError,
    SpecError,
    __version__,
    trial_key,
)
from fastgrid.config import ConfigCache
from fastgrid.objective import CallableObjective, CommandObjective, ResultsSpec, TrialOutcome
from fastgrid.results import ResultIndex
from fastgrid.storage import open_storage
from fastgrid.sweepfile import SweepFileError

__all__ = [
    "CallableObjective",
    "CommandObjective",
    "ConfigCache",
    "ConfigError",
    "ConfigTemplate",
    "Expression",
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
    "trial_key",
]

# Optuna takes a while to import: the runner's names load on first use, not on `import fastgrid`.
_LAZY = {"Sweep": "fastgrid.sweep", "SweepResult": "fastgrid.sweep", "GridSampler": "fastgrid.sampler"}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fastgrid' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
