"""The user-facing commands through the real ``fastgrid`` entry point: demo, report, plot, export."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastgrid import examples
from fastgrid.examples.sma import run as backtest_run

FASTGRID = [sys.executable, "-m", "fastgrid"]


def fastgrid(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    out = subprocess.run([*FASTGRID, *args], cwd=cwd, capture_output=True, text=True, env=env)
    if check:
        assert out.returncode == 0, out.stderr
    return out


def bad_input(out: subprocess.CompletedProcess[str], *needles: str) -> None:
    """Exit status 2, a message naming the problem, no traceback."""
    assert out.returncode == 2, (out.returncode, out.stdout, out.stderr)
    assert "Traceback" not in out.stderr
    for needle in needles:
        assert needle in out.stderr, out.stderr


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    folder = tmp_path_factory.mktemp("demo")
    out = fastgrid("demo", "--dir", str(folder), "--no-progress", cwd=folder)
    return folder, out


def exhaustive_best() -> tuple[dict[str, Any], float]:
    """Every point of grid.toml evaluated by calling the backtest directly; best feasible sharpe."""
    config = json.loads((examples.folder() / "sma_config.json").read_text())
    best: tuple[dict[str, Any], float] | None = None
    for fast in range(5, 51, 5):
        for slow in range(20, 201, 10):
            if not fast < slow:
                continue
            for mode in ("long", "long_short"):
                metrics = backtest_run({**config, "signal": {"fast": fast, "slow": slow, "mode": mode}})
                if metrics["trades"] >= 10 and (best is None or metrics["sharpe"] > best[1]):
                    best = (
                        {"signal.fast": fast, "signal.slow": slow, "signal.mode": mode},
                        metrics["sharpe"],
                    )
    assert best is not None
    return best


def test_demo_finds_the_exhaustive_best(demo_dir: tuple[Path, Any]) -> None:
    folder, out = demo_dir
    params, sharpe = exhaustive_best()
    assert "best trial: #" in out.stdout
    assert json.dumps(params) in out.stdout
    fastgrid("report", "grid.toml", "--json", "r.json", cwd=folder)
    report = json.loads((folder / "r.json").read_text())
    assert report["counts"]["complete"] == 348
    assert report["best"]["params"] == params
    assert report["best"]["values"][0] == pytest.approx(sharpe, rel=1e-12)
    best_config = json.loads((folder / "best_config.json").read_text())
    assert best_config["signal"] == {
        "fast": params["signal.fast"],
        "slow": params["signal.slow"],
        "mode": params["signal.mode"],
    }
    assert best_config["data"]["end"] == 3000


def test_demo_writes_a_heatmap_png_with_labelled_axes(demo_dir: tuple[Path, Any]) -> None:
    from matplotlib.image import imread

    folder, _ = demo_dir
    png = folder / "heatmap.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = imread(png)
    from fastgrid.reporting import heatmap_figure, load_report

    fig = heatmap_figure(
        load_report(folder / "grid.toml", directory=folder, importance=False), "signal.fast", "signal.slow"
    )
    width, height = (fig.get_size_inches() * 100).round().astype(int)
    assert pixels.shape[:2] == (height, width)
    ax = fig.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("signal.fast", "signal.slow")
    assert [t.get_text() for t in ax.get_xticklabels()] == [str(v) for v in range(5, 51, 5)]
    assert [t.get_text() for t in ax.get_yticklabels()] == [str(v) for v in range(20, 201, 10)]
    assert "sharpe" in ax.get_title() and "max over signal.mode" in ax.get_title()


def test_demo_again_resumes_without_running(demo_dir: tuple[Path, Any]) -> None:
    folder, _ = demo_dir
    out = fastgrid("demo", "--dir", str(folder), "--no-progress", cwd=folder)
    assert "ran 0 trial(s) this run" in out.stderr
    assert "all 103,728 points were stored by an earlier run (nothing ran)" in out.stdout
    assert "on the 348 points both ran, the per-trial and batch metrics agree" in out.stdout


def test_demo_runs_a_batch_sweep_and_shows_its_speed_best_point_and_agreement(
    demo_dir: tuple[Path, Any],
) -> None:
    import numpy as np
    from fastgrid.examples.sma import backtest, load_bars
    from fastgrid.examples.sma_batch import backtest_many

    folder, out = demo_dir
    lines = out.stdout[out.stdout.index("batch mode") :].splitlines()
    assert lines[1].startswith("  103,728 points in ")
    assert " points/s (per trial above: 348 trials in " in lines[1]
    # Every point of batch.toml scored outside fastgrid (the vectorized backtest, checked against
    # the per-point one in test_batch_example.py): the best feasible sharpe and its point.
    close = load_bars("SYNTH", "1h", 5000, 7).window(0, 3000).close
    grid = [
        (f, s, m, c)
        for f in range(2, 101)
        for s in range(10, 401, 2)
        if f < s
        for m in ("long", "long_short")
        for c in (0.0005, 0.001, 0.002)
    ]
    fast, slow, mode, cost = (np.array(x) for x in zip(*grid, strict=True))
    metrics = backtest_many(close, fast, slow, mode == "long_short", cost=cost)
    feasible = metrics["trades"] >= 10
    best = int(np.flatnonzero(feasible)[np.argmax(metrics["sharpe"][feasible])])
    f, s, m, c = grid[best]
    params = {"signal.fast": f, "signal.slow": s, "signal.mode": m, "costs.per_trade": c}
    sharpe = backtest(close, fast=f, slow=s, mode=m, cost=c)["sharpe"]
    infeasible = len(grid) - int(feasible.sum())
    assert f"  103,728 points: {int(feasible.sum()):,} feasible, {infeasible:,} infeasible, 0 failed" in lines
    assert f"sharpe {sharpe:.6g} (per-trial grid's best: " in lines[3]
    assert lines[4] == "    params: " + ", ".join(f"{k}={v}" for k, v in params.items())
    assert lines[5].startswith("  on the 348 points both ran, the per-trial and batch metrics agree")
    assert lines[6].startswith("  the best of 103,728 points: deflated Sharpe ratio 0.")
    assert ", PBO 0." in lines[6] and " over its 50 best points" in lines[6]
    fastgrid("report", "batch.toml", "--json", "b.json", cwd=folder)
    report = json.loads((folder / "b.json").read_text())
    assert report["mode"] == "batch" and report["counts"]["done"] == len(grid) == 103_728
    assert report["best"]["params"] == params
    assert report["best"]["values"][0] == pytest.approx(sharpe, rel=1e-9)


def test_report_table_and_exports(demo_dir: tuple[Path, Any]) -> None:
    folder, _ = demo_dir
    out = fastgrid(
        "report", "grid.toml", "--top", "3", "--csv", "t.csv", "--best-config", "b.json", cwd=folder
    )
    assert "348 complete (0 reused, " in out.stdout
    assert "top 3 trials" in out.stdout
    assert "parameter importance" in out.stdout
    with (folder / "t.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 348
    assert {"params.signal.fast", "metrics.sharpe", "feasible", "duration"} <= set(rows[0])
    best = max((r for r in rows if r["feasible"] == "True"), key=lambda r: float(r["value"]))
    params, _ = exhaustive_best()
    assert int(best["params.signal.fast"]) == params["signal.fast"]
    assert json.loads((folder / "b.json").read_text()) == json.loads(
        (folder / "best_config.json").read_text()
    )


@pytest.mark.parametrize("kind", ["history", "importance", "parallel", "contour"])
def test_plot_optuna_kinds_write_html(demo_dir: tuple[Path, Any], kind: str) -> None:
    pytest.importorskip("plotly")
    folder, _ = demo_dir
    fastgrid("plot", "grid.toml", kind, "-o", f"{kind}.html", cwd=folder)
    text = (folder / f"{kind}.html").read_text()
    assert "<html>" in text and "Plotly.newPlot" in text
    # Each figure is about the sweep's own parameters (history plots the objective only).
    assert ("signal.slow" in text) == (kind != "history")


def test_plot_heatmap_mean_and_other_axes(demo_dir: tuple[Path, Any]) -> None:
    folder, _ = demo_dir
    out = fastgrid(
        "plot",
        "grid.toml",
        "heatmap",
        "signal.slow",
        "signal.mode",
        "--agg",
        "mean",
        "-o",
        "h.png",
        cwd=folder,
    )
    assert "wrote h.png" in out.stdout
    assert (folder / "h.png").read_bytes()[:4] == b"\x89PNG"


def test_export_then_report_from_the_copy(demo_dir: tuple[Path, Any]) -> None:
    folder, _ = demo_dir
    fastgrid("export", "grid.toml", "--to", "sqlite:///exported.db", cwd=folder)
    out = fastgrid(
        "report", "--storage", "sqlite:///exported.db", "--study", "sma-grid", "--json", "e.json", cwd=folder
    )
    assert "348 complete" in out.stdout
    copy = json.loads((folder / "e.json").read_text())
    params, _ = exhaustive_best()
    assert copy["best"]["params"] == params
    bad_input(
        fastgrid("export", "grid.toml", "--to", "sqlite:///exported.db", cwd=folder, check=False),
        "already holds a study named 'sma-grid'",
    )


def test_bad_input_is_exit_2_without_traceback(demo_dir: tuple[Path, Any], tmp_path: Path) -> None:
    folder, _ = demo_dir
    bad_input(fastgrid("report", "missing.toml", cwd=tmp_path, check=False), "missing.toml", "file not found")
    bad_input(fastgrid("report", cwd=tmp_path, check=False), "give a SWEEP_FILE")
    bad_input(fastgrid("report", "--study", "x", cwd=tmp_path, check=False), "--study needs --storage")
    bad_input(fastgrid("report", "--top", "0", "grid.toml", cwd=folder, check=False), "--top")
    bad_input(
        fastgrid("report", "--storage", "sqlite:///exported.db", "--study", "nope", cwd=folder, check=False),
        "no sweep named 'nope'",
        "sma-grid",
    )
    # A sweep file that exists but was never run here.
    shutil.copyfile(folder / "grid.toml", tmp_path / "grid.toml")
    shutil.copyfile(folder / "sma_config.json", tmp_path / "sma_config.json")
    bad_input(fastgrid("report", "grid.toml", cwd=tmp_path, check=False), "no sweep named 'sma-grid'")
    bad_input(
        fastgrid("plot", "grid.toml", "heatmap", "signal.fast", cwd=folder, check=False),
        "heatmap needs two parameters",
    )
    bad_input(
        fastgrid("plot", "grid.toml", "heatmap", "signal.fast", "nope", cwd=folder, check=False),
        "no parameter 'nope'",
    )
    bad_input(fastgrid("plot", "grid.toml", "pie", cwd=folder, check=False), "'pie' is not one of")
    bad_input(fastgrid("plot", "grid.toml", "history", "x", cwd=folder, check=False), "takes no parameters")
    bad_input(fastgrid("export", "grid.toml", cwd=folder, check=False), "--to")
    bad_input(
        fastgrid("export", "missing.toml", "--to", "sqlite:///x.db", cwd=tmp_path, check=False),
        "file not found",
    )
    bad_input(
        fastgrid("export", "grid.toml", "--to", "sqlite:///x.db", cwd=tmp_path, check=False), "sma-grid"
    )
    bad_input(fastgrid("demo", "--bogus", cwd=tmp_path, check=False), "--bogus")
    (tmp_path / "broken.toml").write_text(
        '[sweep]\nsampler = "grdi"\n[objective]\ncallable = "m:f"\n[parameters]\nx = 1\n'
    )
    bad_input(fastgrid("report", "broken.toml", cwd=tmp_path, check=False), "sweep.sampler")


@pytest.mark.parametrize("command", ["demo", "report", "plot", "export", "run"])
def test_every_command_has_help(command: str, tmp_path: Path) -> None:
    out = fastgrid(command, "--help", cwd=tmp_path)
    assert (
        out.stdout.startswith(f"Usage: python -m fastgrid {command}") or f"fastgrid {command}" in out.stdout
    )
