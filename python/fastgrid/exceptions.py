"""Every exception and warning fastgrid raises on purpose, in one module.

Bad input is a subclass of ``ValueError`` that names what is wrong and where (file, field,
parameter path). The compiled core's errors (:class:`SpecError` for parameter trees,
:class:`ConfigError` for configs and overrides, :class:`PatternError` for result-file patterns)
are defined in Rust and re-exported here, so ``fastgrid.exceptions`` is the one place to look.
"""

from __future__ import annotations

import errno
import os

from fastgrid._core import ConfigError, PatternError, SpecError

__all__ = [
    "BatchFailedError",
    "BatchObjectiveError",
    "ConfigChangedWarning",
    "ConfigError",
    "DocumentError",
    "HeartbeatLostError",
    "OutputFolderError",
    "PatternError",
    "SpecError",
    "StorageConnectionError",
    "StoreError",
    "StoreMismatchError",
    "SweepAbortedError",
    "SweepChangedError",
    "SweepDeletedError",
    "SweepFileError",
    "SweepInUseError",
]


class DocumentError(ValueError):
    """A JSON, TOML or YAML file that cannot be read: syntax, a duplicate key, too large or deep.

    ``file``, ``line`` and ``column`` say where (line and column when the parser knows them);
    ``reason`` is the sentence without the place. ``str()`` is ``file:line:column: reason``.
    """

    def __init__(self, file: str, reason: str, *, line: int | None = None, column: int | None = None) -> None:
        self.file = file
        self.reason = reason
        self.line = line
        self.column = column
        super().__init__(f"{self.where}: {reason}")

    @property
    def where(self) -> str:
        """``file``, ``file:line`` or ``file:line:column``."""
        out = self.file
        if self.line is not None:
            out += f":{self.line}"
            if self.column is not None:
                out += f":{self.column}"
        return out


class SweepFileError(ValueError):
    """A sweep file (or Sweep argument) that cannot be used; ``problems`` lists every finding.

    Each problem is a line ``KEY PATH: what is wrong`` and the message starts with the file.
    """

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        noun = "problem" if len(problems) == 1 else "problems"
        super().__init__(f"{source}: {len(problems)} {noun}:\n{lines}")


class SweepAbortedError(RuntimeError):
    """A sweep stopped because its first trials all failed for one reason (``[sweep] fail_fast``).

    ``reason`` is their failure reason, ``trials`` their numbers and ``evidence`` the path of a
    log (or trial folder) of one of them, when there is one. The trials are recorded; fixing the
    objective and running again runs them again.
    """

    def __init__(self, message: str, *, reason: str, trials: list[int], evidence: str | None) -> None:
        super().__init__(message)
        self.reason = reason
        self.trials = trials
        self.evidence = evidence


class SweepChangedError(ValueError):
    """The stored sweep was started with a different config or parameters tree than this run's."""


class StorageConnectionError(ConnectionError):
    """A storage server that cannot be reached, or whose lost connection was not regained within
    the reconnect window (``fastgrid+postgresql://...?reconnect_timeout=S``). What was committed
    before is kept; run again once the server is back."""


class SweepInUseError(SweepChangedError):
    """The run asks to delete the stored sweep (``--fresh``) while another run of it is alive."""


class StoreError(OSError):
    """The embedded store cannot be used: not a database, damaged, another program's, read-only, or
    on a full disk. ``path`` is the store file; ``str()`` is one line naming it and the fix."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        return (type(self), (self.path, self.reason))


class OutputFolderError(FileNotFoundError):
    """A file to write (``--to x.csv``, ``--csv``, ``--json``, ...) in a folder that does not exist:
    a typo more often than a wish, so it is not created. ``path`` is the file; ``str()`` is one
    line naming its folder and the fix."""

    def __init__(self, path: str) -> None:
        self.path = path
        folder = os.path.dirname(path)
        reason = f"{path}: the folder {folder!r} does not exist; create it first, or fix the path"
        super().__init__(errno.ENOENT, reason, path)

    def __str__(self) -> str:
        return str(self.strerror)

    def __reduce__(self) -> tuple[type, tuple[str]]:
        return (type(self), (self.path,))


class StoreMismatchError(SweepChangedError):
    """A batch sweep's store holds this sweep in another form (another grid, order, chunk size, or a
    per-trial sweep of the same name), or a per-trial run meets a batch sweep's study."""


class BatchObjectiveError(ValueError):
    """A batch objective returned something that cannot be recorded (wrong length, a missing or
    non-numeric metric, mixed dtypes). ``objective``, ``metric`` and ``slots`` name the place."""

    def __init__(self, message: str, *, objective: str, metric: str | None, slots: tuple[int, int]) -> None:
        super().__init__(message)
        self.objective = objective
        self.metric = metric
        self.slots = slots


class BatchFailedError(RuntimeError):
    """The first chunks of a batch sweep all failed the same way, so it stopped; ``reason`` says how."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class SweepDeletedError(RuntimeError):
    """A batch sweep was deleted while a run was running it (``--fresh`` of an older fastgrid, by
    hand, or of a process that found the run stale after its heartbeats stopped): the run stopped,
    and wrote nothing into a sweep of that name created since."""


class HeartbeatLostError(RuntimeError):
    """A batch worker could not renew its heartbeat for longer than the grace period (the store
    unreachable, its disk full, its file gone): other workers may have taken its chunks over, so it
    stopped after its current chunk (recorded only if its claim was still its own)."""


class ConfigChangedWarning(UserWarning):
    """The default config file changed on disk while a ``ConfigCache`` was serving it."""
