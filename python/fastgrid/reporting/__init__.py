"""Reading a finished (or running) sweep: reports, exports and plots.

Everything here reads the stored study; nothing runs a trial, builds a grid or loads a config
(except :attr:`Report.best_config`, which merges the best params into the default config).
:func:`run_demo` is the bundled example end to end (run, report, heatmap).
"""

from typing import TYPE_CHECKING

from fastgrid.lazy import lazy_exports

if TYPE_CHECKING:
    from fastgrid.reporting._batch import BatchReport
    from fastgrid.reporting._common import FailureGroup, make_console
    from fastgrid.reporting._demo import DemoResult, run_demo
    from fastgrid.reporting._overfit_plot import overfitting_figure, save_overfitting, walkforward_figure
    from fastgrid.reporting._plot import (
        AGGREGATES,
        OPTUNA_KINDS,
        heatmap_figure,
        heatmap_title,
        optuna_figure,
        save_heatmap,
        save_optuna,
    )
    from fastgrid.reporting._report import Report, load, load_report, render_report
    from fastgrid.reporting._walkforward import load_walkforward_report, render_walkforward, walkforward_json
else:
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "fastgrid.reporting._batch": ["BatchReport"],
            "fastgrid.reporting._common": ["FailureGroup", "make_console"],
            "fastgrid.reporting._demo": ["DemoResult", "run_demo"],
            "fastgrid.reporting._overfit_plot": [
                "overfitting_figure",
                "save_overfitting",
                "walkforward_figure",
            ],
            "fastgrid.reporting._plot": [
                "AGGREGATES",
                "OPTUNA_KINDS",
                "heatmap_figure",
                "heatmap_title",
                "optuna_figure",
                "save_heatmap",
                "save_optuna",
            ],
            "fastgrid.reporting._report": ["Report", "load", "load_report", "render_report"],
            "fastgrid.reporting._walkforward": [
                "load_walkforward_report",
                "render_walkforward",
                "walkforward_json",
            ],
        },
    )

__all__ = [
    "AGGREGATES",
    "OPTUNA_KINDS",
    "BatchReport",
    "DemoResult",
    "FailureGroup",
    "Report",
    "heatmap_figure",
    "heatmap_title",
    "load",
    "load_report",
    "load_walkforward_report",
    "make_console",
    "optuna_figure",
    "overfitting_figure",
    "render_report",
    "render_walkforward",
    "run_demo",
    "save_heatmap",
    "save_optuna",
    "save_overfitting",
    "walkforward_figure",
    "walkforward_json",
]
