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
