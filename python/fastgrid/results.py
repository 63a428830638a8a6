"""The results index's Python policy: environment defaults, the public class, change streams.

The compiled ``fastgrid._core.ResultIndex`` does the OS-facing work (events, scans, lookups);
this module only decides defaults. ``ResultIndex`` subclasses the compiled class without adding
per-call Python code, so ``latest()`` stays a single hash-map lookup from Python.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Protocol

from fastgrid._core import ResultIndex as _CoreResultIndex

__all__ = [
    "DEFAULT_PATTERN",
    "DEFAULT_POLL_INTERVAL",
    "FORCE_POLLING_ENV",
    "ResultIndex",
    "forced_poll_interval",
    "iter_updates",
]

DEFAULT_PATTERN = "{symbol}_{timeframe}_{stamp}.json"
#: Set to 1/true/yes/on to poll instead of using native events (e.g. on network filesystems).
FORCE_POLLING_ENV = "FASTGRID_FORCE_POLLING"
#: Poll interval in seconds when polling is forced by the environment (watchfiles uses the same).
DEFAULT_POLL_INTERVAL = 0.3

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})


def forced_poll_interval(
    poll_interval: float | None, *, environ: Mapping[str, str] | None = None
) -> float | None:
    """The poll interval to use: the explicit one, else the environment's forced default, else None."""
    if poll_interval is not None:
        return poll_interval
    env = os.environ if environ is None else environ
    raw = env.get(FORCE_POLLING_ENV, "")
    value = raw.strip().lower()
    if value in _FALSE:
        return None
    if value in _TRUE:
        return DEFAULT_POLL_INTERVAL
    raise ValueError(
        f"environment variable {FORCE_POLLING_ENV}={raw!r}: expected one of "
        "1, 0, true, false, yes, no, on, off"
    )


class ResultIndex(_CoreResultIndex):
    """An indexed results directory: the newest result file per key in O(1), kept current.

    Adds one policy to the compiled class: with ``watch=True`` and no ``poll_interval``, the
    environment variable ``FASTGRID_FORCE_POLLING`` may force polling.
    """

    __slots__ = ()

    def __new__(
        cls,
        directory: str | os.PathLike[str],
        *,
        pattern: str = DEFAULT_PATTERN,
        order_by: str = "stamp",
        watch: bool = True,
        recursive: bool = False,
        poll_interval: float | None = None,
    ) -> ResultIndex:
        if watch:
            poll_interval = forced_poll_interval(poll_interval)
        return super().__new__(
            cls,
            directory,
            pattern=pattern,
            order_by=order_by,
            watch=watch,
            recursive=recursive,
            poll_interval=poll_interval,
        )


class IndexLike(Protocol):
    """What ``iter_updates`` needs of an index (the compiled class, or a test double)."""

    @property
    def generation(self) -> int: ...

    def snapshot(self) -> dict[tuple[str, ...], Path]: ...

    def wait_changed(
        self, since: int, *, timeout: float | None, stop_event: threading.Event | None = None
    ) -> int: ...


def iter_updates(
    index: IndexLike,
    *,
    stop_event: threading.Event | None = None,
    idle_timeout: float | None = None,
) -> Iterator[tuple[tuple[str, ...], Path]]:
    """Yields ``(key, newest_path)`` whenever a key's newest result changes.

    Ends when ``stop_event`` is set, or after ``idle_timeout`` seconds without a change
    (``None``: never). Keys whose last file was deleted are not reported. Waits with the GIL
    released, so Ctrl-C raises KeyboardInterrupt promptly.
    """
    seen = index.snapshot()
    generation = index.generation
    while True:
        now = index.wait_changed(generation, timeout=idle_timeout, stop_event=stop_event)
        if stop_event is not None and stop_event.is_set():
            return
        if now == generation:
            if idle_timeout is not None:
                return
            continue
        generation = now
        current = index.snapshot()
        for key, path in sorted(current.items()):
            if seen.get(key) != path:
                yield key, path
        seen = current
