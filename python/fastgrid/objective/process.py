"""Run one command in its own process group, logs streamed to files, and leave nothing behind.

POSIX only (process groups). The group is signalled while its leader is still an unreaped zombie,
so its id cannot have been reused by an unrelated process.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Exit", "run_in_group"]

# A Ctrl-C that the kernel hands to another thread only reaches Python's handler when the main
# thread runs bytecode again, so no wait blocks longer than this.
_WAKE_EVERY = 0.1


@dataclass(frozen=True, slots=True)
class Exit:
    returncode: int
    timed_out: bool


class _ExitWatch:
    """Waits for a child to exit WITHOUT reaping it (pidfd where available, else polling)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._poll: select.poll | None = None
        self._fd: int | None = None
        with contextlib.suppress(AttributeError, OSError):
            self._fd = os.pidfd_open(pid)
            self._poll = select.poll()
            self._poll.register(self._fd, select.POLLIN)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _exited_now(self) -> bool:
        flags = os.WEXITED | os.WNOHANG | os.WNOWAIT
        return os.waitid(os.P_PID, self.pid, flags) is not None

    def wait(self, timeout: float | None, cancel: threading.Event | None = None) -> bool:
        """True once the child has exited; False when ``timeout`` seconds passed first.

        KeyboardInterrupt when ``cancel`` is set (checked at every wake-up).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.0005
        while True:
            if cancel is not None and cancel.is_set():
                raise KeyboardInterrupt
            remaining = _WAKE_EVERY if deadline is None else min(_WAKE_EVERY, deadline - time.monotonic())
            if self._poll is not None:
                if self._poll.poll(max(remaining, 0.0) * 1000.0):
                    return True
            else:
                if self._exited_now():
                    return True
                time.sleep(max(min(delay, remaining), 0.0))
                delay = min(delay * 2, 0.05)
            if deadline is not None and time.monotonic() >= deadline:
                return self._exited_now()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    # Gone already (ESRCH), or a setuid member we may not signal (EPERM): nothing more to do.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def run_in_group(
    argv: Sequence[str],
    *,
    cwd: str | None,
    env: Mapping[str, str],
    stdout_path: Path,
    stderr_path: Path,
    timeout: float | None,
    grace: float,
    cancel: threading.Event | None = None,
) -> Exit:
    """Run ``argv`` to completion or timeout; on timeout SIGTERM the group, then SIGKILL it.

    After the leader exits, whatever it left in its group (background children) is killed too: a
    trial is over when its command is. Any exception while waiting (KeyboardInterrupt above all)
    kills the group before it propagates. ``cancel`` set from another thread acts like a
    KeyboardInterrupt here (the way a threaded runner stops its trials on Ctrl-C). Raises OSError
    when the command cannot be started.
    """
    if cancel is not None and cancel.is_set():
        raise KeyboardInterrupt
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            cwd=cwd,
            env=dict(env),
            start_new_session=True,
        )
    watch: _ExitWatch | None = None
    timed_out = False
    try:
        watch = _ExitWatch(proc.pid)
        if not watch.wait(timeout, cancel):
            timed_out = True
            _signal_group(proc.pid, signal.SIGTERM)
            watch.wait(grace)
        _signal_group(proc.pid, signal.SIGKILL)
    except BaseException:
        _signal_group(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    finally:
        if watch is not None:
            watch.close()
    return Exit(returncode=proc.wait(), timed_out=timed_out)
