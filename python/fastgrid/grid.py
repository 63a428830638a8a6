"""``fastgrid.Grid``: the compiled grid, taking numpy values where a spec is given.

The grid engine is compiled (``fastgrid._core.Grid``) and takes JSON-like values; this entry point
converts numpy arrays and scalars first (:func:`fastgrid.plain.plain`), so ``np.arange(5, 50, 5)``
is a grid axis of the ints 5..45 (issue 11). It returns the compiled class's own instance: every
method, view and pickle is the engine's, and ``isinstance(g, fastgrid.Grid)`` holds for any grid
(slices and shards included). Type checkers see the compiled class itself (``fastgrid/__init__.py``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastgrid._core import Grid as _CoreGrid
from fastgrid.plain import plain

__all__ = ["Grid"]


class _GridType(type):
    """Makes the entry point stand for the compiled class: isinstance, issubclass, attributes."""

    def __instancecheck__(cls, obj: object) -> bool:
        return isinstance(obj, _CoreGrid)

    def __subclasscheck__(cls, sub: type) -> bool:
        return issubclass(sub, _CoreGrid)

    def __getattr__(cls, name: str) -> Any:
        return getattr(_CoreGrid, name)


class Grid(metaclass=_GridType):
    __doc__ = _CoreGrid.__doc__

    def __new__(  # type: ignore[misc]
        cls,
        spec: Any,
        *,
        constraints: str | Iterable[str] | None = None,
        flat: bool = False,
    ) -> _CoreGrid:
        return _CoreGrid(plain(spec), constraints=constraints, flat=flat)
