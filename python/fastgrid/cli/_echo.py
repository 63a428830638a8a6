"""What ``fastgrid run`` and ``fastgrid worker`` print about a sweep's best trial (or point)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from fastgrid.runner import SweepResult

__all__ = ["echo_best"]


def echo_best(result: SweepResult, *, compact: bool = False) -> None:
    """The best feasible trial of ``result`` (of a batch sweep: the best point, by grid slot), if any.

    ``run`` prints it with its metrics and config file; ``worker`` (``compact``) on one line under
    its own summary, which names the sweep.
    """
    from fastgrid.runner import BatchSweepResult

    best = result.best
    if best is None:
        return
    values = ", ".join(f"{v:.6g}" for v in best["values"] or [])
    params = json.dumps(best["params"], default=str)
    if isinstance(result, BatchSweepResult):
        chosen = bool(result.validation) and result.validation[0]["validated"] is not None
        title = f"best {'validated ' if chosen else ''}point (grid slot {best['number']})"
    else:
        title = f"best {'validated ' if result.validation else ''}trial {best['number']}"
        title += "" if compact else f" of sweep {result.name}"
    if compact:
        click.echo(f"{title}: {values}  params: {params}")
        return
    click.echo(f"{title}: {values}")
    click.echo(f"  params: {params}")
    if best["metrics"]:
        click.echo(f"  metrics: {json.dumps(best['metrics'], default=str)}")
    click.echo(f"  config: {result.best_config_path}")
