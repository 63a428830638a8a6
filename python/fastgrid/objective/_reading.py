"""Reading a trial's output without trusting it: size caps, tails read from the end of log files,
and reasons that say what is wrong with the document."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from fastgrid.objective._capped import MARKER

__all__ = [
    "OutputError",
    "format_bytes",
    "last_json_object_line",
    "open_regular",
    "read_json_file",
    "tail_text",
]

_BLOCK = 1 << 16


class OutputError(Exception):
    """The output is unusable; ``str()`` is the trial's failure reason."""


def format_bytes(n: int) -> str:
    for unit, size in (("GB", 10**9), ("MB", 10**6), ("KB", 10**3)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n} bytes"


def parse_json(data: bytes, *, source: str) -> Any:
    if not data.strip():
        raise OutputError(f"output is empty ({source})")
    try:
        return json.loads(data)
    except UnicodeDecodeError as exc:
        raise OutputError(f"output is not UTF-8 text: byte {exc.start} ({source})") from None
    except json.JSONDecodeError as exc:
        # An unterminated string always runs to the end of the input; other errors at the very end
        # mean the document stopped early (a killed writer, a full disk).
        unterminated = exc.msg.startswith("Unterminated string")
        kind = "truncated JSON" if unterminated or exc.pos >= len(exc.doc.rstrip()) else "not JSON"
        where = f"line {exc.lineno} col {exc.colno}"
        detail = f"unterminated string starting at {where}" if unterminated else f"{where}: {exc.msg}"
        raise OutputError(f"output is {kind}: {detail} ({source})") from None
    except RecursionError:
        raise OutputError(f"output is nested too deeply to parse ({source})") from None


_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def open_regular(path: Path, *, source: str) -> Any:
    """Open ``path`` for reading if it is a regular file (after symlinks); OutputError naming what
    it is otherwise. Never blocks: a FIFO made by a hostile command would wait for a writer forever
    (issue 12, item 9), so the file is opened non-blocking and checked before anything is read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except IsADirectoryError:
        raise OutputError(f"{source} is a directory, not a file") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
            raise OutputError(f"{source} is {kind}, not a file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_json_file(path: Path, *, limit: int, source: str) -> Any:
    """Parse a JSON file of at most ``limit`` bytes (checked before reading, and while reading)."""
    with open_regular(path, source=source) as f:
        size = os.fstat(f.fileno()).st_size
        data = f.read(limit + 1) if size <= limit else b""
    if size > limit or len(data) > limit:
        raise OutputError(
            f"output larger than {format_bytes(limit)} ({source}: {max(size, len(data))} bytes)"
        )
    return parse_json(data, source=source)


def _line_start(f: Any, end: int) -> int:
    """Offset where the line ending at ``end`` begins (scans back without keeping data)."""
    pos = end
    while pos > 0:
        n = min(_BLOCK, pos)
        f.seek(pos - n)
        chunk = f.read(n)
        cut = chunk.rfind(b"\n")
        if cut >= 0:
            return pos - n + cut + 1
        pos -= n
    return 0


def last_json_object_line(path: Path, *, limit: int) -> dict | None:
    """The last line of a (possibly huge) log that is a JSON object, read from the file's end.

    Memory stays within one line of at most ``limit`` bytes plus one block. Lines that do not start
    with ``{`` are skipped (log lines); the last one that does must parse, or the output counts as
    broken (truncated or garbage) rather than silently falling back to an older line. None when
    there is no such line. Reaching the marker of a capped log (``CappedLog``) before any such line
    is an error too: the result may have been in the dropped part.
    """
    with open_regular(path, source=path.name) as f:
        pos = f.seek(0, os.SEEK_END)
        carry = b""  # the (partial) line that continues past the block just read
        while True:
            if pos == 0:
                lines: list[bytes] = [carry]
                carry = b""
            else:
                n = min(_BLOCK, pos)
                pos -= n
                f.seek(pos)
                parts = (f.read(n) + carry).split(b"\n")
                carry = parts[0]
                lines = parts[:0:-1]
            for line in lines:
                text = line.strip()
                dropped = MARKER.match(text) if text.startswith(b"[fastgrid: ") else None
                if dropped is not None:
                    # The result line, if any, was in the part cut out (or cut in two); an older
                    # line from the head would be a silent wrong answer.
                    raise OutputError(
                        f"no output: stdout passed the log limit ({int(dropped[1])} bytes dropped "
                        "from its middle) and its kept tail has no JSON object line; print the "
                        "result last, write it to {output_file}, or raise [objective] log_limit"
                    )
                if text.startswith(b"{"):
                    if len(text) > limit:
                        raise OutputError(f"output larger than {format_bytes(limit)} (stdout line)")
                    found = parse_json(text, source="stdout")
                    if isinstance(found, dict):
                        return found
            if pos == 0 and not carry:
                return None
            if len(carry) > limit:
                start = _line_start(f, pos)
                f.seek(start)
                head = f.read(_BLOCK).lstrip()
                if head.startswith(b"{"):
                    raise OutputError(f"output larger than {format_bytes(limit)} (stdout line)")
                pos, carry = start, b""


def tail_text(path: Path, *, lines: int = 20, max_bytes: int = 8192) -> str:
    """The last few lines of a log, for reports; empty when the file does not exist."""
    try:
        with open_regular(path, source=path.name) as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - max_bytes))
            data = f.read(max_bytes)
    except (OSError, OutputError):  # gone, or not a file (a FIFO would block): no tail to show
        return ""
    split = data.decode("utf-8", errors="replace").splitlines()
    if size > max_bytes and len(split) > 1:
        split = split[1:]  # the window began mid-line
    return "\n".join(split[-lines:])
