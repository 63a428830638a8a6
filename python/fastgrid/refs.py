"""Resolving ``"module:attribute"`` references from sweep files and options, with readable errors."""

from __future__ import annotations

import importlib
import pickle
from dataclasses import dataclass
from typing import Any

__all__ = ["ByValue", "by_value", "from_value", "import_object"]


def import_object(ref: str, *, what: str, form: str = "module:name") -> Any:
    """Imports the object a ``"module:name"`` (or ``"module:Class.attr"``) reference names.

    ``what`` says what the reference is for (``"callable"``, ``"model"``) and ``form`` is the shape
    shown when the colon is missing; every error is a ``ValueError`` that starts with ``what`` and
    the reference, so the user sees which setting is wrong.
    """
    module_name, sep, attribute = ref.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"{what} {ref!r}: expected '{form}'")
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as exc:  # importing runs the user's module: any exception is its failure
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        message = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
        raise ValueError(f"{what} {ref!r}: cannot import {module_name!r}: {message}") from exc
    for part in attribute.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ValueError(
                f"{what} {ref!r}: module {module_name!r} has no attribute {attribute!r}"
            ) from None
    return obj


@dataclass(frozen=True)
class ByValue:
    """A callable pickled by cloudpickle (plain pickle reads it back; cloudpickle need not be
    imported by the reader, only installed)."""

    data: bytes


def by_value(fn: Any) -> ByValue:
    """``fn`` for another process: a function defined in a notebook or a script's ``__main__``
    cannot be imported by a spawned process, so it goes by value; an importable function goes by
    reference, as pickle sends it. Raises what cloudpickle raises for what cannot cross processes."""
    import cloudpickle

    return ByValue(cloudpickle.dumps(fn))


def from_value(value: Any) -> Any:
    """The callable ``by_value`` packed (anything else as it is)."""
    return pickle.loads(value.data) if isinstance(value, ByValue) else value
