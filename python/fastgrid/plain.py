"""Plain Python values from numpy ones, where values enter fastgrid (grids, configs, ``Sweep``).

Quants write grids with numpy (``np.arange(5, 50, 5)``, ``np.float64(0.1)``, ``np.linspace``); the
compiled core takes JSON-like values only. Every numpy array or scalar becomes the exact Python
value numpy's own ``tolist()`` gives (an ``int64`` an ``int``, a ``float64`` the same double), so
a point's values, keys and stored params are what they would be had the user typed them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["plain"]


def _is_numpy(value: Any) -> bool:
    # Without importing numpy: only a numpy array or scalar has a type from the numpy package.
    return type(value).__module__.split(".", 1)[0] == "numpy" and hasattr(value, "tolist")


def plain(value: Any) -> Any:
    """A copy of ``value`` with numpy arrays and scalars as Python lists and scalars.

    Dicts are copied (keys kept), lists and tuples become lists, anything else is returned as is
    (the core then names what it cannot take, with its path). A container that holds itself is
    copied once, so the copy holds itself too: an objective's hostile result must not recurse
    forever here (storing it marks the cycle).
    """
    return _plain(value, {})


def _plain(value: Any, copies: dict[int, Any]) -> Any:
    if _is_numpy(value):
        return value.tolist()
    if isinstance(value, dict | Mapping | list | tuple):
        known = copies.get(id(value))
        if known is not None:
            return known  # a container seen before (a cycle, or shared): its copy, once
        if isinstance(value, dict | Mapping):
            out_map: dict[Any, Any] = {}
            copies[id(value)] = out_map
            for k, v in value.items():
                out_map[k] = _plain(v, copies)
            return out_map
        out_list: list[Any] = []
        copies[id(value)] = out_list
        out_list.extend(_plain(v, copies) for v in value)
        return out_list
    return value
