"""The runs of a sweep registered in its study: which are alive, and what a dead one left RUNNING."""

from __future__ import annotations

import contextlib
import os
import socket
import time
from typing import Any

import optuna
from optuna.trial import TrialState

from fastgrid import attrs
from fastgrid.study import direction_sign

__all__ = ["fail_stale", "live_runs", "progress_start", "register_run"]


def live_runs(study: optuna.Study) -> list[str]:
    """Other runs of this sweep registered in the study that may still be running.

    A run on this host is alive while its process is; a run on another host cannot be checked
    from here and counts as alive (heartbeats of distributed workers settle those).
    """
    host = socket.gethostname()
    live = []
    for name, info in study._storage.get_study_system_attrs(study._study_id).items():
        if not name.startswith(attrs.RUN_PREFIX) or not isinstance(info, dict):
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


def register_run(study: optuna.Study, run_id: str, *, active: bool) -> None:
    info: Any = {"host": socket.gethostname(), "pid": os.getpid(), "started": time.time()} if active else None
    study._storage.set_study_system_attr(study._study_id, attrs.RUN_PREFIX + run_id, info)


def fail_stale(study: optuna.Study) -> None:
    """RUNNING trials left by a killed earlier run of this sweep become FAIL (reason ``stale``).

    Only when no other run of the sweep is alive: its running trials are not stale.
    """
    if live_runs(study):
        return
    storage = study._storage
    for t in storage.get_all_trials(study._study_id, deepcopy=False, states=(TrialState.RUNNING,)):
        with contextlib.suppress(Exception):
            storage.set_trial_user_attr(t._trial_id, attrs.REASON, "stale: left running by an earlier run")
            storage.set_trial_state_values(t._trial_id, TrialState.FAIL)


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
