"""``fastgrid plot SWEEP_FILE KIND``: a metric heatmap (PNG) or one of Optuna's plots (HTML)."""

from __future__ import annotations

import click

from fastgrid.cli._main import InputError, main
from fastgrid.cli.report import load

_KINDS = ("heatmap", "overfitting", "history", "importance", "parallel", "contour")


@main.command("plot")
@click.argument("sweep_file", type=click.Path(dir_okay=False))
@click.argument("kind", type=click.Choice(_KINDS))
@click.argument("axes", nargs=-1)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False), help="Output file (default: KIND.png/.html)."
)
@click.option("--metric", help="heatmap: the metric to show (default: the first objective's).")
@click.option(
    "--agg",
    type=click.Choice(["max", "mean", "min"]),
    help="heatmap: how the other parameters are aggregated in each cell "
    "(default: the best value, max for a maximized metric, min for a minimized one).",
)
@click.option("--storage", help="Optuna storage URL (overrides the sweep file's).")
def plot(
    sweep_file: str,
    kind: str,
    axes: tuple[str, ...],
    output: str | None,
    metric: str | None,
    agg: str | None,
    storage: str | None,
) -> None:
    """Plot SWEEP_FILE's stored trials.

    \b
    heatmap X Y   metric over parameters X and Y, aggregated over the rest (PNG)
    overfitting   the CSCV logits and the winners in vs out of sample (PNG);
                  for a [walkforward] file, each fold's top trials in vs out of sample
    history       best value over trials (HTML, Optuna)
    importance    parameter importances (HTML, Optuna)
    parallel      parallel coordinates of the trials (HTML, Optuna)
    contour       contours of the objective over parameter pairs (HTML, Optuna)
    """
    from fastgrid import reporting as plots

    if kind == "heatmap":
        if len(axes) != 2:
            raise click.UsageError("heatmap needs two parameters: fastgrid plot SWEEP_FILE heatmap X Y")
    elif axes:
        raise click.UsageError(f"{kind} takes no parameters (got {' '.join(axes)})")
    if kind == "overfitting":
        _overfitting(sweep_file, storage, output or "overfitting.png")
        return
    rep = load(sweep_file, storage, None, importance=False)
    target = output or ("heatmap.png" if kind == "heatmap" else f"{kind}.html")
    try:
        if kind == "heatmap":
            plots.save_heatmap(rep, axes[0], axes[1], target, metric=metric, agg=agg)
        else:
            plots.save_optuna(rep, kind, target)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    except ImportError as exc:
        raise InputError(f"{kind} plots need plotly: pip install plotly ({exc})") from None
    click.echo(f"wrote {target}")


def _overfitting(sweep_file: str, storage: str | None, target: str) -> None:
    from fastgrid import reporting as plots
    from fastgrid.sweepfile import load_sweep_file

    try:
        if load_sweep_file(sweep_file).walkforward is not None:
            figure = plots.walkforward_figure(plots.load_walkforward_report(sweep_file, storage=storage))
        else:
            report = load(sweep_file, storage, None, importance=False)
            if isinstance(report, plots.BatchReport):
                raise ValueError(
                    f"sweep {report.name!r} is a batch sweep: it keeps no per-trial returns series, "
                    "which the overfitting plot needs"
                )
            figure = plots.overfitting_figure(report)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    plots.save_overfitting(figure, target)
    click.echo(f"wrote {target}")
