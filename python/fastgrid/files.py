"""The one reader of the JSON, TOML and YAML files fastgrid takes (sweep, parameters and config files).

Every command reads through :func:`read_document`, so a file is equally strict wherever it is used:

- a duplicate key is an error naming the key (and, for YAML and JSON, the line): the parsers
  themselves keep the last of two equal keys, which hides typos and bad merges;
- the input is bounded before (and while) it is parsed, so a hostile file gets an error instead of
  a crash: the file's size, the parts of one TOML dotted key (``tomllib`` is quadratic in them), the
  nesting depth, and the size a YAML document expands to through its aliases (an "alias bomb" of a
  few hundred bytes names billions of nodes, which copying would try to allocate);
- every problem is a :class:`fastgrid.exceptions.DocumentError` with the file, line and column
  (where the parser knows them) and one sentence; the caller turns it into its own error type.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import yaml

from fastgrid.exceptions import DocumentError, OutputFolderError

__all__ = [
    "FORMATS",
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_KEY_PARTS",
    "MAX_NODES",
    "SUFFIXES",
    "check_output_folder",
    "document_format",
    "open_text",
    "parse_document",
    "read_document",
    "replaced_on_success",
    "written_whole",
]

FORMATS = {".json": "JSON", ".toml": "TOML", ".yaml": "YAML", ".yml": "YAML"}
SUFFIXES = tuple(FORMATS)
MAX_BYTES = 64 * 1024 * 1024
"""Largest file read (64 MiB): far above any real sweep or config file, far below the machine."""
MAX_KEY_PARTS = 256
"""Most parts of one TOML dotted key or table header."""
MAX_DEPTH = 200
"""Deepest nesting of tables and lists."""
MAX_NODES = 10_000_000
"""Most values a document may hold once its YAML aliases are expanded."""


def document_format(path: str | os.PathLike[str]) -> str:
    """``"JSON"``, ``"TOML"`` or ``"YAML"`` by the file's suffix; a DocumentError for any other."""
    file = Path(path)
    kind = FORMATS.get(file.suffix.lower())
    if kind is None:
        raise DocumentError(
            str(file),
            f"unknown file type {file.suffix!r} (use one of {', '.join(SUFFIXES)})",
        )
    return kind


