"""``fastgrid.Sweep``: ties the grid, config cache, objective and storage into an Optuna study.

One trial: point (grid slot or search suggestion) → canonical trial key → reuse of a completed
trial with the same key, or ``ConfigCache.merged(point)`` → objective → values, metrics and
bookkeeping as user attrs. Re-running the same sweep resumes it; ``workers > 1`` runs that many
workers on the shared study (threads for commands, processes for callables).
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from pydantic import ValidationError

from fastgrid import attrs
from fastgrid._core import ConfigError, Grid, parse_parameters
from fastgrid.config import ConfigCache
from fastgrid.dotted import nest
from fastgrid.exceptions import SweepAbortedError, SweepChangedError, SweepFileError, SweepInUseError
from fastgrid.plain import plain
from fastgrid.runner._plan import SweepPlan, add_import_path
from fastgrid.runner._signals import first_interrupt_only, stop_signals_deferred, stray_threads
from fastgrid.sweepfile import SweepFile, bare_lists, format_errors, load_sweep_file

if TYPE_CHECKING:
    # The per-trial machinery (Optuna, the worker, the study readers) is imported where a per-trial
    # run uses it: a batch sweep's process (a joining `fastgrid worker`) never loads it.
    import optuna

    from fastgrid.runner._guard import Stopped
    from fastgrid.runner._result import SweepResult
    from fastgrid.runner._state import RunState
    from fastgrid.study import Row

__all__ = ["Sweep"]


@dataclass(frozen=True)
class _Budget:
    held: int
    """Trials of the study that count toward max_trials when the run starts."""
    line: str
    spent: bool


def _seconds(value: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if value >= size and value % size == 0:
            return f"{int(value // size)}{unit}"
    return f"{value:g}s"


class Sweep:
    """A parameter sweep; build it from a sweep file (:meth:`from_file`) or with keywords.

    ``objective`` is a callable taking the merged config (returning a number, a dict of metrics or
    a pandas Series), a ``"module:function"`` string, or a command argv list. ``direction`` is
    required. ``config`` is a config file's path or the config itself as a mapping; parameter
    values may be numpy arrays and scalars. The other keywords mirror the sweep file's keys (see
    the docs' sweep-file reference), plus what a run prints — ``progress`` (a bar; False or,
    without a terminal, the default: a status line every 10 s), ``quiet`` (the start block, new
    failure reasons and the summary), ``verbose`` (a line per trial) — and ``more`` (run up to that
    many trials past ``max_trials``, which counts the study's trials across runs).

    ``mode="batch"`` makes it a batch sweep (docs/batch.md; :meth:`run` returns a
    :class:`BatchSweepResult`): ``batch`` is the vectorized objective (a callable
    ``fn(columns, config)`` returning metric columns, or a ``"module:function"`` string), or
    ``objective`` a per-point callable; ``chunk`` (points per chunk) and ``top_k`` (points written to
    the Optuna study) apply. The sweep file's rules apply too (grid sampler only, no command, no
    pruner...), each refused in one line naming the keyword.
    """

    def __init__(
        self,
        *,
        parameters: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        objective: Callable[[dict[str, Any]], Any] | str | Sequence[str] | None = None,
        batch: Callable[..., Any] | str | None = None,
        mode: str = "trial",
        chunk: int | None = None,
        top_k: int | None = None,
        name: str = "sweep",
        direction: str | Sequence[str] | None = None,
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
        fail_fast: int | None = None,
        heartbeat_interval: int = 10,
        grace_period: int | None = None,
        keep_returns: int | str | None = None,
        config: str | Path | Mapping[str, Any] | None = None,
        config_model: str | type | None = None,
        allow_new: bool = False,
        objective_timeout: float | str | None = None,
        retries: int | None = None,
        backoff: float | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        results: Mapping[str, Any] | None = None,
        log_limit: int | None = None,
        validate: Mapping[str, Any] | None = None,
        directory: str | Path | None = None,
        fresh: bool = False,
        allow_changed: bool = False,
        progress: bool | None = None,
        quiet: bool = False,
        verbose: bool = False,
        more: int | None = None,
    ) -> None:
        target: Callable[[dict[str, Any]], Any] | None = None
        objective_section: dict[str, Any] = {
            "env": dict(env or {}),
            "cwd": cwd,
            "results": dict(results) if results is not None else None,
        }
        for key, value in (("timeout", objective_timeout), ("retries", retries), ("backoff", backoff)):
            if value is not None:  # set only when given: a batch sweep refuses them
                objective_section[key] = value
        if log_limit is not None:
            objective_section["log_limit"] = log_limit
        if isinstance(objective, str):
            objective_section["callable"] = objective
        elif callable(objective):
            target = objective
            objective_section["callable"] = "python:callable"
        elif isinstance(objective, list | tuple):
            objective_section["command"] = list(objective)
        elif objective is not None:
            raise SweepFileError(
                "Sweep(...)",
                [
                    f"objective: expected a callable, a 'module:function' string or a command argv "
                    f"list, got {type(objective).__name__}"
                ],
            )
        if isinstance(batch, str):
            objective_section["batch"] = batch
        elif batch is not None and not callable(batch):
            raise SweepFileError(
                "Sweep(...)",
                [
                    "batch: expected a callable fn(columns, config) or a 'module:function' string, "
                    f"got {type(batch).__name__}"
                ],
            )
        elif batch is not None:
            # The vectorized objective rides in the plan's target; the spec says which kind it is.
            target = batch if target is None else target
            objective_section["batch"] = "python:callable"
        sweep_section: dict[str, Any] = {
            "name": name,
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
            "heartbeat_interval": heartbeat_interval,
            "grace_period": grace_period,
            "mode": mode,
        }
        # Given only when set: a batch sweep has its own defaults (fail_fast counts chunks there),
        # and its rules refuse what it cannot do (batch_problems), as for a sweep file.
        for key, value in (
            ("fail_fast", fail_fast),
            ("keep_returns", keep_returns),
            ("chunk", chunk),
            ("top_k", top_k),
        ):
            if value is not None:
                sweep_section[key] = value
        if direction is not None:
            # No default (issue 11): a missing direction is reported with the other problems.
            sweep_section["direction"] = direction if isinstance(direction, str) else list(direction)
        data: dict[str, Any] = {
            "sweep": sweep_section,
            "objective": objective_section,
            "constraints": {"require": list(require)},
            # numpy arrays and scalars become the exact Python values (issue 11).
            "parameters": plain(dict(parameters))
            if isinstance(parameters, Mapping)
            else [plain(dict(p)) for p in parameters],
        }
        if validate is not None:
            data["validate"] = dict(validate)
        in_memory: ConfigCache | None = None
        if isinstance(config, Mapping):
            in_memory = ConfigCache.from_mapping(config, model=config_model, allow_new=allow_new)
        elif config is not None:
            data["config"] = {"path": config, "model": config_model, "allow_new": allow_new}
        try:
            spec = SweepFile.model_validate(data, context={"keywords": True})
        except ValidationError as exc:
            raise SweepFileError("Sweep(...)", format_errors(exc)) from None
        base = Path(directory) if directory is not None else Path.cwd()
        self._init(
            spec,
            target=target,
            directory=base,
            fresh=fresh,
            allow_changed=allow_changed,
            progress=progress,
            quiet=quiet,
            verbose=verbose,
            more=more,
            config=in_memory,
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
        quiet: bool = False,
        verbose: bool = False,
        more: int | None = None,
        config: ConfigCache | None = None,
        source: str = "Sweep(...)",
        import_path: str | None = None,
        wait_for_others: bool = False,
    ) -> None:
        add_import_path(import_path)
        self.plan = SweepPlan(
            spec=spec,
            directory=directory.resolve(),
            source=source,
            target=target,
            import_path=import_path,
            allow_changed=allow_changed,
            wait_for_others=wait_for_others,
            config=config,
        )
        self.fresh = fresh
        self.progress = progress
        self.quiet = quiet
        self.verbose = verbose
        if quiet and verbose:
            raise SweepFileError(source, ["quiet and verbose exclude each other"])
        if more is not None and (isinstance(more, bool) or not isinstance(more, int) or more < 1):
            raise SweepFileError(source, [f"more: expected a number of trials >= 1, got {more!r}"])
        self.more = more
        self.plan.check()

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
        quiet: bool = False,
        verbose: bool = False,
        more: int | None = None,
    ) -> Sweep:
        """Load a sweep file; the keywords override its ``[sweep]`` keys (as the CLI flags do).

        ``more`` runs up to that many trials in this run past ``max_trials`` (which counts the
        study's trials, across runs). ``wait_for_others`` (what ``fastgrid worker`` sets): when no
        point is left to start but other workers still run some, keep waiting, and run again those
        whose worker stops sending heartbeats, instead of returning.
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
            quiet=quiet,
            verbose=verbose,
            more=more,
            source=str(path),
            import_path=str(Path(path).resolve().parent),
            wait_for_others=wait_for_others,
        )
        return self

    # -- what the plan knows ---------------------------------------------------------------------
    @property
    def spec(self) -> SweepFile:
        return self.plan.spec

    @property
    def name(self) -> str:
        return self.plan.name

    @property
    def directory(self) -> Path:
        return self.plan.directory

    @property
    def source(self) -> str:
        return self.plan.source

    @property
    def grid_mode(self) -> bool:
        return self.plan.grid_mode

    @property
    def allow_changed(self) -> bool:
        return self.plan.allow_changed

    @property
    def wait_for_others(self) -> bool:
        return self.plan.wait_for_others

    def open_storage(self) -> Any:
        """The sweep's storage, with heartbeats where the storage keeps them."""
        return self.plan.open_storage()

    # -- running --------------------------------------------------------------------------------
    def run(self) -> SweepResult:
        """Run (or resume) the sweep until every point is done or a budget ends it.

        ``max_trials`` counts the study's trials (every run of it: a resumed sweep runs what is
        left), ``more`` that many more this run; ``timeout`` and ``end_at`` end this run.
        Ctrl-C stops scheduling, records running trials as FAIL with reason ``interrupted`` and
        returns with ``interrupted=True``.

        Raises:
            SweepFileError: bad input found when the run starts (the config, a bare list replacing
                a config value) or at its first trial (a ``require`` naming no returned metric).
            SweepAbortedError: the first ``fail_fast`` trials all failed for one reason.
        """
        plan = self.plan
        if plan.spec.walkforward is not None:
            raise SweepFileError(
                self.source,
                ["[walkforward]: run its folds with fastgrid.runner.WalkForward(sweep).run()"],
            )
        if plan.spec.sweep.mode == "batch":
            # Chunks of grid points into a columnar store (issue 13): another runner, same result API.
            from fastgrid.runner._batch import run_batch_sweep

            return run_batch_sweep(
                plan, fresh=self.fresh, progress=False if self.quiet else self.progress, more=self.more
            )
        from fastgrid.runner._guard import FailFast, Stopped
        from fastgrid.runner._pool import run_worker_processes, run_worker_threads
        from fastgrid.runner._progress import Reporter
        from fastgrid.runner._runs import RunHeartbeat, progress_start, register_run
        from fastgrid.runner._state import RunState
        from fastgrid.runner._worker import Worker, quiet_optuna
        from fastgrid.storages import SMALL_TAIL, release_connections

        quiet_optuna()
        state = RunState.create(plan)
        self._check_config(state)
        study = self._open_study(state)
        budget = self._budget(study, state)
        done, best_so_far = progress_start(study, plan.spec.sweep.all_directions)
        guard = FailFast(plan.spec.sweep.fail_fast)
        reporter = Reporter(
            name=plan.name,
            total=state.total,
            done=done,
            best=best_so_far,
            directions=plan.spec.sweep.all_directions,
            mode=self.output_mode(),
            watch=guard.observe,
        )
        reporter.start(self._start_lines(state, budget.line))
        interrupted = False
        stopped: Stopped | None = None
        worker: Worker | None = None
        received: list[int] = []  # the signal that stopped the run, if one did
        threads_before = set(threading.enumerate())
        beat = RunHeartbeat(study, state.run_id, interval=plan.spec.sweep.heartbeat_interval)
        with reporter, first_interrupt_only(received), beat:
            try:
                if plan.spec.sweep.workers == 1:
                    beat.start()
                    worker = Worker(plan, state, study=study, emit=reporter.update)
                    worker.loop()
                elif plan.spec.objective.command is not None:
                    beat.start()
                    run_worker_threads(plan, state, reporter, study)
                else:
                    # The beat starts once the worker processes are: a thread before then would
                    # keep them from being forked.
                    run_worker_processes(plan, state, reporter, study, started=beat.start)
            except KeyboardInterrupt:
                interrupted = True
            except Stopped as exc:
                stopped = exc
            except KeyError:
                if self._study_exists(study):
                    raise
                # Another process deleted the study under this run (Optuna's own tools can).
                raise SweepChangedError(
                    f"sweep {plan.name!r}: its stored study was deleted while this run was writing it"
                ) from None
            interrupted = interrupted or state.interrupted
        late: list[int] = []  # a stop signal now waits for the bookkeeping (it is quick)
        with stop_signals_deferred(late):
            with contextlib.suppress(Exception):
                register_run(study, state.run_id, active=False)
            checkpoint = getattr(study._storage, "checkpoint", None)
            if checkpoint is not None:
                # The embedded store: snapshot what this run wrote, so the next open replays nothing.
                with contextlib.suppress(Exception):
                    checkpoint(min_new=SMALL_TAIL)
            ran = worker.started if worker is not None else state.ran
            result = self._result(study, state, interrupted=interrupted, ran=ran)
            if interrupted:
                result.signal = received[0] if received else signal.SIGINT
            result.stray_threads = [t.name for t in stray_threads(threads_before)]
        if (
            plan.spec.validate_ is not None
            and not interrupted
            and not late
            and stopped is None
            and result.best is not None
        ):
            # Validation runs the objective again: a stop signal there stops it as in the sweep.
            with first_interrupt_only(received):
                try:
                    self._validate(study, state, result)
                except KeyboardInterrupt:
                    result.interrupted, result.signal = True, received[0] if received else signal.SIGINT
        # After a SIGHUP the terminal may be gone: the summary must not turn into a traceback.
        with contextlib.suppress(OSError), stop_signals_deferred(late):
            reporter.summary(result, lines=self._summary_lines(result, budget))
        release_connections(study._storage)
        if stopped is not None:
            raise self._stopped_error(stopped)
        return result

    def check(self, point: int = 0, *, out: TextIO | None = None) -> bool:
        """Run one point (``point``: a grid index, or a search seed) in the foreground as a trial
        would run it, print its full traceback or logs and its metrics, and record nothing.

        Returns True when the trial completed and is feasible (what ``fastgrid run --check`` exits
        0 for).
        """
        out = out if out is not None else sys.stdout
        if self.plan.spec.sweep.mode == "batch":
            from fastgrid.runner._batch import check_batch_point

            return check_batch_point(self.plan, point, out=out)
        from fastgrid.runner._check import check_point
        from fastgrid.runner._state import RunState

        state = RunState.create(self.plan)
        self._check_config(state)
        return check_point(self.plan, state, point, out=out)

    def output_mode(self) -> str:
        """What the run prints: ``bar``, ``periodic``, ``trials`` or ``quiet`` (see ``progress``,
        ``quiet`` and ``verbose``; without a terminal the default is a periodic summary line)."""
        from fastgrid.runner._progress import choose_mode

        return choose_mode(
            progress=self.progress, quiet=self.quiet, verbose=self.verbose, tty=sys.stderr.isatty()
        )

    def _budget(self, study: optuna.Study, state: RunState) -> _Budget:
        """How many trials this run may start: ``max_trials`` counts the study's trials (issue 11:
        a resumed ``max_trials = 40`` sweep ran 40 more), ``more`` extends it for this run."""
        from fastgrid.study import budget_trials

        sweep = self.spec.sweep
        held = budget_trials(study.get_trials(deepcopy=False))
        if self.more is not None:
            state.max_trials = self.more
            line = f"{self.more} more trial(s) this run (--more); the study holds {held}"
            if sweep.max_trials is not None:
                line += f", max_trials = {sweep.max_trials} counts per study"
        elif sweep.max_trials is not None:
            state.max_trials = max(0, sweep.max_trials - held)
            line = (
                f"max_trials = {sweep.max_trials} counts the study's trials: {held} held, "
                f"up to {state.max_trials} this run"
            )
        else:
            state.max_trials = None
            line = "every point" if self.grid_mode else ""
        if not self.grid_mode and sweep.max_trials is not None:
            state.total = held + (state.max_trials or 0)
        limits = []
        if sweep.timeout is not None:
            limits.append(f"timeout {_seconds(sweep.timeout)} per run")
        if sweep.end_at is not None:
            limits.append(f"end_at {sweep.end_at.isoformat()}")
        line = "; ".join(p for p in (line, *limits) if p)
        return _Budget(held=held, line=line, spent=state.max_trials == 0)

    def _start_lines(self, state: RunState, budget: str) -> list[str]:
        from fastgrid.runner._describe import start_lines

        spec = self.spec
        if self.grid_mode:
            grid = self.plan.grid()
            axes = list(grid.axes)
            before = Grid(spec.parameters).size if spec.sweep.where else grid.size
            total: int | None = grid.size
        else:
            assert isinstance(spec.parameters, dict)
            axes, before, total = list(parse_parameters(spec.parameters)), None, None
        return start_lines(
            name=self.name,
            directions=spec.sweep.all_directions,
            metrics=spec.sweep.objective_metrics,
            axes=axes,
            sampler=spec.sweep.sampler.name,
            total=total,
            before_where=before,
            where=spec.sweep.where,
            require=spec.constraints.require,
            workers=spec.sweep.workers,
            budget=budget,
            bare_lists=bare_lists(spec.parameters),
        )

    def _summary_lines(self, result: SweepResult, budget: _Budget) -> list[str]:
        from fastgrid.runner._describe import objective_text
        from fastgrid.study import budget_trials

        sweep = self.spec.sweep
        what = objective_text(sweep.all_directions, sweep.objective_metrics)
        out = []
        if result.best is None:
            out.append(f"no completed feasible trial yet ({what})")
        else:
            values = ", ".join(f"{v:.6g}" for v in result.best["values"] or [])
            first = result.validation[0] if result.validation else None
            if first and first["number"] == result.best["number"] and first["validated"] is not None:
                # [validate] chose it: not the search's best, which the line would otherwise claim.
                out.append(
                    f"best validated: trial {result.best['number']}, {values} in the search, "
                    f"{first['validated']:.6g} held out ({what})"
                )
            else:
                out.append(f"best: trial {result.best['number']}, {values} ({what})")
        if sweep.max_trials is not None and self.more is None:
            held = budget_trials(result.trials)
            if held >= sweep.max_trials:
                out.append(
                    f"max_trials = {sweep.max_trials} counts the study's trials and the study holds {held}: "
                    "run again with --more N (Sweep(more=N)) to run N more"
                )
        if sweep.timeout is not None:
            out.append(
                f"timeout = {_seconds(sweep.timeout)} is per run: running again runs for that long again"
            )
        return out

    def _stopped_error(self, stopped: Stopped) -> Exception:
        from fastgrid.runner._guard import trial_evidence

        if stopped.fatal:
            return SweepFileError(self.source, [f"{stopped.reason} (trial {stopped.trials[0]})"])
        runs = self.plan.runs_dir
        evidence = trial_evidence(runs, stopped.trials)
        shown = ", ".join(map(str, stopped.trials))
        look = f"; see {evidence}" if evidence else ""
        where = f" {self.source}" if self.source != "Sweep(...)" else ""
        return SweepAbortedError(
            f"sweep {self.name!r} stopped: its first {len(stopped.trials)} trials (#{shown}) all failed "
            f"the same way:\n  {stopped.reason}{look}\n"
            f"Fix the objective and run again (failed points are run again); `fastgrid run{where} --check` "
            "runs one point in the foreground with its full traceback and records nothing; "
            "fail_fast = 0 ([sweep] or Sweep(fail_fast=0)) runs every point anyway.",
            reason=stopped.reason,
            trials=stopped.trials,
            evidence=evidence or None,
        )

    def _open_study(self, state: RunState) -> optuna.Study:
        import optuna

        from fastgrid.runner._runs import reap, register_run
        from fastgrid.runner._state import space_changes
        from fastgrid.storages import Heartbeat

        plan = self.plan
        storage = plan.open_storage()
        directions = plan.spec.sweep.all_directions
        if self.fresh:
            self._delete_for_fresh(storage)
        study = optuna.create_study(
            study_name=plan.name,
            storage=storage,
            directions=directions,  # type: ignore[arg-type]
            load_if_exists=True,
        )
        if study.user_attrs.get(attrs.STUDY_MODE) == "batch":
            # A batch sweep's results are chunks of columns, not trials to resume.
            raise SweepChangedError(
                f"sweep {plan.name!r} in storage is a batch sweep (its results are chunks of columns); "
                'run it with [sweep] mode = "batch", or use another sweep name or fresh=True (--fresh)'
            )
        stored = [d.name.lower() for d in study.directions]
        if stored != directions:
            raise SweepChangedError(
                f"sweep {plan.name!r} in storage optimizes {stored}, this run asks for {directions}; "
                "use a different sweep name, or fresh=True (--fresh) to delete the stored trials"
            )
        study_attrs = study.user_attrs
        space, fingerprint = state.space, state.fingerprint
        first = int(study_attrs.get(attrs.STUDY_FIRST_TRIAL, 0))
        if attrs.STUDY_SPACE not in study_attrs:
            # The space goes last: workers starting together read it as "the others are set".
            study.set_user_attr(attrs.STUDY_FINGERPRINT, fingerprint)
            study.set_user_attr(attrs.STUDY_FIRST_TRIAL, 0)
            study.set_user_attr(attrs.STUDY_SPACE, space)
        else:
            changes = space_changes(
                study_attrs[attrs.STUDY_SPACE], space, study_attrs.get(attrs.STUDY_FINGERPRINT), fingerprint
            )
            if changes and not plan.allow_changed:
                n = len(study.get_trials(deepcopy=False))
                raise SweepChangedError(
                    f"sweep {plan.name!r} ({n} stored trials) was started with a different "
                    + "; ".join(changes)
                    + ". Pass fresh=True (--fresh) to delete the stored trials and start over, or "
                    "allow_changed=True (--allow-changed) to continue with the stored trials."
                )
            if changes:
                if study_attrs[attrs.STUDY_SPACE] != space:
                    # A different grid: slot numbers restart after the stored trials; completed
                    # points of the old grid are still reused through their trial keys.
                    first = len(study.get_trials(deepcopy=False))
                    study.set_user_attr(attrs.STUDY_FIRST_TRIAL, first)
                study.set_user_attr(attrs.STUDY_SPACE, space)
                study.set_user_attr(attrs.STUDY_FINGERPRINT, fingerprint)
        metrics = plan.spec.sweep.objective_metrics
        if study_attrs.get(attrs.STUDY_METRICS) != metrics:
            study.set_user_attr(attrs.STUDY_METRICS, metrics)
        axes = {"paths": state.paths, "fixed": state.fixed}
        if study_attrs.get(attrs.STUDY_AXES) != axes:
            study.set_user_attr(attrs.STUDY_AXES, axes)
        state.first_trial = first
        sweep = plan.spec.sweep
        reap(
            study,
            own=state.run_id,
            heartbeat=Heartbeat(storage, interval=sweep.heartbeat_interval, grace=sweep.grace),
            at_start=True,
        )
        register_run(study, state.run_id, active=True)
        return study

    def _study_exists(self, study: optuna.Study) -> bool:
        try:
            study._storage.get_study_id_from_name(self.plan.name)
        except KeyError:
            return False
        return True

    def _delete_for_fresh(self, storage: Any) -> None:
        """``--fresh`` deletes the stored trials: never under a run that is still writing them
        (its next write would fail with a KeyError; issue 12, item 4). A batch sweep of the same
        name goes too, its chunks and columns first (one transaction, refused while a batch worker
        holds a chunk), then its study: deleting only the study left the columns behind and
        deleted it under a live batch run."""
        import optuna

        from fastgrid.liveness import describe_run, runs_in_progress

        sweep = self.plan.spec.sweep
        try:
            study = optuna.load_study(study_name=self.plan.name, storage=storage)
        except KeyError:
            return
        live = runs_in_progress(study, grace=sweep.grace)
        if live:
            who = "; ".join(describe_run(info) for info in live.values())
            raise SweepInUseError(
                f"sweep {self.plan.name!r} is being run by another process ({who}); fresh=True "
                "(--fresh) would delete its trials under it. Stop that run first, or run without "
                "--fresh to join it"
            )
        if study.user_attrs.get(attrs.STUDY_MODE) == "batch":
            from fastgrid.batch import delete_batch_sweep

            delete_batch_sweep(sweep.storage, self.plan.directory, self.plan.name, grace=float(sweep.grace))
        with contextlib.suppress(KeyError):
            optuna.delete_study(study_name=self.plan.name, storage=storage)

    def _check_config(self, state: RunState) -> None:
        problems = self.plan.config_problems(state.config())
        if problems:
            raise SweepFileError(self.source, problems)

    def _result(self, study: optuna.Study, state: RunState, *, interrupted: bool, ran: int) -> SweepResult:
        from fastgrid.runner._result import SweepResult
        from fastgrid.study import best_trials, counts, rows

        trials = study.get_trials(deepcopy=False)
        axes = {"paths": state.paths, "fixed": state.fixed}
        # Counts and the best trials in passes over the study: a resumed sweep of 10,000 trials
        # must not pay for a row per trial (``rows`` is built on first use).
        best = rows(best_trials(trials, self.spec.sweep.all_directions), axes)  # type: ignore[arg-type]
        best_config = best_path = None
        if best:
            best_config, best_path = self._write_best_config(state, best[0])
        return SweepResult(
            name=self.name,
            study=study,
            best=best[0] if best else None,
            best_trials=best,
            best_config=best_config,
            best_config_path=best_path,
            interrupted=interrupted,
            ran=ran,
            trials=trials,
            axes=axes,  # type: ignore[arg-type]
            counts=counts(trials),
        )

    def _write_best_config(self, state: RunState, best: Row) -> tuple[dict[str, Any], Path]:
        best_config = state.config().merged(nest(best["params"]))
        return best_config, self.plan.write_best_config(best_config)

    def _validate(self, study: optuna.Study, state: RunState, result: SweepResult) -> None:
        """``[validate]``: re-run the top trials with the override; best = best validated."""
        from fastgrid.runner._validate import validate

        try:
            validated = validate(self.plan, state, result.rows)
        except (ValueError, ConfigError) as exc:
            raise SweepFileError(self.source, [str(exc)]) from None
        result.validation = validated
        study.set_user_attr(attrs.STUDY_VALIDATION, json.loads(json.dumps(validated, default=str)))
        if validated and validated[0]["validated"] is not None:
            by_number = {r["number"]: r for r in result.rows}
            best = by_number[validated[0]["number"]]
            result.best, result.best_trials = best, [best]
            result.best_config, result.best_config_path = self._write_best_config(state, best)
