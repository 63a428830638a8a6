"""``fastgrid.Sweep``: ties the grid, config cache, objective and storage into an Optuna study.

One trial: point (grid slot or search suggestion) → canonical trial key → reuse of a completed
trial with the same key, or ``ConfigCache.merged(point)`` → objective → values, metrics and
bookkeeping as user attrs. Re-running the same sweep resumes it; ``workers > 1`` runs that many
worker processes, each with its own optimize loop on the shared study.
"""

from __future__ import annotations

import contextlib
import functools
import json
import multiprocessing as mp
import os
import pickle
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState
from pydantic import ValidationError

from fastgrid import _parts
from fastgrid._core import ConfigError
from fastgrid._embedded import SMALL_TAIL
from fastgrid.heartbeat import open_heartbeat_storage
from fastgrid.progress import Reporter, TrialEvent
from fastgrid.sampler import EXHAUSTED_ATTR, decode_choice
from fastgrid.search import SearchSpace, nest
from fastgrid.sweepfile import (
    SweepFile,
    SweepFileError,
    format_errors,
    load_sweep_file,
)
from fastgrid.worker import (
    Worker,
    _pruner,
    _quiet_optuna,
    add_import_path,
    constraint_values,
    first_interrupt_only,
    worker_main,
)

__all__ = ["Sweep", "SweepChangedError", "SweepResult"]

_ATTR_SPACE = "fastgrid.space"
_ATTR_FINGERPRINT = "fastgrid.fingerprint"
_ATTR_FIRST = "fastgrid.first_trial"
# The objective metric names, for reports that read the study without the sweep file.
ATTR_METRICS = "fastgrid.metrics"
_NO_CONFIG = "-"


class SweepChangedError(ValueError):
    """The stored sweep was started with a different config or parameters tree than this run's."""


@dataclass
class SweepResult:
    """What a run leaves: rows of every trial, the best feasible one and its merged config.

    ``rows`` holds one dict per trial of the study (all runs): number, state, value(s), params
    (flat dotted paths), metrics, key, reused, feasible, reason, duration, attempts, result_path.
    It is built on first access (a resumed sweep of 10,000 trials need not pay for it).
    For several objectives ``best_trials`` is the feasible Pareto front and ``best`` its first row.
    With a ``[validate]`` step, ``validation`` holds its rows (best validated first) and ``best`` is
    the trial that validated best.
    """

    name: str
    study: optuna.Study
    best: dict[str, Any] | None
    best_trials: list[dict[str, Any]]
    best_config: dict[str, Any] | None
    best_config_path: Path | None
    interrupted: bool = False
    ran: int = 0
    validation: list[dict[str, Any]] = field(default_factory=list)
    trials: list[FrozenTrial] = field(default_factory=list, repr=False)
    fixed: dict[str, Any] = field(default_factory=dict, repr=False)
    paths: list[str] = field(default_factory=list, repr=False)
    counts: dict[str, int] = field(default_factory=dict)
    """Complete / failed / reused / infeasible / running / pruned trials of the study."""

    @functools.cached_property
    def rows(self) -> list[dict[str, Any]]:
        maybe = (_row(t, self.fixed, self.paths) for t in self.trials)
        return [r for r in maybe if r is not None]


