"""Dotted parameter paths: between the flat form stored per trial and the nested form a config has."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["flatten", "nest"]


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
