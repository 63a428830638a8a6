"""What both objective kinds share: option checks, the trial directory, and the retry loop."""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastgrid.files import written_whole
from fastgrid.objective._outcome import TrialOutcome

__all__ = ["Attempt", "TrialFiles", "check_options", "retry", "write_json_atomic"]

CONFIG_FILE = "config.json"
OUTPUT_FILE = "output.json"
STDOUT_LOG = "stdout.log"
STDERR_LOG = "stderr.log"
ERROR_LOG = "error.log"


@dataclass(frozen=True, slots=True)
class TrialFiles:
    """The fixed layout of a trial directory (all paths absolute)."""

    dir: Path

    @classmethod
    def create(cls, trial_dir: Path | str) -> TrialFiles:
        path = Path(os.path.abspath(trial_dir))
        path.mkdir(parents=True, exist_ok=True)
        return cls(path)

    @property
    def config(self) -> Path:
        return self.dir / CONFIG_FILE

    @property
    def output(self) -> Path:
        return self.dir / OUTPUT_FILE

    @property
    def stdout(self) -> Path:
        return self.dir / STDOUT_LOG

    @property
    def stderr(self) -> Path:
        return self.dir / STDERR_LOG

    @property
    def error(self) -> Path:
        return self.dir / ERROR_LOG


def check_options(*, timeout: float | None, retries: int, backoff: float) -> float | None:
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise ValueError(f"timeout: expected seconds > 0 or None, got {timeout!r}")
        if math.isinf(timeout):
            return None
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries: expected an integer >= 0, got {retries!r}")
    if isinstance(backoff, bool) or not isinstance(backoff, (int, float)) or not backoff >= 0:
        raise ValueError(f"backoff: expected seconds >= 0, got {backoff!r}")
    return None if timeout is None else float(timeout)


def _json_default(value: Any) -> Any:
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        return item()
    raise TypeError(f"config value of type {type(value).__name__} is not JSON-serializable: {value!r:.80}")


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON through a temp file and a rename, so readers never see half a file."""
    text = json.dumps(data, indent=2, ensure_ascii=False, default=_json_default)
    with written_whole(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(text)


@dataclass(slots=True)
class Attempt:
    """One start of the objective; ``retryable`` is False for failures that cannot change."""

    ok: bool
    metrics: dict[str, Any] = field(default_factory=dict)
    value: float | tuple[float, ...] | None = None
    reason: str | None = None
    result_path: str | None = None
    returncode: int | None = None
    retryable: bool = True
    pruned: bool = False

    def outcome(self, *, attempts: int, started: float, **extra: Any) -> TrialOutcome:
        """The trial's outcome when this was its last attempt (``started``: its perf_counter start)."""
        return TrialOutcome(
            ok=self.ok,
            metrics=self.metrics,
            value=self.value,
            reason=self.reason,
            duration=time.perf_counter() - started,
            attempts=attempts,
            result_path=self.result_path,
            returncode=self.returncode,
            pruned=self.pruned,
            **extra,
        )


def retry(
    attempt: Callable[[int], Attempt],
    *,
    retries: int,
    backoff: float,
    before_retry: Callable[[int], None] | None = None,
) -> tuple[Attempt, int]:
    """Run ``attempt(n)`` until it succeeds, with ``backoff * 2**(n-1)`` seconds between tries.

    KeyboardInterrupt (and anything else raised) propagates at once: only a trial's own, reported
    failures are retried. Returns the last attempt and how many were made.
    """
    number = 1
    while True:
        result = attempt(number)
        if result.ok or not result.retryable or number > retries:
            return result, number
        if backoff > 0:
            time.sleep(backoff * 2 ** (number - 1))
        number += 1
        if before_retry is not None:
            before_retry(number)


def short_message(exc: BaseException) -> str:
    """``"ExceptionType: first line of the message"``, at most 300 characters."""
    try:
        text = str(exc).strip().splitlines()
    except Exception:  # an exception whose __str__ raises still fails only its trial
        text = ["(its message could not be read)"]
    message = f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
    return message if len(message) <= 300 else message[:297] + "..."


def merged_env(extra: Mapping[str, str], trial: Mapping[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra)
    env.update(trial)
    return env