def trial_counts(rows: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Complete / failed / reused / infeasible / running / pruned counts of rows (``SweepResult.rows``)."""
    out = {"complete": 0, "failed": 0, "reused": 0, "infeasible": 0, "running": 0, "pruned": 0}
    for row in rows:
        if row["state"] == "COMPLETE":
            out["complete"] += 1
            out["reused"] += row["reused"] is not None  # a trial number, and 0 is one
            out["infeasible"] += not row["feasible"]
        elif row["state"] == "FAIL":
            out["failed"] += 1
        elif row["state"] == "RUNNING":
            out["running"] += 1
        elif row["state"] == "PRUNED":
            out["pruned"] += 1
    return out


class Sweep:
    """A parameter sweep; build it from a sweep file (:meth:`from_file`) or with keywords.

    ``objective`` is a callable taking the merged config (returning a number or a dict of
    metrics), a ``"module:function"`` string, or a command argv list. The other keywords mirror
    the sweep file's keys (see the README's sweep-file reference).
    """

    def __init__(
        self,
        *,
        parameters: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        objective: Callable[[dict[str, Any]], Any] | str | Sequence[str],
        name: str = "sweep",
        direction: str | Sequence[str] = "minimize",
        metric: str = "value",
        metrics: Sequence[str] | None = None,
        sampler: str | Mapping[str, Any] = "grid",
        pruner: str | Mapping[str, Any] | None = None,
        order: str = "sequential",
        where: Sequence[str] = (),
        require: Sequence[str] = (),
        max_trials: int | None = None,
        timeout: float | str | None = None,
        end_at: datetime | str | None = None,
        workers: int = 1,
        seed: int | None = None,
        storage: str | None = None,
        retry_failed: int = 1,
        config: str | Path | None = None,
        config_model: str | None = None,
        allow_new: bool = False,
        objective_timeout: float | str | None = None,
        retries: int = 0,
        backoff: float = 1.0,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        results: Mapping[str, Any] | None = None,
        log_limit: int | None = None,
        validate: Mapping[str, Any] | None = None,
        directory: str | Path | None = None,
        fresh: bool = False,
        allow_changed: bool = False,
        progress: bool | None = None,
    ) -> None:
        target: Callable[[dict[str, Any]], Any] | None = None
        objective_section: dict[str, Any] = {
            "timeout": objective_timeout,
            "retries": retries,
            "backoff": backoff,
            "env": dict(env or {}),
            "cwd": cwd,
            "results": dict(results) if results is not None else None,
        }
        if log_limit is not None:
            objective_section["log_limit"] = log_limit
        if isinstance(objective, str):
            objective_section["callable"] = objective
        elif callable(objective):
            target = objective
            objective_section["callable"] = "python:callable"
        else:
            objective_section["command"] = list(objective)
        data: dict[str, Any] = {
            "sweep": {
                "name": name,
                "direction": list(direction) if not isinstance(direction, str) else direction,
                "metric": metric,
                "metrics": list(metrics) if metrics is not None else None,
                "sampler": sampler,
                "pruner": pruner,
                "order": order,
                "where": list(where),
                "max_trials": max_trials,
                "timeout": timeout,
                "end_at": end_at,
                "workers": workers,
                "seed": seed,
                "storage": storage,
                "retry_failed": retry_failed,
            },
            "objective": objective_section,
            "constraints": {"require": list(require)},
            "parameters": dict(parameters)
            if isinstance(parameters, Mapping)
            else [dict(p) for p in parameters],
        }
        if validate is not None:
            data["validate"] = dict(validate)
        if config is not None:
            data["config"] = {"path": config, "model": config_model, "allow_new": allow_new}
        try:
            spec = SweepFile.model_validate(data)
        except ValidationError as exc:
            raise SweepFileError("Sweep(...)", format_errors(exc)) from None
        base = Path(directory) if directory is not None else Path.cwd()
        self._init(
            spec, target=target, directory=base, fresh=fresh, allow_changed=allow_changed, progress=progress
        )

    def _init(
        self,
        spec: SweepFile,
        *,
        target: Callable[[dict[str, Any]], Any] | None,
        directory: Path,
        fresh: bool,
        allow_changed: bool,
        progress: bool | None,
        source: str = "Sweep(...)",
        import_path: str | None = None,
    ) -> None:
        # Callables named in a sweep file are imported from next to the file first (in every
        # worker process too).
        self.import_path = import_path
        add_import_path(import_path)
        self.spec = spec
        self._target = target
        self.directory = directory.resolve()
        self.fresh = fresh
        self.allow_changed = allow_changed
        self.progress = progress
        self.source = source
        self.wait_for_others = False
        self._check(source)

    @classmethod
    def from_file(
        cls,
        path: str | Path,
        *,
        workers: int | None = None,
        max_trials: int | None = None,
        timeout: float | str | None = None,
        storage: str | None = None,
        fresh: bool = False,
        allow_changed: bool = False,
        directory: str | Path | None = None,
        progress: bool | None = None,
        heartbeat_interval: int | None = None,
        grace_period: int | None = None,
        wait_for_others: bool = False,
    ) -> Sweep:
        """Load a sweep file; the keywords override its ``[sweep]`` keys (as the CLI flags do).

        ``wait_for_others`` (what ``fastgrid worker`` sets): when no point is left to start but
        other workers still run some, keep waiting, and run again those whose worker stops
        sending heartbeats, instead of returning.
        """
        spec = load_sweep_file(path)
        overrides: dict[str, Any] = {}
        if workers is not None:
            overrides["workers"] = workers
        if max_trials is not None:
            overrides["max_trials"] = max_trials
        if timeout is not None:
            overrides["timeout"] = timeout
        if storage is not None:
            overrides["storage"] = storage
        if heartbeat_interval is not None:
            overrides["heartbeat_interval"] = heartbeat_interval
        if grace_period is not None:
            overrides["grace_period"] = grace_period
        if overrides:
            try:
                section = type(spec.sweep).model_validate(
                    {**spec.sweep.model_dump(exclude_unset=True), **overrides}
                )
            except ValidationError as exc:
                raise SweepFileError(str(path), format_errors(exc)) from None
            spec = spec.model_copy(update={"sweep": section})
        self = cls.__new__(cls)
        self._init(
            spec,
            target=None,
            directory=Path(directory) if directory is not None else Path.cwd(),
            fresh=fresh,
            allow_changed=allow_changed,
            progress=progress,
            source=str(path),
            import_path=str(Path(path).resolve().parent),
        )
        self.wait_for_others = wait_for_others
        return self

    # -- validation of everything that can be checked before opening the storage --------------
    @property
    def name(self) -> str:
        return self.spec.sweep.name or "sweep"

    @property
    def grid_mode(self) -> bool:
        return self.spec.sweep.sampler.name == "grid"

    def _check(self, source: str) -> None:
        problems: list[str] = []
        sweep = self.spec.sweep
        if self.grid_mode:
            try:
                self._grid()
            except (ValueError, OverflowError) as exc:
                problems.append(f"parameters.{getattr(exc, 'path', '')}: {exc}".replace(".: ", ": "))
        elif isinstance(self.spec.parameters, list):
            problems.append(
                f"parameters: a list of trees (a union of grids) needs sampler = 'grid'; "
                f"a {sweep.sampler.name!r} search takes one tree"
            )
        else:
            try:
                self._search_space()
            except (ValueError, OverflowError) as exc:
                problems.append(f"parameters.{getattr(exc, 'path', '')}: {exc}".replace(".: ", ": "))
            if sweep.max_trials is None and sweep.timeout is None and sweep.end_at is None:
                problems.append(
                    f"sweep.sampler: a {sweep.sampler.name!r} search has no natural end; "
                    "set sweep.max_trials, sweep.timeout or sweep.end_at"
                )
        if sweep.workers > 1 and self._target is not None:
            try:
                pickle.dumps(self._target)
            except Exception:
                problems.append(
                    "objective: with workers > 1 the callable must be importable by worker processes "
                    "(a module-level function, or a 'module:function' string)"
                )
            for i, src in enumerate(sweep.where):
                try:
                    _parts.Expression(src)
                except ValueError as exc:
                    problems.append(f"sweep.where[{i}]: {exc}")
        for i, src in enumerate(self.spec.constraints.require):
            try:
                _parts.Expression(src)
            except ValueError as exc:
                problems.append(f"constraints.require[{i}]: {exc}")
        if sweep.order == "shuffled" and not self.grid_mode:
            problems.append("sweep.order: 'shuffled' applies to the grid sampler only")
        if not self.grid_mode:
            try:
                self._optuna_sampler()
            except (TypeError, ValueError) as exc:
                problems.append(f"sweep.sampler: {exc}")
        if sweep.pruner is not None:
            try:
                _pruner(sweep.pruner.name, sweep.pruner.options)
            except (TypeError, ValueError) as exc:
                problems.append(f"sweep.pruner: {exc}")
        if len(sweep.all_directions) > 1 and self.spec.sweep.sampler.name in ("cmaes",):
            problems.append("sweep.sampler: 'cmaes' supports a single objective only")
        if problems:
            raise SweepFileError(source, problems)

    def _grid(self) -> Any:
        return _parts.Grid(self.spec.parameters, constraints=tuple(self.spec.sweep.where))

    def _search_space(self) -> SearchSpace:
        # _check refuses a list of trees in search mode before this runs.
        assert isinstance(self.spec.parameters, dict)
        return SearchSpace(_parts.search_axes(self.spec.parameters))

    def _optuna_sampler(self, *, worker: int = 0) -> optuna.samplers.BaseSampler:
        """The search sampler; worker processes get distinct seeds so they do not suggest in lockstep."""
        sweep = self.spec.sweep
        options = dict(sweep.sampler.options)
        name = sweep.sampler.name
        constrained = bool(self.spec.constraints.require)
        classes: dict[str, Any] = {
            "tpe": optuna.samplers.TPESampler,
            "random": optuna.samplers.RandomSampler,
            "cmaes": optuna.samplers.CmaEsSampler,
            "qmc": optuna.samplers.QMCSampler,
            "nsga2": optuna.samplers.NSGAIISampler,
        }
        cls = classes[name]
        options.setdefault("seed", sweep.seed)
        if options["seed"] is not None:
            options["seed"] = int(options["seed"]) + worker
        # Optuna >= 5 reads constraints that the worker sets on each trial; older ones need this.
        if constrained and name in ("tpe", "nsga2") and not hasattr(optuna.Trial, "set_constraint"):
            options.setdefault("constraints_func", constraint_values)
        with _quiet_experimental():
            return cls(**options)

    # -- running --------------------------------------------------------------------------------
    def run(self) -> SweepResult:
        """Run (or resume) the sweep until every point is done or a budget ends it.

        Ctrl-C stops scheduling, records running trials as FAIL with reason ``interrupted`` and
        returns with ``interrupted=True``.
        """
        _quiet_optuna()
        state = _RunState.create(self)
        self._check_config(state)
        study = self._open_study(state)
        done, best_so_far = _progress_start(study, self.spec.sweep.all_directions)
        reporter = Reporter(
            name=self.name,
            total=state.total,
            done=done,
            best=best_so_far,
            directions=self.spec.sweep.all_directions,
            tty=self.progress if self.progress is not None else sys.stderr.isatty(),
        )
        interrupted = False
        worker: Worker | None = None
        with reporter, first_interrupt_only():
            try:
                if self.spec.sweep.workers == 1:
                    worker = Worker(self, state, study=study, emit=reporter.update)
                    worker.loop()
                elif self.spec.objective.command is not None:
                    self._run_worker_threads(state, reporter, study)
                else:
                    self._run_workers(state, reporter, study)
            except KeyboardInterrupt:
                interrupted = True
            interrupted = interrupted or state.interrupted
        with contextlib.suppress(Exception):
            _register_run(study, state.run_id, active=False)
        checkpoint = getattr(study._storage, "checkpoint", None)
        if checkpoint is not None:
            # The embedded store: snapshot what this run wrote, so the next open replays nothing.
            with contextlib.suppress(Exception):
                checkpoint(min_new=SMALL_TAIL)
        ran = worker.started if worker is not None else state.ran
        result = self._result(study, state, interrupted=interrupted, ran=ran)
        if self.spec.validate_ is not None and not interrupted and result.best is not None:
            self._validate(study, state, result)
        reporter.summary(result)
        return result

    def _open_study(self, state: _RunState) -> optuna.Study:
        storage = self.open_storage()
        directions = self.spec.sweep.all_directions
        if self.fresh:
            with contextlib.suppress(KeyError):
                optuna.delete_study(study_name=self.name, storage=storage)
        study = optuna.create_study(
            study_name=self.name,
            storage=storage,
            directions=directions,  # type: ignore[arg-type]
            load_if_exists=True,
        )
        if study.user_attrs.get("fastgrid.mode") == "batch":
            # Issue 13: a batch sweep's results are chunks of columns, not trials to resume.
            raise SweepChangedError(
                f"sweep {self.name!r} in storage is a batch sweep (its results are chunks of columns); "
                "run it with [sweep] mode = \"batch\", or use another sweep name or fresh=True (--fresh)"
            )
        stored = [d.name.lower() for d in study.directions]
        if stored != directions:
            raise SweepChangedError(
                f"sweep {self.name!r} in storage optimizes {stored}, this run asks for {directions}; "
                "use a different sweep name, or fresh=True (--fresh) to delete the stored trials"
            )
        attrs = study.user_attrs
        space, fingerprint = state.space, state.fingerprint
        first = int(attrs.get(_ATTR_FIRST, 0))
        if _ATTR_SPACE not in attrs:
            # The space goes last: workers starting together read it as "the others are set".
            study.set_user_attr(_ATTR_FINGERPRINT, fingerprint)
            study.set_user_attr(_ATTR_FIRST, 0)
            study.set_user_attr(_ATTR_SPACE, space)
        else:
            changes = _changes(attrs[_ATTR_SPACE], space, attrs.get(_ATTR_FINGERPRINT), fingerprint)
            if changes and not self.allow_changed:
                n = len(study.get_trials(deepcopy=False))
                raise SweepChangedError(
                    f"sweep {self.name!r} ({n} stored trials) was started with a different "
                    + "; ".join(changes)
                    + ". Pass fresh=True (--fresh) to delete the stored trials and start over, or "
                    "allow_changed=True (--allow-changed) to continue with the stored trials."
                )
            if changes:
                if attrs[_ATTR_SPACE] != space:
                    # A different grid: slot numbers restart after the stored trials; completed
                    # points of the old grid are still reused through their trial keys.
                    first = len(study.get_trials(deepcopy=False))
                    study.set_user_attr(_ATTR_FIRST, first)
                study.set_user_attr(_ATTR_SPACE, space)
                study.set_user_attr(_ATTR_FINGERPRINT, fingerprint)
        metrics = self.spec.sweep.objective_metrics
        if attrs.get(ATTR_METRICS) != metrics:
            study.set_user_attr(ATTR_METRICS, metrics)
        state.first_trial = first
        _fail_stale(study)
        _register_run(study, state.run_id, active=True)
        return study

    def open_storage(self) -> Any:
        """The sweep's storage, with Optuna's heartbeat where the storage has one."""
        sweep = self.spec.sweep
        return open_heartbeat_storage(
            sweep.storage, directory=self.directory, interval=sweep.heartbeat_interval, grace=sweep.grace
        )

    def _check_config(self, state: _RunState) -> None:
        """Merge the first grid point once: a parameter path the config lacks fails every trial."""
        if not self.grid_mode:
            return
        grid = self._grid()
        if len(grid) == 0:
            return
        try:
            state.config().merged(grid[0])
        except ConfigError as exc:
            raise SweepFileError(self.source, [f"config: {exc}"]) from None

    def _run_worker_threads(self, state: _RunState, reporter: Reporter, study: optuna.Study) -> None:
        """Command trials: this thread is worker 0, threads 1..N-1 the others, one storage.

        A command trial is a subprocess, so a worker only waits for it: threads give N trials
        at once without starting N Python processes (each importing Optuna and replaying the
        storage, which on 2 cores costs one trial's worth of CPU). Ctrl-C reaches this thread;
        ``cancel`` then kills the other threads' commands and they record them as interrupted.
        """
        lock = threading.Lock()

        def emit(event: TrialEvent) -> None:
            with lock:
                reporter.update(event)

        counter: Any = mp.get_context("spawn").Value("i", 0)
        stop, cancel = threading.Event(), threading.Event()
        errors: list[BaseException] = []

        def work(index: int) -> None:
            try:
                worker = Worker(
                    self,
                    state,
                    study=study,
                    emit=emit,
                    counter=counter,
                    stop=stop,
                    index=index,
                    cancel=cancel,
                )
                worker.loop()
            except KeyboardInterrupt:
                return  # cancelled: its trial was recorded as interrupted
            except BaseException as exc:  # surfaced by the main thread, after the others finish
                errors.append(exc)
                stop.set()

        threads = [
            threading.Thread(target=work, args=(i,), name=f"fastgrid-worker-{i}", daemon=True)
            for i in range(1, self.spec.sweep.workers)
        ]
        for t in threads:
            t.start()
        try:
            Worker(self, state, study=study, emit=emit, counter=counter, stop=stop, index=0).loop()
            for t in threads:
                while t.is_alive():
                    t.join(0.2)  # a bounded wait, so that Ctrl-C is seen here
        except BaseException:
            stop.set()
            cancel.set()
            for t in threads:
                t.join()
            raise
        finally:
            state.ran = int(counter.value)
        if errors:
            raise errors[0]

    def _run_workers(self, state: _RunState, reporter: Reporter, study: optuna.Study) -> None:
        """This process is worker 0; workers 1..N-1 are spawned processes on the same study.

        Running trials here while the others start up (a spawned worker imports Optuna and
        opens the storage first, seconds on a busy machine) keeps that start-up off the clock.
        """
        ctx = mp.get_context("spawn")
        events: Any = ctx.Queue()
        counter: Any = ctx.Value("i", 0)
        stop: Any = ctx.Event()
        procs = [
            ctx.Process(
                target=worker_main,
                args=(self, state, i, events, counter, stop),
                name=f"fastgrid-worker-{i}",
            )
            for i in range(1, self.spec.sweep.workers)
        ]
        for p in procs:
            p.start()

        def emit(event: TrialEvent) -> None:
            _drain(events, reporter, timeout=0.0)
            reporter.update(event)

        local: Worker | None = None
        try:
            local = Worker(self, state, study=study, emit=emit, counter=counter, stop=stop, index=0)
            local.loop()
            while any(p.is_alive() for p in procs):
                _drain(events, reporter, timeout=0.2)
            _drain(events, reporter, timeout=0.0)
        except KeyboardInterrupt:
            stop.set()
            for p in procs:
                if p.is_alive() and p.pid is not None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(p.pid, signal.SIGINT)
            deadline = time.monotonic() + 30
            for p in procs:
                p.join(max(deadline - time.monotonic(), 0.1))
                if p.is_alive():
                    p.terminate()
            _drain(events, reporter, timeout=0.0)
            raise
        finally:
            stop.set()
            for p in procs:
                p.join()
            state.ran = int(counter.value)
        failures = [p.exitcode for p in procs if p.exitcode not in (0, 130)]
        if failures:
            raise RuntimeError(
                f"{len(failures)} worker process(es) exited with codes {failures} (their error is printed "
                "above). Worker processes import the main module again: a script that runs a sweep with "
                "workers > 1 must start it under `if __name__ == '__main__':`."
            )
        state.interrupted = any(p.exitcode == 130 for p in procs)

    def _result(self, study: optuna.Study, state: _RunState, *, interrupted: bool, ran: int) -> SweepResult:
        trials = study.get_trials(deepcopy=False)
        directions = self.spec.sweep.all_directions
        # One pass over the study for the counts and the feasible trials: a resumed sweep of
        # 10,000 trials must not pay for a row per trial (``rows`` is built on first use).
        feasible: list[FrozenTrial] = []
        complete, failed, reused, infeasible, running, pruned = 0, 0, 0, 0, 0, 0
        COMPLETE, FAIL, RUNNING = TrialState.COMPLETE, TrialState.FAIL, TrialState.RUNNING
        for t in trials:
            trial_state = t.state
            if trial_state == COMPLETE:
                attrs = t.user_attrs
                complete += 1
                if attrs.get("reused") is not None:
                    reused += 1
                if attrs.get("feasible", True):
                    if t.values:
                        feasible.append(t)
                else:
                    infeasible += 1
            elif trial_state == FAIL:
                failed += not t.system_attrs.get(EXHAUSTED_ATTR)
            elif trial_state == RUNNING:
                running += 1
            elif trial_state == TrialState.PRUNED:
                pruned += 1
        counts = {
            "complete": complete,
            "failed": failed,
            "reused": reused,
            "infeasible": infeasible,
            "running": running,
            "pruned": pruned,
        }
        best_trials: list[dict[str, Any]] = []
        if feasible:
            if len(directions) == 1:
                sign = -1.0 if directions[0] == "maximize" else 1.0
                top = min(feasible, key=lambda t: (sign * t.values[0], t.number))
                best_trials = [r for r in [_row(top, state.fixed, state.paths)] if r is not None]
            else:
                rows = [_row(t, state.fixed, state.paths) for t in feasible]
                best_trials = _pareto([r for r in rows if r is not None], directions)
        best = best_trials[0] if best_trials else None
        best_config = best_path = None
        if best is not None:
            best_config, best_path = self._write_best_config(state, best)
        return SweepResult(
            name=self.name,
            study=study,
            best=best,
            best_trials=best_trials,
            best_config=best_config,
            best_config_path=best_path,
            interrupted=interrupted,
            ran=ran,
            trials=trials,
            fixed=state.fixed,
            paths=state.paths,
            counts=counts,
        )

    def _write_best_config(self, state: _RunState, best: dict[str, Any]) -> tuple[dict[str, Any], Path]:
        best_config = state.config().merged(nest(best["params"]))
        folder = self.directory / "runs" / self.name
        folder.mkdir(parents=True, exist_ok=True)
        best_path = folder / "best_config.json"
        # Several workers (or machines) may finish at once: each writes its own temporary file.
        tmp = best_path.with_suffix(f".json.{os.getpid()}.{state.run_id[:8]}.tmp")
        tmp.write_text(json.dumps(best_config, indent=2, default=str) + "\n")
        tmp.replace(best_path)
        return best_config, best_path

    def _validate(self, study: optuna.Study, state: _RunState, result: SweepResult) -> None:
        """``[validate]``: re-run the top trials with the override; best = best validated."""
        from fastgrid.validate import ATTR_VALIDATION, validate

        try:
            rows = validate(self, state, result)
        except (ValueError, ConfigError) as exc:
            raise SweepFileError(self.source, [str(exc)]) from None
        result.validation = rows
        study.set_user_attr(ATTR_VALIDATION, json.loads(json.dumps(rows, default=str)))
        if rows and rows[0]["validated"] is not None:
            by_number = {r["number"]: r for r in result.rows}
            best = by_number[rows[0]["number"]]
            result.best, result.best_trials = best, [best]
            result.best_config, result.best_config_path = self._write_best_config(state, best)


# -- per-run state shared with worker processes (picklable) ---------------------------------------
@dataclass
class _RunState:
    sweep_name: str
    space: dict[str, Any]
    fingerprint: str
    fixed: dict[str, Any]
    paths: list[str]
    total: int | None
    deadline: float | None
    max_trials: int | None
    first_trial: int = 0
    interrupted: bool = False
    ran: int = 0
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    _config: Any = field(default=None, repr=False)
    _source: Any = field(default=None, repr=False)

    @classmethod
    def create(cls, sweep: Sweep) -> _RunState:
        spec = sweep.spec
        cfg = spec.config
        config = (
            _parts.ConfigCache(cfg.path, model=cfg.model, allow_new=cfg.allow_new, reload=cfg.reload)
            if cfg is not None
            else None
        )
        fingerprint = str(config.fingerprint) if config is not None else _NO_CONFIG
        if sweep.grid_mode:
            grid = sweep._grid()
            axes = list(grid.axes)
            total: int | None = len(grid)
        else:
            assert isinstance(spec.parameters, dict)  # _check refused a list of trees in search mode
            axes = list(_parts.search_axes(spec.parameters))
            total = spec.sweep.max_trials
        fixed = {a["path"]: a["value"] for a in axes if a["kind"] == "fixed"}
        space = {
            # trial_key takes a mapping: a union of trees is keyed as one.
            "parameters": _parts.trial_key({"trees": spec.parameters}),
            "where": list(spec.sweep.where),
            "sampler": spec.sweep.sampler.name,
            "order": spec.sweep.order,
            "seed": spec.sweep.seed if spec.sweep.order == "shuffled" else None,
        }
        deadlines = []
        if spec.sweep.timeout is not None:
            deadlines.append(time.time() + spec.sweep.timeout)
        if spec.sweep.end_at is not None:
            end = spec.sweep.end_at
            deadlines.append(end.timestamp())
        state = cls(
            sweep_name=sweep.name,
            space=space,
            fingerprint=fingerprint,
            fixed=fixed,
            paths=[a["path"] for a in axes],
            total=total,
            deadline=min(deadlines) if deadlines else None,
            max_trials=spec.sweep.max_trials,
        )
        state._config = config
        return state

    def config(self) -> Any:
        """The config cache; it pickles as its path and options, so each worker loads it once."""
        if self._config is None:
            self._config = _IdentityConfig()
        return self._config


class _IdentityConfig:
    """No ``[config]``: the merged config is the point itself."""

    fingerprint = _NO_CONFIG

    def merged(self, params: dict[str, Any]) -> dict[str, Any]:
        return json.loads(json.dumps(params))


def _changes(old_space: Any, space: dict[str, Any], old_fp: Any, fp: str) -> list[str]:
    out = []
    if isinstance(old_space, dict):
        labels = {
            "parameters": "parameters tree",
            "where": "parameter constraints (sweep.where)",
            "sampler": "sampler",
            "order": "grid order",
            "seed": "shuffle seed",
        }
        for key, label in labels.items():
            if old_space.get(key) != space.get(key):
                if key == "parameters":
                    out.append(label)
                else:
                    out.append(f"{label} ({old_space.get(key)!r}, now {space.get(key)!r})")
    if old_fp != fp:
        out.append(f"default config (fingerprint {old_fp}, now {fp})")
    return out


_RUN_PREFIX = "fastgrid:run:"


def _live_runs(study: optuna.Study) -> list[str]:
    """Other runs of this sweep registered in the study that may still be running.

    A run on this host is alive while its process is; a run on another host cannot be checked
    from here and counts as alive (heartbeats of distributed workers settle those).
    """
    host = socket.gethostname()
    live = []
    for name, info in study._storage.get_study_system_attrs(study._study_id).items():
        if not name.startswith(_RUN_PREFIX) or not isinstance(info, dict):
            continue
        if info.get("host") != host:
            live.append(name)
            continue
        try:
            os.kill(int(info["pid"]), 0)
        except ProcessLookupError:
            continue
        except (PermissionError, KeyError, ValueError, TypeError):
            pass
        if int(info.get("pid", -1)) != os.getpid():
            live.append(name)
    return live


def _register_run(study: optuna.Study, run_id: str, *, active: bool) -> None:
    info: Any = {"host": socket.gethostname(), "pid": os.getpid(), "started": time.time()} if active else None
    study._storage.set_study_system_attr(study._study_id, _RUN_PREFIX + run_id, info)


def _fail_stale(study: optuna.Study) -> None:
    """RUNNING trials left by a killed earlier run of this sweep become FAIL (reason ``stale``).

    Only when no other run of the sweep is alive: its running trials are not stale.
    """
    if _live_runs(study):
        return
    storage = study._storage
    for t in storage.get_all_trials(study._study_id, deepcopy=False, states=(TrialState.RUNNING,)):
        with contextlib.suppress(Exception):
            storage.set_trial_user_attr(t._trial_id, "reason", "stale: left running by an earlier run")
            storage.set_trial_state_values(t._trial_id, TrialState.FAIL)


def _progress_start(study: optuna.Study, directions: list[str]) -> tuple[int, list[float] | None]:
    """Points already done (distinct keys) and the best feasible value so far, in one pass."""
    keys: set[Any] = set()
    best: float | None = None
    sign = -1.0 if directions[0] == "maximize" else 1.0
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        attrs = t.user_attrs
        keys.add(attrs.get("key"))
        values = t.values
        if (
            len(directions) == 1
            and values
            and attrs.get("feasible", True)
            and (best is None or sign * values[0] < sign * best)
        ):
            best = values[0]
    return len(keys), None if best is None else [best]


def _row(t: FrozenTrial, fixed: dict[str, Any], paths: list[str]) -> dict[str, Any] | None:
    if t.system_attrs.get(EXHAUSTED_ATTR):
        return None
    if "params" in t.user_attrs:
        params = dict(t.user_attrs["params"])
    else:
        params = {
            p: fixed[p] if p in fixed else decode_choice(t.params[p])
            for p in paths
            if p in fixed or p in t.params
        }
    ua = t.user_attrs
    return {
        "number": t.number,
        "state": t.state.name,
        "values": list(t.values) if t.values is not None else None,
        "value": t.values[0] if t.values is not None and len(t.values) == 1 else None,
        "params": params,
        "metrics": ua.get("metrics", {}),
        "key": ua.get("key"),
        "reused": ua.get("reused"),
        "feasible": bool(ua.get("feasible", t.state == TrialState.COMPLETE)),
        "reason": ua.get("reason"),
        "duration": ua.get("duration"),
        "attempts": ua.get("attempts"),
        "result_path": ua.get("result_path"),
    }


def _pareto(rows: list[dict[str, Any]], directions: list[str]) -> list[dict[str, Any]]:
    signs = [-1.0 if d == "maximize" else 1.0 for d in directions]
    keyed = [[s * v for s, v in zip(signs, r["values"], strict=True)] for r in rows]

    def dominated(i: int) -> bool:
        a = keyed[i]
        return any(
            all(x <= y for x, y in zip(b, a, strict=True)) and any(x < y for x, y in zip(b, a, strict=True))
            for b in keyed
        )

    return [r for i, r in enumerate(rows) if not dominated(i)]


@contextlib.contextmanager
def _quiet_experimental() -> Any:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


def _drain(events: Any, reporter: Reporter, *, timeout: float) -> None:
    import queue

    try:
        event = events.get(timeout=timeout) if timeout > 0 else events.get_nowait()
    except queue.Empty:
        return
    reporter.update(event)
    while True:
        try:
            reporter.update(events.get_nowait())
        except queue.Empty:
            return
