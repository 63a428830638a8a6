"""The per-trial and the batch report render through one set of rules (reporting/_common.py): the
same failure grouping (numbers blanked), the same overflow line, the same best-point lines."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import numpy as np
from fastgrid import Sweep
from fastgrid.reporting import BatchReport, Report, load_report, render_report
from rich.console import Console

PARAMS = {"a": {"type": "int", "low": 1, "high": 60}, "b": {"type": "int", "low": 1, "high": 2}}


def per_point(config: dict[str, Any]) -> dict[str, float]:
    a = config["a"]
    if a % 5 == 0:
        raise ValueError(f"window {a} longer than the data")
    if a < 30 and a % 2:  # 12 distinct reasons (a // 2 names the feed), each once per b
        raise RuntimeError(f"{chr(ord('a') + a // 2)}-feed missing")
    return {"score": a * 2.0 - config["b"]}


def vectorized(cols: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    a = cols["a"]
    if len(a) == 1:  # bisection reached one point: fail it as per_point would
        per_point({"a": int(a[0]), "b": int(cols["b"][0])})
    elif np.any((a % 5 == 0) | ((a < 30) & (a % 2 == 1))):
        raise ValueError("some point fails")
    return {"score": a * 2.0 - cols["b"]}


def render(report: Report | BatchReport) -> str:
    out = io.StringIO()
    render_report(report, top=3, console=Console(file=out, width=200, color_system=None))
    return out.getvalue()


def test_both_reports_group_failures_the_same_way_and_print_the_same_rules(tmp_path: Path) -> None:
    common = {"parameters": PARAMS, "direction": "maximize", "metric": "score", "directory": tmp_path}
    Sweep(
        name="pt", objective=per_point, fail_fast=0, retry_failed=0, progress=False, quiet=True, **common
    ).run()
    Sweep(name="bt", batch=vectorized, mode="batch", chunk=8, fail_fast=0, progress=False, **common).run()
    trial = load_report(
        storage=str(tmp_path / "fastgrid.db"), study="pt", directory=tmp_path, importance=False
    )
    batch = load_report(
        storage=str(tmp_path / "fastgrid.db"), study="bt", directory=tmp_path, importance=False
    )
    assert isinstance(trial, Report) and isinstance(batch, BatchReport)
    # "window 5 ..." and "window 10 ..." are one reason in both: 12 windows x 2 = 24 points.
    want = [(24, "ValueError: window 5 longer than the data", 8)] + [
        (2, f"RuntimeError: {chr(ord('a') + a // 2)}-feed missing", 2 * (a - 1))
        for a in range(1, 30, 2)
        if a % 5
    ]
    assert [(g.count, g.reason, g.first) for g in trial.failures] == want
    assert [(g.count, g.reason, g.first) for g in batch.failures] == want
    t, b = render(trial), render(batch)
    assert "48 failed trials by reason" in t and "48 failed points by reason" in b
    assert "... and 3 more reasons (6 trials)" in t and "... and 3 more reasons (6 points)" in b
    row = r"│\s+24 │\s+{} │ ValueError: window 5 longer than the data\s+│"
    assert re.search(row.format("#8") + r" \S+trial_8/error\.log", t)  # then where to look
    assert re.search(row.format("slot 8") + "\n", b)
    assert 'best trial: #118 score=119\n  params: {"a": 60, "b": 1}' not in t  # 60 % 5 == 0 fails
    assert 'best trial: #116 score=117\n  params: {"a": 59, "b": 1}' in t
    assert 'best point: slot 116 score=117\n  params: {"a": 59, "b": 1}' in b
