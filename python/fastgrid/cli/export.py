"""``fastgrid export STUDY --to URL``: copy a sweep's study to any Optuna storage (for dashboards)."""

from __future__ import annotations

import sys

import click

from fastgrid.cli import main


@main.command("export")
@click.argument("study")
@click.option("--to", "to_url", required=True, help="Destination storage URL, e.g. sqlite:///export.db.")
@click.option("--storage", help="Source storage URL (default: the embedded store in the working directory).")
def export(study: str, to_url: str, storage: str | None) -> None:
    """Copy STUDY (a sweep's name) with all its trials to the storage at --to.

    Then, for example: optuna-dashboard sqlite:///export.db
    """
    from fastgrid.storage import export_study, open_storage, redact_url

    try:
        export_study(open_storage(storage), study_name=study, to_url=to_url)
    except KeyError as exc:
        click.echo(f"error: {exc.args[0] if exc.args else exc}", err=True)
        sys.exit(2)
    except (ValueError, OSError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    click.echo(f"exported study {study!r} to {redact_url(to_url)}")
