"""One worker's loop: ask a trial, resolve its point, reuse or run it, record the outcome.

A worker holds the study, sampler, config cache and objective of one process; ``workers > 1``
runs one per worker process (built from a pickled Sweep, so each process loads them once).
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

try:
    from optuna.study._tell import _tell_with_warning
except ImportError:  # pragma: no cover - an Optuna that moved it: the public, copying tell
    _tell_with_warning = None  # type: ignore[assignment]

from fastgrid import attrs
from fastgrid._core import ConfigError, Expression, trial_key
from fastgrid.dotted import flatten, nest
from fastgrid.objective import CallableObjective, short_message
from fastgrid.runner._evaluate import (
    Constraints,
    UnknownMetricError,
    build_objective,
    holds,
    jsonable,
    objective_values,
)
from fastgrid.runner._plan import SweepPlan, add_import_path
from fastgrid.runner._progress import TrialEvent
from fastgrid.runner._returns import ReturnsKeeper, take_returns
from fastgrid.runner._runs import reap, undecided_trials
from fastgrid.runner._signals import first_interrupt_only, follow_parent, leave, stray_threads
from fastgrid.runner._state import RunState
from fastgrid.samplers import GridSampler, SearchSpace
from fastgrid.storages import STALE_REASON, Heartbeat
from fastgrid.study import budget_trials

_TWIN_POLL = 0.05  # seconds between looks at a twin trial running elsewhere
_MAX_REJECTED = 1000  # suggestions in a row outside sweep.where before the sweep is stopped

__all__ = ["FinishedElsewhere", "Worker", "first_interrupt_only", "quiet_optuna", "worker_main"]


# -- one worker's loop ---------------------------------------------------------------------------
class FinishedElsewhere(RuntimeError):
    """A trial that another process finished while this one was running it."""


class Worker:
    def __init__(
        self,
        plan: SweepPlan,
        state: RunState,
        *,
        study: optuna.Study | None = None,
        emit: Callable[[TrialEvent], None],
        counter: Any = None,
        stop: Any = None,
        index: int = 0,
        cancel: threading.Event | None = None,
    ) -> None:
        spec = plan.spec
        self.plan, self.state, self.emit, self.index = plan, state, emit, index
        self.counter, self.stop = counter, stop
        # Set by the runner of a worker thread: kills its running command (Ctrl-C reaches only
        # the main thread).
        self.cancel = cancel
        self.started = 0
        self.metrics = spec.sweep.objective_metrics
        self.directions = spec.sweep.all_directions
        self.config = state.config()
        self.require = Constraints(spec.constraints.require)
        self.grid_sampler: GridSampler | None = None
        self.space: SearchSpace | None = None
        self.where: list[tuple[str, Any]] = []
        if plan.grid_mode:
            self.grid_sampler = GridSampler(
                plan.grid(),
                order=spec.sweep.order,
                seed=spec.sweep.seed,
                retry_failed=spec.sweep.retry_failed,
                first_trial=state.first_trial,
                run_id=state.run_id,
            )
            sampler: optuna.samplers.BaseSampler = self.grid_sampler
            self.distributions = self.grid_sampler.distributions
        else:
            self.space = plan.search_space()
            self.where = [(src, Expression(src)) for src in spec.sweep.where]
            sampler = plan.search_sampler(worker=index)
            self.distributions = {}
        storage = study._storage if study is not None else plan.open_storage()
        self.study = optuna.load_study(
            study_name=plan.name, storage=storage, sampler=sampler, pruner=plan.pruner()
        )
        self.heartbeat = Heartbeat(storage, interval=spec.sweep.heartbeat_interval, grace=spec.sweep.grace)
        self.objective = build_objective(plan, self.metrics)
        # What this worker's objective.run takes beyond the trial itself, decided once.
        self._run_options: dict[str, Any] = {"cancel": cancel} if cancel is not None else {}
        self._passes_trial = isinstance(self.objective, CallableObjective)
        self.runs = plan.runs_dir
        # Completed trials by key -> trial id: the records stay in the storage and are read only
        # when a suggestion repeats one, so resuming a long sweep copies nothing per trial.
        self.reuse: dict[str, int] = {}
        self.keeper = ReturnsKeeper(spec.sweep.keep_returns, self.directions[0])
        self._indexed = 0  # every trial numbered below this is finished and indexed
        self.key = ""
        # Suggestions refused by sweep.where: the last step's, and how many in a row.
        self.rejected = False
        self.rejected_in_a_row = 0
        self._load_reuse()
        self.next_number = len(self.study.get_trials(deepcopy=False))

    def _load_reuse(self) -> None:
        """Index the completed trials by key (this config's only, unless allow_changed).

        Only trials not yet indexed are read: the finished prefix is skipped on later calls.
        """
        trials = self.study._storage.get_all_trials(self.study._study_id, deepcopy=False)
        fingerprint, any_config = self.state.fingerprint, self.plan.allow_changed
        reuse, prefix, indexed = self.reuse, True, self._indexed
        complete, unfinished = TrialState.COMPLETE, (TrialState.RUNNING, TrialState.WAITING)
        for t in trials[indexed:]:
            state = t.state
            if state == complete:
                ua = t.user_attrs
                if t.values and ua.get(attrs.FEASIBLE, True) and ua.get(attrs.REUSED) is None:
                    self.keeper.note(t.values[0])
                key = ua.get(attrs.KEY)
                if key is None or key in reuse:
                    pass
                elif any_config or ua.get(attrs.FINGERPRINT) == fingerprint:
                    reuse[key] = t._trial_id
            if prefix and state not in unfinished:
                indexed += 1
            else:
                prefix = False
        self._indexed = indexed

    def _may_start(self) -> bool:
        if self.stop is not None and self.stop.is_set():
            return False
        if self.state.deadline is not None and time.time() >= self.state.deadline:
            return False
        if not self._study_budget_left():
            return False
        if (
            self.grid_sampler is not None
            and self.grid_sampler.remaining(self.study, after=self.next_number) == 0
        ):
            return False
        if self.state.max_trials is not None:
            if self.counter is None:
                return self.started < self.state.max_trials
            with self.counter.get_lock():
                if self.counter.value >= self.state.max_trials:
                    return False
                self.counter.value += 1
        elif self.counter is not None:
            with self.counter.get_lock():
                self.counter.value += 1
        return True

    def loop(self) -> int:
        """Run trials until the grid is done (or a budget ends); returns how many this worker started.

        With ``wait_for_others``, when no point is left but other workers still run some, this
        worker waits: a trial whose worker died stops beating, is failed after the grace period
        and its point is run here.
        """
        self.started = 0
        try:
            while True:
                self._run_available()
                if not self._await_others():
                    return self.started
        finally:
            self.heartbeat.close()

    def _run_available(self) -> None:
        while self._may_start():
            self.started += 1
            self.rejected = False
            try:
                more = self.step()
            except (UpdateFinishedTrialError, FinishedElsewhere) as exc:
                # Another process finished this trial first (e.g. marked it stale): its own
                # record stands, this result is dropped, and the sweep goes on.
                print(f"fastgrid: {exc}; its result here was dropped", file=sys.stderr, flush=True)
                continue
            if self.rejected:
                # Only evaluated trials count toward max_trials.
                self._uncount()
                if self.rejected_in_a_row >= _MAX_REJECTED:
                    self._finish_rejecting()
                    return
                continue
            if not more:
                # Another worker took the last slot: this trial ran nothing, so it is not counted.
                self._uncount()
                return

    def _uncount(self) -> None:
        self.started -= 1
        if self.counter is not None:
            with self.counter.get_lock():
                self.counter.value -= 1

    def _finish_rejecting(self) -> None:
        """So many suggestions in a row broke ``where`` that its region is (nearly) empty: the
        sweep's problem, reported as a fatal event (the runner stops with it)."""
        wheres = "; ".join(src for src, _ in self.where)
        reason = (
            f"sweep.where: the last {_MAX_REJECTED} suggestions of the {self.plan.spec.sweep.sampler.name!r} "
            f"sampler all broke it ({wheres}): the constraints leave (almost) no point of the search "
            "space; widen the ranges or loosen the constraints"
        )
        self.emit(TrialEvent(self.next_number - 1, "FAIL", None, reason, 0.0, False, False, True))

    def _await_others(self) -> bool:
        """Wait while other workers run the last points; True when one of them came free again.

        ``fastgrid worker`` (``wait_for_others``) waits for every running trial. A plain run waits
        only for trials whose owner cannot be known alive from here (a run in another container
        or on another host, or none recorded): until they finish or go stale, a point may be left
        that nobody will run, and the sweep must not be reported done (issue 12, item 3).
        """
        if self.grid_sampler is None or self.index != 0:
            return False
        own, grace = self.state.run_id, self.heartbeat.grace
        if not self.plan.wait_for_others and not undecided_trials(self.study, own=own, grace=grace):
            return False
        poll = min(max(self.heartbeat.interval / 2, 0.2), 5.0)
        while True:
            if not self._budget_left():
                return False
            for number in reap(self.study, own=own, heartbeat=self.heartbeat):
                self.emit(TrialEvent(number, "FAIL", None, STALE_REASON, 0.0, False, False))
            if self.grid_sampler.remaining(self.study, after=sys.maxsize) > 0:
                return True
            if self.plan.wait_for_others:
                if self.heartbeat.running(self.study) == 0:
                    return False
            elif not undecided_trials(self.study, own=own, grace=grace):
                return False
            time.sleep(poll)

    def _study_budget_left(self) -> bool:
        """``fastgrid worker`` on a shared storage: ``max_trials`` counts the study's trials, which
        other machines' workers add to, so it is read again before each start (workers starting at
        the same instant may still pass it by one trial each)."""
        limit = self.plan.spec.sweep.max_trials
        if not self.plan.wait_for_others or limit is None:
            return True
        return budget_trials(self.study.get_trials(deepcopy=False)) < limit

    def _budget_left(self) -> bool:
        if self.stop is not None and self.stop.is_set():
            return False
        if not self._study_budget_left():
            return False
        if self.state.deadline is not None and time.time() >= self.state.deadline:
            return False
        if self.state.max_trials is not None:
            if self.counter is None:
                return self.started < self.state.max_trials
            with self.counter.get_lock():
                return bool(self.counter.value < self.state.max_trials)
        return True

    def step(self) -> bool:
        """Run one trial; False when the grid turned out to be exhausted."""
        trial = self.study.ask(fixed_distributions=self.distributions)
        self.next_number = trial.number + 1
        # Whose trial it is: a reaper elsewhere asks whether this run is alive (see _runs).
        self.study._storage.set_trial_system_attr(trial._trial_id, attrs.RUN, self.state.run_id)
        with self.heartbeat.beating(trial._trial_id):
            return self._step(trial)

    def _step(self, trial: optuna.Trial) -> bool:
        number = trial.number
        try:
            if self.grid_sampler is not None:
                if self.grid_sampler.exhausted(trial):
                    # Storage trial numbers cannot be given back: record why this one ran nothing.
                    reason = "nothing left to run: another worker took the last point"
                    self.study._storage.set_trial_user_attr(trial._trial_id, attrs.REASON, reason)
                    self._tell(trial, state=TrialState.FAIL)
                    return False
                point = self.grid_sampler.point(trial)
            else:
                assert self.space is not None
                flat = self.space.suggest(trial)
                violated = [src for src, expr in self.where if not holds(expr, flat)]
                if violated:
                    self._reject(trial, violated)
                    return True
                self.rejected_in_a_row = 0
                point = nest(flat)
            key = self.key = trial_key(point)
            storage, tid = self.study._storage, trial._trial_id
            storage.set_trial_user_attr(tid, attrs.KEY, key)
            if self.grid_sampler is not None and not (
                self.grid_sampler.registers_params and self.grid_sampler.params_exact
            ):
                storage.set_trial_user_attr(tid, attrs.PARAMS, flatten(point))
            hit = self.reuse.get(key)
            if hit is None and self.space is not None and self.counter is not None:
                # Search mode with several workers: another worker may have completed this point
                # since we last looked, or be running it now (a grid never repeats a point).
                hit = self._await_twin(key, trial)
            if hit is not None and hit != trial._trial_id:
                self._finish_reused(trial, storage.get_trial(hit))
                return True
            try:
                config = self.config.merged(point)
            except ConfigError as exc:
                # A model may reject one point's values: that trial fails, the sweep goes on.
                self._finish_fail(trial, f"config: {exc}")
                return True
            extra = dict(self._run_options)
            if self._passes_trial:
                extra["trial"] = trial  # for trial.report / should_prune (see README "Pruning")
            outcome = self.objective.run(
                config, trial_number=number, trial_dir=self.runs / f"trial_{number}", params=point, **extra
            )
        except KeyboardInterrupt:
            self._finish_fail(trial, "interrupted")
            raise
        except Exception as exc:  # a bug in user code outside the objective must not lose the trial
            self._finish_fail(trial, short_message(exc))
            raise
        self._finish(trial, outcome)
        return True

    def _await_twin(self, key: str, trial: optuna.Trial) -> int | None:
        """The id of a completed trial of ``key`` to reuse, waiting for a running one if needed.

        Of two workers suggested the same point at once, the lower trial number runs it and the
        other waits and reuses its result; if that trial fails (or its worker dies and it goes
        stale) this one runs the point itself. The key is published first, so that a twin with
        a higher number sees this trial.
        """
        storage, study_id = self.study._storage, self.study._study_id
        flush = getattr(storage, "flush", None)
        if flush is not None:
            flush()
        running = (TrialState.RUNNING,)
        while True:
            self._load_reuse()
            hit = self.reuse.get(key)
            if hit is not None:
                return hit
            if not any(
                t.number < trial.number and t.user_attrs.get(attrs.KEY) == key
                for t in storage.get_all_trials(study_id, deepcopy=False, states=running)
            ):
                return None
            if self.cancel is not None and self.cancel.wait(_TWIN_POLL):
                raise KeyboardInterrupt
            if self.cancel is None:
                time.sleep(_TWIN_POLL)

    # -- recording ---------------------------------------------------------------------------
    def _finish(self, trial: optuna.Trial, outcome: Any) -> None:
        storage, tid = self.study._storage, trial._trial_id
        metrics = dict(outcome.metrics or {})
        returns = take_returns(metrics)
        values: list[float] | str = (
            objective_values(self.metrics, metrics, outcome.value) if outcome.ok else str(outcome.reason)
        )
        if isinstance(returns, str) and not isinstance(values, str):
            values = returns
        storage.set_trial_user_attr(tid, attrs.FINGERPRINT, self.state.fingerprint)
        storage.set_trial_user_attr(tid, attrs.METRICS, jsonable(metrics))
        storage.set_trial_user_attr(tid, attrs.DURATION, round(float(outcome.duration), 6))
        storage.set_trial_user_attr(tid, attrs.ATTEMPTS, int(outcome.attempts))
        if outcome.result_path is not None:
            storage.set_trial_user_attr(tid, attrs.RESULT_PATH, str(outcome.result_path))
        if getattr(outcome, "pruned", False):
            self._finish_pruned(trial, str(outcome.reason or "pruned"))
            return
        if isinstance(values, str):
            self._finish_fail(trial, values)
            return
        try:
            feasible, cvalues, failed = self.require.check(metrics)
        except UnknownMetricError as exc:
            self._finish_fail(trial, str(exc), fatal=True)
            return
        storage.set_trial_user_attr(tid, attrs.FEASIBLE, feasible)
        if self.require:
            storage.set_trial_user_attr(tid, attrs.CONSTRAINTS, cvalues)
            if failed:
                storage.set_trial_user_attr(tid, attrs.INFEASIBLE, failed)
                storage.set_trial_user_attr(tid, attrs.REASON, "infeasible: " + "; ".join(failed))
        self._set_constraints(trial, cvalues)
        if returns is not None and not isinstance(returns, str):
            storage.set_trial_user_attr(tid, attrs.RETURNS_STATS, returns.stats)
            if feasible and self.keeper.wants(values[0]):
                storage.set_trial_user_attr(tid, attrs.RETURNS, returns.packed())
        self._tell(trial, values if len(values) > 1 else values[0])
        if feasible:
            self.keeper.note(values[0])
        self.reuse.setdefault(self.key, trial._trial_id)
        self.emit(
            TrialEvent(trial.number, "COMPLETE", values, None, float(outcome.duration), False, feasible)
        )

    def _tell(self, trial: optuna.Trial, values: Any = None, *, state: TrialState | None = None) -> None:
        try:
            # Study.tell also returns a deep copy of the finished trial, which nobody here reads
            # (a quarter of a trivial trial's bookkeeping); Optuna's own tell step does the rest.
            _tell_study(self.study, trial, values, state=state)
        except ValueError as exc:
            if "Cannot tell a" not in str(exc):
                raise
            raise FinishedElsewhere(f"trial {trial.number} was finished by another process") from None

    def _set_constraints(self, trial: optuna.Trial, values: list[float]) -> None:
        # Optuna >= 5 reads constraints set on the trial (older versions: `constraints_func`).
        if self.space is not None and self.require and hasattr(trial, "set_constraint"):
            for src, value in zip(self.require.sources, values, strict=True):
                trial.set_constraint(src, value)

    def _finish_reused(self, trial: optuna.Trial, hit: FrozenTrial) -> None:
        storage, tid = self.study._storage, trial._trial_id
        copied = (
            attrs.FINGERPRINT,
            attrs.METRICS,
            attrs.FEASIBLE,
            attrs.CONSTRAINTS,
            attrs.INFEASIBLE,
            attrs.RESULT_PATH,
        )
        for name in copied:
            if name in hit.user_attrs:
                storage.set_trial_user_attr(tid, name, hit.user_attrs[name])
        storage.set_trial_user_attr(tid, attrs.REUSED, hit.number)
        storage.set_trial_user_attr(tid, attrs.DURATION, 0.0)
        storage.set_trial_user_attr(tid, attrs.ATTEMPTS, 0)
        if attrs.CONSTRAINTS in hit.user_attrs:
            self._set_constraints(trial, list(hit.user_attrs[attrs.CONSTRAINTS]))
        values = list(hit.values or [])
        self._tell(trial, values if len(values) > 1 else values[0])
        feasible = bool(hit.user_attrs.get(attrs.FEASIBLE, True))
        self.emit(TrialEvent(trial.number, "COMPLETE", values, None, 0.0, True, feasible))

    def _reject(self, trial: optuna.Trial, violated: list[str]) -> None:
        """A suggestion outside ``where``: recorded PRUNED with one constraint value per broken
        ``where`` (TPE puts such trials among the bad ones and learns to avoid the region), marked
        rejected (not a trial of the sweep, not counted toward max_trials), and asked again.

        Issue 11: recording them as FAIL taught TPE nothing and spent the budget on no evaluation.
        """
        reason = "violates sweep.where: " + "; ".join(violated)
        storage, tid = self.study._storage, trial._trial_id
        storage.set_trial_system_attr(tid, attrs.REJECTED, reason)
        if hasattr(trial, "set_constraint"):  # Optuna >= 5; older TPE still ranks pruned trials low
            for src in violated:
                trial.set_constraint(f"where: {src}", 1.0)
        self._tell(trial, state=TrialState.PRUNED)
        self.rejected = True
        self.rejected_in_a_row += 1

    def _finish_pruned(self, trial: optuna.Trial, reason: str) -> None:
        """The pruner stopped the trial: PRUNED with its last reported value, never retried."""
        frozen = self.study._storage.get_trial(trial._trial_id)
        step = frozen.last_step
        if step is not None:
            reason = f"{reason} (at step {step})"
        self.study._storage.set_trial_user_attr(trial._trial_id, attrs.REASON, reason)
        self._tell(trial, state=TrialState.PRUNED)
        self.emit(TrialEvent(trial.number, "PRUNED", None, reason, 0.0, False, False))

    def _finish_fail(self, trial: optuna.Trial, reason: str, *, fatal: bool = False) -> None:
        storage = self.study._storage
        with contextlib.suppress(Exception):
            storage.set_trial_user_attr(trial._trial_id, attrs.REASON, reason)
        with contextlib.suppress(FinishedElsewhere):
            self._tell(trial, state=TrialState.FAIL)
        self.emit(TrialEvent(trial.number, "FAIL", None, reason, 0.0, False, False, fatal))


def _tell_study(study: optuna.Study, trial: optuna.Trial, values: Any, *, state: TrialState | None) -> None:
    if _tell_with_warning is None:
        study.tell(trial, values, state=state)
    else:
        _tell_with_warning(study=study, trial=trial, value_or_values=values, state=state)


def worker_main(
    plan: SweepPlan, state: RunState, index: int, events: Any, counter: Any, stop: Any, parent: int
) -> None:
    """Entry point of a worker process: its own storage connection, config cache and loop.

    It stops (as on Ctrl-C) when its runner ``parent`` dies, even of SIGKILL, and exits even if the
    objective left threads running.
    """
    before = set(threading.enumerate())
    status = 0
    try:
        with first_interrupt_only():
            follow_parent(parent)
            quiet_optuna()
            add_import_path(plan.import_path)
            worker = Worker(plan, state, emit=events.put, counter=counter, stop=stop, index=index)
            worker.loop()
    except KeyboardInterrupt:
        status = 130
    strays = [t.name for t in stray_threads(before)]
    if strays:
        # multiprocessing would wait for them at exit: flush the events, then leave without them.
        events.close()
        events.join_thread()
        leave(status, strays)
    if status:
        sys.exit(status)


def quiet_optuna() -> None:
    """Optuna's per-trial INFO lines would drown fastgrid's own progress."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
