"""``fastgrid demo``: the bundled example end to end, in a folder of its own.

Copies the example sweep files into the folder, runs ``grid.toml`` (348 backtests, one Optuna trial
each), shows the top trials, writes a heatmap of sharpe over the two moving-average windows and
the best config; then runs ``batch.toml``, the same crossover on a finer grid as a batch sweep (one
vectorized call per chunk of points, docs/batch.md), and shows its speed, its best point and that
both modes give the same metrics on the points they share. Running it again in the same folder
resumes both stored sweeps (nothing is re-run).
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastgrid import examples
from fastgrid.dotted import flatten, nest
from fastgrid.reporting._batch import BatchReport
from fastgrid.reporting._common import make_console
from fastgrid.reporting._plot import save_heatmap
from fastgrid.reporting._report import Report, load_report, render_report
from fastgrid.runner import BatchSweepResult, Sweep, SweepResult
from fastgrid.selection import Selection

__all__ = ["DemoResult", "run_demo"]


@dataclass(frozen=True)
class DemoResult:
    directory: Path
    result: Any
    heatmap: Path
    best_config: Path
    batch: BatchSweepResult | None = None
    """The batch sweep's result (``batch.toml``)."""
    seconds: float = 0.0
    """The per-trial sweep's run time."""
    batch_seconds: float = 0.0
    """The batch sweep's run time."""
    shared: int = 0
    """Points both sweeps evaluated (grid.toml's, inside batch.toml's grid)."""
    largest_difference: float | None = None
    """The largest absolute difference of a metric between the two modes on the shared points."""
    selection: Selection | None = None
    """The batch winner's deflated Sharpe ratio and PBO (``keep_returns``: its best points' series)."""


def run_demo(directory: str | Path, *, progress: bool | None = None, console: Any = None) -> DemoResult:
    """Run the demo in ``directory`` (created); returns where everything went."""
    console = make_console(console)
    folder = examples.copy_to(directory)
    sweep_file = folder / examples.GRID
    started = time.perf_counter()
    result = Sweep.from_file(sweep_file, directory=folder, progress=progress).run()
    seconds = time.perf_counter() - started
    report = load_report(sweep_file, directory=folder)
    render_report(report, top=10, console=console)
    heatmap = folder / "heatmap.png"
    save_heatmap(report, "signal.fast", "signal.slow", heatmap, agg="max")
    best_config = folder / "best_config.json"
    if result.best_config_path is not None:
        shutil.copyfile(result.best_config_path, best_config)
    out = DemoResult(folder, result, heatmap, best_config, seconds=seconds)
    if result.interrupted:
        return out
    started = time.perf_counter()
    batch = Sweep.from_file(folder / examples.BATCH, directory=folder, progress=progress).run()
    batch_seconds = time.perf_counter() - started
    assert isinstance(batch, BatchSweepResult) and isinstance(report, Report)
    shared, largest = _agreement(report, batch)
    batch_report = load_report(folder / examples.BATCH, directory=folder, importance=False)
    selection = batch_report.selection if isinstance(batch_report, BatchReport) else None
    out = DemoResult(
        folder,
        result,
        heatmap,
        best_config,
        batch=batch,
        seconds=seconds,
        batch_seconds=batch_seconds,
        shared=shared,
        largest_difference=largest,
        selection=selection,
    )
    _print_batch(console, out)
    return out


def _agreement(report: Report, batch: BatchSweepResult) -> tuple[int, float | None]:
    """How many points both sweeps scored, and the largest difference of a metric on them."""
    assert batch.results is not None
    paths = list(batch.results.paths)
    metrics = list(batch.results.metric_names)
    cols = batch.results.columns([*paths, *metrics, "failed"])
    index = {
        key: i
        for i, key in enumerate(zip(*(cols[p].tolist() for p in paths), strict=True))
        if not cols["failed"][i]
    }
    largest: float | None = None
    shared = 0
    for row in report.rows:
        if row["state"] != "COMPLETE" or row["reused"] is not None:
            continue
        point = row["params"]
        if any(p not in point for p in paths) and report.config is not None:
            # A batch axis the per-trial grid holds fixed (the cost): its value from the config.
            merged = flatten(report.config.merged(nest(point)))
            point = {p: point.get(p, merged.get(p)) for p in paths}
        i = index.get(tuple(point.get(p) for p in paths))
        if i is None:
            continue
        shared += 1
        for m in metrics:
            diff = abs(float(row["metrics"][m]) - float(cols[m][i]))
            largest = diff if largest is None or diff > largest else largest
    return shared, largest


def _rate(points: int, seconds: float, unit: str) -> str:
    return f"{points / seconds:,.0f} {unit}/s" if seconds > 0 and points else f"- {unit}/s"


def _print_batch(console: Any, out: DemoResult) -> None:
    batch, trial = out.batch, out.result
    assert batch is not None
    c = batch.counts
    console.print()
    console.print(
        f"[bold]batch mode[/bold] ({examples.BATCH}: the same crossover over more windows and three costs, "
        "one vectorized call per chunk of points)"
    )
    if batch.ran:
        console.print(
            f"  {batch.ran:,} points in {out.batch_seconds:.2f}s: "
            f"{_rate(batch.ran, out.batch_seconds, 'points')}"
            + (
                f" (per trial above: {trial.ran:,} trials in {out.seconds:.2f}s: "
                f"{_rate(trial.ran, out.seconds, 'trials')})"
                if trial.ran
                else ""
            )
        )
    else:
        console.print(f"  all {c['done']:,} points were stored by an earlier run (nothing ran)")
    console.print(
        f"  {c['done']:,} points: {c['feasible']:,} feasible, {c['infeasible']:,} infeasible, "
        f"{c['failed']:,} failed"
    )
    best = batch.best
    if best is not None:
        value = ", ".join(f"{v:.6g}" for v in best["values"] or [])
        per_trial = _best_value(trial)
        better = f" (per-trial grid's best: {per_trial:.6g})" if per_trial is not None else ""
        console.print(f"  best point: slot {best['number']}, sharpe {value}{better}")
        params = ", ".join(f"{k}={v}" for k, v in best["params"].items())
        console.print(f"    params: {params}", highlight=False)
    if out.shared and out.largest_difference is not None:
        agree = "agree" if out.largest_difference < 1e-9 else "DIFFER"
        console.print(
            f"  on the {out.shared} points both ran, the per-trial and batch metrics {agree} "
            f"(largest difference {out.largest_difference:.1e})"
        )
    sel = out.selection
    if sel is not None and sel.deflated_sharpe is not None:
        pbo = f", PBO {sel.pbo.pbo:.2f} over its {sel.pbo_trials} best points" if sel.pbo is not None else ""
        console.print(
            f"  the best of {sel.n_trials:,} points: deflated Sharpe ratio {sel.deflated_sharpe:.2f}{pbo} "
            f"(fastgrid report {examples.BATCH} says what they mean)"
        )


def _best_value(result: SweepResult) -> float | None:
    if result.best is None or not result.best["values"]:
        return None
    return float(result.best["values"][0])
