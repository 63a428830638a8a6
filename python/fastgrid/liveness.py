"""Which runs of a sweep are alive: the registry every run keeps in its study (issue 12, item 3).

A run registers itself in a study system attr (``fastgrid:run:<id>``) with where it runs and a
heartbeat that it renews every ``heartbeat_interval`` seconds while it runs. A run is alive when:

- it runs on this machine, in this PID namespace: its process is there (the same pid with the same
  start time, so a reused pid is not mistaken for it); this is known at once;
- anywhere else (another host, another container, a restarted container where it was PID 1): its
  heartbeat is younger than the grace period. A (hostname, pid) pair alone decides nothing:
  hostnames change with containers and a pid may be anybody's.

The per-trial runner registers and renews runs (``fastgrid.runner``); whoever is about to delete a
sweep (``--fresh``, per-trial or batch) asks here first. A batch run registers in its chunk store
instead (``fastgrid_batch_runs``, beside the chunks it claims), judged by the rule that lets
workers take over a chunk (``ChunkStore._stale``: the heartbeat by the store's clock, so machines
whose clocks differ agree), and named the same way (``describe_run``).
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from fastgrid import attrs

__all__ = ["Liveness", "describe_run", "identity", "registered_runs", "runs_in_progress"]


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


def registered_runs(study: Any) -> dict[str, dict[str, Any]]:
    """Every run registered in ``study`` (an Optuna study), alive or not: run id -> its record."""
    prefix = attrs.RUN_PREFIX
    return {
        name[len(prefix) :]: info
        for name, info in study._storage.get_study_system_attrs(study._study_id).items()
        if name.startswith(prefix) and isinstance(info, dict)
    }


def runs_in_progress(study: Any, *, grace: float, own: str | None = None) -> dict[str, dict[str, Any]]:
    """The other runs of the sweep that are alive (run id -> what they registered)."""
    judge, now = Liveness(grace), time.time()
    return {
        rid: info for rid, info in registered_runs(study).items() if rid != own and judge.alive(info, now)
    }


def describe_run(info: dict[str, Any], *, age: float | None = None) -> str:
    """``host H, pid P, last heartbeat Ns ago``: who runs a sweep, for a refused ``--fresh``
    (``age``: seconds since its heartbeat, when the store's clock said; else by its ``beat``)."""
    beat: Any = info.get("beat", info.get("started"))
    try:
        ago = f", last heartbeat {age if age is not None else time.time() - float(beat):.0f}s ago"
    except (TypeError, ValueError):
        ago = ""
    return f"host {info.get('host')}, pid {info.get('pid')}{ago}"
