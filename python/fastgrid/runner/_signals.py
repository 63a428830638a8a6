"""How a run stops and exits: the signals that act like Ctrl-C, a worker that follows its parent,
and an exit that a thread left behind by an objective cannot hold up.

``docker stop``, systemd, batch schedulers and a dropped ssh session send SIGTERM or SIGHUP, not
SIGINT; a run treats them as Ctrl-C (issue 12, item 1). A spawned worker process dies with its
runner, even a runner killed with SIGKILL (item 2). An objective may leave a non-daemon thread
running, which would keep the interpreter alive after the summary (item 10).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any, NoReturn

from fastgrid.lifeline import STOP_SIGNALS, follow_parent, stop_signals_deferred

__all__ = [
    "STOP_SIGNALS",
    "Interrupted",
    "exit_status",
    "first_interrupt_only",
    "follow_parent",
    "leave",
    "stop_signals_deferred",
    "stray_threads",
]


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP, handled where Ctrl-C is (it is a KeyboardInterrupt); ``signum`` says which."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signal.Signals(signum).name)


@contextlib.contextmanager
def first_interrupt_only(received: list[int] | None = None) -> Iterator[None]:
    """Turn the first SIGINT, SIGTERM or SIGHUP into KeyboardInterrupt (``Interrupted`` for the
    last two) and ignore repeats until the block ends; append the signal's number to ``received``.

    A terminal's Ctrl-C reaches every worker and the parent forwards one more; a second
    interrupt must not cut short the recording of the trials the first one stopped. A signal the
    process was told to ignore (``nohup`` ignores SIGHUP) stays ignored.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired = False

    def handler(signum: int, frame: Any) -> None:
        nonlocal fired
        if fired:
            return
        fired = True
        if received is not None:
            received.append(signum)
        raise KeyboardInterrupt if signum == signal.SIGINT else Interrupted(signum)

    previous = {}
    for signum in STOP_SIGNALS:
        current = signal.getsignal(signum)
        if signum != signal.SIGINT and current == signal.SIG_IGN:
            continue
        previous[signum] = signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def stray_threads(before: set[threading.Thread]) -> list[threading.Thread]:
    """Non-daemon threads started since ``before`` was taken and still running."""
    return [t for t in threading.enumerate() if t not in before and not t.daemon and t.is_alive()]


def exit_status(signum: int | None) -> int:
    """0 for a run that ended by itself, 128 + the signal's number for one a signal stopped."""
    return 0 if signum is None else 128 + int(signum)


def leave(status: int, strays: list[str]) -> NoReturn:
    """``sys.exit(status)``; when an objective left non-daemon threads running (``strays``: their
    names), say so, run the exit handlers, and end the process without waiting for them."""
    if not strays:
        sys.exit(status)
    print(
        f"fastgrid: the objective left {len(strays)} thread(s) running ({', '.join(strays)}); "
        "exiting without waiting for them",
        file=sys.stderr,
        flush=True,
    )
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(status)
