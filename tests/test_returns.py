"""Returns series from objectives: checked, summarized for every trial, kept packed for the best."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from fastgrid import Sweep, open_storage, stats
from hypothesis import given, settings
from hypothesis import strategies as st

optuna.logging.set_verbosity(optuna.logging.WARNING)


def series_of(x: int) -> np.ndarray:
    """Returns whose Sharpe ratio grows with x (a fixed noise, shifted)."""
    noise = np.random.default_rng(0).normal(0.0, 0.01, size=200)
    return noise + 0.0002 * x


def objective(config: dict[str, Any]) -> dict[str, Any]:
    r = series_of(config["x"])
    return {"score": float(r.mean() / r.std()), "returns": r}


def sweep(tmp_path: Path, n: int = 30, **kw: Any) -> Sweep:
    args: dict[str, Any] = {
        "name": "r",
        "parameters": {"x": {"type": "int", "low": 0, "high": n - 1}},
        "objective": objective,
        "metric": "score",
        "direction": "maximize",
        "directory": tmp_path,
        "progress": False,
    }
    args.update(kw)
    return Sweep(**args)


def kept(study: optuna.Study) -> dict[int, np.ndarray]:
    return {
        t.params["x"]: stats.unpack_returns(t.user_attrs["returns"])
        for t in study.trials
        if "returns" in t.user_attrs
    }


def test_every_trial_gets_its_summary_and_the_best_keep_their_series(tmp_path: Path) -> None:
    result = sweep(tmp_path, keep_returns=5).run()
    trials = result.study.trials
    assert len(trials) == 30
    for t in trials:
        r = series_of(t.params["x"])
        summary = stats.describe_returns(r)
        assert t.user_attrs["returns_stats"] == pytest.approx(
            {"periods": 200, "sharpe": summary.sharpe, "skew": summary.skew, "kurtosis": summary.kurtosis}
        )
        assert "returns" not in t.user_attrs["metrics"]
    series = kept(result.study)
    # Sequential order improves every trial: each one is in the top 5 when it finishes.
    assert set(series) == set(range(30))
    for x, r in series.items():
        np.testing.assert_array_equal(r, series_of(x))


def test_a_trial_outside_the_running_top_k_keeps_no_series(tmp_path: Path) -> None:
    # Shuffled order: the final top 5 are always kept, and far fewer than all 30 are.
    result = sweep(tmp_path, keep_returns=5, order="shuffled", seed=4).run()
    series = kept(result.study)
    assert set(range(25, 30)) <= set(series)
    assert len(series) < 30


@pytest.mark.parametrize(("keep", "count"), [("all", 12), (0, 0)])
def test_keep_all_or_none(tmp_path: Path, keep: int | str, count: int) -> None:
    result = sweep(tmp_path, n=12, keep_returns=keep, order="shuffled", seed=1).run()
    assert len(kept(result.study)) == count
    assert all("returns_stats" in t.user_attrs for t in result.study.trials)


def test_a_resumed_sweep_remembers_the_best_so_far(tmp_path: Path) -> None:
    sweep(tmp_path, keep_returns=2, order="shuffled", seed=2, max_trials=20).run()
    study = sweep(tmp_path, keep_returns=2, order="shuffled", seed=2).run().study
    first_run = {t.params["x"] for t in study.trials[:20]}
    late = [t for t in study.trials[20:] if "returns" in t.user_attrs]
    # A trial of the second run keeps its series only if it beats the second best of everything before.
    for t in late:
        before = [u.params["x"] for u in study.trials if u.number < t.number]
        assert t.params["x"] >= sorted(before)[-2]
    assert first_run and set(range(28, 30)) <= set(kept(study))


def test_a_bad_series_fails_the_trial_with_a_reason(tmp_path: Path) -> None:
    def bad(config: dict[str, Any]) -> dict[str, Any]:
        r = series_of(config["x"])
        if config["x"] == 1:
            r[3] = math.nan
        return {"score": 1.0, "returns": r}

    result = sweep(tmp_path, n=3, objective=bad).run()
    failed = [r for r in result.rows if r["state"] == "FAIL"]
    assert {r["params"]["x"] for r in failed} == {1}  # (failed slots are retried once)
    assert failed[0]["reason"] == (
        "the objective's returns series: returns contains nan at index (3,); "
        "drop or fill missing and infinite values before calling"
    )


def test_a_plain_number_named_returns_is_an_ordinary_metric(tmp_path: Path) -> None:
    result = sweep(tmp_path, n=2, objective=lambda c: {"score": 1.0, "returns": 0.25}).run()
    assert all(r["metrics"] == {"score": 1.0, "returns": 0.25} for r in result.rows)
    assert all("returns_stats" not in t.user_attrs for t in result.study.trials)


def test_the_validation_step_keeps_the_held_out_series(tmp_path: Path) -> None:
    result = sweep(tmp_path, n=6, validate={"top": 2, "override": {"shift": 1}}).run()
    assert [v["number"] for v in result.validation]
    for v in result.validation:
        assert "returns" not in v["metrics"]
        np.testing.assert_array_equal(stats.unpack_returns(v["returns"]), series_of(v["params"]["x"]))
    stored = optuna.load_study(study_name="r", storage=open_storage(None, directory=tmp_path))
    assert stored.user_attrs["fastgrid.validation"][0]["returns"].startswith("fgr1:")


@settings(max_examples=40, derandomize=True)
@given(
    values=st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=60),
    keep=st.integers(1, 8),
    maximize=st.booleans(),
)
def test_keeper_keeps_a_superset_of_the_final_top_k(values: list[float], keep: int, maximize: bool) -> None:
    from fastgrid.runner._returns import ReturnsKeeper

    keeper = ReturnsKeeper(keep, "maximize" if maximize else "minimize")
    stored = []
    for i, v in enumerate(values):
        if keeper.wants(v):
            stored.append(i)
        keeper.note(v)
    sign = -1 if maximize else 1
    best = sorted(range(len(values)), key=lambda i: (sign * values[i], i))[:keep]
    assert set(best) <= set(stored)
