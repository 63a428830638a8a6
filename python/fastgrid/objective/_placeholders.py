"""Argument templates: ``{config_file}``, ``{output_file}``, ``{trial_dir}``, ``{trial_number}`` and
``{params.<dotted.path>}``, substituted inside ONE argument (never split, never given to a shell).

Parsing happens once, when an objective is built, so an unknown placeholder or an unbalanced brace is
a ``ValueError`` before any trial runs. Rendering happens per trial.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["KNOWN", "PATH_FIELDS", "Context", "Field", "Template", "UnsafeValue", "parse", "render_value"]

PATH_FIELDS = frozenset({"config_file", "output_file", "trial_dir"})
_PLAIN_FIELDS = PATH_FIELDS | {"trial_number"}
KNOWN = "{config_file}, {output_file}, {trial_dir}, {trial_number}, {params.<dotted.path>}"


class UnsafeValue(Exception):
    """A parameter value that would make an argument unsafe (leave the trial dir, embed a NUL).

    It depends on the sampled value, not on the template, so the trial fails and the sweep goes on.
    """


@dataclass(frozen=True, slots=True)
class Field:
    name: str  # one of _PLAIN_FIELDS, or "params"
    path: str | None  # the dotted path of a {params.…} field

    @property
    def text(self) -> str:
        return "{params." + self.path + "}" if self.path is not None else "{" + self.name + "}"


@dataclass(frozen=True, slots=True)
class Context:
    """Everything a template can refer to during one trial; paths are absolute."""

    trial_dir: str
    config_file: str
    output_file: str
    trial_number: int
    params: Mapping[str, Any]
    config: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Template:
    source: str
    where: str  # e.g. "argv[2]" — used in every error message
    parts: tuple[str | Field, ...]

    @property
    def param_paths(self) -> tuple[str, ...]:
        return tuple(p.path for p in self.parts if isinstance(p, Field) and p.path is not None)

    @property
    def is_literal(self) -> bool:
        return all(isinstance(p, str) for p in self.parts)

    def render(self, ctx: Context) -> str:
        out: list[str] = []
        length = 0
        path_starts: list[int] = []  # where a path placeholder begins in the output
        param_after_path = False
        for part in self.parts:
            if isinstance(part, str):
                text = part
            elif part.path is not None:
                text = render_value(lookup(part.path, ctx.params, ctx.config, where=self.where))
                if "\x00" in text:
                    raise UnsafeValue(f"{part.text} in {self.where}: the value contains a NUL byte")
                param_after_path = param_after_path or bool(path_starts)
            elif part.name == "trial_number":
                text = str(ctx.trial_number)
            else:
                path_starts.append(length)
                text = getattr(ctx, part.name)
            out.append(text)
            length += len(text)
        rendered = "".join(out)
        if param_after_path:
            _check_inside(rendered, path_starts, ctx.trial_dir, self)
        return rendered


def _check_inside(rendered: str, starts: list[int], trial_dir: str, template: Template) -> None:
    # Lexical check from each path placeholder to the end of the argument: conservative (a
    # `{config_file}:{params.x}` argument counts as one path), but no value can walk out with `..`.
    for start in starts:
        candidate = os.path.normpath(rendered[start:])
        if candidate != trial_dir and not candidate.startswith(trial_dir + os.sep):
            values = [p.text for p in template.parts if isinstance(p, Field) and p.path is not None]
            raise UnsafeValue(
                f"{', '.join(values)} in {template.where} would point outside the trial directory: "
                f"{rendered!r}"
            )


def parse(text: str, *, where: str) -> Template:
    """Parse one argument; ``{{`` and ``}}`` are literal braces."""
    if not isinstance(text, str):
        raise ValueError(f"{where}: expected a string, got {type(text).__name__} {text!r}")
    parts: list[str | Field] = []
    literal: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "{":
            if text.startswith("{{", i):
                literal.append("{")
                i += 2
                continue
            end = text.find("}", i + 1)
            inner = text[i + 1 : end] if end >= 0 else ""
            if end < 0 or "{" in inner:
                raise ValueError(
                    f"{where}: unclosed '{{' at column {i + 1} of {text!r} (write '{{{{' for a literal brace)"
                )
            if literal:
                parts.append("".join(literal))
                literal = []
            parts.append(_field(inner, where=where, text=text))
            i = end + 1
        elif ch == "}":
            if text.startswith("}}", i):
                literal.append("}")
                i += 2
                continue
            raise ValueError(
                f"{where}: single '}}' at column {i + 1} of {text!r} (write '}}}}' for a literal brace)"
            )
        else:
            literal.append(ch)
            i += 1
    if literal:
        parts.append("".join(literal))
    return Template(source=text, where=where, parts=tuple(parts))


def _field(inner: str, *, where: str, text: str) -> Field:
    if inner in _PLAIN_FIELDS:
        return Field(inner, None)
    if inner.startswith("params."):
        path = inner[len("params.") :]
        if path and all(path.split(".")):
            return Field("params", path)
        raise ValueError(f"{where}: placeholder '{{{inner}}}' in {text!r} has an empty path segment")
    if inner == "params":
        raise ValueError(
            f"{where}: placeholder '{{params}}' in {text!r} needs a path: {{params.<dotted.path>}}"
        )
    raise ValueError(f"{where}: unknown placeholder '{{{inner}}}' in {text!r}; known: {KNOWN}")


_MISSING = object()


def _walk(node: Any, path: str) -> Any:
    for segment in path.split("."):
        if isinstance(node, Mapping) and segment in node:
            node = node[segment]
        elif isinstance(node, (list, tuple)) and segment.isdigit() and int(segment) < len(node):
            node = node[int(segment)]
        else:
            return _MISSING
    return node


def lookup(path: str, params: Mapping[str, Any], config: Mapping[str, Any], *, where: str) -> Any:
    """A parameter's value: a flat ``"a.b"`` key of params, a nested one, else the merged config.

    The config fallback covers fixed parameters, which a runner need not pass among the sampled
    ones: the merged config holds every parameter at its path.
    """
    if path in params:
        return params[path]
    for source in (params, config):
        found = _walk(source, path)
        if found is not _MISSING:
            return found
    known = ", ".join(sorted(map(str, params))) or "none"
    raise ValueError(
        f"{where}: placeholder {{params.{path}}} names no parameter (parameters of this trial: {known})"
    )


def _json_default(value: Any) -> Any:
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        return item()
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    return str(value)


def render_value(value: Any) -> str:
    """One argument's text for a value: strings verbatim, JSON for booleans, null, lists and dicts."""
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        return float.__repr__(value)  # shortest round-trip text, also for numpy's float64
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_json_default)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return str(value)


def parse_all(items: Sequence[str], *, name: str) -> tuple[Template, ...]:
    return tuple(parse(item, where=f"{name}[{i}]") for i, item in enumerate(items))


def check_paths(templates: Iterable[Template], parameters: Iterable[str]) -> None:
    """Every ``{params.…}`` must name one of ``parameters`` (the sweep's parameter paths)."""
    known = set(parameters)
    for template in templates:
        for path in template.param_paths:
            if path not in known:
                listing = ", ".join(sorted(known)) or "none"
                raise ValueError(
                    f"{template.where}: placeholder {{params.{path}}} names no parameter "
                    f"(parameters: {listing})"
                )
