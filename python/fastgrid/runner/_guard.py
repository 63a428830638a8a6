"""Fail fast: a sweep whose first trials all fail for one reason stops instead of burning its grid.

A systematic error (a ``TypeError`` in the objective, a wrong argv, a ``require`` naming a metric the
objective does not return) fails every point the same way; running the whole grid, then retrying
every failed slot, only multiplies it (issue 11: 1,736 trials of one ``TypeError``). The progress
reporter hands every event to :meth:`FailFast.observe`, which stops the run by raising
:class:`Stopped` from the event path (in the process that shows progress, so no worker pool needs
to know) once it has seen enough.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fastgrid.runner._progress import TrialEvent
from fastgrid.study import same_reason

__all__ = ["DEFAULT_FAIL_FAST", "FailFast", "Stopped", "trial_evidence"]

DEFAULT_FAIL_FAST = 5
"""How many first trials failing for one reason stop a sweep (``[sweep] fail_fast``; 0 disables)."""

# Failures that say nothing about the objective: the run's own bookkeeping.
_NOT_THE_OBJECTIVES = ("interrupted", "stale", "nothing left to run")


@dataclass
class Stopped(Exception):
    """Raised from the event path to stop the run's workers; the runner turns it into the error the
    user sees once the run is recorded."""

    reason: str
    trials: list[int]
    fatal: bool

    def __str__(self) -> str:
        return self.reason


class FailFast:
    """Watches the first ``limit`` trials a run finishes; trips when all failed for one reason.

    A trial that completes (or is pruned) before that disarms it for the rest of the run; a fatal
    failure (the sweep's, not the point's) trips it at once.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.armed = limit > 0
        self.seen: list[int] = []
        self.reasons: set[str] = set()
        self.first_reason = ""

    def observe(self, event: TrialEvent) -> None:
        if event.fatal and event.reason:
            raise Stopped(event.reason, [event.number], fatal=True)
        if not self.armed:
            return
        if event.state != "FAIL":
            if not event.reused:
                self.armed = False
            return
        reason = event.reason or ""
        if any(reason.startswith(word) for word in _NOT_THE_OBJECTIVES):
            return
        self.seen.append(event.number)
        self.reasons.add(same_reason(reason))
        self.first_reason = self.first_reason or reason
        if len(self.reasons) > 1:
            self.armed = False
        elif len(self.seen) >= self.limit:
            self.armed = False
            raise Stopped(self.first_reason, list(self.seen), fatal=False)


def trial_evidence(runs_dir: Path, numbers: list[int]) -> str:
    """Where to look: the first existing log of the failed trials, else a trial folder, else ''."""
    for number in numbers:
        folder = runs_dir / f"trial_{number}"
        for log in ("error.log", "stderr.log"):
            if (folder / log).is_file() and (folder / log).stat().st_size > 0:
                return str(folder / log)
    for number in numbers:
        folder = runs_dir / f"trial_{number}"
        if folder.is_dir():
            return str(folder)
    return ""
