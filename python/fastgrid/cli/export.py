"""``fastgrid export SWEEP_FILE|STUDY --to URL|FILE``: copy a sweep's study to any Optuna storage,
or write its results as a table (``.csv``, or ``.parquet`` with pyarrow installed)."""

from __future__ import annotations

from pathlib import Path

import click

from fastgrid.cli._main import InputError, main

_SWEEP_SUFFIXES = (".toml", ".yaml", ".yml", ".json")
_TABLE_SUFFIXES = (".csv", ".parquet")


@main.command("export")
@click.argument("source")
@click.option(
    "--to",
    "to_url",
    required=True,
    help="Destination storage URL, e.g. sqlite:///export.db; or a .csv / .parquet file for a results table.",
)
@click.option("--storage", help="Source storage URL (default: the sweep file's, or the embedded store here).")
def export(source: str, to_url: str, storage: str | None) -> None:
    """Copy a sweep's study, with every trial and attribute, to the storage at --to; or, when --to
    ends in .csv or .parquet, write the results as a table: a row per trial, or a row per point of a
    batch sweep (Parquet needs pyarrow).

    SOURCE is a sweep file (its study and storage are used) or a study name (a sweep's name) in
    --storage. Then, for example: optuna-dashboard sqlite:///export.db
    """
    if to_url.lower().endswith(_TABLE_SUFFIXES):
        _export_table(source, to_url, storage)
        return
    from fastgrid.runner import quiet_optuna
    from fastgrid.storages import export_study, open_storage, redact_url
    from fastgrid.sweepfile import load_sweep_file

    quiet_optuna()
    if source.lower().endswith(_SWEEP_SUFFIXES) or Path(source).is_file():
        # Reading the sweep file is enough: exporting builds no grid and loads no config.
        spec = load_sweep_file(source)
        name = spec.sweep.name or "sweep"
        url = storage if storage is not None else spec.sweep.storage
        directory = Path.cwd()
        where = f"{source}: "
    else:
        name, url, directory, where = source, storage, None, ""
    try:
        source_store = open_storage(url, directory=directory, readonly=True)
        export_study(source_store, study_name=name, to_url=to_url)
    except KeyError as exc:
        hint = " (run the sweep first)" if where else ""
        raise InputError(f"{where}{exc.args[0] if exc.args else exc}{hint}") from None
    except (ValueError, OSError) as exc:
        text = str(exc)
        if "://" not in to_url and text.startswith(f"storage {to_url!r}"):
            # --to takes a results table too: say so beside the storage forms.
            text = f"--to {text}\n  - a file ending .csv or .parquet → the results as a table"
        raise InputError(text) from None
    click.echo(f"exported study {name!r} to {redact_url(to_url)}")


def _export_table(source: str, path: str, storage: str | None) -> None:
    """The results of ``source`` as a CSV or Parquet file (every point of a batch sweep)."""
    from fastgrid.reporting import load_report

    try:
        if source.lower().endswith(_SWEEP_SUFFIXES) or Path(source).is_file():
            report = load_report(source, storage=storage, importance=False)
        else:
            report = load_report(storage=storage or "fastgrid.db", study=source, importance=False)
        if path.lower().endswith(".csv"):
            report.to_csv(path)
        else:
            report.to_parquet(path)
    except ImportError as exc:
        raise InputError(f"--to {path}: {exc}") from None
    except (ValueError, OSError) as exc:
        raise InputError(str(exc)) from None
    click.echo(f"wrote {path}")
