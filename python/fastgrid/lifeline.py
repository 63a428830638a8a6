"""A worker process that dies with its runner, however the runner dies (issue 12, item 2), and the
stop signals a run's bookkeeping defers.

Used by the per-trial runner and by batch sweeps (two layers apart, hence a leaf module).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import sys
import threading
from collections.abc import Iterator

__all__ = ["STOP_SIGNALS", "follow_parent", "stop_signals_deferred"]

STOP_SIGNALS = tuple(
    s for s in (signal.SIGINT, getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)) if s
)
"""The signals a run treats as Ctrl-C: stop starting work, stop what runs, record it."""

_PR_SET_PDEATHSIG = 1
_PARENT_POLL = 0.5  # seconds between looks at the runner where the kernel does not tell


def follow_parent(runner: int) -> None:
    """Make this worker process get SIGTERM when its runner ``runner`` dies, however it dies.

    The process is the runner's child (forked or spawned) or a forkserver's child (the forkserver
    exits when the runner does). Linux: ``prctl(PR_SET_PDEATHSIG)`` ties it to its parent; a
    daemon thread also watches the runner itself when the parent is not the runner (or prctl is
    not there), looking every half second. SIGTERM then stops the worker as Ctrl-C would.
    """
    parent = os.getppid()
    armed = False
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            armed = libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) == 0
        except (OSError, AttributeError):
            armed = False
    if os.getppid() != parent or not _alive(runner):
        os.kill(os.getpid(), signal.SIGTERM)  # orphaned already, before the watch was set
        return
    if armed and parent == runner:
        return

    def watch() -> None:
        while os.getppid() == parent and _alive(runner):
            threading.Event().wait(_PARENT_POLL)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="fastgrid-parent-watch", daemon=True).start()


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (a dead runner its parent has not reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


@contextlib.contextmanager
def stop_signals_deferred(received: list[int]) -> Iterator[None]:
    """While the block runs (a run's bookkeeping after its work: counts, the top-K Optuna writes),
    SIGINT, SIGTERM and SIGHUP are noted in ``received`` instead of interrupting it halfway (an
    interrupt inside those writes once left a point written twice by the next run).

    SIGINT is taken even when ignored (a runner forwards it to its workers, as ``first_interrupt_only``
    takes it); SIGTERM or SIGHUP the process was told to ignore (``nohup``) stays ignored; a handler
    installed outside Python (``getsignal`` gives None) is left as it is: it could not be restored.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    for signum in STOP_SIGNALS:
        current = signal.getsignal(signum)
        if current is None or (signum != signal.SIGINT and current == signal.SIG_IGN):
            continue
        previous[signum] = signal.signal(signum, lambda n, _frame: received.append(n))
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
