"""``fastgrid demo``: run the bundled example sweep end to end."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from fastgrid.cli._main import main


@main.command("demo")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False),
    help="Folder for the example files, the store and the outputs (default: a new temporary folder).",
)
@click.option("--progress/--no-progress", default=None, help="Force the progress bar on or off.")
def demo(directory: str | None, progress: bool | None) -> None:
    """Run the bundled moving-average crossover grid (348 backtests) and show what won, then the
    same strategy over 103,728 points as a batch sweep: its speed and its best point.

    Writes heatmap.png (sharpe over the fast and slow windows) and best_config.json into the
    folder, next to copies of the example sweep files to edit and re-run.
    """
    import tempfile

    from fastgrid.reporting import run_demo

    folder = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="fastgrid-demo-"))
    out = run_demo(folder, progress=progress)
    if out.result.interrupted:
        sys.exit(130)
    click.echo(f"\nheatmap:     {out.heatmap}")
    click.echo(f"best config: {out.best_config}")
    click.echo(f"next:        cd {out.directory}")
    click.echo("             fastgrid report grid.toml --top 20")
    click.echo("             fastgrid report batch.toml --top 20   # the batch sweep's 103,728 points")
    click.echo("             fastgrid plot grid.toml heatmap signal.slow signal.mode --agg mean")
    click.echo("             fastgrid run tpe.toml     # TPE search, then the top 5 re-run on held-out bars")
    click.echo("             fastgrid run command.toml && fastgrid results results/   # a script per trial")
