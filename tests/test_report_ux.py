"""Reading a stored sweep as a new user does: failures by reason, honest importances, a readable
heatmap title, a DataFrame, ``fastgrid.load`` and the documented spellings (issue 11)."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import fastgrid
import pytest
from fastgrid.reporting import heatmap_title, load_report, render_report
from rich.console import Console


def backtest(config: dict[str, Any]) -> dict[str, Any]:
    if config["x"] == 3:
        raise ValueError(f"window {config['y']} longer than the data")
    if config["x"] == 4:
        raise KeyError("close")
    return {"sharpe": float(config["x"] + config["y"]), "stats": {"trades": 10 * config["x"]}}


def run(tmp_path: Path, **kw: Any) -> fastgrid.SweepResult:
    args: dict[str, Any] = {
        "name": "r",
        "parameters": {"x": {"type": "int", "low": 0, "high": 4}, "y": {"type": "int", "low": 0, "high": 2}},
        "objective": backtest,
        "metric": "sharpe",
        "direction": "maximize",
        "directory": tmp_path,
        "progress": False,
        "retry_failed": 0,
    }
    args.update(kw)
    return fastgrid.Sweep(**args).run()


def write_sweep_file(tmp_path: Path) -> Path:
    (tmp_path / "report_strategy.py").write_text(
        textwrap.dedent(
            """
            def run(config):
                return {"sharpe": config["x"] - config["y"], "trades": 3}
            """
        )
    )
    path = tmp_path / "s.toml"
    path.write_text(
        '[sweep]\nname = "s"\ndirection = "maximize"\nmetric = "sharpe"\n'
        '[objective]\ncallable = "report_strategy:run"\n'
        '[parameters]\nx = { type = "int", low = 0, high = 2 }\ny = { type = "int", low = 0, high = 1 }\n'
    )
    return path


# -- 8. failures by reason; no importance of a constant -----------------------------------------------
def test_the_report_groups_failures_by_reason_with_a_count_first_trial_and_log(tmp_path: Path) -> None:
    run(tmp_path)
    report = load_report(storage=str(tmp_path / "fastgrid.db"), study="r", directory=tmp_path)
    groups = [(g.count, g.first, g.reason) for g in report.failures]
    assert groups == [(3, 9, "ValueError: window 0 longer than the data"), (3, 12, "KeyError: 'close'")]
    assert report.failures[0].evidence == str(tmp_path / "runs" / "r" / "trial_9" / "error.log")
    console = Console(file=io.StringIO(), width=200)
    render_report(report, console=console)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "6 failed trials by reason" in text
    assert "ValueError: window 0 longer than the data" in text and "trial_9/error.log" in text


def test_no_parameter_importance_is_printed_when_every_value_is_equal(tmp_path: Path) -> None:
    run(tmp_path, objective=lambda config: 1.0, metric="value")
    report = load_report(storage=str(tmp_path / "fastgrid.db"), study="r")
    assert report.importance is None
    console = Console(file=io.StringIO(), width=200)
    render_report(report, console=console)
    assert "importance" not in console.file.getvalue()  # type: ignore[attr-defined]


# -- 9. the heatmap title -------------------------------------------------------------------------------
def test_the_heatmap_title_names_only_varying_parameters_and_fits_the_figure(tmp_path: Path) -> None:
    many = {f"p{i}": {"type": "grid", "values": [0, 1]} for i in range(5)}
    parameters = {"x": {"type": "int", "low": 0, "high": 2}, "y": {"type": "int", "low": 0, "high": 1}}
    parameters |= {"fee": 0.001, **many}
    result = run(tmp_path, parameters=parameters, objective=lambda c: float(c["x"]), metric="value")
    report = load_report(storage=str(tmp_path / "fastgrid.db"), study=result.name)
    title = heatmap_title(report, "x", "y", metric="value", agg="max", width=6.0)
    assert "fee" not in title
    assert title.replace("\n", " ") == "r: value, max over 5 parameters (p0, p1, p2, ...)"
    assert all(len(line) <= 66 for line in title.splitlines())
    figure = fastgrid.reporting.heatmap_figure(report, "x", "y")
    assert figure.axes[0].get_title() == heatmap_title(
        report, "x", "y", metric="value", agg="max", width=figure.get_figwidth()
    )
    two = heatmap_title(report, "p0", "p1", metric="value", agg="mean", width=6.0)
    assert two.replace("\n", " ") == "r: value, mean over 5 parameters (x, y, p2, ...)"


def test_the_heatmap_shows_the_best_value_per_cell_by_the_sweeps_direction(tmp_path: Path) -> None:
    """A minimize sweep's cells hold their smallest value (the best), not the worst; an explicit
    agg is kept; the title and the colorbar say which."""
    parameters = {
        "x": {"type": "int", "low": 0, "high": 1},
        "y": {"type": "int", "low": 0, "high": 1},
        "z": {"type": "int", "low": 0, "high": 2},
    }
    objective = lambda c: float(10 * c["x"] + c["y"] + 3 * c["z"])  # noqa: E731
    for direction, best in (("minimize", 0), ("maximize", 2)):
        name = f"h{direction}"
        run(
            tmp_path,
            name=name,
            parameters=parameters,
            objective=objective,
            metric="value",
            direction=direction,
        )
        report = load_report(storage=str(tmp_path / "fastgrid.db"), study=name)
        figure = fastgrid.reporting.heatmap_figure(report, "x", "y")
        grid = figure.axes[0].images[0].get_array()
        agg = "min" if direction == "minimize" else "max"
        assert grid.tolist() == [[10 * x + y + 3 * best for x in (0, 1)] for y in (0, 1)]
        assert f"value, {agg} over z" in figure.axes[0].get_title()
        assert figure.axes[1].get_ylabel() == f"value ({agg})"
        explicit = fastgrid.reporting.heatmap_figure(report, "x", "y", agg="mean")
        assert explicit.axes[0].images[0].get_array().tolist() == [
            [10 * x + y + 3 for x in (0, 1)] for y in (0, 1)
        ]


# -- 12. a DataFrame, and fastgrid.load ----------------------------------------------------------------
def test_to_pandas_has_flat_columns(tmp_path: Path) -> None:
    result = run(tmp_path)
    frame = result.to_pandas()
    assert list(frame.columns) == [
        "number",
        "state",
        "value",
        "params.x",
        "params.y",
        "metrics.sharpe",
        "metrics.stats.trades",
        "feasible",
        "reason",
        "duration",
    ]
    assert len(frame) == 15 and list(frame["number"]) == list(range(15))
    done = frame[frame["state"] == "COMPLETE"]
    assert (done["value"] == done["params.x"] + done["params.y"]).all()
    assert frame.loc[9, "reason"] == "ValueError: window 0 longer than the data"


def test_to_pandas_without_pandas_names_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = run(tmp_path, parameters={"x": {"type": "int", "low": 0, "high": 1}, "y": 0})
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match="pip install pandas"):
        result.to_pandas()


def test_fastgrid_load_reads_a_sweep_file_or_a_storage_without_running_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_sweep_file(tmp_path)
    monkeypatch.chdir(tmp_path)
    ran = fastgrid.Sweep.from_file(path, progress=False).run()
    by_file = fastgrid.load(path)
    by_store = fastgrid.load(tmp_path / "fastgrid.db")
    for report in (by_file, by_store):
        assert report.best is not None and report.best["number"] == ran.best["number"]  # type: ignore[index]
        assert report.counts == ran.counts
        assert list(report.to_pandas()["params.x"]) == [0, 0, 1, 1, 2, 2]
    assert by_file.best_config == {"x": 2, "y": 0}
    run(tmp_path)  # a second study in the same store
    with pytest.raises(ValueError, match=r"holds 2 studies \(r, s\): pass study=NAME"):
        fastgrid.load("fastgrid.db")
    assert fastgrid.load("fastgrid.db", study="r").counts["failed"] == 6


# -- 14. the documented spellings, in a fresh interpreter ------------------------------------------------
def test_the_documented_reporting_spellings_work_after_import_fastgrid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_sweep_file(tmp_path)
    monkeypatch.chdir(tmp_path)
    fastgrid.Sweep.from_file(path, progress=False).run()
    script = textwrap.dedent(
        """
        import fastgrid

        report = fastgrid.reporting.load_report("s.toml")
        figure = fastgrid.reporting.heatmap_figure(report, "x", "y", agg="max")
        fastgrid.reporting.save_heatmap(fastgrid.load("s.toml"), "x", "y", "heatmap.png")
        print(type(figure).__name__, fastgrid.load("fastgrid.db").best["params"])
        """
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "Figure {'x': 2, 'y': 0}"
    assert (tmp_path / "heatmap.png").stat().st_size > 0
