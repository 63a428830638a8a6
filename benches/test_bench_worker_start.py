"""Worker start-up of per-trial sweeps (issue 13): a 60-point grid of ~30 ms CPU-bound trials whose
module takes ~1 s (of CPU) to import, run in a fresh interpreter with 1 and with 2 workers.

Targets: the second worker starts its first trial within 0.1 s of the first worker's; the trial
phase (first trial start to last trial end) is >= 1.8x faster with 2 workers; the whole process
takes at most 1.1x (imports + trials / 2), where ``imports`` is a fresh interpreter importing
fastgrid, Optuna and the module, and ``trials`` the 1-worker trial phase. Each 2-worker run is
paired with ``multiprocessing.Pool(2)`` (fork) running the same trials in the same run, the way a
peer library that forks its pool does. ``extra_info`` holds the measured gaps and ratios.
Measure with:
python -m pytest benches/test_bench_worker_start.py --benchmark-enable --benchmark-only \
    --benchmark-columns=median,min,rounds
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

POINTS, TRIAL_S, IMPORT_S = 60, 0.03, 1.0
SMALL = (6, 0.005, 0.05)  # benchmarks disabled: a correctness run of a few seconds

MODULE = """
import os, time

def _spin(seconds):
    end = time.perf_counter() + seconds
    x = 0
    while time.perf_counter() < end:
        x += 1
    return x

_spin({import_s})  # an expensive import (pandas, a model, a data set)

def backtest(config):
    started = time.time()
    _spin({trial_s})
    return {{"value": float(config["a"]), "started": started, "ended": time.time(), "pid": os.getpid()}}
"""

SWEEP = """
[sweep]
name = "start"
direction = "minimize"
workers = {workers}
[objective]
callable = "slowmod:backtest"
[parameters]
a = {{ type = "int", low = 1, high = {points} }}
"""

RUNNER = """
import sys, json, time
t0 = time.time()
from fastgrid import Sweep
if __name__ == "__main__":  # a forkserver (or spawn) imports the main module again
    r = Sweep.from_file(sys.argv[1], directory=sys.argv[2], progress=False).run()
    rows = [row["metrics"] for row in r.rows if row["state"] == "COMPLETE"]
    print(json.dumps({"t0": t0, "rows": rows}))
"""

POOL = """
import sys, json, time, multiprocessing as mp
t0 = time.time()
import fastgrid, optuna
sys.path.insert(0, sys.argv[1])
import slowmod
if __name__ == "__main__":
    with mp.get_context("fork").Pool(2) as pool:
        rows = pool.map(slowmod.backtest, [{"a": a} for a in range(1, int(sys.argv[2]) + 1)])
    print(json.dumps({"t0": t0, "rows": rows}))
"""


def _setup(sizes: tuple[int, float, float]) -> Path:
    points, trial_s, import_s = sizes
    folder = Path(tempfile.mkdtemp(prefix="fastgrid-bench-start-"))
    (folder / "slowmod.py").write_text(textwrap.dedent(MODULE.format(import_s=import_s, trial_s=trial_s)))
    for workers in (1, 2):
        (folder / f"w{workers}.toml").write_text(SWEEP.format(workers=workers, points=points))
    (folder / "runner.py").write_text(RUNNER)
    (folder / "pool.py").write_text(POOL)
    return folder


def _run(args: list[str]) -> tuple[float, dict[str, Any]]:
    t = time.perf_counter()
    out = subprocess.run([sys.executable, *args], capture_output=True, text=True, check=True, timeout=300)
    return time.perf_counter() - t, json.loads(out.stdout.strip().splitlines()[-1])


def _phases(data: dict[str, Any]) -> dict[str, float]:
    rows = data["rows"]
    first: dict[int, float] = {}
    for row in rows:
        first[row["pid"]] = min(first.get(row["pid"], row["started"]), row["started"])
    starts = sorted(first.values())
    return {
        "trial_phase_s": max(r["ended"] for r in rows) - min(r["started"] for r in rows),
        "second_worker_gap_s": starts[1] - starts[0] if len(starts) > 1 else float("nan"),
        "workers_seen": len(starts),
    }


def _imports(folder: Path) -> float:
    code = f"import sys; sys.path.insert(0, {str(folder)!r}); import fastgrid.runner, optuna, slowmod"
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    return time.perf_counter() - t


def _sweep(folder: Path, workers: int) -> tuple[float, dict[str, Any]]:
    where = tempfile.mkdtemp(prefix="run-", dir=folder)  # a fresh store: nothing to resume
    return _run([str(folder / "runner.py"), str(folder / f"w{workers}.toml"), where])


@pytest.mark.benchmark(group="workers: per-trial start-up, 60 x 30 ms trials, 1 s import (whole process)")
def test_fastgrid_two_workers_start_at_once(benchmark: Any) -> None:
    sizes = SMALL if benchmark.disabled else (POINTS, TRIAL_S, IMPORT_S)
    folder = _setup(sizes)
    # Measured once beside the timed runs: a fresh interpreter's imports and the 1-worker sweep.
    imports = _imports(folder)
    one_s, one = _sweep(folder, 1)
    phase_one = _phases(one)["trial_phase_s"]
    runs: list[tuple[float, dict[str, Any]]] = []

    def run() -> dict[str, Any]:
        runs.append(_sweep(folder, 2))
        return runs[-1][1]

    two = benchmark.pedantic(run, rounds=1 if benchmark.disabled else 3, iterations=1)
    two_s = sorted(s for s, _ in runs)[len(runs) // 2]
    phases = [_phases(data) for _, data in runs]
    gaps = sorted(p["second_worker_gap_s"] for p in phases)
    speedups = sorted(phase_one / p["trial_phase_s"] for p in phases)
    benchmark.extra_info.update(
        imports_s=imports,
        one_worker_process_s=one_s,
        one_worker_trial_phase_s=phase_one,
        two_workers_process_s=two_s,
        second_worker_gap_s=gaps[len(gaps) // 2],
        trial_phase_speedup=speedups[len(speedups) // 2],
        process_over_ideal=two_s / (imports + phase_one / 2),
    )
    assert len(two["rows"]) == sizes[0]
    assert all(p["workers_seen"] == 2 for p in phases)  # both workers ran trials


@pytest.mark.benchmark(group="workers: per-trial start-up, 60 x 30 ms trials, 1 s import (whole process)")
def test_multiprocessing_fork_pool_floor(benchmark: Any) -> None:
    sizes = SMALL if benchmark.disabled else (POINTS, TRIAL_S, IMPORT_S)
    folder = _setup(sizes)

    def run() -> dict[str, Any]:
        return _run([str(folder / "pool.py"), str(folder), str(sizes[0])])[1]

    data = benchmark.pedantic(run, rounds=1 if benchmark.disabled else 3, iterations=1)
    benchmark.extra_info.update(_phases(data))
    assert len(data["rows"]) == sizes[0]
