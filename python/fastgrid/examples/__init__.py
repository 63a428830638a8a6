"""The bundled example: a crossover backtest on synthetic bars and sweep files that use it.

``fastgrid demo`` runs :data:`GRID` end to end; :func:`copy_to` puts the sweep files and the
default config into a folder of your own to edit and run with ``fastgrid run``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

__all__ = ["BATCH", "COMMAND", "FILES", "GRID", "TPE", "WALKFORWARD", "copy_to", "folder"]

GRID = "grid.toml"
TPE = "tpe.toml"
COMMAND = "command.toml"
WALKFORWARD = "walkforward.toml"
BATCH = "batch.toml"
FILES = (GRID, TPE, COMMAND, WALKFORWARD, BATCH, "sma_config.json")


def folder() -> Path:
    """The installed folder of the example files."""
    return Path(__file__).resolve().parent


def copy_to(directory: str | Path) -> Path:
    """Copy the sweep files and default config into ``directory`` (created), with an empty
    ``results/`` folder for ``command.toml``; returns it."""
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        shutil.copyfile(folder() / name, target / name)
    # command.toml's results index watches this folder from the first trial on: it must exist.
    (target / "results").mkdir(exist_ok=True)
    return target
