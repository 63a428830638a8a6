"""One column of one chunk as bytes: a small JSON header, then the values' raw little-endian bytes.

Numbers and bools are stored as their numpy bytes (read back zero-copy with ``np.frombuffer``);
any other values (strings, None, lists) are dictionary-encoded: the distinct values in the header
as JSON, the per-row codes as the narrowest unsigned integers that hold them. Nothing is pickled,
so a store never runs code when it is read.

Parameter columns come with each value's position on its grid axis (``Grid.columns(...,
positions=True)``), so they are dictionary-encoded without looking at the values: the chunk's
slice of the axis (a table) and one narrow code per row. A 40-value int axis costs one byte per
row instead of eight (issue 13: writing the columns was a third of a batch sweep's time).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["decode", "encode", "encode_codes", "encode_positions", "encode_values"]

_MAGIC = b"FGC1"
_HEAD = struct.Struct("<4sI")
_NUMERIC_KINDS = frozenset("biuf")


def _key(value: Any) -> Any:
    # Lists and dicts are unhashable: key them by their JSON text (only for the dictionary).
    return (
        value
        if isinstance(value, str | int | float | bool | type(None))
        else json.dumps(value, sort_keys=True)
    )


def encode_values(values: Sequence[Any]) -> bytes:
    """Dictionary-encodes a sequence of JSON-like values."""
    index: dict[Any, int] = {}
    vocab: list[Any] = []
    codes = np.empty(len(values), dtype=np.uint32)
    for i, v in enumerate(values):
        k = (type(v), _key(v))  # True and 1 are equal in a dict; their types are not
        code = index.get(k)
        if code is None:
            code = index[k] = len(vocab)
            vocab.append(v)
        codes[i] = code
    width = np.uint8 if len(vocab) <= 0xFF else np.uint16 if len(vocab) <= 0xFFFF else np.uint32
    packed = codes.astype(width)
    header = json.dumps({"dtype": packed.dtype.str, "values": vocab}, separators=(",", ":")).encode()
    return _HEAD.pack(_MAGIC, len(header)) + header + packed.tobytes()


def encode(column: np.ndarray[Any, Any]) -> bytes:
    """A 1-D numpy column as bytes (numeric and bool kept raw, others dictionary-encoded)."""
    if column.dtype.kind in _NUMERIC_KINDS:
        array = np.ascontiguousarray(column, dtype=column.dtype.newbyteorder("<"))
        header = json.dumps({"dtype": array.dtype.str}).encode()
        return _HEAD.pack(_MAGIC, len(header)) + header + array.tobytes()
    return encode_values(column.tolist())


def _narrow(size: int) -> Any:
    return np.uint8 if size <= 0x100 else np.uint16 if size <= 0x1_0000 else np.uint32


def encode_positions(
    column: np.ndarray[Any, Any],
    positions: np.ndarray[Any, Any],
    table: Callable[[int, int], np.ndarray[Any, Any]],
) -> bytes:
    """A parameter column as the slice of its axis that the chunk uses plus one narrow code per row.

    ``positions`` are the values' positions on their axis; ``table(lo, hi)`` returns the axis
    values at positions ``lo..hi`` (``Grid.axis_values``). Falls back to ``encode`` when the slice
    would not be smaller than the raw column."""
    n = len(column)
    if n == 0 or len(positions) != n:
        return encode(column)
    lo, hi = int(positions.min()), int(positions.max()) + 1
    width = hi - lo
    values = np.asarray(table(lo, hi))
    if values.dtype.kind in _NUMERIC_KINDS:
        code_type = _narrow(width)
        if width * values.dtype.itemsize + n * np.dtype(code_type).itemsize >= n * values.dtype.itemsize:
            return encode(column)
        codes = positions - positions.dtype.type(lo) if lo else positions
        codes = codes.astype(code_type, copy=False)
        values = np.ascontiguousarray(values, dtype=values.dtype.newbyteorder("<"))
        header = json.dumps({"dtype": values.dtype.str, "table": width, "codes": codes.dtype.str}).encode()
        return b"".join((_HEAD.pack(_MAGIC, len(header)), header, values.tobytes(), codes.tobytes()))
    return encode_codes(positions - positions.dtype.type(lo) if lo else positions, values.tolist())


def encode_codes(codes: np.ndarray[Any, Any], vocab: Sequence[Any]) -> bytes:
    """A dictionary-encoded column: ``vocab`` (JSON values) and, per row, its index in ``vocab``."""
    packed = codes.astype(_narrow(len(vocab)), copy=False)
    header = json.dumps({"dtype": packed.dtype.str, "values": list(vocab)}, separators=(",", ":")).encode()
    return b"".join((_HEAD.pack(_MAGIC, len(header)), header, packed.tobytes()))


def decode(data: bytes | memoryview) -> np.ndarray[Any, Any]:
    """The column ``encode`` wrote: numeric columns are read-only views of ``data``."""
    magic, size = _HEAD.unpack_from(data, 0)
    if magic != _MAGIC:
        raise ValueError("not a fastgrid batch column (bad magic bytes)")
    header = json.loads(bytes(data[_HEAD.size : _HEAD.size + size]))
    if "table" in header:
        dtype, width = np.dtype(header["dtype"]), int(header["table"])
        table = np.frombuffer(data, dtype=dtype, count=width, offset=_HEAD.size + size)
        codes = np.frombuffer(
            data, dtype=np.dtype(header["codes"]), offset=_HEAD.size + size + width * dtype.itemsize
        )
        return table[codes]
    body = np.frombuffer(data, dtype=np.dtype(header["dtype"]), offset=_HEAD.size + size)
    if "values" not in header:
        return body
    vocab = np.empty(len(header["values"]), dtype=object)
    for i, v in enumerate(header["values"]):
        vocab[i] = v  # element-wise: a list value must stay one element, not become a row
    return vocab[body]
