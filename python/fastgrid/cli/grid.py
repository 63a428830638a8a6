"""``fastgrid grid FILE``: count, index, sample or print the points of a parameters file."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from fastgrid._core import Grid
from fastgrid.cli._main import InputError, main
from fastgrid.exceptions import SpecError


def _shard(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    k, sep, n = value.partition("/")
    if not sep or not k.strip().isdigit() or not n.strip().isdigit() or int(n) < 1 or int(k) >= int(n):
        raise click.BadParameter(f"{value!r}: expected K/N with 0 <= K < N, e.g. 0/4", param_hint="--shard")
    return int(k), int(n)


def _emit(point: Any) -> None:
    sys.stdout.write(json.dumps(point) + "\n")


@main.command("grid")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--count", is_flag=True, help="Print the number of points (before the points, if any).")
@click.option("--head", type=click.IntRange(min=0), help="Print the first N points.")
@click.option("--index", "indexes", type=int, multiple=True, help="Print point I (negative from the end).")
@click.option("--sample", type=click.IntRange(min=0), help="Print N distinct pseudo-random points.")
@click.option("--seed", type=click.IntRange(0, 2**64 - 1), default=None, help="Seed of --sample.")
@click.option("--shard", "shard", help="Restrict to shard K of N (K/N, e.g. 0/4) before anything else.")
@click.option("--constraint", "-c", "constraints", multiple=True, help="Keep points where EXPR holds.")
@click.option("--flat", is_flag=True, help="Flat points with dotted keys instead of nested dicts.")
def grid(
    file: str,
    count: bool,
    head: int | None,
    indexes: tuple[int, ...],
    sample: int | None,
    seed: int | None,
    shard: str | None,
    constraints: tuple[str, ...],
    flat: bool,
) -> None:
    """Read the parameters tree of FILE (TOML, YAML or JSON, or a sweep file's [parameters], with its
    [sweep] where constraints) and print JSON lines: the count, then points. Without
    --count/--head/--index/--sample, every point."""
    from fastgrid.sweepfile import load_grid_spec

    if sample is not None and seed is None:
        raise click.UsageError("--sample needs --seed (the same seed gives the same points)")
    shard_kn = _shard(shard)
    try:
        tree, where = load_grid_spec(file)
    except SpecError as e:
        raise InputError(str(e)) from None  # already names the file and line
    try:
        g = Grid(tree, constraints=(*where, *constraints), flat=flat)
    except (SpecError, TypeError) as e:
        raise InputError(f"{file}: {e}") from None
    if shard_kn is not None:
        g = g.shard(*shard_kn)
    if count:
        _emit(g.size)
    for i in indexes:
        if not -g.size <= i < g.size:
            raise InputError(f"--index {i} is out of range for {g.size} points")
        _emit(g[i])
    if head is not None:
        for point in g[:head]:
            _emit(point)
    if sample is not None and seed is not None:
        if sample > g.size:
            raise InputError(f"--sample {sample} is larger than the grid ({g.size} points)")
        for point in g.sample(sample, seed=seed):
            _emit(point)
    if not (count or indexes or head is not None or sample is not None):
        for point in g:
            _emit(point)
