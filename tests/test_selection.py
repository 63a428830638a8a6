"""The selection statistics of a stored sweep: trials run, the winner's DSR, PBO and the summary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from fastgrid import Sweep, stats
from fastgrid.reporting import load_report, render_report
from fastgrid.selection import assess_selection
from rich.console import Console

optuna.logging.set_verbosity(optuna.logging.WARNING)

PERIODS = 500


def noise(x: int) -> np.ndarray:
    return np.random.default_rng(1000 + x).normal(0.0, 0.01, size=PERIODS)


def noise_objective(config: dict[str, Any]) -> dict[str, Any]:
    r = noise(config["x"])
    return {"score": float(r.mean() / r.std(ddof=1)), "returns": r}


def edge_objective(config: dict[str, Any]) -> dict[str, Any]:
    r = noise(config["x"]) + (0.004 if config["x"] == 7 else 0.0)  # Sharpe 0.4 a period for x = 7
    return {"score": float(r.mean() / r.std(ddof=1)), "returns": r}


def run(tmp_path: Path, objective: Any, n: int = 40, **kw: Any) -> Any:
    return Sweep(
        name="s",
        parameters={"x": {"type": "int", "low": 0, "high": n - 1}},
        objective=objective,
        metric="score",
        direction="maximize",
        keep_returns="all",
        directory=tmp_path,
        progress=False,
        **kw,
    ).run()


def test_dsr_of_the_winner_recomputed_from_the_series(tmp_path: Path) -> None:
    result = run(tmp_path, noise_objective)
    sel = result.selection
    series = [noise(x) for x in range(40)]
    summaries = [stats.describe_returns(r) for r in series]
    sharpes = np.array([s.sharpe for s in summaries])
    best = int(np.argmax(sharpes))
    assert result.best["params"]["x"] == best
    want = stats.deflated_sharpe_ratio(
        sharpes[best],
        n_trials=40,
        trials_sharpe_variance=float(np.var(sharpes, ddof=1)),
        skew=summaries[best].skew,
        kurtosis=summaries[best].kurtosis,
        periods=PERIODS,
    )
    assert (sel.trials_run, sel.n_trials, sel.winner) == (40, 40, result.best["number"])
    assert sel.deflated_sharpe == pytest.approx(want, rel=1e-12)
    assert sel.deflated_sharpe < 0.95  # the best of 40 noise strategies is no discovery
    assert sel.sharpe == pytest.approx(sharpes[best], rel=1e-12)
    # PBO over every kept series, in trial order.
    assert sel.pbo is not None and sel.pbo_trials == 40
    assert sel.pbo.pbo == stats.pbo(np.column_stack(series), splits=16).pbo
    assert "no better than luck" in sel.note or "not conclusive" in sel.note


def test_a_real_edge_is_recognized(tmp_path: Path) -> None:
    sel = run(tmp_path, edge_objective).selection
    assert sel.deflated_sharpe is not None and sel.deflated_sharpe > 0.99
    assert sel.pbo is not None and sel.pbo.pbo < 0.05
    assert "likely a real edge" in sel.note and "little sign of overfitting" in sel.note


def test_without_returns_the_report_says_how_to_get_them(tmp_path: Path) -> None:
    sel = run(tmp_path, lambda c: {"score": float(c["x"])}, n=5).selection
    assert (sel.trials_run, sel.n_trials, sel.deflated_sharpe, sel.pbo) == (5, 0, None, None)
    assert "return one beside the metrics" in sel.note


def test_reuses_are_not_trials(tmp_path: Path) -> None:
    result = run(tmp_path, noise_objective, n=2, sampler={"name": "random", "seed": 1}, max_trials=8)
    assert result.counts["reused"] > 0
    sel = result.selection
    assert (sel.trials_run, sel.n_trials) == (2, 2)
    assert sel.pbo is None and sel.pbo_trials == 2
    assert "PBO needs the returns series of at least 4 trials" in sel.note


def test_fewer_kept_series_than_needed_for_pbo(tmp_path: Path) -> None:
    sel = run(tmp_path, noise_objective, n=3).selection
    assert sel.deflated_sharpe is not None and sel.pbo is None


def test_report_shows_and_exports_the_selection(tmp_path: Path) -> None:
    sweep_file = tmp_path / "s.toml"
    sweep_file.write_text(
        "[sweep]\nname = 's'\nmetric = 'score'\ndirection = 'maximize'\nkeep_returns = 'all'\n"
        "[objective]\ncallable = 'test_selection:edge_objective'\n"
        "[parameters]\nx = { type = 'int', low = 0, high = 19 }\n"
    )
    Sweep.from_file(sweep_file, directory=tmp_path, progress=False).run()
    report = load_report(sweep_file, directory=tmp_path, importance=False)
    assert report.selection is not None and report.selection.deflated_sharpe is not None
    console = Console(record=True, width=300)
    render_report(report, console=console)
    text = console.export_text()
    assert "20 trial(s) run." in text and "Deflated Sharpe ratio of the winner (trial 7)" in text
    report.to_json(tmp_path / "r.json")
    exported = json.loads((tmp_path / "r.json").read_text())["selection"]
    assert exported["deflated_sharpe"] == report.selection.deflated_sharpe
    assert exported["pbo"]["combinations"] == 12_870


def test_assess_selection_of_an_empty_study() -> None:
    sel = assess_selection([], None)
    assert (sel.trials_run, sel.n_trials, sel.deflated_sharpe, sel.pbo) == (0, 0, None, None)
