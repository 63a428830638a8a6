"""``fastgrid export SWEEP_FILE --to URL``: copy the stored study to another Optuna storage."""

from __future__ import annotations

import click

from fastgrid.cli import InputError, main


@main.command("export")
@click.argument("sweep_file", type=click.Path(dir_okay=False))
@click.option("--to", "to_url", required=True, help="Destination storage URL, e.g. sqlite:///export.db.")
@click.option("--storage", help="Source storage URL (default: the sweep file's).")
def export(sweep_file: str, to_url: str, storage: str | None) -> None:
    """Copy SWEEP_FILE's study (every trial and attribute) to the storage at --to.

    The copy opens in any Optuna tool, e.g. `optuna-dashboard sqlite:///export.db`.
    """
    from fastgrid import _parts
    from fastgrid.sweep import Sweep
    from fastgrid.worker import _quiet_optuna

    _quiet_optuna()
    sweep = Sweep.from_file(sweep_file, storage=storage)
    source = _parts.open_storage(sweep.spec.sweep.storage, directory=sweep.directory)
    try:
        _parts.export_study(source, study_name=sweep.name, to_url=to_url)
    except KeyError as exc:
        raise InputError(f"{sweep_file}: {exc.args[0] if exc.args else exc} (run the sweep first)") from None
    except ValueError as exc:
        raise InputError(f"--to: {exc}") from None
    click.echo(f"exported sweep {sweep.name} to {_parts.redact_url(to_url)}")
