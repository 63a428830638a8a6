"""A validated sweep definition: what every worker of a run needs, picklable, with no run state.

:class:`fastgrid.Sweep` is the user's handle; it builds a :class:`SweepPlan` and hands it to the
workers (threads or spawned processes), which rebuild the grid, samplers and objective from it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastgrid._core import Expression, Grid, parse_parameters
from fastgrid.config import ConfigCache
from fastgrid.dotted import apply_override
from fastgrid.exceptions import ConfigError, SweepFileError
from fastgrid.files import open_text
from fastgrid.refs import by_value, from_value
from fastgrid.sweepfile import SweepFile, bare_lists, parameter_leaves, parameter_problems

if TYPE_CHECKING:
    # Optuna's samplers and the storages are imported where a per-trial run asks for them: a
    # batch sweep's process never does.
    import optuna

    from fastgrid.samplers import SearchSpace

__all__ = ["SweepPlan", "add_import_path"]


def _lookup(tree: Any, path: str) -> tuple[bool, Any]:
    node = tree
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _bare_list_problem(path: str, current: Any, parameters: Any) -> str:
    written: Any = next(
        (leaf for p, leaf in parameter_leaves(parameters) if p.split("].", 1)[-1] == path), []
    )
    values = json.dumps(written, default=str)
    kind = (
        "a number"
        if isinstance(current, int | float) and not isinstance(current, bool)
        else ("a table" if isinstance(current, dict) else f"a {type(current).__name__}")
    )
    return (
        f"parameters.{path}: a bare list is ONE fixed value (every trial would get the list {values}), "
        f"but the default config's {path} is {kind} ({json.dumps(current, default=str)}). "
        f'To sweep these values write {path} = {{ type = "grid", values = {values} }}; '
        f'to pass the list itself write {path} = {{ type = "fixed", value = {values} }}'
    )


def add_import_path(folder: str | None) -> None:
    """Callables named in a sweep file import from next to the file first (in every worker too)."""
    if folder is not None and folder not in sys.path:
        sys.path.insert(0, folder)


@dataclass
class SweepPlan:
    """The sweep file's content plus where it runs; ``target`` is a callable given in Python and
    ``config`` a default config given as a mapping (``Sweep(config={...})``)."""

    spec: SweepFile
    directory: Path
    source: str = "Sweep(...)"
    target: Callable[[dict[str, Any]], Any] | None = None
    import_path: str | None = None
    allow_changed: bool = False
    wait_for_others: bool = False
    config: ConfigCache | None = None

    def __getstate__(self) -> dict[str, Any]:
        # A callable given in Python goes to worker processes by value when it must (issue 11: a
        # function defined in a notebook or a script's __main__ cannot be imported by a spawned
        # process); cloudpickle pickles importable functions by reference as pickle does.
        # Each worker process builds its own grid from the spec (cheaper than pickling one).
        state = {k: v for k, v in self.__dict__.items() if k != "_grid"}
        if self.target is not None:
            state["target"] = by_value(self.target)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "target" in state:
            state["target"] = from_value(state["target"])
        self.__dict__.update(state)

    @property
    def has_config(self) -> bool:
        """Whether the sweep has a default config (a file, or a mapping given in Python)."""
        return self.config is not None or self.spec.config is not None

    def config_cache(self) -> ConfigCache | None:
        """The default config (None without one); each call makes a cache that loads on first use."""
        if self.config is not None:
            return self.config
        cfg = self.spec.config
        if cfg is None:
            return None
        return ConfigCache(cfg.path, model=cfg.model, allow_new=cfg.allow_new, reload=cfg.reload)

    @property
    def name(self) -> str:
        return self.spec.sweep.name or "sweep"

    @property
    def grid_mode(self) -> bool:
        return self.spec.sweep.sampler.name == "grid"

    @property
    def runs_dir(self) -> Path:
        """Where trial folders and the best config go: ``DIRECTORY/runs/NAME``."""
        return self.directory / "runs" / self.name

    def config_problems(self, config: Any) -> list[str]:
        """What the default config says of the parameters, before anything runs (both modes): a
        bare list that replaces a value of another type (issue 11: ``stop_loss = [0.03]`` meant as
        an axis) and, merging the first grid point once, a parameter path the config lacks (a batch
        sweep ran its whole grid and then failed writing the best config). ``config``: the run's
        config cache (anything with ``merged``; ``to_dict`` when the sweep has a config). A
        ``[validate]`` override path the default config lacks is one too, found before the run."""
        problems = []
        if self.has_config:
            defaults = config.to_dict()
            for path in bare_lists(self.spec.parameters):
                found, current = _lookup(defaults, path)
                if found and not isinstance(current, list):
                    problems.append(_bare_list_problem(path, current, self.spec.parameters))
            section = self.spec.validate_
            if section is not None:
                # A typo in an override path is found now, not after the whole sweep has run.
                try:
                    apply_override(defaults, section.override, strict=True)
                except ValueError as exc:
                    problems.append(str(exc))
        if not problems and self.grid_mode:
            grid = self.grid()
            if len(grid) > 0:
                try:
                    config.merged(grid[0])
                except ConfigError as exc:
                    problems.append(f"config: {exc}")
        return problems

    def write_best_config(self, config: Any) -> Path:
        """Writes ``config`` (the best point's merged config) as ``runs/NAME/best_config.json`` and
        returns its path; several workers (or machines) may finish at once: each writes its own
        temporary file and renames it into place (``fastgrid.files.open_text``)."""
        folder = self.runs_dir
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "best_config.json"
        with open_text(path) as fh:
            fh.write(json.dumps(config, indent=2, default=str) + "\n")
        return path

    def grid(self) -> Any:
        """The sweep's grid, built once per process (a tree of 100,000 values takes a while)."""
        grid = self.__dict__.get("_grid")
        if grid is None:
            grid = self.__dict__["_grid"] = Grid(
                self.spec.parameters, constraints=tuple(self.spec.sweep.where)
            )
        return grid

    def search_space(self) -> SearchSpace:
        # problems() refuses a list of trees in search mode before this runs.
        from fastgrid.samplers import SearchSpace

        assert isinstance(self.spec.parameters, dict)
        return SearchSpace(parse_parameters(self.spec.parameters))

    def search_sampler(self, *, worker: int = 0) -> optuna.samplers.BaseSampler:
        from fastgrid.samplers import search_sampler

        sweep = self.spec.sweep
        return search_sampler(
            sweep.sampler.name,
            sweep.sampler.options,
            seed=sweep.seed,
            worker=worker,
            constrained=bool(self.spec.constraints.require),
        )

    def pruner(self) -> optuna.pruners.BasePruner | None:
        from fastgrid.samplers import make_pruner

        pruner = self.spec.sweep.pruner
        return make_pruner(pruner.name, pruner.options) if pruner is not None else None

    def open_storage(self) -> Any:
        """The sweep's storage, with heartbeats where the storage keeps them."""
        from fastgrid.storages import open_heartbeat_storage

        sweep = self.spec.sweep
        return open_heartbeat_storage(
            sweep.storage, directory=self.directory, interval=sweep.heartbeat_interval, grace=sweep.grace
        )

    def check(self) -> None:
        """Everything that can be checked before the storage is opened; one SweepFileError lists all."""
        problems: list[str] = []
        sweep = self.spec.sweep
        if self.grid_mode:
            problems.extend(parameter_problems(self.spec.parameters, grid=True, where=tuple(sweep.where)))
        elif isinstance(self.spec.parameters, list):
            problems.append(
                f"parameters: a list of trees (a union of grids) needs sampler = 'grid'; "
                f"a {sweep.sampler.name!r} search takes one tree"
            )
        else:
            tree_problems = parameter_problems(self.spec.parameters, grid=False)
            problems.extend(tree_problems)
            if not tree_problems:
                try:
                    self.search_space()  # what the tree cannot search exactly (ints past 2**53)
                except (ValueError, OverflowError) as exc:
                    path = getattr(exc, "path", "")
                    problems.append(f"parameters.{path}: {exc}".replace(".: ", ": "))
            if sweep.max_trials is None and sweep.timeout is None and sweep.end_at is None:
                problems.append(
                    f"sweep.sampler: a {sweep.sampler.name!r} search has no natural end; "
                    "set sweep.max_trials, sweep.timeout or sweep.end_at"
                )
            for i, src in enumerate(sweep.where):
                try:
                    Expression(src)
                except ValueError as exc:
                    problems.append(f"sweep.where[{i}]: {exc}")
        if sweep.workers > 1 and self.target is not None:
            try:
                by_value(self.target)
            except Exception as exc:
                problems.append(
                    "objective: with workers > 1 the callable is sent to worker processes, and this one "
                    f"cannot be pickled ({type(exc).__name__}: {str(exc).strip()[:200]}); it holds something "
                    "that cannot cross processes (a lock, an open file or connection). Give a "
                    "'module:function' string of a function in a .py file, open such resources inside "
                    "the function, or use workers = 1"
                )
        for i, src in enumerate(self.spec.constraints.require):
            try:
                Expression(src)
            except ValueError as exc:
                problems.append(f"constraints.require[{i}]: {exc}")
        if sweep.order == "shuffled" and not self.grid_mode:
            problems.append("sweep.order: 'shuffled' applies to the grid sampler only")
        if not self.grid_mode:
            try:
                self.search_sampler()
            except (TypeError, ValueError) as exc:
                problems.append(f"sweep.sampler: {exc}")
        if sweep.pruner is not None:
            try:
                self.pruner()
            except (TypeError, ValueError) as exc:
                problems.append(f"sweep.pruner: {exc}")
        if len(sweep.all_directions) > 1 and sweep.sampler.name in ("cmaes",):
            problems.append("sweep.sampler: 'cmaes' supports a single objective only")
        if problems:
            raise SweepFileError(self.source, problems)
