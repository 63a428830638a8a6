"""[walkforward] end to end: folds as ordinary sweeps, selection in sample, scores out of sample,
resume (also after SIGKILL), the report, and bad sections."""

from __future__ import annotations

import ast
import json
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from click.testing import CliRunner
from fastgrid import Sweep, SweepFileError, examples, open_storage, stats
from fastgrid.cli import main
from fastgrid.examples.sma import run as backtest_run
from fastgrid.reporting import load_walkforward_report
from fastgrid.runner import WalkForward
from fastgrid.sweepfile import load_sweep_file

optuna.logging.set_verbosity(optuna.logging.WARNING)

SMALL_GRID = """
[parameters]
"signal.fast" = { type = "grid", values = [5, 10, 20] }
"signal.slow" = { type = "grid", values = [30, 60, 120] }
"signal.mode" = { type = "grid", values = ["long", "long_short"] }
"""


def small_walkforward(folder: Path, extra: str = "") -> Path:
    """The bundled walk-forward example on an 18-point grid (same windows, same objective)."""
    examples.copy_to(folder)
    text = (folder / examples.WALKFORWARD).read_text()
    text = text[: text.index("[parameters]")] + SMALL_GRID + extra
    path = folder / "wf.toml"
    path.write_text(text)
    return path


def grid_points() -> list[dict[str, Any]]:
    return [
        {"fast": f, "slow": s, "mode": m}
        for f in (5, 10, 20)
        for s in (30, 60, 120)
        for m in ("long", "long_short")
    ]


def test_each_fold_selects_in_sample_and_scores_out_of_sample(tmp_path: Path) -> None:
    path = small_walkforward(tmp_path)
    result = WalkForward(Sweep.from_file(path, directory=tmp_path, progress=False)).run()
    config = json.loads((tmp_path / "sma_config.json").read_text())
    assert result.complete and len(result.folds) == 5
    assert [(f.train, f.test) for f in result.folds] == [
        ((0, 2000), (2000, 2600)),
        ((600, 2600), (2600, 3200)),
        ((1200, 3200), (3200, 3800)),
        ((1800, 3800), (3800, 4400)),
        ((2400, 4400), (4400, 5000)),
    ]

    def score(signal_: dict[str, Any], window: tuple[int, int]) -> dict[str, Any]:
        data = {**config["data"], "start": window[0], "end": window[1]}
        return backtest_run({**config, "data": data, "signal": signal_})

    stitched = []
    for fold in result.folds:
        # The fold's choice, recomputed without fastgrid: the best feasible point on the training window.
        scored = [(score(p, fold.train), p) for p in grid_points()]
        feasible = [(m["sharpe"], p) for m, p in scored if m["trades"] >= 6]
        best_sharpe, best = max(feasible, key=lambda mp: mp[0])
        assert fold.in_sample == pytest.approx(best_sharpe, rel=1e-12)
        assert fold.params == {
            "signal.fast": best["fast"],
            "signal.slow": best["slow"],
            "signal.mode": best["mode"],
        }
        held_out = score(best, fold.test)
        assert fold.out_of_sample == pytest.approx(held_out["sharpe"], rel=1e-12)
        np.testing.assert_array_equal(stats.unpack_returns(fold.returns), held_out["returns"])
        stitched.append(held_out["returns"])
        # The top 5 by in-sample score, each also scored on the test window.
        top = sorted(feasible, key=lambda mp: -mp[0])[:5]
        assert [t["in_sample"] for t in fold.top] == pytest.approx([s for s, _ in top], rel=1e-12)
        oos = [score(p, fold.test)["sharpe"] for _, p in top]
        assert [t["out_of_sample"] for t in fold.top] == pytest.approx(oos, rel=1e-12)
        assert fold.rank_correlation == pytest.approx(stats.rank_correlation([s for s, _ in top], oos))
        assert fold.efficiency == pytest.approx(held_out["sharpe"] / best_sharpe)
        # Each fold is an ordinary sweep of its own study, with the window in its params.
        study = optuna.load_study(study_name=fold.study, storage=open_storage(None, directory=tmp_path))
        assert len(study.trials) == 18
        assert {(t.params.get("data.start"), t.params.get("data.end")) for t in study.trials} <= {
            (None, None),
            fold.train,
        }
    np.testing.assert_array_equal(result.stitched_returns, np.concatenate(stitched))
    both = [f for f in result.folds if f.out_of_sample is not None]
    assert result.efficiency == pytest.approx(
        sum(f.out_of_sample for f in both) / sum(f.in_sample for f in both)
    )
    assert result.parameter_stability["signal.fast"] == [f.params["signal.fast"] for f in result.folds]
    assert "5 of 5 fold(s) evaluated." in result.sentences()


