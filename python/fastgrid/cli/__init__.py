"""The ``fastgrid`` command: one click group (``_main``), one module per subcommand.

The CLI only calls the Python API; each subcommand module registers itself on the group.
"""

from fastgrid.cli import dashboard, demo, export, grid, plot, report, results, run, worker
from fastgrid.cli._main import InputError, main

__all__ = [
    "InputError",
    "dashboard",
    "demo",
    "export",
    "grid",
    "main",
    "plot",
    "report",
    "results",
    "run",
    "worker",
]
