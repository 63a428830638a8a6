"""The ``fastgrid`` click group and the one place where input errors become exit status 2."""

from __future__ import annotations

from typing import Any

import click

from fastgrid._core import __version__

__all__ = ["InputError", "RunError", "main"]


class InputError(click.ClickException):
    """Bad input found past click's own parsing: ``error: ...`` on stderr, exit status 2."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


class RunError(click.ClickException):
    """A run that stopped on its own findings (fail fast): ``error: ...`` on stderr, exit status 1."""

    exit_code = 1

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


class _Main(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        # The one place where fastgrid's own input errors become a message and exit status 2
        # (no traceback); any other exception is a bug and keeps its traceback.
        from fastgrid.exceptions import (
            ConfigError,
            OutputFolderError,
            PatternError,
            SpecError,
            StorageConnectionError,
            StoreError,
            SweepFileError,
        )

        try:
            return super().invoke(ctx)
        except (SweepFileError, SpecError, ConfigError, PatternError, StoreError, OutputFolderError) as exc:
            raise InputError(str(exc)) from None
        except StorageConnectionError as exc:
            # A server that cannot be reached is no bad input (the same command works once it is
            # back): its one line, exit status 1.
            raise RunError(str(exc)) from None
        except FileNotFoundError as exc:
            raise InputError(f"{exc.filename or ''}: file not found".lstrip(": ")) from None


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="fastgrid")
def main() -> None:
    """Fast, safe parameter sweeps: lazy exact grids, an indexed results directory, Optuna runs."""
