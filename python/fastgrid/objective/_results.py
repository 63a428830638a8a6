"""Results of scripts that name their own result file, found through ``fastgrid.ResultIndex``."""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from fastgrid.objective._placeholders import Template, parse
from fastgrid.results import DEFAULT_PATTERN, ResultIndex

__all__ = ["ResultsSpec", "SharedIndex", "results_turn"]

_PATTERN_FIELD = re.compile(r"\{([A-Za-z_]\w*)")


@dataclass(frozen=True, slots=True)
class ResultsSpec:
    """Where a script that names its own result file puts it.

    ``dir`` (relative paths are taken from the command's working directory) and ``pattern`` are
    those of :class:`fastgrid.ResultIndex`; ``key`` maps pattern fields to templates with the
    command placeholders (``{"symbol": "{params.symbol}"}``) and picks this trial's file. The
    trial's result is the newest matching file that is newer than the newest one that existed
    before the trial started; ``wait`` is how long to wait for it after the command exits (the
    watcher may lag a little behind the write). Trials of this process whose keys render the
    same cannot tell their files apart, so they take turns (see :func:`results_turn`).
    """

    dir: str | Path
    pattern: str = DEFAULT_PATTERN
    key: Mapping[str, str] = field(default_factory=dict)
    order_by: str = "stamp"
    wait: float = 10.0
    watch: bool = True
    recursive: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.key, Mapping):
            raise ValueError(
                f"results.key: expected a table of pattern field → template, got {type(self.key).__name__}"
            )
        object.__setattr__(self, "key", dict(self.key))
        # ResultIndex looks a result up by ALL its key fields: every pattern field except the
        # order field and wildcards (`_`, `_name`).
        literal = self.pattern.replace("{{", "").replace("}}", "")
        fields = {f for f in _PATTERN_FIELD.findall(literal) if f != self.order_by and not f.startswith("_")}
        for name in self.key:
            if name not in fields:
                raise ValueError(
                    f"results.key: {name!r} is not a key field of the pattern {self.pattern!r} "
                    f"(key fields: {', '.join(sorted(fields)) or 'none'})"
                )
        missing = sorted(fields - set(self.key))
        if missing:
            raise ValueError(
                f"results.key: missing {', '.join(map(repr, missing))}; give a template for every key "
                f"field of the pattern {self.pattern!r}, e.g. {{{missing[0]!r}: '{{params.{missing[0]}}}'}}"
            )
        if not self.wait >= 0:
            raise ValueError(f"results.wait: expected seconds >= 0, got {self.wait!r}")

    def templates(self) -> dict[str, Template]:
        return {name: parse(text, where=f"results.key[{name!r}]") for name, text in self.key.items()}


class ResultIndexLike(Protocol):
    def latest(self, **fields: Any) -> Path | None: ...

    def wait_for(self, *, newer_than: Path | None = None, timeout: float, **fields: Any) -> Path | None: ...

    def close(self) -> None: ...


def open_index(directory: Path, spec: ResultsSpec) -> ResultIndexLike:
    return ResultIndex(
        directory,
        pattern=spec.pattern,
        order_by=spec.order_by,
        watch=spec.watch,
        recursive=spec.recursive,
    )


class SharedIndex:
    """One index per objective, opened on first use and shared by its trials (thread-safe)."""

    def __init__(self, directory: Path, spec: ResultsSpec) -> None:
        self.directory = directory
        self.spec = spec
        self._lock = threading.Lock()
        self._index: ResultIndexLike | None = None

    def get(self) -> ResultIndexLike:
        with self._lock:
            if self._index is None:
                self._index = open_index(self.directory, self.spec)
            return self._index

    def close(self) -> None:
        with self._lock:
            index, self._index = self._index, None
        if index is not None:
            index.close()


# Process-wide: every worker thread has its own objective, and they must agree on whose turn it is.
_TURNS: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[threading.Lock, int]] = {}
_TURNS_GUARD = threading.Lock()


@contextlib.contextmanager
def results_turn(
    directory: Path, key: Mapping[str, str], *, cancel: threading.Event | None = None
) -> Iterator[None]:
    """Hold the turn of ``key`` in ``directory`` while a trial runs and reads its result.

    A script that names its own file gives concurrent trials with the same key files that only
    their stamps tell apart, so "the newest file after my start" could be another trial's. Such
    trials run one at a time; trials with different keys still run at once. ``cancel`` set
    while waiting raises KeyboardInterrupt, like Ctrl-C.
    """
    ident = (str(directory), tuple(sorted(key.items())))
    with _TURNS_GUARD:
        held = _TURNS.get(ident)
        lock, users = held if held is not None else (threading.Lock(), 0)
        _TURNS[ident] = (lock, users + 1)
    try:
        while not lock.acquire(timeout=0.1):
            if cancel is not None and cancel.is_set():
                raise KeyboardInterrupt
        try:
            yield
        finally:
            lock.release()
    finally:
        with _TURNS_GUARD:
            lock, users = _TURNS[ident]
            if users == 1:
                del _TURNS[ident]
            else:
                _TURNS[ident] = (lock, users - 1)