def test_a_second_run_runs_nothing_and_reads_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = small_walkforward(tmp_path)
    first = WalkForward(Sweep.from_file(path, directory=tmp_path, progress=False)).run()
    calls: list[Any] = []
    import fastgrid.examples.sma as sma

    original = sma.run
    monkeypatch.setattr(sma, "run", lambda config: calls.append(config) or original(config))
    second = WalkForward(Sweep.from_file(path, directory=tmp_path, progress=False)).run()
    assert calls == []
    assert [f.record() for f in second.folds] == [f.record() for f in first.folds]
    read = load_walkforward_report(path, directory=tmp_path)
    assert [f.record() for f in read.folds] == [f.record() for f in first.folds]


def test_a_search_fold_resumes_within_its_budget(tmp_path: Path) -> None:
    path = small_walkforward(tmp_path)
    text = path.read_text().replace(
        'sampler = "grid"', 'sampler = { name = "random", seed = 3 }\nmax_trials = 6'
    )
    path.write_text(text)
    for _ in range(2):
        result = WalkForward(Sweep.from_file(path, directory=tmp_path, progress=False)).run()
        assert result.complete
    storage = open_storage(None, directory=tmp_path)
    for fold in result.folds:
        assert len(optuna.load_study(study_name=fold.study, storage=storage).trials) == 6


KILL_OBJECTIVE = """
import os, time
from fastgrid.examples.sma import run as sma_run

HERE = os.path.dirname(os.path.abspath(__file__))


def run(config):
    window = (config["data"]["start"], config["data"]["end"])
    point = (config["signal"]["fast"], config["signal"]["slow"], config["signal"]["mode"])
    with open(os.path.join(HERE, "ledger"), "a") as f:
        f.write(repr((window, point)) + "\\n")
    time.sleep(0.02)
    return sma_run(config)
"""


def test_resumes_after_sigkill_and_reports_every_fold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = small_walkforward(tmp_path)
    (tmp_path / "killobj.py").write_text(KILL_OBJECTIVE)
    path.write_text(path.read_text().replace('"fastgrid.examples.sma:run"', '"killobj:run"'))
    ledger = tmp_path / "ledger"

    def run_cli() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "fastgrid", "run", str(path), "--no-progress"],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    kills = 0
    for stop_after in (10, 35, 60):  # inside folds 0, 1 and 2 (18 trials + 5 test runs a fold)
        proc = run_cli()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if ledger.exists() and len(ledger.read_text().splitlines()) >= stop_after:
                proc.send_signal(signal.SIGKILL)
                kills += 1
                break
            time.sleep(0.01)
        proc.wait(timeout=30)
    assert kills == 3
    final = run_cli()
    assert final.wait(timeout=120) == 0
    lines = Counter(ledger.read_text().splitlines())
    runs = Counter(ast.literal_eval(line)[0] for line in lines.elements())
    # Every training point ran once per fold, but for the one trial in flight at each kill.
    train_windows = [(0, 2000), (600, 2600), (1200, 3200), (1800, 3800), (2400, 4400)]
    for window in train_windows:
        assert 18 <= runs[window] <= 18 + kills
    result = runner_report(tmp_path, monkeypatch)
    assert result.exit_code == 0, result.output
    assert "5 of 5 fold(s) evaluated." in result.output
    assert "Walk-forward efficiency" in result.output