def read_document(path: str | os.PathLike[str]) -> Any:
    """Parse a JSON, TOML or YAML file (by suffix) into plain Python data.

    Raises:
        FileNotFoundError, PermissionError, IsADirectoryError: the file cannot be opened.
        DocumentError: not UTF-8, too large, invalid syntax, a duplicate key, too deep, too big.
    """
    file = Path(path)
    kind = document_format(file)
    with file.open("rb") as fh:
        raw = fh.read(MAX_BYTES + 1)
    if len(raw) > MAX_BYTES:
        raise DocumentError(
            str(file), f"larger than {MAX_BYTES // (1024 * 1024)} MiB; is this the right file?"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DocumentError(str(file), f"not UTF-8 text (byte {exc.start})") from None
    return parse_document(text, kind, file=str(file))


def parse_document(text: str, kind: str, *, file: str = "<text>") -> Any:
    """Parse ``text`` as ``kind`` (``"JSON"``, ``"TOML"`` or ``"YAML"``) under the same bounds."""
    if kind == "JSON":
        return _parse_json(text, file)
    if kind == "TOML":
        return _parse_toml(text, file)
    if kind == "YAML":
        return _parse_yaml(text, file)
    raise ValueError(f"unknown document kind {kind!r}")


# -- JSON ---------------------------------------------------------------------------------------
def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Duplicate(key)
        out[key] = value
    return out


class _Duplicate(Exception):
    def __init__(self, key: Any) -> None:
        self.key = key


def _parse_json(text: str, file: str) -> Any:
    try:
        data = json.loads(text, object_pairs_hook=_unique_pairs)
    except json.JSONDecodeError as exc:
        raise DocumentError(file, f"invalid JSON: {exc.msg}", line=exc.lineno, column=exc.colno) from None
    except _Duplicate as dup:
        raise DocumentError(file, f"invalid JSON: duplicate key {dup.key!r}") from None
    except RecursionError:
        raise DocumentError(file, "invalid JSON: nested too deeply to read") from None
    _check_depth(data, file, "JSON")
    return data


# -- TOML ---------------------------------------------------------------------------------------
def _parse_toml(text: str, file: str) -> Any:
    _check_toml_keys(text, file)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message, line, column = _toml_position(exc)
        raise DocumentError(file, f"invalid TOML: {message}", line=line, column=column) from None
    except RecursionError:
        raise DocumentError(file, "invalid TOML: nested too deeply to read") from None
    except MemoryError:
        raise DocumentError(file, "invalid TOML: too large to read") from None
    _check_depth(data, file, "TOML")
    return data


def _toml_position(exc: tomllib.TOMLDecodeError) -> tuple[str, int | None, int | None]:
    # Python 3.14 gives lineno/colno; earlier versions only put "(at line L, column C)" in the text.
    line = getattr(exc, "lineno", None)
    column = getattr(exc, "colno", None)
    message = str(getattr(exc, "msg", exc))
    if " (at line " in message:
        head, _, tail = message.partition(" (at line ")
        numbers = tail.rstrip(")").split(", column ")
        message = head
        if line is None and numbers[0].isdigit():
            line = int(numbers[0])
        if column is None and len(numbers) > 1 and numbers[1].isdigit():
            column = int(numbers[1])
    elif message.endswith(" (at end of document)"):
        message = message.removesuffix(" (at end of document)") + " at the end of the file"
    return message, line, column


def _check_toml_keys(text: str, file: str) -> None:
    """Refuse a dotted key or table header of more than MAX_KEY_PARTS parts before ``tomllib`` sees it.

    A cheap line scan: dots inside quotes are not counted; a line inside a multi-line string that
    looks like a key can only over-count, and only past a limit no real file comes near.
    """
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.lstrip()
        if stripped.startswith("["):
            key = stripped.split("]", 1)[0]
        else:
            key = stripped.split("=", 1)[0] if "=" in stripped else ""
        if key.count(".") < MAX_KEY_PARTS:
            continue
        parts, quote = 1, ""
        for ch in key:
            if quote:
                quote = "" if ch == quote else quote
            elif ch in "\"'":
                quote = ch
            elif ch == ".":
                parts += 1
        if parts > MAX_KEY_PARTS:
            raise DocumentError(
                file,
                f"invalid TOML: a dotted key of {parts} parts (at most {MAX_KEY_PARTS})",
                line=number,
            )


# -- YAML ---------------------------------------------------------------------------------------
class _StrictSafeLoader(yaml.SafeLoader):
    """PyYAML's safe loader (no Python tags) that refuses duplicate keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:
                continue  # an unhashable key: the base class reports it
            if duplicate:
                mark = key_node.start_mark
                raise _Duplicate((key, mark.line + 1, mark.column + 1))
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _parse_yaml(text: str, file: str) -> Any:
    try:
        data = yaml.load(text, Loader=_StrictSafeLoader)
    except _Duplicate as dup:
        key, line, column = dup.key
        raise DocumentError(file, f"invalid YAML: duplicate key {key!r}", line=line, column=column) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join(p for p in (exc.context, exc.problem) if p) or str(exc)
        line = mark.line + 1 if mark is not None else None
        column = mark.column + 1 if mark is not None else None
        raise DocumentError(file, f"invalid YAML: {problem}", line=line, column=column) from None
    except yaml.YAMLError as exc:
        raise DocumentError(file, f"invalid YAML: {exc}") from None
    except RecursionError:
        raise DocumentError(file, "invalid YAML: nested too deeply to read") from None
    _check_expansion(data, file)
    return data


def _check_expansion(data: Any, file: str) -> None:
    """Refuse a YAML document whose aliases expand past MAX_NODES values, or that contains itself.

    PyYAML builds an alias as a second reference to the same object, so the parse is cheap; the
    cost comes later, when the tree is copied or walked once per reference. Sizes are memoized per
    object, so this check is linear in the distinct containers, not in the expansion.
    """
    sizes: dict[int, int] = {}
    open_ids: set[int] = set()

    def size(node: Any, depth: int) -> int:
        if not isinstance(node, dict | list):
            return 1
        ident = id(node)
        known = sizes.get(ident)
        if known is not None:
            return known
        if ident in open_ids:
            raise DocumentError(file, "invalid YAML: an alias refers to a mapping or list that contains it")
        if depth > MAX_DEPTH:
            raise DocumentError(file, f"invalid YAML: nested deeper than {MAX_DEPTH} levels")
        open_ids.add(ident)
        children = node.values() if isinstance(node, dict) else node
        total = 1
        for child in children:
            total += size(child, depth + 1)
            if total > MAX_NODES:
                raise DocumentError(
                    file,
                    f"invalid YAML: its aliases expand to more than {MAX_NODES:,} values "
                    "(an alias bomb?); write the repeated parts out or use fewer aliases",
                )
        open_ids.discard(ident)
        sizes[ident] = total
        return total

    size(data, 0)


# -- shared -------------------------------------------------------------------------------------
def _check_depth(data: Any, file: str, kind: str) -> None:
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise DocumentError(file, f"invalid {kind}: nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)


def check_output_folder(path: str | os.PathLike[str]) -> None:
    """Raise :class:`~fastgrid.exceptions.OutputFolderError` when the file ``path`` is to be written
    in a folder that does not exist (every file fastgrid writes on request checks it first)."""
    folder = os.path.dirname(os.fspath(path))
    if folder and not os.path.isdir(folder):
        raise OutputFolderError(os.fspath(path))


@contextlib.contextmanager
def open_text(target: str | os.PathLike[str] | IO[str], *, newline: str | None = None) -> Iterator[IO[str]]:
    """``target`` opened for writing text, or ``target`` itself when it is already a stream (the
    CLI passes standard output for a path of ``-``); a stream is left open. A path in a folder that
    does not exist is an :class:`~fastgrid.exceptions.OutputFolderError`."""
    if isinstance(target, str | os.PathLike):
        with replaced_on_success(target) as path, open(path, "w", newline=newline) as fh:
            yield fh
    else:
        yield target


@contextlib.contextmanager
def replaced_on_success(target: str | os.PathLike[str]) -> Iterator[Path]:
    """:func:`written_whole` for a file written on request (an export, a report): a missing folder
    is an ``OutputFolderError`` naming it, not created."""
    check_output_folder(target)
    with written_whole(target) as path:
        yield path


@contextlib.contextmanager
def written_whole(target: str | os.PathLike[str]) -> Iterator[Path]:
    """A path to write ``target``'s new content to: a temporary file beside it, renamed onto it when
    the block ends without an exception and removed otherwise, so readers (a worker, a report, a
    user's script) see the old file or the new one, never half a file. The temporary name is this
    writer's own (process, thread and a random part: workers on several machines may write one
    file at once). A target that exists and is not a regular file (a FIFO, ``/dev/stdout``) is
    written in place."""
    path = Path(target)
    if path.exists() and not path.is_file():
        yield path
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
