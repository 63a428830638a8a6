"""A returns series as compact text, for a JSON attribute of a stored trial.

The float64 values are byte-shuffled (all first bytes, then all second bytes, ...) before zlib:
the sign and exponent bytes of returns of similar size repeat, and shuffled they compress well
(the trick of Blosc and HDF5's shuffle filter). Base64 keeps the result JSON-safe.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from typing import Any

import numpy as np
from numpy.typing import NDArray

from fastgrid.stats._checks import float_array

__all__ = ["pack_returns", "returns_series", "unpack_returns"]

_TAG = "fgr1:"


def returns_series(value: Any, name: str = "returns") -> NDArray[np.float64]:
    """``value`` (a list, numpy array or pandas Series of numbers) as a checked 1-D float array."""
    if hasattr(value, "to_numpy"):  # a pandas Series: its values, not its index
        value = value.to_numpy()
    series = float_array(name, value)
    if series.ndim != 1:
        raise ValueError(f"{name} must be one series of per-period returns (1-D), got shape {series.shape}")
    if series.size < 2:
        raise ValueError(f"{name} has {series.size} period(s); a returns series needs at least 2")
    return series


def pack_returns(value: Any) -> str:
    """A returns series as text that :func:`unpack_returns` reads back exactly."""
    series = returns_series(value).astype("<f8", copy=False)
    shuffled = series.view(np.uint8).reshape(-1, 8).T.tobytes()
    # Level 1: the random mantissa bytes do not compress at any level; it is 2-3x faster than 6.
    return _TAG + base64.b64encode(zlib.compress(shuffled, 1)).decode("ascii")


def unpack_returns(text: str) -> NDArray[np.float64]:
    """The series :func:`pack_returns` packed."""
    if not isinstance(text, str) or not text.startswith(_TAG):
        raise ValueError("not a packed returns series (expected text starting with 'fgr1:')")
    try:
        raw = zlib.decompress(base64.b64decode(text[len(_TAG) :], validate=True))
    except (binascii.Error, zlib.error) as exc:
        raise ValueError(f"damaged packed returns series: {exc}") from None
    if len(raw) % 8:
        raise ValueError("damaged packed returns series: its length is not a whole number of floats")
    planes = np.frombuffer(raw, dtype=np.uint8).reshape(8, -1)
    return planes.T.copy().view("<f8").reshape(-1).astype(np.float64)
