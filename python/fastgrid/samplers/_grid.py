"""``fastgrid.GridSampler``: an Optuna sampler over a lazy ``fastgrid.Grid``.

A trial's point comes from its storage-assigned trial number (unique across workers sharing a
storage), so trial ``n`` evaluates slot ``n`` of the grid (of its shuffled view with ``order =
"shuffled"``); nothing is materialized and the per-trial cost does not grow with the study.
Trials numbered past the grid's end retry the slots that have no completed trial (failed,
interrupted or stale ones); when none is left the study stops. The slot of such a retry is stored
in the trial's system attr ``fastgrid:slot`` so that retries are keyed by grid slot, not by number.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
)
from optuna.samplers import BaseSampler
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from fastgrid import attrs
from fastgrid.samplers._axes import (
    axis_field,
    encode_choice,
    exact_in_optuna,
    get_path,
    recorded_distributions,
)

__all__ = ["EXHAUSTED_ATTR", "FAILED_IN_ATTR", "SLOT_ATTR", "GridSampler"]

SLOT_ATTR = attrs.SLOT
EXHAUSTED_ATTR = attrs.EXHAUSTED
_DONE = (TrialState.COMPLETE, TrialState.PRUNED)  # states whose slot is never run again
FAILED_IN_ATTR = attrs.FAILED_IN
# System attrs Optuna writes: ``study.enqueue_trial``'s fixed params, and the number of the trial
# that ``RetryHeartbeatStaleTrialCallback`` re-queued.
_FIXED = "fixed_params"
_RETRY_OF = "failed_trial"
# How long a retry waits for a lower-numbered retry to write its claim (its worker may have died
# in between; then the claim goes ahead).
_CLAIM_WAIT = 10.0


class GridSampler(BaseSampler):
    """Evaluate every point of a ``fastgrid.Grid`` once, in grid or shuffled order.

    ``retry_failed`` bounds how often this process re-queues a slot that failed in this run (a
    resumed run retries every failed slot again). Use it like Optuna's GridSampler: the objective
    calls ``trial.suggest_*`` with the grid's dotted parameter paths, or reads the whole nested
    point with :meth:`point`.
    """

    def __init__(
        self,
        grid: Any,
        *,
        order: str = "sequential",
        seed: int | None = None,
        retry_failed: int = 1,
        first_trial: int = 0,
        run_id: str | None = None,
    ) -> None:
        if order not in ("sequential", "shuffled"):
            raise ValueError(f"order: expected 'sequential' or 'shuffled', got {order!r}")
        self._grid = grid
        self._order = order
        self._seed = 0 if seed is None else int(seed)
        self._view = grid if order == "sequential" else grid.shuffled(self._seed)
        self._n = len(self._view)
        self._retry_failed = retry_failed
        self._paths: dict[str, tuple[str, ...]] = {
            axis_field(a, "path"): tuple(axis_field(a, "path").split("."))
            for a in grid.axes
            if axis_field(a, "kind") != "fixed"
        }
        # What trials record (a trial may still suggest the rest; see ``params_exact``).
        self._distributions = recorded_distributions(grid.axes)
        self.params_exact = all(exact_in_optuna(a) for a in grid.axes)
        """False when some values cannot be Optuna params (integers past ±2**53): a runner then
        records each trial's exact point itself, as fastgrid's Sweep does (user attr ``params``)."""
        # A union of trees may give one path different kinds, or drop it from some points: such
        # a grid cannot be described by one Optuna distribution per parameter.
        paths = [axis_field(a, "path") for a in grid.axes]
        self.registers_params = len(paths) == len(set(paths))
        if not self.registers_params:
            self._distributions = {}
        self._lock = threading.Lock()
        self._points: dict[int, tuple[int, dict[str, Any]]] = {}
        self._failed_here: Counter[int] = Counter()
        self._exhausted: set[int] = set()
        # Trials numbered below `first_trial` belong to an earlier, different grid of the same study
        # (a resume with allow_changed): they count for nothing here.
        self._first = first_trial
        # With a run id, failures of this run are marked in the storage, so the retry budget is
        # shared by every worker of the run; without one each sampler counts its own.
        self._run_id = run_id

    @property
    def size(self) -> int:
        return self._n

    @property
    def distributions(self) -> dict[str, BaseDistribution]:
        """Varying parameters (dotted path → distribution); parameters of one value are not registered.

        Empty for a union of trees whose parameters differ (``registers_params`` is then False).
        """
        return dict(self._distributions)

    # -- Optuna sampler protocol ---------------------------------------------------------------
    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return {}

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        stored = trial.system_attrs.get(SLOT_ATTR)
        slot: int
        if stored is None and _RETRY_OF in trial.system_attrs:
            # Optuna's RetryHeartbeatStaleTrialCallback re-queues a stale trial with its params and
            # system attrs: it evaluates the original's slot (a stored slot is inherited; a first
            # pass slot is the original's number), not the one its own number would name.
            stored = self._slot_of_number(study, trial.system_attrs[_RETRY_OF])
            if stored is not None:
                study._storage.set_trial_system_attr(trial._trial_id, SLOT_ATTR, stored)
        if stored is None and _FIXED in trial.system_attrs:
            # An enqueued trial (``study.enqueue_trial``): its params were chosen by someone else,
            # so it takes no slot and the slot its number would name runs later, as a retry does.
            return
        if stored is not None:
            slot = int(stored)
        elif 0 <= trial.number - self._first < self._n:
            slot = trial.number - self._first
        else:
            retry = self._next_retry(study, trial.number, exclude=trial._trial_id)
            claimed = False
            if retry is not None:
                slot = retry
                study._storage.set_trial_system_attr(trial._trial_id, SLOT_ATTR, slot)
                claimed = self._claim_holds(study, trial, slot)
            if not claimed:
                # Nothing left (or another worker claimed the same retry first): like Optuna's
                # GridSampler, hand out a point anyway and stop the study; fastgrid's Sweep
                # checks `exhausted()` and never runs it.
                study._storage.set_trial_system_attr(trial._trial_id, EXHAUSTED_ATTR, True)
                with self._lock:
                    self._exhausted.add(trial._trial_id)
                if retry is None:
                    slot = (trial.number - self._first) % self._n
                    study._storage.set_trial_system_attr(trial._trial_id, SLOT_ATTR, slot)
                _stop(study)
        point = self._view[slot]
        with self._lock:
            self._points[trial._trial_id] = (slot, point)

    def sample_independent(
        self, study: Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        with self._lock:
            entry = self._points.get(trial._trial_id)
        if entry is None:
            if _FIXED in trial.system_attrs:
                # Optuna's GridSampler raises ValueError here too (test_enqueued_insufficient_trial).
                raise ValueError(
                    f"trial {trial.number} was enqueued without parameter {param_name!r}: an enqueued "
                    "trial takes no grid point, so give it every parameter the objective suggests"
                )
            raise RuntimeError(f"trial {trial.number} was not prepared by GridSampler.before_trial")
        parts = self._paths.get(param_name)
        if parts is None:
            raise ValueError(
                f"parameter {param_name!r} is not in the grid (varying parameters: {', '.join(self._paths)})"
            )
        try:
            value = get_path(entry[1], parts)
        except KeyError:
            raise ValueError(f"parameter {param_name!r} is not part of grid point {entry[0]}") from None
        if isinstance(param_distribution, CategoricalDistribution):
            return encode_choice(value, param_distribution.choices)
        return value

    def after_trial(
        self, study: Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None
    ) -> None:
        with self._lock:
            entry = self._points.pop(trial._trial_id, None)
        slot = entry[0] if entry is not None else self.slot_of(trial)
        exhausted = trial.system_attrs.get(EXHAUSTED_ATTR, False)
        # A pruned point was judged, not lost: like a completed one it is not run again.
        done = state in _DONE
        if not done and slot is not None and not exhausted:
            if self._run_id is not None:
                study._storage.set_trial_system_attr(trial._trial_id, FAILED_IN_ATTR, self._run_id)
            with self._lock:
                self._failed_here[slot] += 1
        if (
            trial.number - self._first >= self._n - 1
            and self.remaining(
                study,
                after=trial.number + 1,
                exclude=trial._trial_id,
                done=slot if done else None,
                failed=slot if not done and not exhausted else None,
            )
            == 0
        ):
            _stop(study)

    # -- fastgrid extensions -------------------------------------------------------------------
    def point(self, trial: optuna.Trial | FrozenTrial) -> dict[str, Any]:
        """The nested point assigned to a running trial (a fresh dict; the caller may mutate it)."""
        with self._lock:
            entry = self._points.get(trial._trial_id)
        if entry is None:
            raise RuntimeError(f"trial {trial.number} was not prepared by GridSampler.before_trial")
        return entry[1]

    def slot(self, trial: optuna.Trial | FrozenTrial) -> int:
        with self._lock:
            entry = self._points.get(trial._trial_id)
        if entry is None:
            raise RuntimeError(f"trial {trial.number} was not prepared by GridSampler.before_trial")
        return entry[0]

    def slot_of(self, trial: FrozenTrial) -> int | None:
        """The grid slot a stored trial evaluated (None for a trial that was never assigned one)."""
        rel = trial.number - self._first
        if rel < 0:
            return None
        slot = trial.system_attrs.get(SLOT_ATTR)
        if slot is not None:
            return int(slot)
        if _FIXED in trial.system_attrs:
            return None  # enqueued: its params are its own
        return rel if rel < self._n else None

    def _slot_of_number(self, study: Study, number: Any) -> int | None:
        """The slot of the stored trial numbered ``number`` (None if there is none)."""
        try:
            trial_id = study._storage.get_trial_id_from_study_id_trial_number(study._study_id, int(number))
            return self.slot_of(study._storage.get_trial(trial_id))
        except (KeyError, TypeError, ValueError):
            return None

    def exhausted(self, trial: optuna.Trial | FrozenTrial) -> bool:
        """True when the trial was created after every slot was done or taken (do not run it)."""
        with self._lock:
            if trial._trial_id in self._exhausted:
                return True
        return isinstance(trial, FrozenTrial) and bool(trial.system_attrs.get(EXHAUSTED_ATTR, False))

    def is_exhausted(self, study: Study) -> bool:
        """True when no slot is left to run (Optuna's ``GridSampler.is_exhausted``)."""
        after = len(study._storage.get_all_trials(study._study_id, deepcopy=False))
        return self.remaining(study, after=after) == 0

    def remaining(
        self,
        study: Study,
        *,
        after: int,
        exclude: int | None = None,
        done: int | None = None,
        failed: int | None = None,
    ) -> int:
        """Slots that a trial numbered ``after`` or later would still run.

        Fresh slots ``after..n-1`` are counted without reading the storage; past the grid's end
        it scans the study once (only the tail of a sweep, or a resume, pays for that).
        """
        fresh = max(self._n - (after - self._first), 0)
        if fresh:
            return fresh
        return len(self._candidates(study, exclude=exclude, done=done, failed=failed))

    def _candidates(
        self, study: Study, *, exclude: int | None, done: int | None = None, failed: int | None = None
    ) -> list[int]:
        """Slots with no completed, running or waiting trial and retries left.

        ``exclude`` is a trial being told, ``done``/``failed`` its slot as it will be stored.
        """
        taken: set[int] = set() if done is None else {done}
        failed_in_run: Counter[int] = Counter()
        run_id = self._run_id
        holding = (*_DONE, TrialState.RUNNING, TrialState.WAITING)
        for t in study._storage.get_all_trials(study._study_id, deepcopy=False):
            system = t.system_attrs
            if t._trial_id == exclude or system.get(EXHAUSTED_ATTR):
                continue
            slot = self.slot_of(t)
            if slot is None:
                continue
            if t.state in holding:
                taken.add(slot)
            elif run_id is not None and system.get(FAILED_IN_ATTR) == run_id:
                failed_in_run[slot] += 1
        if self._run_id is not None:
            failed_here = dict(failed_in_run)
            if failed is not None:
                # The trial being told as failed is not stored as FAIL yet.
                failed_here[failed] = failed_here.get(failed, 0) + 1
        else:
            with self._lock:
                failed_here = dict(self._failed_here)
        if not failed_here and len(taken) >= self._n:
            return []
        return [s for s in range(self._n) if s not in taken and failed_here.get(s, 0) <= self._retry_failed]

    def _claim_holds(self, study: Study, trial: FrozenTrial, slot: int) -> bool:
        """Whether this trial keeps the retry of ``slot``: the lowest-numbered claimant wins.

        Workers choose retries from what they read, so two may pick the same failed slot at
        once. Each writes its claim first and then reads the trials numbered below its own: a
        claim of the same slot there, or a retry whose claim is not written yet (its worker is
        between ask and claim, milliseconds), decides. Trial numbers follow creation order, so
        of two racing claimants the higher one always sees the lower one.
        """
        deadline = time.monotonic() + _CLAIM_WAIT
        while True:
            undecided = False
            for t in study._storage.get_all_trials(study._study_id, deepcopy=False):
                if t.number >= trial.number or t.number - self._first < self._n:
                    continue
                if t.system_attrs.get(EXHAUSTED_ATTR) or _FIXED in t.system_attrs:
                    continue  # ran nothing, or an enqueued trial (it claims no slot)
                other = t.system_attrs.get(SLOT_ATTR)
                if other is None:
                    undecided = undecided or t.state in (TrialState.RUNNING, TrialState.WAITING)
                elif int(other) == slot and t.state != TrialState.FAIL:
                    return False
            if not undecided or time.monotonic() > deadline:
                return True
            time.sleep(0.01)

    def _next_retry(self, study: Study, number: int, *, exclude: int) -> int | None:
        candidates = self._candidates(study, exclude=exclude)
        if not candidates:
            return None
        # Rotating by trial number spreads concurrent workers over different slots.
        return candidates[(number - self._first - self._n) % len(candidates)]


def _stop(study: Study) -> None:
    # `Study.stop` refuses outside `optimize`; fastgrid's own loop checks `remaining()` instead.
    with contextlib.suppress(RuntimeError):
        study.stop()
