"""``fastgrid results DIR``: the newest result per key, once or as results land."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from fastgrid.cli._main import InputError, main
from fastgrid.results import DEFAULT_PATTERN, ResultIndex, iter_updates


def _source(source: Path) -> tuple[Path, dict[str, Any]]:
    """The directory to index and the settings a sweep file's ``[objective.results]`` gives."""
    if not source.is_file():
        return source, {}  # a directory (a missing one is the index's error to report)
    from fastgrid.sweepfile import load_sweep_file

    spec = load_sweep_file(source)
    section = spec.objective.results
    if section is None:
        raise InputError(
            f"{source}: no [objective.results] section to read (give the results directory instead)"
        )
    cwd = spec.objective.cwd
    directory = section.dir if section.dir.is_absolute() or cwd is None else cwd / section.dir
    return directory, section.model_dump(exclude={"dir", "key", "wait"}, exclude_none=True)


def _warn_unmatched(index: ResultIndex, directory: Path, *, recursive: bool) -> None:
    """Say when most files of the directory are not results of the pattern (issue 11: files of
    another naming scheme were silently left out or mis-split)."""
    if not directory.is_dir():
        return
    names: list[str] = []
    folders = [directory]
    while folders and len(names) < 100_000:
        folder = folders.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    if recursive:
                        folders.append(Path(entry.path))
                elif entry.is_file():
                    names.append(entry.path)
    matched = index.file_count
    if names and matched * 2 < len(names):
        outside = [n for n in names if Path(n) not in index][:3]
        shown = ", ".join(repr(os.path.basename(n)) for n in outside)
        click.echo(
            f"warning: {len(names) - matched} of {len(names)} files in {directory} do not match the "
            f"pattern {index.pattern!r} (e.g. {shown}); pass --pattern, or the sweep file whose "
            "[objective.results] names it",
            err=True,
        )


def _record(fields: tuple[str, ...], key: tuple[str, ...], path: Path) -> dict[str, str]:
    return {**dict(zip(fields, key, strict=True)), "path": str(path)}


@main.command("results")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--pattern", default=None, help=f"Result file name pattern [default: {DEFAULT_PATTERN}].")
@click.option("--order-by", default=None, help="Field that decides the newest, or 'mtime' [default: stamp].")
@click.option("--recursive", is_flag=True, default=None, help="Index subdirectories too.")
@click.option("--json", "as_json", is_flag=True, help="JSON (JSON Lines with --watch) instead of a table.")
@click.option("--watch", is_flag=True, help="Keep printing results as they land, until Ctrl-C.")
@click.option("--poll-interval", type=float, default=None, help="Poll every N seconds instead of events.")
def results(
    source: Path,
    pattern: str | None,
    order_by: str | None,
    recursive: bool | None,
    as_json: bool,
    watch: bool,
    poll_interval: float | None,
) -> None:
    """Print the newest result file per key in SOURCE: a directory, or a sweep file whose
    [objective.results] section names the directory, pattern and order (options override it)."""
    from rich.console import Console
    from rich.table import Table

    directory, settings = _source(source)
    pattern = pattern or settings.get("pattern") or DEFAULT_PATTERN
    order_by = order_by or settings.get("order_by") or "stamp"
    recursive = bool(recursive if recursive is not None else settings.get("recursive"))
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
    _warn_unmatched(index, Path(directory), recursive=recursive)
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
