"""``fastgrid results DIR``: the newest result per key, once or as results land."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from fastgrid.cli._main import InputError, main
from fastgrid.results import DEFAULT_PATTERN, ResultIndex, iter_updates


def _record(fields: tuple[str, ...], key: tuple[str, ...], path: Path) -> dict[str, str]:
    return {**dict(zip(fields, key, strict=True)), "path": str(path)}


@main.command("results")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--pattern", default=DEFAULT_PATTERN, show_default=True, help="Result file name pattern.")
@click.option(
    "--order-by", default="stamp", show_default=True, help="Field that decides the newest, or 'mtime'."
)
@click.option("--recursive", is_flag=True, help="Index subdirectories too.")
@click.option("--json", "as_json", is_flag=True, help="JSON (JSON Lines with --watch) instead of a table.")
@click.option("--watch", is_flag=True, help="Keep printing results as they land, until Ctrl-C.")
@click.option("--poll-interval", type=float, default=None, help="Poll every N seconds instead of events.")
def results(
    directory: Path,
    pattern: str,
    order_by: str,
    recursive: bool,
    as_json: bool,
    watch: bool,
    poll_interval: float | None,
) -> None:
    """Print the newest result file per key in DIRECTORY."""
    try:
        index = ResultIndex(
            directory,
            pattern=pattern,
            order_by=order_by,
            recursive=recursive,
            watch=watch,
            poll_interval=poll_interval if watch else None,
        )
    except (OSError, ValueError) as err:
        raise InputError(str(err)) from None
    console = Console(soft_wrap=True)
    with index:
        fields = tuple(index.fields)
        snapshot = index.snapshot()
        if as_json and not watch:
            click.echo(json.dumps([_record(fields, k, p) for k, p in snapshot.items()], indent=2))
        elif as_json:
            for key, path in snapshot.items():
                click.echo(json.dumps(_record(fields, key, path)))
        else:
            table = Table(*fields, "newest", "files", title=str(index.directory))
            for key, path in snapshot.items():
                count = len(index.history(**dict(zip(fields, key, strict=True))))
                table.add_row(*key, path.name, str(count))
            console.print(table)
        if not watch:
            return
        try:
            for key, path in iter_updates(index):
                if as_json:
                    click.echo(json.dumps(_record(fields, key, path)), nl=True)
                else:
                    label = " ".join(f"{f}={v}" for f, v in zip(fields, key, strict=True))
                    console.print(f"{label}  [bold]{path.name}[/bold]", highlight=False)
        except KeyboardInterrupt:
            return
