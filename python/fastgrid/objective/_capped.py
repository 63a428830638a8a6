"""A log file that keeps at most ``limit`` bytes of a stream: its head, a marker line, its tail.

A runaway trial printing forever must not fill the disk (issue #6), yet the end of its output (the
error, the JSON result line) is what matters most, so the head is written as it arrives and the
last ``tail`` bytes are held in memory until the stream ends.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["DEFAULT_LOG_LIMIT", "DEFAULT_LOG_TAIL", "MARKER", "CappedLog", "check_log_limit"]

DEFAULT_LOG_LIMIT = 10 * 1024 * 1024
DEFAULT_LOG_TAIL = 64 * 1024
# The reader of the last JSON line recognises this line (reading.py), so keep the two in step.
MARKER = re.compile(rb"^\[fastgrid: (\d+) bytes of output dropped\]$")


def check_log_limit(value: int | None) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"log_limit: expected a positive number of bytes or None, got {value!r}")
    return value


class CappedLog:
    """Write a stream to ``path``; past ``limit`` bytes keep only the head and the last ``tail``.

    The file holds the stream unchanged when it fits. Otherwise it holds the first
    ``limit - tail`` bytes, the line ``[fastgrid: N bytes of output dropped]``, and the kept tail,
    which starts at a line boundary whenever the tail holds one. ``limit=None`` keeps everything.
    """

    __slots__ = ("_file", "_head_room", "_last", "_past_head", "_tail", "_tail_keep", "dropped", "error")

    def __init__(self, path: Path, *, limit: int | None, tail: int = DEFAULT_LOG_TAIL) -> None:
        self._file = open(path, "wb")  # noqa: SIM115 - closed by close()
        if limit is None:
            self._tail_keep = 0
            self._head_room: float = float("inf")
        else:
            self._tail_keep = min(tail, limit // 2)
            self._head_room = limit - self._tail_keep
        self._tail = bytearray()
        self._past_head = 0
        self._last = b"\n"
        self.dropped = 0
        self.error: OSError | None = None

    def write(self, data: bytes) -> None:
        if self._head_room:
            n = len(data) if len(data) <= self._head_room else int(self._head_room)
            try:
                self._file.write(data[:n] if n < len(data) else data)
                self._file.flush()  # the head stays readable live (`tail -f stdout.log`)
            except OSError as exc:
                # A full disk must not turn into the trial's failure (or the runner's crash):
                # the rest of the stream only feeds the in-memory tail.
                self.error = exc
                self._head_room = 0
                return
            self._head_room -= n
            if n:
                self._last = data[n - 1 : n]
            if n == len(data):
                return
            data = data[n:]
        self._past_head += len(data)
        self._tail += data
        excess = len(self._tail) - self._tail_keep
        if excess > 0:
            del self._tail[:excess]

    def close(self) -> None:
        """Write the kept tail (with the marker when something was dropped) and close the file."""
        if self._file.closed:
            return
        try:
            if self.error is not None:
                return
            tail = self._tail
            if self._past_head > len(tail):
                cut = tail.find(b"\n")
                if 0 <= cut < len(tail) - 1:
                    del tail[: cut + 1]
                self.dropped = self._past_head - len(tail)
                lead = b"" if self._last == b"\n" else b"\n"
                self._file.write(lead + b"[fastgrid: %d bytes of output dropped]\n" % self.dropped)
            if tail:
                self._file.write(tail)
        except OSError as exc:
            self.error = exc
        finally:
            try:
                self._file.close()
            except OSError as exc:  # the buffered bytes could not be written either
                self.error = self.error or exc
