"""What a running sweep prints: a start block, progress in one of four modes, and a summary.

Modes (issue 11: a batch run printed one line per trial, 10^4 lines for a 10^4 sweep):

- ``bar``: a rich progress bar (the default on a terminal);
- ``periodic``: a summary line every ``interval`` seconds or every 5% of a known total (the default
  without a terminal: logs, CI, notebooks, the Python API);
- ``trials``: one line per finished trial (``--verbose``);
- ``quiet``: the start block, the first failure of each reason, and the summary (``--quiet``).

Every mode prints the start block (direction, metric, the grid, the budget) and each new failure
reason once, so a systematic error is seen at its first trial.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from fastgrid.study import same_reason

__all__ = ["MODES", "Reporter", "TrialEvent", "choose_mode"]

MODES = ("bar", "periodic", "trials", "quiet")
_PERIOD = 10.0  # seconds between two lines of the periodic mode
_STEP = 0.10  # ... or this fraction of a known total,
_STEP_GAP = 2.0  # ... but not sooner than this after the last line (a fast sweep is not a log flood)


@dataclass(frozen=True)
class TrialEvent:
    """A finished trial, as workers report it to the process that shows progress."""

    number: int
    state: str
    values: list[float] | None
    reason: str | None
    duration: float
    reused: bool
    feasible: bool
    fatal: bool = False
    """The failure is the sweep's, not the point's (a ``require`` naming no returned metric)."""


def choose_mode(*, progress: bool | None, quiet: bool = False, verbose: bool = False, tty: bool) -> str:
    """The mode for the CLI's flags and ``Sweep``'s keywords of the same names."""
    if quiet and verbose:
        raise ValueError("quiet and verbose exclude each other")
    if quiet:
        return "quiet"
    if verbose:
        return "trials"
    if progress is None:
        return "bar" if tty else "periodic"
    return "bar" if progress else "periodic"


def _fmt(values: list[float] | None) -> str:
    if not values:
        return "-"
    return ", ".join(f"{v:.6g}" for v in values)


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Reporter:
    """Counts finished trials and shows them; ``total`` is None when the sweep has no known end.

    ``done`` counts the points already done when the run starts; ``watch`` sees every event after
    it is counted and may raise to stop the run (fail fast).
    """

    def __init__(
        self,
        *,
        name: str,
        total: int | None,
        done: int,
        directions: list[str],
        mode: str = "periodic",
        best: list[float] | None = None,
        stream: TextIO | None = None,
        watch: Callable[[TrialEvent], None] | None = None,
        interval: float = _PERIOD,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"progress mode: expected one of {', '.join(MODES)}, got {mode!r}")
        self.name, self.total, self.done = name, total, done
        self.directions = directions
        self.mode = mode
        self.stream = stream if stream is not None else sys.stderr
        self.failed = 0
        self.reused = 0
        self.best = best
        self.watch = watch
        self.interval = interval
        self._clock = clock
        self._start = clock()
        self._first = done
        self._last_line = self._start
        self._next_step = self._step_after(done)
        self._reasons: set[str] = set()
        self._progress: Any = None
        self._task: Any = None

    @property
    def tty(self) -> bool:
        return self.mode == "bar"

    def __enter__(self) -> Reporter:
        if self.mode == "bar":
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("best {task.fields[best]}  failed {task.fields[failed]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(file=self.stream),
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task(
                self.name, total=self.total, completed=self.done, best=_fmt(self.best), failed=0
            )
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def _print(self, text: str) -> None:
        if self._progress is not None:
            self._progress.console.print(text, highlight=False, markup=False)
        else:
            print(text, file=self.stream, flush=True)

    def start(self, lines: list[str]) -> None:
        """The start block: what runs, which way is better, what ends it (every mode prints it)."""
        for line in lines:
            print(line, file=self.stream, flush=True)

    def _better(self, values: list[float]) -> bool:
        if self.best is None:
            return True
        if len(values) != 1:
            return False
        return values[0] > self.best[0] if self.directions[0] == "maximize" else values[0] < self.best[0]

    def _step_after(self, done: int) -> int | None:
        if not self.total:
            return None
        step = max(1, int(self.total * _STEP))
        return (done // step + 1) * step

    def update(self, event: TrialEvent) -> None:
        if event.state == "COMPLETE":
            self.done += 1
            self.reused += event.reused
            if event.feasible and event.values is not None and self._better(event.values):
                self.best = list(event.values)
        elif event.state == "PRUNED":
            self.done += 1  # judged by the pruner: its point is done
        else:
            self.failed += 1
        self._show(event)
        if self.watch is not None:
            self.watch(event)

    def _show(self, event: TrialEvent) -> None:
        if event.state == "FAIL" and self.mode != "trials":
            # Each new reason once, in every mode: a systematic error is seen at its first trial.
            key = same_reason(event.reason or "")
            if key not in self._reasons:
                self._reasons.add(key)
                self._print(f"[{self.name}] trial {event.number} FAIL: {event.reason}")
        if self._progress is not None:
            self._progress.update(self._task, completed=self.done, best=_fmt(self.best), failed=self.failed)
        elif self.mode == "trials":
            self._trial_line(event)
        elif self.mode == "periodic":
            now = self._clock()
            since = now - self._last_line
            stepped = self._next_step is not None and self.done >= self._next_step and since >= _STEP_GAP
            if stepped or since >= self.interval:
                self._last_line = now
                self._next_step = self._step_after(self.done)
                self._print(self.status_line(now))

    def _trial_line(self, event: TrialEvent) -> None:
        if event.state == "COMPLETE":
            tag = " reused" if event.reused else ""
            tag += "" if event.feasible else " infeasible"
            text = f"trial {event.number} ok{tag} value={_fmt(event.values)} ({event.duration:.2f}s)"
        elif event.state == "PRUNED":
            text = f"trial {event.number} {event.reason}"
        else:
            text = f"trial {event.number} FAIL: {event.reason}"
        of = f"/{self.total}" if self.total is not None else ""
        self._print(f"[{self.name}] {text}  done {self.done}{of} best={_fmt(self.best)}")

    def status_line(self, now: float | None = None) -> str:
        """``[name] 120/1056 done (11%), 3 failed, best 1.23; 0:01:12 elapsed, ~0:09:00 left``."""
        now = self._clock() if now is None else now
        elapsed = now - self._start
        if self.total:
            share = f"{self.done}/{self.total} done ({100 * self.done / self.total:.0f}%)"
        else:
            share = f"{self.done} done"
        text = (
            f"[{self.name}] {share}, {self.failed} failed, best {_fmt(self.best)}; {_clock(elapsed)} elapsed"
        )
        ran = self.done + self.failed - self._first
        if self.total and ran > 0 and self.done < self.total:
            left = elapsed / ran * (self.total - self.done)
            text += f", ~{_clock(left)} left"
        return text

    def summary(self, result: Any, *, lines: Sequence[str] = ()) -> None:
        """The run's last word: what ran, what the study holds, and ``lines`` (budget, best)."""
        counts = result.counts
        elapsed = self._clock() - self._start
        head = "interrupted" if result.interrupted else "finished"
        rejected = counts.get("rejected")
        out = [
            f"sweep {result.name} {head} after {elapsed:.1f}s: ran {result.ran} trial(s) this run; "
            f"{counts['complete']} complete ({counts['reused']} reused, {counts['infeasible']} infeasible), "
            f"{counts['failed']} failed"
            + (f", {counts['pruned']} pruned" if counts.get("pruned") else "")
            + " in the study"
            + (f"; {rejected} suggestion(s) outside where asked again" if rejected else ""),
            *lines,
        ]
        if result.interrupted:
            out.append("run the same command again to resume")
        print("\n".join(out), file=self.stream, flush=True)
