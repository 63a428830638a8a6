"""The bundled vectorized SMA crossover gives the per-trial example's metrics, point by point."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import numpy as np
import pytest
from fastgrid import ConfigCache
from fastgrid.batch import run_batch_file
from fastgrid.examples import sma, sma_batch

EXAMPLES = Path(sma.__file__).parent


def test_backtest_many_equals_backtest_per_point() -> None:
    bars = sma.load_bars("SYNTH", "1h", 5000, 7)
    close = bars.window(0, 3000).close
    points = [
        (f, s, m, c)
        for f, s, m, c in itertools.product(
            range(2, 40, 7), range(10, 130, 17), ("long", "long_short"), (0.0, 0.001)
        )
        if f < s
    ]
    fast, slow, mode, cost = (np.array(x) for x in zip(*points, strict=True))
    got = sma_batch.backtest_many(close, fast, slow, mode == "long_short", cost=cost)
    for i, (f, s, m, c) in enumerate(points):
        want = sma.backtest(close, fast=f, slow=s, mode=m, cost=c)
        for k, v in want.items():
            assert got[k][i] == pytest.approx(v, rel=1e-9, abs=1e-12), (k, f, s, m, c)


def test_backtest_many_matches_per_point_where_windows_cross_often_and_ignores_its_neighbours() -> None:
    """Short windows cross hundreds of times (many runs per point); a point's metrics must not
    depend on which points share its call or block, nor on their order."""
    close = sma.load_bars("SYNTH", "1h", 5000, 7).window(0, 3000).close
    rng = np.random.default_rng(3)
    fast = rng.integers(2, 12, 300)
    slow = fast + rng.integers(1, 40, 300)
    long_short = rng.random(300) < 0.5
    cost = rng.choice([0.0, 0.0005, 0.003], 300)
    got = sma_batch.backtest_many(close, fast, slow, long_short, cost=cost)
    assert got["trades"].max() > 200
    for i in range(0, 300, 7):
        mode = "long_short" if long_short[i] else "long"
        want = sma.backtest(close, fast=int(fast[i]), slow=int(slow[i]), mode=mode, cost=float(cost[i]))
        for k, v in want.items():
            assert got[k][i] == pytest.approx(v, rel=1e-9, abs=1e-12), (k, fast[i], slow[i], mode, cost[i])
    order = rng.permutation(300)
    shuffled = sma_batch.backtest_many(close, fast[order], slow[order], long_short[order], cost=cost[order])
    alone = sma_batch.backtest_many(close, fast[:1], slow[:1], long_short[:1], cost=cost[:1])
    for k in got:
        assert np.array_equal(shuffled[k], got[k][order]), k
        assert alone[k][0] == got[k][0], k


def test_backtest_many_without_a_crossing_holds_nothing() -> None:
    close = np.linspace(100.0, 200.0, 400)  # the fast average stays above: long from the start
    got = sma_batch.backtest_many(close, np.array([3, 3]), np.array([20, 20]), np.array([False, True]))
    flat = sma_batch.backtest_many(close[::-1].copy(), np.array([3]), np.array([20]), np.array([False]))
    for i, mode in enumerate(("long", "long_short")):
        want = sma.backtest(close, fast=3, slow=20, mode=mode)
        for k, v in want.items():
            assert got[k][i] == pytest.approx(v, rel=1e-9, abs=1e-12), (k, mode)
    assert {k: float(v[0]) for k, v in flat.items()} == {
        "sharpe": 0.0,
        "total_return": 0.0,
        "max_drawdown": 0.0,
        "trades": 0.0,
        "win_rate": 0.0,
    }


def test_the_batch_sweep_file_records_the_per_trial_metrics(tmp_path: Path) -> None:
    for name in ("sma_batch.toml", "sma_config.json"):
        shutil.copy(EXAMPLES / name, tmp_path / name)
    r = run_batch_file(tmp_path / "sma_batch.toml", directory=tmp_path, chunk=512, max_chunks=2)
    assert r.counts["done"] == 1024 and r.counts["total"] == 138_304
    cols = r.results.columns()
    config = ConfigCache(tmp_path / "sma_config.json")
    for j in range(0, 1024, 97):
        point = {p: cols[p][j].item() if hasattr(cols[p][j], "item") else cols[p][j] for p in r.results.paths}
        want = sma.run(config.merged(point))
        want.pop("returns")  # the per-bar series is no batch column
        for k, v in want.items():
            assert cols[k][j] == pytest.approx(v, rel=1e-9, abs=1e-12), (k, point)
        assert cols["feasible"][j] == (want["trades"] >= 10)
    assert r.best is not None and r.best["metrics"]["sharpe"] == cols["sharpe"][cols["feasible"]].max()
