"""``fastgrid report``: the top trials of a stored sweep, counts, importance and exports."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

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


STDOUT = "-"


def _console(to_stdout: bool) -> Any:
    """The report's console: standard error when a file goes to standard output (``-``), so that
    stdout holds only that file (``fastgrid report s.toml --json - | jq``)."""
    if not to_stdout:
        return None
    from fastgrid.reporting import make_console

    return make_console(stderr=True)


def _target(path: str) -> str | IO[str]:
    return sys.stdout if path == STDOUT else path


def _wrote(path: str, to_stdout: bool) -> None:
    if path != STDOUT:
        click.echo(f"wrote {path}", err=to_stdout)


def _walkforward_report(
    sweep_file: str, storage: str | None, json_path: str | None, csv_path: str | None, to_stdout: bool
) -> bool:
    """Render the walk-forward report when ``sweep_file`` has [walkforward]; False otherwise."""
    from fastgrid.reporting import load_walkforward_report, render_walkforward, walkforward_json
    from fastgrid.sweepfile import load_sweep_file

    if load_sweep_file(sweep_file).walkforward is None:
        return False
    if csv_path:
        raise InputError("--csv writes one study's trials; for a fold use --storage URL --study NAME.foldI")
    result = load_walkforward_report(sweep_file, storage=storage)
    render_walkforward(result, console=_console(to_stdout))
    if json_path:
        text = walkforward_json(result) + "\n"
        if json_path == STDOUT:
            click.echo(text, nl=False)
        else:
            Path(json_path).write_text(text)
        _wrote(json_path, to_stdout)
    return True


@main.command("report")
@click.argument("sweep_file", required=False, type=click.Path(dir_okay=False))
@click.option("--storage", help="Optuna storage URL (overrides the sweep file's; needed with --study).")
@click.option("--study", help="Study name in --storage (instead of a sweep file).")
@click.option("--top", type=click.IntRange(min=1), default=10, show_default=True, help="Trials in the table.")
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Write every trial to this CSV file (- for standard output).",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Write the whole report as JSON (- for standard output).",
)
@click.option(
    "--best-config",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Write the best trial's merged config (JSON; - for standard output).",
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

    dashes = [
        option
        for option, path in (("--json", json_path), ("--csv", csv_path), ("--best-config", best_config))
        if path == STDOUT
    ]
    if len(dashes) > 1:
        raise click.UsageError(
            f"only one of --json, --csv, --best-config can be - (standard output); got {', '.join(dashes)}"
        )
    to_stdout = bool(dashes)
    if (
        sweep_file is not None
        and study is None
        and _walkforward_report(sweep_file, storage, json_path, csv_path, to_stdout)
    ):
        return
    rep = load(sweep_file, storage, study)
    render_report(rep, top=top, console=_console(to_stdout))
    if csv_path:
        rep.to_csv(_target(csv_path))
        _wrote(csv_path, to_stdout)
    if json_path:
        rep.to_json(_target(json_path))
        _wrote(json_path, to_stdout)
    if best_config:
        if rep.best_config is None:
            raise InputError(f"sweep {rep.name!r} has no completed feasible trial: no best config to write")
        rep.write_best_config(_target(best_config))
        _wrote(best_config, to_stdout)
