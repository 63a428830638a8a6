"""The runs of a sweep registered in its study: which are alive, and what a dead one left RUNNING.

A run registers itself in a study system attr (``fastgrid:run:<id>``) with where it runs and a
heartbeat that it renews every ``heartbeat_interval`` seconds while it runs; each trial it starts
names it (trial system attr ``fastgrid:run``). A run is alive when:

- it runs on this machine, in this PID namespace: its process is there (the same pid with the same
  start time, so a reused pid is not mistaken for it); this is known at once;
- anywhere else (another host, another container, a restarted container where it was PID 1): its
  heartbeat is younger than the grace period. A (hostname, pid) pair alone decides nothing
  (issue 12, item 3): hostnames change with containers and a pid may be anybody's.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from fastgrid import attrs
from fastgrid.storages import Heartbeat
from fastgrid.study import direction_sign

__all__ = [
    "Liveness",
    "RunHeartbeat",
    "describe_run",
    "progress_start",
    "reap",
    "register_run",
    "runs_in_progress",
    "undecided_trials",
]

STALE_RUN_REASON = "stale: the run that started it stopped (killed or lost)"
STALE_EARLIER_REASON = "stale: left running by an earlier run"


# -- who this process is --------------------------------------------------------------------------
def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def _start_ticks(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot; Linux), None if there is none."""
    stat = _read(f"/proc/{pid}/stat")
    if stat is None:
        return None
    try:
        fields = stat.rsplit(")", 1)[1].split()
        return None if fields[0] == "Z" else int(fields[19])  # a zombie has stopped running
    except (IndexError, ValueError):
        return None


def _pid_namespace() -> int | None:
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return None


_BOOT = _read("/proc/sys/kernel/random/boot_id")


def identity() -> dict[str, Any]:
    """What a run registers about its process."""
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "boot": _BOOT,
        "pidns": _pid_namespace(),
        "ticks": _start_ticks(os.getpid()),
    }


# -- liveness -------------------------------------------------------------------------------------
class Liveness:
    """Judges registered runs: alive, dead, or (elsewhere) alive while their heartbeat is fresh."""

    def __init__(self, grace: float) -> None:
        self.grace = float(grace)
        self.me = identity()

    def certain(self, info: dict[str, Any]) -> bool | None:
        """True or False when the run's process can be looked at from here, else None."""
        me = self.me
        if me["boot"] is None or me["pidns"] is None or me["ticks"] is None:
            return None
        if info.get("boot") != me["boot"] or info.get("pidns") != me["pidns"]:
            return None
        try:
            pid = int(info["pid"])
        except (KeyError, TypeError, ValueError):
            return None
        ticks = _start_ticks(pid)
        return ticks is not None and ticks == info.get("ticks")

    def alive(self, info: dict[str, Any], now: float | None = None) -> bool:
        known = self.certain(info)
        if known is not None:
            return known
        beat: Any = info.get("beat", info.get("started"))
        try:
            age = (time.time() if now is None else now) - float(beat)
        except (TypeError, ValueError):
            return False
        return age <= self.grace


def _registered(study: optuna.Study) -> dict[str, dict[str, Any]]:
    prefix = attrs.RUN_PREFIX
    return {
        name[len(prefix) :]: info
        for name, info in study._storage.get_study_system_attrs(study._study_id).items()
        if name.startswith(prefix) and isinstance(info, dict)
    }


def runs_in_progress(
    study: optuna.Study, *, grace: float, own: str | None = None
) -> dict[str, dict[str, Any]]:
    """The other runs of the sweep that are alive (run id -> what they registered)."""
    judge, now = Liveness(grace), time.time()
    return {rid: info for rid, info in _registered(study).items() if rid != own and judge.alive(info, now)}


def describe_run(info: dict[str, Any]) -> str:
    beat: Any = info.get("beat", info.get("started"))
    try:
        ago = f", last heartbeat {time.time() - float(beat):.0f}s ago"
    except (TypeError, ValueError):
        ago = ""
    return f"host {info.get('host')}, pid {info.get('pid')}{ago}"


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
    judge = Liveness(heartbeat.grace)
    now = time.time()
    runs = _registered(study)
    live = {rid for rid, info in runs.items() if rid != own and judge.alive(info, now)}
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
    runs = _registered(study)
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
