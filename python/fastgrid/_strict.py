"""Strict JSON and YAML parsing shared by sweep files and config files.

Both parsers silently keep the last of two equal keys; a sweep or config file with a duplicated key
almost always hides a typo or a bad merge, so here it is an error naming the key (and, for YAML,
the line). Nesting too deep for the parsers' recursion becomes an error as well, not a crash.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

__all__ = ["DuplicateKeyError", "TooDeepError", "json_loads", "yaml_load"]


class DuplicateKeyError(ValueError):
    """A mapping names the same key twice."""


class TooDeepError(ValueError):
    """The document nests deeper than the parser can follow."""


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKeyError(f"duplicate key {key!r}")
        out[key] = value
    return out


def json_loads(text: str) -> Any:
    """``json.loads`` that refuses duplicate keys (DuplicateKeyError) and deep nesting (TooDeepError)."""
    try:
        return json.loads(text, object_pairs_hook=_pairs)
    except RecursionError:
        raise TooDeepError("nested too deeply to read") from None


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
                raise DuplicateKeyError(
                    f"line {mark.line + 1}, column {mark.column + 1}: duplicate key {key!r}"
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def yaml_load(text: str) -> Any:
    """``yaml.safe_load`` that refuses duplicate keys (DuplicateKeyError) and deep nesting (TooDeepError)."""
    try:
        return yaml.load(text, Loader=_StrictSafeLoader)
    except RecursionError:
        raise TooDeepError("nested too deeply to read") from None
