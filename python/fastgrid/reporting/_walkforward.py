"""The report of a ``[walkforward]`` sweep: one row per fold and what the folds add up to."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastgrid.reporting._common import json_text
from fastgrid.storages import open_storage
from fastgrid.sweepfile import load_sweep_file
from fastgrid.walkforward import WalkForwardResult, load_walkforward

__all__ = ["load_walkforward_report", "render_walkforward", "walkforward_json"]


def load_walkforward_report(
    sweep_file: str | Path, *, storage: str | None = None, directory: str | Path | None = None
) -> WalkForwardResult:
    """The stored folds of the walk-forward sweep file ``sweep_file`` (nothing runs)."""
    spec = load_sweep_file(sweep_file)
    section = spec.walkforward
    if section is None:
        raise ValueError(f"{sweep_file}: the sweep file has no [walkforward] section")
    url = storage if storage is not None else spec.sweep.storage
    store = open_storage(url, directory=Path(directory) if directory is not None else Path.cwd())
    return load_walkforward(
        store,
        spec.sweep.name or "sweep",
        folds=len(section.folds()),
        metric=spec.sweep.objective_metrics[0],
        direction=spec.sweep.all_directions[0],
    )


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def render_walkforward(result: WalkForwardResult, *, console: Any = None) -> None:
    """Print the folds (windows, selected trial and parameters, in- and out-of-sample scores,
    efficiency, rank correlation) and the summary sentences."""
    from rich.console import Console
    from rich.table import Table

    if console is None:
        console = Console()
        if not console.is_terminal:
            console = Console(width=200)
    console.print(
        f"[bold]walk-forward {result.name}[/bold] ({result.direction} {result.metric}): "
        f"{len(result.folds)} of {result.planned} fold(s) evaluated"
    )
    params: dict[str, None] = {}
    for f in result.folds:
        params.update(dict.fromkeys(f.params))
    table = Table(title="folds (selected in sample, scored on the next window)", title_justify="left")
    for title in ("fold", "train", "test", "trial"):
        table.add_column(title, justify="right")
    for p in params:
        table.add_column(p.rsplit(".", 1)[-1], justify="right")
    for title in ("in-sample", "out-of-sample", "efficiency", "rank corr."):
        table.add_column(title, justify="right")
    table.add_column("note")
    for f in result.folds:
        table.add_row(
            str(f.index),
            f"{f.train[0]}..{f.train[1]}",
            f"{f.test[0]}..{f.test[1]}",
            _fmt(f.selected),
            *[_fmt(f.params.get(p)) for p in params],
            _fmt(f.in_sample),
            _fmt(f.out_of_sample),
            _fmt(f.efficiency),
            _fmt(f.rank_correlation),
            f.reason or "",
        )
    console.print(table)
    for sentence in result.sentences():
        console.print(f"  {sentence}", highlight=False)


def walkforward_json(result: WalkForwardResult) -> str:
    return json_text(
        {
            "walkforward": result.name,
            "metric": result.metric,
            "direction": result.direction,
            "planned": result.planned,
            "efficiency": result.efficiency,
            "mean_rank_correlation": result.mean_rank_correlation,
            "stitched_sharpe": result.stitched_sharpe,
            "parameter_stability": result.parameter_stability,
            "folds": [{**f.record(), "study": f.study, "efficiency": f.efficiency} for f in result.folds],
            "summary": result.sentences(),
        }
    )
