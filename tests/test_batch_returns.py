"""Returns series of batch sweeps (issue 16 in batch mode): a batch objective that takes a
``returns`` keyword is asked again for the best ``keep_returns`` points' series and a sample's;
the report shows the deflated Sharpe ratio and PBO of the winner, as for a per-trial sweep."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastgrid import Grid, Sweep, attrs, stats
from fastgrid.exceptions import SweepFileError
from fastgrid.reporting import BatchReport, load_report

PARAMS = {"a": {"type": "int", "low": 1, "high": 30}, "b": {"type": "int", "low": 1, "high": 20}}
PERIODS = 64


def series(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """A returns series per point: a drift that grows with ``a``, noise seeded by the point."""
    out = np.empty((len(a), PERIODS))
    for i, (x, y) in enumerate(zip(a.tolist(), b.tolist(), strict=True)):
        noise = np.random.default_rng(1000 * x + y).normal(0.0, 0.01, PERIODS)
        out[i] = 0.0002 * x + noise
    return out


def objective(cols: dict[str, Any], config: dict[str, Any], *, returns: bool = False) -> dict[str, Any]:
    r = series(cols["a"], cols["b"])
    out: dict[str, Any] = {"sharpe": r.mean(axis=1) / r.std(axis=1)}
    if returns:
        out["returns"] = r
    return out


def no_returns(cols: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    return {"sharpe": cols["a"] * 1.0}


def common(folder: Path, **extra: Any) -> dict[str, Any]:
    return {
        "parameters": PARAMS,
        "mode": "batch",
        "direction": "maximize",
        "metric": "sharpe",
        "chunk": 50,
        "directory": folder,
        "progress": False,
        **extra,
    }


def test_the_best_points_keep_their_series_and_the_report_shows_dsr_and_pbo(tmp_path: Path) -> None:
    r = Sweep(name="s", batch=objective, keep_returns=8, top_k=20, **common(tmp_path)).run()
    kept = r.study.user_attrs[attrs.STUDY_BATCH_RETURNS]
    top = r.results.top(8, metric="sharpe")
    assert [p["slot"] for p in kept["points"]] == [row["slot"] for row in top]
    a = np.array([row["params"]["a"] for row in top])
    b = np.array([row["params"]["b"] for row in top])
    for p, want in zip(kept["points"], series(a, b), strict=True):
        got = stats.unpack_returns(p["returns"])
        assert np.array_equal(got, want)
        assert p["stats"]["sharpe"] == pytest.approx(float(stats.describe_returns(want).sharpe), rel=1e-12)
    # 600 points, fewer than the sample: the variance is that of every point's Sharpe ratio.
    every = series(np.repeat(np.arange(1, 31), 20), np.tile(np.arange(1, 21), 30))
    sharpes = [float(stats.describe_returns(row).sharpe) for row in every]
    assert kept["n_trials"] == 600 and kept["sample"] == 600
    assert kept["sharpe_variance"] == pytest.approx(float(np.var(sharpes, ddof=1)), rel=1e-9)
    report = load_report(storage=str(tmp_path / "fastgrid.db"), study="s", directory=tmp_path)
    assert isinstance(report, BatchReport) and report.best is not None
    selection = report.selection
    assert selection is not None and selection.trials_run == 600 and selection.n_trials == 600
    point = report.best["params"]
    best = stats.describe_returns(series(np.array([point["a"]]), np.array([point["b"]]))[0])
    want_dsr = stats.deflated_sharpe_ratio(
        float(best.sharpe),
        n_trials=600,
        trials_sharpe_variance=kept["sharpe_variance"],
        skew=float(best.skew),
        kurtosis=max(float(best.kurtosis), 1.0 + float(best.skew) ** 2),
        periods=PERIODS,
    )
    assert selection.deflated_sharpe == pytest.approx(float(want_dsr), rel=1e-9)
    assert selection.pbo is not None and selection.pbo_trials == 8
    text = "\n".join(selection.sentences())
    assert text.startswith("600 point(s) run.")
    assert f"Deflated Sharpe ratio of the winner (slot {report.best['number']})" in text
    assert "PBO" in text and "over the 8 points whose returns were kept" in text


def test_a_resumed_run_that_runs_nothing_keeps_the_stored_series(tmp_path: Path) -> None:
    Sweep(name="s", batch=objective, keep_returns=4, **common(tmp_path)).run()
    again = Sweep(name="s", batch=objective, keep_returns=4, **common(tmp_path)).run()
    assert again.ran == 0
    assert len(again.study.user_attrs[attrs.STUDY_BATCH_RETURNS]["points"]) == 4


def test_keep_returns_zero_or_an_objective_without_the_keyword_keeps_nothing(tmp_path: Path) -> None:
    none = Sweep(name="z", batch=objective, keep_returns=0, **common(tmp_path)).run()
    plain = Sweep(name="p", batch=no_returns, **common(tmp_path)).run()  # keep_returns not set: quietly none
    for r in (none, plain):
        assert attrs.STUDY_BATCH_RETURNS not in r.study.user_attrs
    report = load_report(storage=str(tmp_path / "fastgrid.db"), study="p", directory=tmp_path)
    assert isinstance(report, BatchReport) and report.selection is None


def test_keep_returns_asked_of_an_objective_without_the_keyword_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(SweepFileError) as info:
        Sweep(name="k", batch=no_returns, keep_returns=5, **common(tmp_path)).run()
    assert info.value.problems == [
        "keep_returns: a batch sweep keeps returns series when its batch objective takes a 'returns' "
        "keyword (fn(columns, config, *, returns=False)) and returns a points x periods 'returns' array "
        "when it is True; add it, or drop keep_returns"
    ]


def test_a_returns_array_of_the_wrong_shape_is_named(tmp_path: Path) -> None:
    def flat(cols: dict[str, Any], config: dict[str, Any], *, returns: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"sharpe": cols["a"] * 1.0}
        if returns:
            out["returns"] = np.zeros(PERIODS)
        return out

    with pytest.raises(SweepFileError, match=r"one row per point \(\d+ x periods\), got shape \(64,\)"):
        Sweep(name="w", batch=flat, **common(tmp_path)).run()


def test_the_run_result_judges_the_selection_as_the_report_does(tmp_path: Path) -> None:
    """``result.selection`` of a batch run counted the top-K trials of the study (20 "trials run",
    not 600 points) and looked for the winner's series on a trial numbered like its slot."""
    r = Sweep(name="s", batch=objective, keep_returns=8, top_k=20, **common(tmp_path)).run()
    report = load_report(storage=str(tmp_path / "fastgrid.db"), study="s", directory=tmp_path)
    assert isinstance(report, BatchReport) and report.selection is not None
    assert r.selection.trials_run == 600 and r.selection.n_trials == 600
    assert r.selection.deflated_sharpe is not None
    assert r.selection.deflated_sharpe == report.selection.deflated_sharpe
    assert r.selection.pbo is not None and report.selection.pbo is not None
    assert r.selection.pbo.pbo == report.selection.pbo.pbo
    assert r.selection.sentences() == report.selection.sentences()
    plain = Sweep(name="p", batch=no_returns, top_k=20, **common(tmp_path)).run()
    assert plain.selection.trials_run == 600 and plain.selection.deflated_sharpe is None
    assert plain.selection.sentences()[0] == "600 point(s) run."


