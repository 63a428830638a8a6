"""Walk-forward folds: consecutive (train, test) windows over a data axis.

Positions are whole numbers (bar indices, as ``data.start``/``data.end`` of the bundled example)
or calendar dates (``datetime.date`` or ISO ``"YYYY-MM-DD"`` text, returned in the form given).
Lengths are whole numbers of positions, or for dates a number of days or text like ``"90d"``,
``"12w"``, ``"6mo"``, ``"2y"``. Every window is half-open, ``[start, end)``, like a slice.
"""

from __future__ import annotations

import calendar
import datetime as dt
import numbers
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Fold", "explicit_folds", "walk_forward_folds"]

_LENGTH = re.compile(r"^\s*(\d+)\s*(d|w|mo|y)\s*$")


@dataclass(frozen=True)
class Fold:
    """One walk-forward fold: fit on ``train``, then evaluate the choice on ``test`` (``[start, end)``)."""

    index: int
    train: tuple[Any, Any]
    test: tuple[Any, Any]


@dataclass(frozen=True)
class _Length:
    count: int
    unit: str  # "index", "day" or "month"


class _Axis:
    """Reads positions and lengths of one kind (index or date) and adds them."""

    def __init__(self, name: str, value: Any) -> None:
        self.text = isinstance(value, str)
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            self.kind = "index"
        elif isinstance(value, dt.date | str) and not isinstance(value, dt.datetime):
            self.kind = "date"
        else:
            raise ValueError(
                f"{name} must be a whole number (a bar index) or a date ('2020-01-31'), got {value!r}"
            )

    def position(self, name: str, value: Any) -> Any:
        if self.kind == "index":
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise ValueError(f"{name} must be a whole number like the other positions, got {value!r}")
            return int(value)
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                raise ValueError(f"{name} must be a date written YYYY-MM-DD, got {value!r}") from None
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            return value
        raise ValueError(f"{name} must be a date like the other positions, got {value!r}")

    def length(self, name: str, value: Any) -> _Length:
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            count, unit = int(value), "index" if self.kind == "index" else "day"
        elif self.kind == "date" and isinstance(value, str) and (m := _LENGTH.match(value)):
            n, u = int(m.group(1)), m.group(2)
            count, unit = {"d": (n, "day"), "w": (7 * n, "day"), "mo": (n, "month"), "y": (12 * n, "month")}[
                u
            ]
        else:
            form = (
                "a whole number of bars" if self.kind == "index" else "days, or text like '90d', '6mo', '1y'"
            )
            raise ValueError(f"{name} must be {form}, got {value!r}")
        if count <= 0:
            raise ValueError(f"{name} must be positive, got {value!r}")
        return _Length(count, unit)

    def add(self, position: Any, length: _Length, times: int = 1) -> Any:
        n = length.count * times
        if length.unit == "index":
            return position + n
        if length.unit == "day":
            return position + dt.timedelta(days=n)
        month = position.month - 1 + n
        year, month = position.year + month // 12, month % 12 + 1
        return dt.date(year, month, min(position.day, calendar.monthrange(year, month)[1]))

    def out(self, position: Any) -> Any:
        return position.isoformat() if self.text else position


def walk_forward_folds(
    *,
    start: Any,
    end: Any,
    train: Any,
    test: Any,
    step: Any = None,
    anchored: bool = False,
) -> list[Fold]:
    """The folds of a walk-forward over ``[start, end)``.

    Fold i trains on ``train`` positions ending where its test window of ``test`` positions
    starts; each fold moves ``step`` further (default: ``test``, so test windows tile the data
    without overlap and their results can be stitched). Rolling (default): every training window
    has the same length; ``anchored``: every training window starts at ``start`` and grows. Folds
    continue while the test window ends at or before ``end``.
    """
    axis = _Axis("start", start)
    first, last = axis.position("start", start), axis.position("end", end)
    if not first < last:
        raise ValueError(f"start ({start!r}) must come before end ({end!r})")
    train_len = axis.length("train", train)
    test_len = axis.length("test", test)
    step_len = test_len if step is None else axis.length("step", step)
    folds: list[Fold] = []
    while True:
        i = len(folds)
        train_start = first if anchored else axis.add(first, step_len, i)
        train_end = axis.add(axis.add(first, step_len, i), train_len)
        test_end = axis.add(train_end, test_len)
        if test_end > last:
            break
        folds.append(
            Fold(i, (axis.out(train_start), axis.out(train_end)), (axis.out(train_end), axis.out(test_end)))
        )
    if not folds:
        raise ValueError(
            f"no fold fits in [{start!r}, {end!r}): the first needs train ({train!r}) plus test "
            f"({test!r}) positions; shorten them or widen the range"
        )
    return folds


def explicit_folds(windows: Sequence[Mapping[str, Any]]) -> list[Fold]:
    """Folds from a list of ``{"train": [start, end], "test": [start, end]}`` windows.

    Each test window must start at or after its training window ends (no look-ahead).
    """
    if isinstance(windows, str | bytes) or not isinstance(windows, Sequence) or not windows:
        raise ValueError("windows must be a non-empty list of {train = [start, end], test = [start, end]}")
    folds = []
    axis: _Axis | None = None
    for i, window in enumerate(windows):
        where = f"windows[{i}]"
        if not isinstance(window, Mapping) or set(window) != {"train", "test"}:
            raise ValueError(f"{where} must have exactly the keys 'train' and 'test', got {window!r}")
        bounds = []
        for part in ("train", "test"):
            pair = window[part]
            if isinstance(pair, str | bytes) or not isinstance(pair, Sequence) or len(pair) != 2:
                raise ValueError(f"{where}.{part} must be [start, end], got {pair!r}")
            if axis is None:
                axis = _Axis(f"{where}.{part}[0]", pair[0])
            lo = axis.position(f"{where}.{part}[0]", pair[0])
            hi = axis.position(f"{where}.{part}[1]", pair[1])
            if not lo < hi:
                raise ValueError(f"{where}.{part}: start {pair[0]!r} must come before end {pair[1]!r}")
            bounds.append((lo, hi))
        train_end, test_start = bounds[0][1], bounds[1][0]
        if test_start < train_end:
            raise ValueError(
                f"{where}: the test window starts at {window['test'][0]!r}, before its training window "
                f"ends ({window['train'][1]!r}); a test must not see training data"
            )
        folds.append(
            Fold(i, (window["train"][0], window["train"][1]), (window["test"][0], window["test"][1]))
        )
    return folds
