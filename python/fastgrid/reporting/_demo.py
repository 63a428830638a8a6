"""``fastgrid demo``: the bundled grid example end to end, in a folder of its own.

Copies the example sweep files into the folder, runs ``grid.toml`` (348 backtests), then shows
the top trials, writes a heatmap of sharpe over the two moving-average windows and the best
config. Running it again in the same folder resumes the stored sweep (nothing is re-run).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastgrid import examples
from fastgrid.reporting._plot import save_heatmap
from fastgrid.reporting._report import load_report, render_report
from fastgrid.runner import Sweep

__all__ = ["DemoResult", "run_demo"]


@dataclass(frozen=True)
class DemoResult:
    directory: Path
    result: Any
    heatmap: Path
    best_config: Path


def run_demo(directory: str | Path, *, progress: bool | None = None, console: Any = None) -> DemoResult:
    """Run the demo in ``directory`` (created); returns where everything went."""
    folder = examples.copy_to(directory)
    sweep_file = folder / examples.GRID
    result = Sweep.from_file(sweep_file, directory=folder, progress=progress).run()
    report = load_report(sweep_file, directory=folder)
    render_report(report, top=10, console=console)
    heatmap = folder / "heatmap.png"
    save_heatmap(report, "signal.fast", "signal.slow", heatmap, agg="max")
    best_config = folder / "best_config.json"
    if result.best_config_path is not None:
        shutil.copyfile(result.best_config_path, best_config)
    return DemoResult(folder, result, heatmap, best_config)
