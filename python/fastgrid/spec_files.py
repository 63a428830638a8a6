"""Reading a parameters tree from a file: TOML, YAML or JSON.

A file whose top level has a ``parameters`` table (a sweep file, or a workload file with
``expected_grid_size``) contributes that table; any other file is the tree itself. Syntax errors are
raised as :class:`fastgrid.SpecError` naming the file and the line (``.file``, ``.line``), never as a
parser traceback.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from fastgrid._core import SpecError

__all__ = ["SUFFIXES", "load_grid_spec", "load_parameters", "read_file"]

SUFFIXES = (".toml", ".yaml", ".yml", ".json")


def _syntax_error(path: Path, line: int | None, column: int | None, message: str) -> SpecError:
    where = str(path)
    if line is not None:
        where += f":{line}"
        if column is not None:
            where += f":{column}"
    err = SpecError(f"{where}: {message}")
    err.path = ""
    err.file = str(path)  # type: ignore[attr-defined]
    err.line = line  # type: ignore[attr-defined]
    return err


def _parse_toml(path: Path, text: str) -> Any:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        # Python 3.14 gives lineno/colno; earlier versions only put "(at line L, column C)" in the text.
        line = getattr(e, "lineno", None)
        column = getattr(e, "colno", None)
        message = getattr(e, "msg", str(e))
        if line is None and "(at line " in message:
            head, _, tail = message.partition(" (at line ")
            numbers = tail.rstrip(")").split(", column ")
            message = head
            line = int(numbers[0]) if numbers[0].isdigit() else None
            column = int(numbers[1]) if len(numbers) > 1 and numbers[1].isdigit() else None
        raise _syntax_error(path, line, column, f"invalid TOML: {message}") from None


def _parse_yaml(path: Path, text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else None
        column = mark.column + 1 if mark is not None else None
        raise _syntax_error(path, line, column, f"invalid YAML: {e.problem or e.context}") from None
    except yaml.YAMLError as e:
        raise _syntax_error(path, None, None, f"invalid YAML: {e}") from None


def _parse_json(path: Path, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise _syntax_error(path, e.lineno, e.colno, f"invalid JSON: {e.msg}") from None


def read_file(path: str | Path) -> Any:
    """Parses a TOML, YAML or JSON file by its suffix."""
    path = Path(path)
    suffix = path.suffix.lower()
    parsers = {".toml": _parse_toml, ".yaml": _parse_yaml, ".yml": _parse_yaml, ".json": _parse_json}
    parser = parsers.get(suffix)
    if parser is None:
        raise _syntax_error(
            path, None, None, f"unknown file type {suffix!r} (expected one of {', '.join(SUFFIXES)})"
        )
    text = path.read_text(encoding="utf-8")
    return parser(path, text)


def load_parameters(path: str | Path) -> Any:
    """The parameters tree of a file: its ``parameters`` table when it has one, else the whole file."""
    data = read_file(path)
    if isinstance(data, dict) and "parameters" in data:
        return data["parameters"]
    if data is None:
        raise _syntax_error(Path(path), None, None, "the file is empty; it needs a parameters tree")
    return data


def load_grid_spec(path: str | Path) -> tuple[Any, tuple[str, ...]]:
    """The parameters tree of a file and, for a sweep file, its ``[sweep] where`` constraints, so
    that ``fastgrid grid`` shows the same points a grid sweep of that file runs."""
    data = read_file(path)
    if data is None:
        raise _syntax_error(Path(path), None, None, "the file is empty; it needs a parameters tree")
    if not (isinstance(data, dict) and "parameters" in data):
        return data, ()
    sweep = data.get("sweep")
    where = sweep.get("where", []) if isinstance(sweep, dict) else []
    if isinstance(where, str):
        where = [where]
    if not (isinstance(where, list) and all(isinstance(w, str) for w in where)):
        raise _syntax_error(Path(path), None, None, "sweep.where must be a list of constraint strings")
    return data["parameters"], tuple(where)
