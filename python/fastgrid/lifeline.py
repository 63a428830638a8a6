"""A worker process that dies with its runner, however the runner dies (issue 12, item 2).

Used by the runner's worker processes and by batch sweeps' (two layers apart, hence a leaf module).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading

__all__ = ["follow_parent"]

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
