"""``fastgrid dashboard SWEEP_FILE``: optuna-dashboard on a sweep's storage, the embedded store too.

``optuna-dashboard fastgrid.db`` cannot open the embedded store (it is not an SQLite database of
Optuna's schema); this serves it through Optuna's storage API, which optuna-dashboard takes as is.
"""

from __future__ import annotations

import contextlib

import click

from fastgrid.cli._main import InputError, main


@main.command("dashboard")
@click.argument("sweep_file", required=False, type=click.Path(dir_okay=False))
@click.option(
    "--storage", help="Optuna storage URL (overrides the sweep file's; without a sweep file: required)."
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(1, 65535), default=8080, show_default=True, help="Port to listen on."
)
def dashboard(sweep_file: str | None, storage: str | None, host: str, port: int) -> None:
    """Serve SWEEP_FILE's stored study (or --storage URL) with optuna-dashboard, until Ctrl-C."""
    from pathlib import Path

    from fastgrid.storages import open_storage
    from fastgrid.sweepfile import load_sweep_file

    try:
        import optuna_dashboard
    except ImportError:
        raise InputError(
            "fastgrid dashboard needs optuna-dashboard: pip install 'fastgrid[dashboard]' "
            "(or pip install optuna-dashboard)"
        ) from None
    if sweep_file is None and storage is None:
        raise click.UsageError("give a SWEEP_FILE, or --storage URL")
    url = storage if storage is not None or sweep_file is None else load_sweep_file(sweep_file).sweep.storage
    try:
        store = open_storage(url, directory=Path.cwd())
    except ValueError as exc:
        raise InputError(str(exc)) from None
    click.echo(f"serving {url or 'fastgrid.db'} on http://{host}:{port}/ (Ctrl-C stops)", err=True)
    with contextlib.suppress(KeyboardInterrupt):
        optuna_dashboard.run_server(store, host=host, port=port)
