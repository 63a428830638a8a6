"""Run one command in its own process group, logs piped into capped files, and leave nothing behind.

POSIX only (process groups). The group is signalled while its leader is still an unreaped zombie,
so its id cannot have been reused by an unrelated process.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import select
import signal
import subprocess
import sys
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


# The watchdog's program: read "+PGID" / "-PGID" lines until the runner is gone (EOF: its end of
# the pipe closed, however it died), then SIGTERM the groups still listed, and SIGKILL them after
# the grace period.
_REAPER_CODE = r"""
import os, signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
groups = set()
for line in sys.stdin.buffer:
    (groups.add if line[:1] == b"+" else groups.discard)(int(line[1:]))
for sig in (signal.SIGTERM, signal.SIGKILL):
    for pgid in list(groups):
        try:
            os.killpg(pgid, sig)
        except OSError:
            groups.discard(pgid)
    deadline = time.monotonic() + float(sys.argv[1])
    while groups and sig == signal.SIGTERM and time.monotonic() < deadline:
        time.sleep(0.05)
        for pgid in list(groups):
            try:
                os.killpg(pgid, 0)
            except OSError:
                groups.discard(pgid)
"""
_REAPER_GRACE = 2.0


class _Reaper:
    """A watchdog process that kills the command groups of a runner that died (issue 12, item 2).

    Commands run in their own sessions, so nothing the kernel does to a killed runner (SIGKILL
    to its pid or its group) reaches them, and ``PR_SET_PDEATHSIG`` would cover only a command's
    first process. So one small process per runner, in a session of its own (a kill of the
    runner's group spares it), is told each command group as it starts and ends, and kills those
    still running when its pipe from the runner reaches end-of-file. Started on first use.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._pid = -1
        atexit.register(self.close)

    def _pipe(self) -> IO[bytes] | None:
        proc = self._proc
        if proc is None or self._pid != os.getpid() or proc.poll() is not None:
            try:
                proc = subprocess.Popen(
                    [sys.executable, "-I", "-S", "-c", _REAPER_CODE, str(_REAPER_GRACE)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            except OSError:
                return None  # no watchdog: commands then outlive a killed runner, as before
            self._proc, self._pid = proc, os.getpid()
        return proc.stdin

    def tell(self, sign: bytes, pgid: int) -> None:
        with self._lock:
            pipe = self._pipe()
            if pipe is None:
                return
            try:
                pipe.write(b"%s%d\n" % (sign, pgid))
                pipe.flush()
            except OSError:
                self._proc = None  # it died: the next command starts another

    def close(self) -> None:
        """At a normal exit: nothing is left running, so the watchdog ends with its pipe."""
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is not None and self._pid == os.getpid():
            with contextlib.suppress(OSError):
                if proc.stdin is not None:
                    proc.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=_REAPER_GRACE + 1)


_REAPER = _Reaper()


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
    _REAPER.tell(b"+", proc.pid)
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
        _REAPER.tell(b"-", proc.pid)  # before the reap: then its group id cannot be reused yet
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
    _REAPER.tell(b"-", proc.pid)
    return Exit(returncode=proc.wait(), timed_out=timed_out)
