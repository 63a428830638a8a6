"""Run one command in its own process group, logs piped into capped files, and leave nothing behind.

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
from typing import IO

from fastgrid.objective._capped import DEFAULT_LOG_LIMIT, CappedLog

__all__ = ["Exit", "run_in_group"]

# A Ctrl-C that the kernel hands to another thread only reaches Python's handler when the main
# thread runs bytecode again, so no wait blocks longer than this.
_WAKE_EVERY = 0.1
# A pipe holds 64 KiB on Linux; one read takes whatever is there.
_CHUNK = 1 << 20
# Once the group is dead its pipes reach EOF at once; only a writer that left the group (setsid)
# can hold them open, and it is not waited for longer than this.
_DRAIN_AFTER_EXIT = 2.0


@dataclass(frozen=True, slots=True)
class Exit:
    returncode: int
    timed_out: bool


class _Pump:
    """Copies the child's stdout and stderr pipes into their capped logs while the parent waits.

    One ``poll`` serves both pipes and, when given, the child's pidfd, so the parent never blocks
    on one pipe while the child blocks writing the other (the classic two-pipe deadlock).
    """

    def __init__(self, streams: Sequence[tuple[IO[bytes], CappedLog]]) -> None:
        self._poll = select.poll()
        self._pipes: dict[int, tuple[IO[bytes], CappedLog]] = {}
        self._wake: int | None = None
        for pipe, log in streams:
            self._pipes[pipe.fileno()] = (pipe, log)
            self._poll.register(pipe.fileno(), select.POLLIN)

    def wake_on(self, fd: int | None) -> None:
        """Make ``run`` return True once ``fd`` is readable (None: stop watching the last one)."""
        if self._wake is not None:
            self._poll.unregister(self._wake)
        self._wake = fd
        if fd is not None:
            self._poll.register(fd, select.POLLIN)

    def run(self, seconds: float) -> bool:
        """Move what the pipes hold, waiting up to ``seconds``; True when the wake fd is ready."""
        woken = False
        for fd, _ in self._poll.poll(max(seconds, 0.0) * 1000.0):
            if fd == self._wake:
                woken = True
                continue
            pipe, log = self._pipes[fd]
            data = os.read(fd, _CHUNK)
            if data:
                log.write(data)
            else:  # EOF: every writer (the whole group) has closed it
                self._poll.unregister(fd)
                del self._pipes[fd]
                pipe.close()
        return woken

    def drain(self, seconds: float) -> None:
        """Read until every pipe reaches EOF, or ``seconds`` pass (a writer that left the group)."""
        deadline = time.monotonic() + seconds
        while self._pipes:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self.run(min(remaining, _WAKE_EVERY))

    def close(self) -> None:
        for pipe, _ in self._pipes.values():
            pipe.close()
        self._pipes.clear()


class _ExitWatch:
    """Waits for a child to exit WITHOUT reaping it (pidfd where available, else polling)."""

    def __init__(self, pid: int, pump: _Pump) -> None:
        self.pid = pid
        self._pump = pump
        self._fd: int | None = None
        with contextlib.suppress(AttributeError, OSError):
            self._fd = os.pidfd_open(pid)
        pump.wake_on(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            self._pump.wake_on(None)
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
            if self._fd is not None:
                if self._pump.run(remaining):
                    return True
            else:
                self._pump.run(min(delay, remaining))
                if self._exited_now():
                    return True
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
    log_limit: int | None = DEFAULT_LOG_LIMIT,
    cancel: threading.Event | None = None,
) -> Exit:
    """Run ``argv`` to completion or timeout; on timeout SIGTERM the group, then SIGKILL it.

    After the leader exits, whatever it left in its group (background children) is killed too: a
    trial is over when its command is. Any exception while waiting (KeyboardInterrupt above all)
    kills the group before it propagates. ``cancel`` set from another thread acts like a
    KeyboardInterrupt here (the way a threaded runner stops its trials on Ctrl-C). stdout and
    stderr go through pipes into logs of at most ``log_limit`` bytes each (see ``CappedLog``).
    Raises OSError when the command cannot be started.
    """
    if cancel is not None and cancel.is_set():
        raise KeyboardInterrupt
    logs: list[CappedLog] = []
    try:
        logs.append(CappedLog(stdout_path, limit=log_limit))
        logs.append(CappedLog(stderr_path, limit=log_limit))
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=0,
            cwd=cwd,
            env=dict(env),
            start_new_session=True,
        )
    except BaseException:
        for log in logs:
            log.close()
        raise
    assert proc.stdout is not None and proc.stderr is not None
    pump = _Pump([(proc.stdout, logs[0]), (proc.stderr, logs[1])])
    watch: _ExitWatch | None = None
    timed_out = False
    try:
        watch = _ExitWatch(proc.pid, pump)
        if not watch.wait(timeout, cancel):
            timed_out = True
            _signal_group(proc.pid, signal.SIGTERM)
            watch.wait(grace)
        _signal_group(proc.pid, signal.SIGKILL)
        watch.close()
        pump.drain(_DRAIN_AFTER_EXIT)
    except BaseException:
        _signal_group(proc.pid, signal.SIGKILL)
        proc.wait()
        if watch is not None:
            watch.close()
        # The last lines before a Ctrl-C are the ones worth reading.
        pump.drain(_DRAIN_AFTER_EXIT)
        raise
    finally:
        if watch is not None:
            watch.close()
        pump.close()
        for log in logs:
            log.close()
    return Exit(returncode=proc.wait(), timed_out=timed_out)
