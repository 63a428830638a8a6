"""``fastgrid report``: the top trials of a stored sweep, counts, importance and exports."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from fastgrid.cli._main import InputError, main

if TYPE_CHECKING:
    from fastgrid.reporting import BatchReport, Report


def load(
    sweep_file: str | None, storage: str | None, study: str | None, *, importance: bool = True
) -> Report | BatchReport:
    """The stored sweep named by a sweep file or by --storage/--study (shared by report and plot)."""
    from fastgrid.reporting import load_report

    if sweep_file is None and study is None:
        raise click.UsageError("give a SWEEP_FILE, or --storage URL and --study NAME")
    if sweep_file is not None and study is not None:
        raise click.UsageError("give a SWEEP_FILE or --study, not both")
    if study is not None and storage is None:
        raise click.UsageError("--study needs --storage (the storage URL the study lives in)")
    try:
        return load_report(sweep_file, storage=storage, study=study, importance=importance)
    except ValueError as exc:
        # SweepFileError and friends are handled by the group; this is "no such study".
        if type(exc) is ValueError:
            raise InputError(str(exc)) from None
        raise


def _walkforward_report(
    sweep_file: str, storage: str | None, json_path: str | None, csv_path: str | None
) -> bool:
    """Render the walk-forward report when ``sweep_file`` has [walkforward]; False otherwise."""
    from pathlib import Path

    from fastgrid.reporting import load_walkforward_report, render_walkforward, walkforward_json
    from fastgrid.sweepfile import load_sweep_file

    if load_sweep_file(sweep_file).walkforward is None:
        return False
    if csv_path:
        raise InputError("--csv writes one study's trials; for a fold use --storage URL --study NAME.foldI")
    result = load_walkforward_report(sweep_file, storage=storage)
    render_walkforward(result)
    if json_path:
        Path(json_path).write_text(walkforward_json(result) + "\n")
        click.echo(f"wrote {json_path}")
    return True


@main.command("report")
@click.argument("sweep_file", required=False, type=click.Path(dir_okay=False))
@click.option("--storage", help="Optuna storage URL (overrides the sweep file's; needed with --study).")
@click.option("--study", help="Study name in --storage (instead of a sweep file).")
@click.option("--top", type=click.IntRange(min=1), default=10, show_default=True, help="Trials in the table.")
@click.option(
    "--csv", "csv_path", type=click.Path(dir_okay=False), help="Write every trial to this CSV file."
)
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write the whole report as JSON.")
@click.option(
    "--best-config", type=click.Path(dir_okay=False), help="Write the best trial's merged config (JSON)."
)
def report(
    sweep_file: str | None,
    storage: str | None,
    study: str | None,
    top: int,
    csv_path: str | None,
    json_path: str | None,
    best_config: str | None,
) -> None:
    """Show the top trials of SWEEP_FILE's stored study (or --storage URL --study NAME).

    For a sweep file with [walkforward]: one row per fold and the walk-forward summary (read one
    fold's trials with --storage URL --study NAME.foldI).
    """
    from fastgrid.reporting import render_report

    if (
        sweep_file is not None
        and study is None
        and _walkforward_report(sweep_file, storage, json_path, csv_path)
    ):
        return
    rep = load(sweep_file, storage, study)
    render_report(rep, top=top)
    if csv_path:
        rep.to_csv(csv_path)
        click.echo(f"wrote {csv_path}")
    if json_path:
        rep.to_json(json_path)
        click.echo(f"wrote {json_path}")
    if best_config:
        if rep.best_config is None:
            raise InputError(f"sweep {rep.name!r} has no completed feasible trial: no best config to write")
        rep.write_best_config(best_config)
        click.echo(f"wrote {best_config}")
