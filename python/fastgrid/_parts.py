"""TEMPORARY: where the runner finds the parts built on other branches until they land on main."""

# ruff: noqa
from __future__ import annotations

try:
    from fastgrid._core import Grid  # type: ignore[attr-defined]
except ImportError:
    from fastgrid._standins import Grid
from fastgrid._core import Expression

from fastgrid._core import trial_key
from fastgrid.config import ConfigCache

try:
    from fastgrid.storage import open_storage, redact_url  # type: ignore[import-not-found]
except ImportError:
    from fastgrid._standins import open_storage, redact_url
try:
    from fastgrid.objective import (  # type: ignore[import-not-found]
        CallableObjective,
        CommandObjective,
        ResultsSpec,
        TrialOutcome,
    )
except ImportError:
    from fastgrid._standins import CallableObjective, CommandObjective, ResultsSpec, TrialOutcome

try:
    from fastgrid._core import parse_parameters as search_axes  # type: ignore[attr-defined]
except ImportError:

    def search_axes(parameters):
        """The axes of a tree that may hold continuous ranges (search mode)."""
        return Grid(parameters, continuous=True).axes


try:
    from fastgrid.storage import export_study
except ImportError:
    from fastgrid._standins import export_study
