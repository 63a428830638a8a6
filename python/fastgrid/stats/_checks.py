"""Argument checks shared by the statistics: one ValueError naming the argument and the fix."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray


def float_array(name: str, value: ArrayLike) -> NDArray[np.float64]:
    """``value`` as a float64 array whose every element is finite."""
    if isinstance(value, (str, bytes)):
        raise ValueError(f"{name} must be a number or an array of numbers, got the string {value!r}")
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a number or an array of numbers: {exc}") from None
    if not np.isfinite(array).all():
        position = np.argwhere(~np.isfinite(array))[0]
        where = f" at index {tuple(int(i) for i in position)}" if array.ndim else ""
        bad = float(array[tuple(position)])
        raise ValueError(
            f"{name} contains {bad}{where}; drop or fill missing and infinite values before calling"
        )
    return array


def integer_array(name: str, value: ArrayLike, *, minimum: int, meaning: str) -> NDArray[np.float64]:
    """``value`` as an array of whole numbers ≥ ``minimum``, held as float64 for the arithmetic."""
    if isinstance(value, bool) or (isinstance(value, np.ndarray) and value.dtype == np.bool_):
        raise ValueError(f"{name} must be a whole number ({meaning}), got {value!r}")
    array = float_array(name, value)
    if (array != np.round(array)).any():
        raise ValueError(f"{name} must be a whole number ({meaning}), got {value!r}")
    if (array < minimum).any():
        raise ValueError(f"{name} must be at least {minimum} ({meaning}), got {_smallest(array)}")
    return array


def positive_scalar(name: str, value: Any, meaning: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a positive number ({meaning}), got {value!r}")
    number = float(value)
    if not number > 0 or number == float("inf"):
        raise ValueError(f"{name} must be a positive number ({meaning}), got {value!r}")
    return number


def whole_scalar(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    return int(value)


def _smallest(array: NDArray[np.float64]) -> str:
    low = float(array.min())
    return str(int(low)) if low.is_integer() else repr(low)
