"""Lazy re-exports for package ``__init__`` modules (PEP 562), so importing a package costs only
what it imports eagerly.

A package lists where each public name lives; the first access imports that module and caches the
value in the package's namespace, so later accesses are plain attribute reads. ``from pkg import
Name``, ``pkg.Name`` and ``dir(pkg)`` behave as with eager imports. Type checkers and IDEs see the
same names through ``if TYPE_CHECKING:`` imports beside the table (``tests/test_lazy.py`` keeps the
two equal). Why: ``fastgrid worker`` processes and every CLI call paid ~0.5 s of imports (Optuna,
numpy, pydantic) before their first line of work (issue 13).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def _import(module: str) -> Any:
    # The import statement's machinery, not importlib.import_module: `python -X importtime` times
    # only the former, and a lazy import it did not show would hide where start-up time goes.
    __import__(module)
    return sys.modules[module]


def lazy_exports(
    package: str, table: Mapping[str, Iterable[str]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package`` (its ``__name__``).

    ``table`` maps a module (absolute name) to the names the package re-exports from it; the module
    ``f"{package}.{name}"`` listed under its own name (``{"fastgrid.study": ["study"]}``) re-exports
    the submodule itself. Any other public submodule is imported on first access too, as eager
    imports made ``import fastgrid; fastgrid.stats.sharpe_ratio(...)`` work.
    """
    where: dict[str, str] = {}
    for module, names in table.items():
        for name in names:
            if name in where:
                raise ValueError(f"{package}: {name!r} re-exported from {where[name]} and {module}")
            where[name] = module

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        submodule = f"{package}.{name}"
        if module is None and not name.startswith("_") and importlib.util.find_spec(submodule) is not None:
            return _import(submodule)  # the import sets the package's attribute
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        imported = _import(module)
        value = imported if module == f"{package}.{name}" else getattr(imported, name)
        # Cached in the package: the next access does not come back here.
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(where))

    return __getattr__, __dir__
