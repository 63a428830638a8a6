"""The runs of a sweep registered in its study: registering and renewing a run, and what a dead one
left RUNNING.

A run registers itself in a study system attr (``fastgrid:run:<id>``) with where it runs and a
heartbeat that it renews every ``heartbeat_interval`` seconds while it runs; each trial it starts
names it (trial system attr ``fastgrid:run``). Which runs are alive is :mod:`fastgrid.liveness`'s
rule (the batch runner asks it too).
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from fastgrid import attrs
from fastgrid.liveness import Liveness, identity, registered_runs, runs_in_progress
from fastgrid.storages import Heartbeat
from fastgrid.study import direction_sign

__all__ = [
    "RunHeartbeat",
    "progress_start",
    "reap",
    "register_run",
    "undecided_trials",
]

STALE_RUN_REASON = "stale: the run that started it stopped (killed or lost)"
STALE_EARLIER_REASON = "stale: left running by an earlier run"


def register_run(study: optuna.Study, run_id: str, *, active: bool) -> None:
    info: Any = None
    if active:
        now = time.time()
        info = {**identity(), "started": now, "beat": now}
    study._storage.set_study_system_attr(study._study_id, attrs.RUN_PREFIX + run_id, info)


class RunHeartbeat:
    """Renews this run's registration every ``interval`` seconds from :meth:`start` to :meth:`stop`.

    Started by the runner once its worker processes are started: a thread running before then
    would make forking them unsafe (``process_context`` then falls back to a slower forkserver).
    """

    def __init__(self, study: optuna.Study, run_id: str, *, interval: float) -> None:
        self.study, self.key, self.interval = study, attrs.RUN_PREFIX + run_id, float(interval)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._beat, name="fastgrid-run-heartbeat", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> RunHeartbeat:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _beat(self) -> None:
        storage, study_id = self.study._storage, self.study._study_id
        info = {**identity(), "started": time.time()}
        with contextlib.suppress(Exception):
            info = dict(storage.get_study_system_attrs(study_id).get(self.key) or info)
        while not self._stop.wait(self.interval):
            info["beat"] = time.time()
            with contextlib.suppress(Exception):  # a storage hiccup: the next beat retries
                storage.set_study_system_attr(study_id, self.key, info)


# -- what dead runs left ----------------------------------------------------------------------------
def reap(study: optuna.Study, *, own: str, heartbeat: Heartbeat, at_start: bool = False) -> list[int]:
    """Fail the RUNNING trials nobody runs any more; returns their numbers (their slots are retried).

    A trial whose run is dead, or ended, is failed at once. A trial that names no run (an older
    fastgrid's, one a plain Optuna process started, or one whose run was killed before its name
    was committed) is failed at once ``at_start`` of a run when no other run of the sweep is alive;
    otherwise when its own heartbeat (or start) is older than the grace period: later in a run it
    may be a trial of this very run whose name is not committed yet.
    """
    live = set(runs_in_progress(study, grace=heartbeat.grace, own=own))
    storage = study._storage
    failed: list[int] = []
    for t in storage.get_all_trials(study._study_id, deepcopy=False, states=(TrialState.RUNNING,)):
        owner = t.system_attrs.get(attrs.RUN)
        if owner == own or owner in live:
            continue
        if owner is None and (live or not at_start):
            continue  # judged by its heartbeat below
        reason = STALE_EARLIER_REASON if owner is None else STALE_RUN_REASON
        if _fail(storage, t, reason):
            failed.append(t.number)
    failed.extend(heartbeat.fail_stale(study))
    return failed


def _fail(storage: Any, t: FrozenTrial, reason: str) -> bool:
    try:
        storage.set_trial_user_attr(t._trial_id, attrs.REASON, reason)
        return bool(storage.set_trial_state_values(t._trial_id, TrialState.FAIL))
    except Exception:  # finished meanwhile by its owner or another reaper
        return False


def undecided_trials(study: optuna.Study, *, own: str, grace: float) -> int:
    """RUNNING trials of other runs that cannot be known alive from here (their run is elsewhere,
    or they name none): until they finish or go stale, the sweep is not known to be done."""
    judge = Liveness(grace)
    runs = registered_runs(study)
    count = 0
    for t in study._storage.get_all_trials(study._study_id, deepcopy=False, states=(TrialState.RUNNING,)):
        owner = t.system_attrs.get(attrs.RUN)
        if owner == own:
            continue
        info = runs.get(owner) if owner is not None else None
        if info is not None and judge.certain(info):
            continue  # a live run on this machine: it finishes what it started
        count += 1
    return count


def progress_start(study: optuna.Study, directions: list[str]) -> tuple[int, list[float] | None]:
    """Points already done (distinct keys) and the best feasible value so far, in one pass."""
    keys: set[Any] = set()
    best: float | None = None
    sign = direction_sign(directions[0])
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        ua = t.user_attrs
        keys.add(ua.get(attrs.KEY))
        values = t.values
        if (
            len(directions) == 1
            and values
            and ua.get(attrs.FEASIBLE, True)
            and (best is None or sign * values[0] < sign * best)
        ):
            best = values[0]
    return len(keys), None if best is None else [best]
