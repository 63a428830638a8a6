"""The bundled example: the vectorized backtest against a plain loop, the data, the CLI script."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fastgrid import examples, stats
from fastgrid.examples.data import generate_ohlc
from fastgrid.examples.sma import backtest, run
from fastgrid.sweepfile import load_sweep_file


def loop_backtest(close: list[float], fast: int, slow: int, mode: str, cost: float, bpy: float) -> dict:
    """The same strategy written bar by bar, the obvious way (the oracle for the numpy version)."""
    n = len(close)
    # The signal on bar i - 1's close sets the position held over bar i.
    positions = [0.0] * n
    for i in range(1, n):
        if i - 1 >= slow - 1:
            f = sum(close[i - fast : i]) / fast
            s = sum(close[i - slow : i]) / slow
            positions[i] = 1.0 if f > s else (-1.0 if mode == "long_short" else 0.0)
    returns, trades, wins, current = [], 0, 0, None
    equity, peak, max_dd = 1.0, 1.0, 0.0
    for i in range(n):
        r = 0.0 if i == 0 else close[i] / close[i - 1] - 1.0
        prev = positions[i - 1] if i else 0.0
        step = positions[i] * r - cost * abs(positions[i] - prev)
        if positions[i] != prev and positions[i] != 0.0:
            if current is not None:
                wins += current > 0
            trades, current = trades + 1, 0.0
        elif positions[i] == 0.0 and current is not None:
            wins += current > 0
            current = None
        if current is not None and positions[i] != 0.0:
            current += math.log1p(step)
        returns.append(step)
        equity *= 1.0 + step
        peak = max(peak, equity)
        max_dd = max(max_dd, 1.0 - equity / peak)
    if current is not None:
        wins += current > 0
    active = returns[slow:]
    mean = sum(active) / len(active)
    std = math.sqrt(sum((x - mean) ** 2 for x in active) / len(active))
    return {
        "sharpe": mean / std * math.sqrt(bpy) if std > 0 else 0.0,
        "total_return": equity - 1.0,
        "max_drawdown": max_dd,
        "trades": float(trades),
        "win_rate": wins / trades if trades else 0.0,
    }


@pytest.mark.parametrize(
    ("fast", "slow", "mode"), [(5, 20, "long"), (10, 60, "long_short"), (30, 150, "long")]
)
def test_backtest_matches_a_plain_loop(fast: int, slow: int, mode: str) -> None:
    close = generate_ohlc(bars=900, seed=3).close
    got = backtest(close, fast=fast, slow=slow, mode=mode, cost=0.001, bars_per_year=8760)
    want = loop_backtest(list(close), fast, slow, mode, 0.001, 8760)
    assert got.keys() == want.keys()
    for key in want:
        assert got[key] == pytest.approx(want[key], rel=1e-9, abs=1e-12), key
    assert got["trades"] > 0


def test_backtest_rejects_bad_windows() -> None:
    close = generate_ohlc(bars=300).close
    with pytest.raises(ValueError, match="fast < slow"):
        backtest(close, fast=20, slow=20)
    with pytest.raises(ValueError, match="mode"):
        backtest(close, fast=5, slow=20, mode="short")
    with pytest.raises(ValueError, match="more than slow"):
        backtest(close[:30], fast=5, slow=40)


def test_generated_bars_are_deterministic_and_consistent() -> None:
    a, b, c = generate_ohlc(seed=7), generate_ohlc(seed=7), generate_ohlc(seed=8)
    assert np.array_equal(a.close, b.close)
    assert not np.array_equal(a.close, c.close)
    assert len(a) == 4000
    assert np.all(a.high >= np.maximum(a.open, a.close))
    assert np.all(a.low <= np.minimum(a.open, a.close))
    assert np.all(a.low > 0)
    assert np.array_equal(a.open[1:], a.close[:-1])


def test_run_uses_the_configured_window() -> None:
    config = json.loads((examples.folder() / "sma_config.json").read_text())
    full = run(config)
    held_out = run({**config, "data": {**config["data"], "start": 3000, "end": 5000}})
    full_returns, held_out_returns = full.pop("returns"), held_out.pop("returns")
    assert full != held_out
    close = generate_ohlc(bars=5000, seed=7).close[3000:5000]
    assert held_out == backtest(close, fast=10, slow=50, mode="long", cost=0.0005, bars_per_year=8760)
    # A return for every bar of the window (the same bars for every configuration); the Sharpe
    # ratio is of those from the first bar with both averages.
    assert (len(full_returns), len(held_out_returns)) == (3000, 2000)
    active = held_out_returns[50:]
    assert held_out["sharpe"] == pytest.approx(active.mean() / active.std() * np.sqrt(8760), rel=1e-12)


def test_every_bundled_sweep_file_loads() -> None:
    for name in (examples.GRID, examples.TPE, examples.COMMAND):
        spec = load_sweep_file(examples.folder() / name)
        assert spec.config is not None and spec.config.path.exists()
    tpe = load_sweep_file(examples.folder() / examples.TPE)
    assert tpe.validate_ is not None and tpe.validate_.override == {"data.start": 3000, "data.end": 5000}


def test_copy_to_copies_every_sweep_file_the_manual_runs_with_its_config(tmp_path: Path) -> None:
    # docs/batch.md runs sma_batch.toml from the folder `fastgrid demo --dir DIR` fills: a user who
    # installed from a wheel has no checkout to copy it from.
    folder = examples.copy_to(tmp_path / "ex")
    shipped = sorted(p.name for p in examples.folder().glob("*.toml"))
    assert sorted(p.name for p in folder.glob("*.toml")) == shipped
    assert examples.SMA_BATCH in shipped
    for name in shipped:
        spec = load_sweep_file(folder / name)
        assert spec.config is not None and spec.config.path == folder / "sma_config.json", name


def test_cli_script_names_its_own_result_file(tmp_path: Path) -> None:
    config = json.loads((examples.folder() / "sma_config.json").read_text())
    (tmp_path / "c.json").write_text(json.dumps(config))
    out = subprocess.run(
        [sys.executable, "-m", "fastgrid.examples.sma_cli", "--config", "c.json", "--results-dir", "res"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    files = list((tmp_path / "res").iterdir())
    assert len(files) == 1
    symbol, timeframe, stamp = files[0].stem.split("_")
    assert (symbol, timeframe) == ("SYNTH", "1h")
    assert stamp.endswith("Z") and stamp[:8].isdigit()
    want = run(config)
    want["returns"] = want["returns"].tolist()
    assert json.loads(files[0].read_text()) == want
    assert json.loads(out.stdout.strip().splitlines()[-1]) == want


def test_cli_script_reports_an_unreadable_config(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "fastgrid.examples.sma_cli", "--config", "nope.json", "--results-dir", "r"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2
    assert "cannot read config nope.json" in out.stderr
    assert "Traceback" not in out.stderr


def test_command_sweep_runs_the_script_and_finds_the_best(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastgrid import Sweep

    # `python` in the sweep file is the interpreter of the active environment.
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.chdir(tmp_path)
    folder = examples.copy_to(tmp_path / "ex")
    result = Sweep.from_file(folder / examples.COMMAND, directory=tmp_path, progress=False).run()
    config = json.loads((folder / "sma_config.json").read_text())
    expected = {}
    for fast in (10, 20, 30):
        for slow in (50, 100):
            expected[(fast, slow)] = run({**config, "signal": {"fast": fast, "slow": slow, "mode": "long"}})
    assert result.counts["complete"] == 6 and result.counts["failed"] == 0
    feasible = {k: m for k, m in expected.items() if m["trades"] >= 10}
    best = max(feasible, key=lambda k: feasible[k]["sharpe"])
    assert result.best is not None
    assert (result.best["params"]["signal.fast"], result.best["params"]["signal.slow"]) == best
    # The returns series is stored apart from the metrics (packed, with the trial).
    best_returns = expected[best].pop("returns")
    assert result.best["metrics"] == expected[best]
    trial = result.study.trials[result.best["number"]]
    np.testing.assert_array_equal(stats.unpack_returns(trial.user_attrs["returns"]), best_returns)
    assert trial.user_attrs["returns_stats"]["periods"] == len(best_returns)
    files = sorted((folder / "results").glob("SYNTH_1h_*.json"))
    assert len(files) == 6
    assert sorted(json.loads(f.read_text())["sharpe"] for f in files) == sorted(
        m["sharpe"] for m in expected.values()
    )