MIXED = {
    "a": {"type": "int", "low": 1, "high": 30},
    "flag": {"type": "grid", "values": [True, 2]},
    "ladder": {"type": "grid", "values": [[0.5, 0.1], [1.0, 0.2]]},
    "mode": {"type": "grid", "values": ["long", "short"]},
}
CALLS: list[dict[str, Any]] = []


def _lever(flag: Any, ladder: Any, mode: Any) -> float:
    return (1.0 if flag is True else 2.0) * (1 + ladder[0]) * (1.0 if mode == "long" else -1.0)


def mixed(cols: dict[str, Any], config: dict[str, Any], *, returns: bool = False) -> dict[str, Any]:
    CALLS.append({k: (v.dtype.kind, v.ndim) for k, v in cols.items() if isinstance(v, np.ndarray)})
    points = zip(cols["flag"].tolist(), cols["ladder"].tolist(), cols["mode"].tolist(), strict=True)
    lever = np.array([_lever(f, lad, m) for f, lad, m in points])
    r = series(cols["a"], np.ones(len(lever), dtype=int)) * lever[:, None]
    out: dict[str, Any] = {"sharpe": r.mean(axis=1) / r.std(axis=1)}
    if returns:
        out["returns"] = r
    return out


def test_the_points_asked_for_their_series_get_the_columns_their_chunk_got(tmp_path: Path) -> None:
    """The returns call rebuilt the columns with np.array: True and 2 became 1 and 2, a list value
    became a row of a 2-D array and strings a '<U5' array, so the kept series (and the deflated
    Sharpe ratio and PBO) were those of other points than the ones ranked."""
    CALLS.clear()
    r = Sweep(
        name="m", batch=mixed, keep_returns=8, top_k=20, **{**common(tmp_path), "parameters": MIXED}
    ).run()
    assert all(call == CALLS[0] for call in CALLS), CALLS  # same dtypes and dimensions every call
    kept = r.study.user_attrs[attrs.STUDY_BATCH_RETURNS]
    grid = Grid(MIXED, flat=True)
    for p in kept["points"]:
        point = grid[p["slot"]]
        want = series(np.array([point["a"]]), np.array([1]))[0] * _lever(
            point["flag"], point["ladder"], point["mode"]
        )
        assert np.array_equal(stats.unpack_returns(p["returns"]), want), point
