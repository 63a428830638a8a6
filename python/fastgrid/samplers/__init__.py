"""Samplers: which point a trial evaluates.

- :class:`GridSampler` runs every point of a lazy :class:`fastgrid.Grid` once (a trial's number
  is its grid slot), retrying failed slots; it works in any Optuna study.
- :class:`SearchSpace` maps a parameters tree onto Optuna's ``suggest_*`` calls for the search
  samplers (TPE, random, CMA-ES, QMC, NSGA-II), built by :func:`search_sampler`.
"""

from typing import TYPE_CHECKING

from fastgrid.lazy import lazy_exports

if TYPE_CHECKING:
    from fastgrid.samplers._axes import (
        axis_distribution,
        decode_choice,
        encode_choice,
        encode_choices,
        exact_in_optuna,
        recorded_distributions,
        single_value,
    )
    from fastgrid.samplers._factory import (
        PRUNERS,
        SEARCH_SAMPLERS,
        constraint_values,
        make_pruner,
        search_sampler,
    )
    from fastgrid.samplers._grid import EXHAUSTED_ATTR, FAILED_IN_ATTR, SLOT_ATTR, GridSampler
    from fastgrid.samplers._names import PRUNER_NAMES, SEARCH_SAMPLER_NAMES
    from fastgrid.samplers._search import SearchSpace
else:
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "fastgrid.samplers._axes": [
                "axis_distribution",
                "decode_choice",
                "encode_choice",
                "encode_choices",
                "exact_in_optuna",
                "recorded_distributions",
                "single_value",
            ],
            "fastgrid.samplers._factory": [
                "PRUNERS",
                "SEARCH_SAMPLERS",
                "constraint_values",
                "make_pruner",
                "search_sampler",
            ],
            "fastgrid.samplers._grid": ["EXHAUSTED_ATTR", "FAILED_IN_ATTR", "SLOT_ATTR", "GridSampler"],
            "fastgrid.samplers._names": ["PRUNER_NAMES", "SEARCH_SAMPLER_NAMES"],
            "fastgrid.samplers._search": ["SearchSpace"],
        },
    )

__all__ = [
    "EXHAUSTED_ATTR",
    "FAILED_IN_ATTR",
    "PRUNERS",
    "PRUNER_NAMES",
    "SEARCH_SAMPLERS",
    "SEARCH_SAMPLER_NAMES",
    "SLOT_ATTR",
    "GridSampler",
    "SearchSpace",
    "axis_distribution",
    "constraint_values",
    "decode_choice",
    "encode_choice",
    "encode_choices",
    "exact_in_optuna",
    "make_pruner",
    "recorded_distributions",
    "search_sampler",
    "single_value",
]
