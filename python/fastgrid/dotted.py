"""Dotted parameter paths: between the flat form stored per trial and the nested form a config has."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

__all__ = ["apply_override", "flatten", "nest"]


def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """A nested dict from dotted paths, keys in the given order."""
    out: dict[str, Any] = {}
    for path, value in flat.items():
        parts = path.split(".")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def flatten(point: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted paths from a nested mapping (an empty one is a value, not a namespace)."""
    out: dict[str, Any] = {}
    for key, value in point.items():
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def apply_override(config: Mapping[str, Any], override: Mapping[str, Any], *, strict: bool) -> dict[str, Any]:
    """A deep copy of ``config`` with each dotted path of ``override`` set.

    With ``strict`` (a default config exists) a path the config lacks is an error: a typo must not
    silently validate on the training window.
    """
    out = copy.deepcopy(dict(config))
    for path, value in override.items():
        parts = path.split(".")
        node: Any = out
        for depth, part in enumerate(parts[:-1]):
            nxt = node.get(part) if isinstance(node, dict) else None
            if not isinstance(nxt, dict):
                if strict or (nxt is not None):
                    where = ".".join(parts[: depth + 1])
                    raise ValueError(f"validate.override[{path!r}]: the config has no table {where!r}")
                nxt = node[part] = {}
            node = nxt
        if strict and parts[-1] not in node:
            raise ValueError(f"validate.override[{path!r}]: the config has no key {path!r}")
        node[parts[-1]] = copy.deepcopy(value)
    return out