def runner_report(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.chdir(folder)
    return CliRunner().invoke(main, ["report", "wf.toml", "--json", "wf.json"])


def test_report_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = small_walkforward(tmp_path)
    WalkForward(Sweep.from_file(path, directory=tmp_path, progress=False)).run()
    result = runner_report(tmp_path, monkeypatch)
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "wf.json").read_text())
    assert data["planned"] == 5 and len(data["folds"]) == 5
    assert data["folds"][0]["study"] == "sma-wf.fold0"
    assert data["summary"][0] == "5 of 5 fold(s) evaluated."


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('"data.start" = 0\n', r"walkforward.keys: data.start is also a parameter"),
        ("[validate]\noverride = { x = 1 }\n", r"\[walkforward\] already evaluates each fold's choice"),
    ],
)
def test_bad_walkforward_sweeps(tmp_path: Path, extra: str, message: str) -> None:
    path = small_walkforward(tmp_path, extra)
    with pytest.raises(SweepFileError, match=message):
        WalkForward(Sweep.from_file(path, directory=tmp_path, progress=False))


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            'keys = ["data.start"]\nstart = 0\nend = 10\ntrain = 5\ntest = 5',
            r"walkforward.keys: expected the two",
        ),
        ('keys = ["a", "b"]\nstart = 0\nend = 10\ntrain = 5', r"walkforward: missing test"),
        ('keys = ["a", "b"]\nstart = 0\nend = 10\ntrain = 8\ntest = 5', r"no fold fits in \[0, 10\)"),
        (
            'keys = ["a", "b"]\nwindows = [{ train = [0, 10], test = [5, 20] }]',
            r"the test window starts at 5",
        ),
        ('keys = ["a", "b"]\nstart = 0\nend = 10\ntrain = 5\ntest = 5\nstep = 0', r"step must be positive"),
    ],
)
def test_bad_walkforward_sections_name_the_key(tmp_path: Path, section: str, message: str) -> None:
    path = tmp_path / "wf.toml"
    path.write_text(
        textwrap.dedent(
            """
            [objective]
            callable = "m:f"
            [parameters]
            x = 1
            [walkforward]
            """
        )
        + section
        + "\n"
    )
    with pytest.raises(SweepFileError, match=message):
        load_sweep_file(path)


def test_the_plain_runner_refuses_a_walkforward_file(tmp_path: Path) -> None:
    path = small_walkforward(tmp_path)
    with pytest.raises(SweepFileError, match=r"run its folds with fastgrid.runner.WalkForward"):
        Sweep.from_file(path, directory=tmp_path, progress=False).run()


def test_overfitting_plots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = small_walkforward(tmp_path)
    WalkForward(Sweep.from_file(path, directory=tmp_path, progress=False)).run()
    grid = tmp_path / examples.GRID
    grid.write_text(
        grid.read_text().replace('[sweep]\nname = "sma-grid"', '[sweep]\nname = "g"\nkeep_returns = "all"')
    )
    Sweep.from_file(grid, directory=tmp_path, progress=False).run()
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    for sweep_file, target in (("wf.toml", "wf.png"), (examples.GRID, "cscv.png")):
        result = runner.invoke(main, ["plot", sweep_file, "overfitting", "-o", target])
        assert result.exit_code == 0, result.output
        assert (tmp_path / target).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # A sweep whose objective returns no series has no PBO to plot: one clear line.
    (tmp_path / "bare.py").write_text("def run(config):\n    return float(config['x'])\n")
    bare = tmp_path / "bare.toml"
    bare.write_text(
        "[sweep]\nname = 'bare'\ndirection = 'maximize'\n"
        "[objective]\ncallable = 'bare:run'\n[parameters]\nx = [1.0, 4.0]\n"
    )
    Sweep.from_file(bare, directory=tmp_path, progress=False).run()
    result = runner.invoke(main, ["plot", "bare.toml", "overfitting"])
    assert result.exit_code != 0
    assert "sweep 'bare' has no PBO to plot" in result.output
