"""Batch sweeps tried as a demanding new user would: odd values, odd objectives, odd exceptions.
Each test is a place where fastgrid was silently wrong or stopped with a traceback (issue 13)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastgrid.batch import BatchObjectiveError, run_batch


def _raises_unreadable(cols: dict[str, Any], config: Any) -> dict[str, Any]:
    if (np.asarray(cols["a"]) == 3).any():
        raise _Unreadable()
    return {"score": np.asarray(cols["a"], dtype=float)}


class _Unreadable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("__str__ failed")


def _point_raises_unreadable(config: dict[str, Any]) -> float:
    if config["a"] == 3:
        raise _Unreadable()
    return float(config["a"])


@pytest.mark.parametrize("kind", ["batch", "callable"])
def test_an_exception_whose_message_cannot_be_read_fails_only_its_points(tmp_path: Path, kind: str) -> None:
    fn = _raises_unreadable if kind == "batch" else _point_raises_unreadable
    run = run_batch(
        {"a": {"type": "int", "low": 0, "high": 9}},
        **{kind: fn},
        directory=tmp_path,
        name=kind,
        metric="score",
        chunk=4,
        retry_failed=0,
    )
    assert run.counts["done"] == 10
    assert run.results.failures() == {"_Unreadable: (its message could not be read)": 1}


def _some_chunks_lack_trades(cols: dict[str, Any], config: Any) -> dict[str, Any]:
    a = np.asarray(cols["a"], dtype=float)
    out = {"score": a}
    if a[0] < 5:  # a metric the objective forgets on some chunks
        out["trades"] = a * 2
    return out


def test_require_naming_a_metric_that_a_chunk_did_not_return_names_the_chunk(tmp_path: Path) -> None:
    with pytest.raises(BatchObjectiveError) as info:
        run_batch(
            {"a": {"type": "int", "low": 0, "high": 9}},
            batch=_some_chunks_lack_trades,
            directory=tmp_path,
            name="req",
            metric="score",
            chunk=5,
            require=["trades >= 2"],
        )
    message = str(info.value)
    assert "chunk slots 5..9" in message and "'trades'" in message and "trades >= 2" in message
    assert info.value.metric == "trades"


def test_a_misspelt_require_name_is_named_with_a_suggestion(tmp_path: Path) -> None:
    with pytest.raises(BatchObjectiveError, match=r"'trade'.*did you mean 'trades'"):
        run_batch(
            {"a": {"type": "int", "low": 0, "high": 9}},
            batch=_some_chunks_lack_trades,
            directory=tmp_path,
            name="typo",
            metric="score",
            chunk=5,
            require=["trade >= 2"],
        )
