"""Progress of a running sweep: a rich bar on a terminal, one concise line per trial otherwise."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Any, TextIO

__all__ = ["Reporter", "TrialEvent"]


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


def _fmt(values: list[float] | None) -> str:
    if not values:
        return "-"
    return ", ".join(f"{v:.6g}" for v in values)


class Reporter:
    """Counts finished trials and shows them; ``total`` is None when the sweep has no known end."""

    def __init__(
        self,
        *,
        name: str,
        total: int | None,
        done: int,
        directions: list[str],
        tty: bool,
        best: list[float] | None = None,
        stream: TextIO | None = None,
    ) -> None:
        self.name, self.total, self.done = name, total, done
        self.directions = directions
        self.tty = tty
        self.stream = stream if stream is not None else sys.stderr
        self.failed = 0
        self.reused = 0
        self.best = best
        self._progress: Any = None
        self._task: Any = None
        self._start = time.monotonic()

    def __enter__(self) -> Reporter:
        if self.tty:
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
                self.name, total=self.total, completed=self.done, best="-", failed=0
            )
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def _better(self, values: list[float]) -> bool:
        if self.best is None:
            return True
        if len(values) != 1:
            return False
        return values[0] > self.best[0] if self.directions[0] == "maximize" else values[0] < self.best[0]

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
        if self._progress is not None:
            self._progress.update(self._task, completed=self.done, best=_fmt(self.best), failed=self.failed)
            return
        if event.state == "COMPLETE":
            tag = " reused" if event.reused else ""
            tag += "" if event.feasible else " infeasible"
            text = f"trial {event.number} ok{tag} value={_fmt(event.values)} ({event.duration:.2f}s)"
        elif event.state == "PRUNED":
            text = f"trial {event.number} {event.reason}"
        else:
            text = f"trial {event.number} FAIL: {event.reason}"
        of = f"/{self.total}" if self.total is not None else ""
        print(
            f"[{self.name}] {text}  done {self.done}{of} best={_fmt(self.best)}", file=self.stream, flush=True
        )

    def summary(self, result: Any) -> None:
        counts = result.counts
        elapsed = time.monotonic() - self._start
        head = "interrupted" if result.interrupted else "finished"
        lines = [
            f"sweep {result.name} {head} after {elapsed:.1f}s: ran {result.ran} trial(s) this run; "
            f"{counts['complete']} complete ({counts['reused']} reused, {counts['infeasible']} infeasible), "
            f"{counts['failed']} failed"
            + (f", {counts['pruned']} pruned" if counts.get("pruned") else "")
            + " in the study"
        ]
        if result.interrupted:
            lines.append("run the same command again to resume")
        print("\n".join(lines), file=self.stream, flush=True)
