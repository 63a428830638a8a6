"""Shared helpers for the results-index tests: exact index states and bounded waits."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from fastgrid import ResultIndex

State = dict[tuple[str, ...], list[str]]


def state(idx: ResultIndex) -> State:
    """Every key with its files' names, newest first: the whole observable index."""
    return {key: [p.name for p in idx.history(**dict(zip(idx.fields, key, strict=True)))] for key in idx}


def settle(idx: ResultIndex, predicate: Callable[[], bool], *, timeout: float = 10.0, what: str = "") -> None:
    """Waits (bounded, waking on index changes) until ``predicate()`` holds."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        seen = idx.generation
        if predicate():
            return
        left = deadline - time.monotonic()
        assert left > 0, f"index never reached the expected state {what}: {state(idx)}"
        idx.wait_changed(seen, timeout=min(left, 0.2))


def settle_state(idx: ResultIndex, expected: State, *, timeout: float = 10.0) -> None:
    settle(idx, lambda: state(idx) == expected, timeout=timeout, what=repr(expected))


def write(path: Path, text: str = "{}") -> Path:
    path.write_text(text)
    return path


def atomic_write(path: Path, text: str = "{}") -> Path:
    """Writes to a temp name and renames into place, as careful result writers do."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path
