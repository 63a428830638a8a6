"""Batch sweeps through ``Sweep``: a sweep file with ``[sweep] mode = "batch"`` runs here (issue 13).

``Sweep.run()`` hands the plan to :func:`run_batch_sweep`, which runs :func:`fastgrid.batch.run_batch`
with the sweep file's keys and returns a :class:`BatchSweepResult`: the interface of
:class:`SweepResult` (best, best config, counts) over the columnar results, plus failures by
reason and the whole table as a pandas DataFrame or a pyarrow Table.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import signal
import sys
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np

from fastgrid import attrs
from fastgrid.batch import (
    BatchResults,
    as_row,
    batch_options,
    check_point,
    open_batch_store,
    run_batch,
    slot_columns,
    store_path,
    sweep_view,
)
from fastgrid.dotted import nest
from fastgrid.exceptions import BatchObjectiveError, ConfigError, SweepFileError
from fastgrid.refs import import_object
from fastgrid.runner._batchvalidate import validate_batch
from fastgrid.runner._plan import SweepPlan
from fastgrid.runner._result import SweepResult
from fastgrid.runner._signals import first_interrupt_only
from fastgrid.stats import describe_returns, pack_returns, returns_series
from fastgrid.sweepfile import key_name

if TYPE_CHECKING:
    from fastgrid.config import ConfigCache
    from fastgrid.selection import Selection
    from fastgrid.study import Row

__all__ = ["BatchSweepResult", "check_batch_point", "run_batch_sweep"]


@dataclass
class BatchSweepResult(SweepResult):
    """What a batch sweep's run leaves: :class:`SweepResult`'s interface over the columnar results.

    A row's ``number`` is its grid slot. ``best`` is the best feasible point (with several
    objectives, the first of the Pareto front by the first objective) and ``best_trials`` the
    front; ``rows`` holds the top-K points (``[sweep] top_k``) that the Optuna study also holds;
    ``results`` (:class:`fastgrid.batch.BatchResults`) reads every point: ``to_pandas()``,
    ``to_arrow()`` and ``failures()`` go through it. ``counts`` adds ``done``, ``total`` and
    ``remaining`` points to the per-trial counts (``running``: points of chunks in flight).
    """

    results: BatchResults | None = field(default=None, repr=False)
    top: list[Row] = field(default_factory=list, repr=False)
    seconds: float = 0.0

    @functools.cached_property
    def rows(self) -> list[Row]:
        return list(self.top)

    def _results(self) -> BatchResults:
        if self.results is None:
            raise ValueError(f"sweep {self.name!r}: no batch results")
        return self.results

    @functools.cached_property
    def selection(self) -> Selection:
        """Points run, the winner's deflated Sharpe ratio and PBO, as ``fastgrid report`` judges a
        batch sweep (the study's trials are only its top points; see docs/batch.md)."""
        from fastgrid.selection import assess_batch_selection  # imports Optuna: only when asked

        kept = self.study.user_attrs.get(attrs.STUDY_BATCH_RETURNS) if self.study is not None else None
        return assess_batch_selection(
            kept,
            self.best["number"] if self.best is not None else None,
            points_run=self.counts.get("done", 0),
            n_objectives=len(self.best["values"] or [0]) if self.best is not None else 1,
        )

    def failures(self) -> dict[str, int]:
        """Failed points grouped by reason, most frequent first."""
        return self._results().failures()

    def to_pandas(self, columns: list[str] | None = None) -> Any:
        """Every point as a pandas DataFrame: slot, parameters, metrics, failed, feasible, reason,
        duration (``columns`` picks some; pandas is optional: ``pip install pandas``)."""
        return self._results().to_pandas(columns)

    def to_arrow(self, columns: list[str] | None = None) -> Any:
        """Every point as a pyarrow Table (``pip install pyarrow``)."""
        return self._results().to_arrow(columns)


class _Progress:
    """A bar of points on a terminal, else a line every 10 s on stderr; the counts of every worker
    come from the store (at most five reads a second)."""

    def __init__(self, name: str, path: Path | str, tty: bool) -> None:
        self.name, self.path, self.tty = name, path, tty
        self._store: Any = None
        self._line_every = 0.2 if tty else 10.0
        self._started = self._last = time.perf_counter()
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self.update({}, force=True)
            self._bar.stop()
        if self._store is not None:
            self._store.close()

    def update(self, event: dict[str, Any], *, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self._last < self._line_every:
            return
        self._last = now
        if self._store is None:
            self._store = open_batch_store(self.path, readonly=True)
        stored = self._store.sweep(self.name)
        if stored is None:
            return
        done, total = self._store.counts(self.name)["done"], stored["total"]
        if self.tty:
            if self._bar is None:
                from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

                self._bar = Progress(
                    f"[bold]{self.name}[/bold]",
                    BarColumn(),
                    MofNCompleteColumn(),
                    "points",
                    TimeRemainingColumn(),
                    transient=True,
                )
                self._task = self._bar.add_task(self.name, total=total)
                self._bar.start()
            self._bar.update(self._task, completed=done)
        else:
            rate = done / max(now - self._started, 1e-9)
            print(
                f"sweep {self.name}: {done:,} of {total:,} points ({100 * done / max(total, 1):.0f}%), "
                f"{rate:,.0f} points/s",
                file=sys.stderr,
                flush=True,
            )


def run_batch_sweep(
    plan: SweepPlan, *, fresh: bool, progress: bool | None, more: int | None = None
) -> BatchSweepResult:
    """Runs (or resumes, or joins, with ``plan.wait_for_others``) the batch sweep of ``plan``;
    ``more``: at most that many more points (whole chunks) than the sweep has claimed so far."""
    spec = plan.spec
    options = batch_options(spec, import_path=plan.import_path, directory=plan.directory)
    if plan.target is not None:
        # Sweep(batch=fn) or Sweep(objective=fn, mode="batch"): the callable given in Python.
        options["batch" if spec.objective.batch is not None else "callable"] = plan.target
    if spec.sweep.end_at is not None:
        left = (spec.sweep.end_at - datetime.now(spec.sweep.end_at.tzinfo)).total_seconds()
        options["timeout"] = max(left, 0.0) if options["timeout"] is None else min(options["timeout"], left)
    config = plan.config_cache()
    if config is not None:
        # The default config (a file, or Sweep(config={...}), which the options lacked), loaded once
        # here and checked against the parameters before anything runs, as a per-trial run does.
        problems = plan.config_problems(config)
        if problems:
            raise SweepFileError(plan.source, problems)
        options.update(config=config, config_model=None, allow_new=False)
    path = store_path(options["storage"], plan.directory)
    if more is not None:
        stored = None
        if not fresh:
            reading = open_batch_store(path, readonly=True)
            try:
                stored = reading.sweep(options["name"])
            finally:
                reading.close()
        claimed = stored["next_chunk"] * stored["chunk"] if stored is not None else 0
        options["max_points"] = claimed + more
    objective = options.get("batch")
    if isinstance(objective, str):
        objective = import_object(objective, what="batch objective")
    supports_returns = objective is not None and _takes_returns(objective)
    asked = "keep_returns" in spec.sweep.model_fields_set and spec.sweep.keep_returns != 0
    if asked and not supports_returns:
        key = key_name("sweep.keep_returns", keywords=plan.source == "Sweep(...)")
        raise SweepFileError(
            plan.source,
            [
                f"{key}: a batch sweep keeps "
                "returns series when its batch objective takes a 'returns' keyword "
                "(fn(columns, config, *, returns=False)) and returns a points x periods 'returns' array "
                "when it is True; add it, or drop keep_returns"
            ],
        )
    tty = progress if progress is not None else sys.stderr.isatty()
    show = tty or progress is None  # --no-progress: nothing; not a terminal: a line every 10 s
    received: list[int] = []  # the signal that stopped the run, if one did
    # SIGTERM and SIGHUP act as Ctrl-C (docker stop, systemd): chunks in flight are released and
    # the run exits 128 + the signal after recording what finished, as a per-trial run does.

    validation: list[dict[str, Any]] = []
    started = time.time()

    def after(run: Any) -> None:
        # Inside run_batch, while the run is registered: --fresh elsewhere waits for its end.
        if run.ran and not run.interrupted and run.study is not None and supports_returns:
            _keep_batch_returns(plan, run, objective, config)
        if spec.validate_ is not None and not run.interrupted and run.best is not None:
            validation[:] = _validate(plan, run, objective, options, config, path, started)

    with _Progress(options["name"], path, tty) as bar, first_interrupt_only(received):
        run = run_batch(
            spec.parameters,
            **options,
            fresh=fresh,
            allow_changed=plan.allow_changed,
            wait_for_others=plan.wait_for_others,
            progress=bar.update if show else None,
            after=after,
        )
    assert run.results is not None
    objective_metrics = spec.sweep.objective_metrics
    top = [as_row(r, objective_metrics) for r in run.top]
    best = as_row(run.best, objective_metrics) if run.best is not None else None
    front: list[Row] = []
    if best is not None:
        multi = len(objective_metrics) > 1
        front = [as_row(r, objective_metrics) for r in run.results.pareto()] if multi else [best]
    counts = dict(run.counts)
    counts.update(reused=0, pruned=0, running=counts.get("points_in_flight", 0))
    if validation and validation[0]["validated"] is not None:
        # [validate] chose it: the best held-out score (its best config is the in-sample one).
        best = _row_of(run.results, validation[0]["number"], top, objective_metrics)
        front = [best]
    best_config = best_path = None
    if best is not None:
        best_config, best_path = _write_best_config(plan, best, config)
    results = run.results
    return BatchSweepResult(
        name=run.name,
        study=run.study,
        best=best,
        best_trials=front,
        best_config=best_config,
        best_config_path=best_path,
        interrupted=run.interrupted,
        signal=(received[0] if received else run.signal or signal.SIGINT) if run.interrupted else None,
        ran=run.ran,
        trials=run.study.get_trials(deepcopy=False) if run.study is not None else [],
        axes={"paths": results.paths, "fixed": results.constants},
        counts=counts,
        results=results,
        top=top,
        seconds=run.seconds,
        validation=validation,
    )


def _validate(
    plan: SweepPlan,
    run: Any,
    objective: Any,
    options: Mapping[str, Any],
    config: ConfigCache | None,
    path: Path | str,
    started: float,
) -> list[dict[str, Any]]:
    """``[validate]`` of the finished run (see ``_batchvalidate``); a stop signal there stops it
    as in the sweep (the run is then interrupted, without validation rows)."""

    def open_study() -> Any:
        # A joining worker that wrote no top point has not opened the study.
        import optuna

        from fastgrid.storages import open_storage

        storage = options["storage"] if options["storage"] is not None else os.fspath(path)
        return optuna.load_study(
            study_name=options["name"], storage=open_storage(storage, directory=plan.directory)
        )

    try:
        return validate_batch(
            plan,
            run,
            objective if objective is not None else options["callable"],
            config,
            started=started,
            open_study=open_study,
        )
    except KeyboardInterrupt:
        run.interrupted = True
        return []
    except (ValueError, ConfigError) as exc:
        if isinstance(exc, BatchObjectiveError):
            raise
        raise SweepFileError(plan.source, [str(exc)]) from None


def _row_of(results: Any, slot: int, top: list[Row], metrics: list[str]) -> Row:
    """Point ``slot`` as a row: from the top-K when it is there, else read from the store."""
    for row in top:
        if row["number"] == slot:
            return row
    return as_row(results.rows_at(np.flatnonzero(results.slots() == slot)[:1])[0], metrics)


def _view(plan: SweepPlan) -> Any:
    """The sweep's points numbered as its chunks and reports number them."""
    sweep = plan.spec.sweep
    return sweep_view(plan.spec.parameters, where=sweep.where, order=sweep.order, seed=sweep.seed)


def check_batch_point(plan: SweepPlan, index: int, *, out: TextIO) -> bool:
    """``fastgrid run --check`` for a batch sweep: grid point ``index`` (negative from the end)
    scored in the foreground as its chunk would score it, with the objective's whole traceback;
    nothing is recorded. True when the point completed and is feasible."""
    view = _view(plan)  # slots as the sweep's reports number them (shuffled grids too)
    size = len(view)
    if not -size <= index < size:
        raise SweepFileError(plan.source, [f"--point {index}: the grid has {size} points (0..{size - 1})"])
    slot = index % size
    point = nest(dict(view[slot]))
    print(f"checking point {index} of sweep {plan.name}: {json.dumps(point, default=str)}", file=out)
    config = plan.config_cache()
    if config is not None:
        problems = plan.config_problems(config)
        if problems:
            raise SweepFileError(plan.source, problems)
    options = batch_options(plan.spec, import_path=plan.import_path, directory=plan.directory)
    vectorized = "batch" in options
    objective: Any = (
        plan.target if plan.target is not None else options["batch" if vectorized else "callable"]
    )

    def show(exc: BaseException) -> None:
        print("".join(traceback.format_exception(exc)).rstrip("\n"), file=out)

    try:
        checked = check_point(
            plan.spec.parameters,
            slot,
            batch=objective if vectorized else None,
            callable=None if vectorized else objective,
            metric=options["metric"],
            metrics=options["metrics"],
            where=options["where"],
            order=options["order"],
            seed=options["seed"],
            require=options["require"],
            config=config,
            import_path=plan.import_path,
            on_error=show,
        )
    except BatchObjectiveError as exc:  # a result of the wrong shape or type: the chunk's error
        print(f"FAIL: {exc}", file=out)
        return False
    if checked.failed:
        print(f"FAIL: {checked.reason}", file=out)
        return False
    names = plan.spec.sweep.objective_metrics
    print(f"metrics: {json.dumps(checked.metrics, default=str)}", file=out)
    values = ", ".join(f"{checked.metrics[m]:g}" for m in names)
    print(f"value: {values} ({', '.join(names)}) in {checked.seconds:.3f}s", file=out)
    if checked.reason is not None:
        print(checked.reason, file=out)  # "infeasible: <the requirements it breaks>"
    print("nothing was recorded (no storage was opened)", file=out)
    return checked.reason is None


# Points whose Sharpe ratios estimate the variance the deflated Sharpe ratio needs (issue 16).
SHARPE_SAMPLE = 1000
# Points per call of the objective for their returns series (a points x periods array each).
RETURNS_BLOCK = 256


def _takes_returns(fn: Any) -> bool:
    try:
        return "returns" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _keep_batch_returns(plan: SweepPlan, run: Any, objective: Any, cache: ConfigCache | None) -> None:
    """Keeps the returns series of a batch sweep's best ``keep_returns`` points (issue 16).

    Scoring every point with its whole series would cost a points x periods array per chunk, so
    the objective is asked again, with ``returns=True``, for the few points that need one: the
    best ``keep_returns`` (PBO ranks their series; the winner's gives the deflated Sharpe ratio)
    and a seeded random sample of up to ``SHARPE_SAMPLE`` points, whose Sharpe ratios estimate
    the variance across every point the sweep ran. Stored as the study attr
    ``fastgrid.batch_returns``, which the report reads.
    """
    sweep = plan.spec.sweep
    keep = sweep.top_k if sweep.keep_returns == "all" else min(int(sweep.keep_returns), sweep.top_k)
    results = run.results
    if keep == 0 or results is None:
        return
    metric = sweep.objective_metrics[0]
    top = results.top(keep, metric=metric)
    if not top:
        return
    cols = results.columns(["failed"])
    done = np.flatnonzero(~cols["failed"].astype(bool))
    rng = np.random.default_rng(sweep.seed or 0)
    picked = np.sort(rng.choice(done, size=min(SHARPE_SAMPLE, len(done)), replace=False))
    sample = results.rows_at(picked)
    # The read-only view the chunks got (an objective that wrote to it would change later calls).
    config: Mapping[str, Any] = cache.snapshot if cache is not None else {}
    series = _returns_of(objective, [r["slot"] for r in top + sample], _view(plan), config, plan.source)
    stats = [describe_returns(s) for s in series]
    sharpes = np.array([float(s.sharpe) for s in stats[len(top) :]])
    points = [
        {
            "slot": int(row["slot"]),
            "stats": {
                "periods": int(st.periods),
                "sharpe": float(st.sharpe),
                "skew": float(st.skew),
                "kurtosis": float(st.kurtosis),
            },
            "returns": pack_returns(s),
        }
        for row, s, st in zip(top, series[: len(top)], stats[: len(top)], strict=True)  # the sample follows
    ]
    run.study.set_user_attr(
        attrs.STUDY_BATCH_RETURNS,
        {
            "points": points,
            "n_trials": len(done),
            "sample": len(sharpes),
            "sharpe_variance": float(np.var(sharpes, ddof=1)) if len(sharpes) > 1 else 0.0,
        },
    )


def _returns_of(
    objective: Any, slots: list[int], view: Any, config: Mapping[str, Any], source: str
) -> list[np.ndarray[Any, Any]]:
    """Each point's returns series, from ``objective(columns, config, returns=True)``."""
    out: list[np.ndarray[Any, Any]] = []
    for lo in range(0, len(slots), RETURNS_BLOCK):
        part = slots[lo : lo + RETURNS_BLOCK]
        got = objective(slot_columns(view, part), config, returns=True)
        value = got.get("returns") if hasattr(got, "get") else None
        matrix = np.asarray(value, dtype=float) if value is not None else None
        if matrix is None or matrix.ndim != 2 or len(matrix) != len(part):
            shape = "none" if matrix is None else f"shape {matrix.shape}"
            raise SweepFileError(
                source,
                [
                    "objective.batch: called with returns=True it must return a 'returns' array of one "
                    f"row per point ({len(part)} x periods), got {shape}"
                ],
            )
        out.extend(returns_series(row, "returns") for row in matrix)
    return out


def _write_best_config(plan: SweepPlan, best: Row, config: ConfigCache | None) -> tuple[dict[str, Any], Path]:
    # The config the run used (loaded when it started), not the file as it is now.
    merged = config.merged(best["params"]) if config is not None else nest(best["params"])
    return merged, plan.write_best_config(merged)
