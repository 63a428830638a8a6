"""The ``fastgrid`` command: one click group, one module per subcommand."""

from __future__ import annotations

import click

from fastgrid import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="fastgrid")
def main() -> None:
    """Fast, safe parameter sweeps: lazy exact grids, an indexed results directory, Optuna runs."""


# Subcommands register themselves here, one line each.
from fastgrid.cli import export as _export  # noqa: E402, F401
from fastgrid.cli import grid as _grid  # noqa: E402, F401
from fastgrid.cli import results as _results  # noqa: E402, F401
from fastgrid.cli import run as _run  # noqa: E402, F401
from fastgrid.cli import worker as _worker  # noqa: E402, F401
