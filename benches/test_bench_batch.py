"""Batch sweeps (issue 13): points per second end to end, memory, store size, per-point overhead,
kill -9 + resume, and reading the top 20 of the columnar results.

Each group pairs fastgrid with the floor it is measured against, in the same run:
- end to end: ``run_batch`` over a 6-parameter grid with one ``where`` constraint and a no-op
  vectorized objective returning two metrics, against the bare loop with no bookkeeping (the grid
  engine's columns + the same objective, results dropped) and against a per-trial ``Sweep`` of a
  few thousand points (divide by points: ``extra_info`` holds points/s);
- per-point callable: ``run_batch(callable=...)`` against a bare Python loop of ``merged`` + call;
- report: ``BatchResults.top(20)`` and ``failures()`` from the store, against ``np.argpartition``
  over the same column already in memory.
Sizes: 10^6 points by default, 10^7 with FASTGRID_BENCH_FULL=1; tiny when benchmarks are disabled
(they then run as correctness tests). Measure (release build) with:
python -m pytest benches/test_bench_batch.py --benchmark-enable --benchmark-only \
    --benchmark-columns=median,min,rounds
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from fastgrid import ConfigTemplate, Grid, Sweep
from fastgrid.batch import BatchResults, BatchStore, run_batch

optuna.logging.set_verbosity(optuna.logging.WARNING)

FULL = os.environ.get("FASTGRID_BENCH_FULL") == "1"
BIG = 10_000_000 if FULL else 1_000_000


def points(benchmark: Any) -> int:
    return 20_000 if benchmark.disabled else BIG


def params(n: int) -> dict[str, Any]:
    """Six parameters whose grid, after ``a < b``, holds about ``n`` points."""
    # a, b in 1..40 with a < b keep 780 of 1600 pairs; the other four axes make up the rest.
    rest = max(1, round(n / 780))
    c = max(1, round(rest ** (1 / 4)))
    d = max(1, round(rest / c**3))
    return {
        "a": {"type": "int", "low": 1, "high": 40},
        "b": {"type": "int", "low": 1, "high": 40},
        "c": {"type": "int", "low": 0, "high": c - 1},
        "d": {"type": "float", "low": 0.0, "high": 1.0, "num": d},
        "e": {"type": "int", "low": 0, "high": c - 1},
        "f": {"type": "grid", "values": list(range(c))},
    }


def noop(columns: dict[str, Any], config: Any) -> dict[str, Any]:
    a = columns["a"]
    return {"score": a.astype(np.float64), "trades": columns["b"]}


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def fresh() -> Path:
    return Path(tempfile.mkdtemp(prefix="fastgrid-bench-batch-"))


class PeakRss:
    """The highest RSS seen while the block runs (sampled every 20 ms by a thread)."""

    def __enter__(self) -> PeakRss:
        self.before = self.peak = rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss_mb())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb())

    @property
    def growth(self) -> float:
        return self.peak - self.before


@pytest.mark.benchmark(group="batch: end to end, no-op vectorized objective (divide by points)")
def test_run_batch_end_to_end(benchmark: Any) -> None:
    spec = params(points(benchmark))
    info: dict[str, Any] = {}

    def run() -> Any:
        directory = fresh()
        with PeakRss() as rss:
            r = run_batch(
                spec, batch=noop, name="e2e", metric="score", where=["a < b"], directory=directory, top_k=20
            )
        info["rss_peak_growth_mb"] = rss.growth
        store = directory / "fastgrid.db"
        BatchStore(store)._connection().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        n = r.counts["done"]
        raw = n * (8 * 6 + 8 * 2)  # six parameter columns and two metrics, 8 bytes each
        info["store_over_raw"] = store.stat().st_size / raw
        info["points"] = n
        return r

    r = benchmark.pedantic(run, rounds=1 if benchmark.disabled else 3, iterations=1)
    assert r.counts["done"] == r.results.total and r.counts["failed"] == 0
    assert r.best is not None and r.best["params"]["a"] == 1  # minimize
    benchmark.extra_info.update(info)
    if benchmark.stats is not None:
        benchmark.extra_info["points_per_s"] = info["points"] / benchmark.stats.stats.median
    assert info["store_over_raw"] <= 1.5, info


@pytest.mark.benchmark(group="batch: end to end, no-op vectorized objective (divide by points)")
def test_bare_columns_and_objective_floor(benchmark: Any) -> None:
    grid = Grid(params(points(benchmark)), constraints="a < b", flat=True)

    def run() -> int:
        n = 0
        for start in range(0, len(grid), 65_536):
            cols = grid.columns(start, min(start + 65_536, len(grid)), fixed="scalar")
            n += len(noop(cols, {})["score"])
        return n

    assert benchmark.pedantic(run, rounds=3, iterations=1) == len(grid)


@pytest.mark.benchmark(group="batch: end to end, no-op vectorized objective (divide by points)")
def test_per_trial_sweep_of_2000_points(benchmark: Any) -> None:
    n = 200 if benchmark.disabled else 2_000

    def run() -> Any:
        return Sweep(
            direction="minimize",
            parameters={"a": {"type": "int", "low": 1, "high": n}},
            objective=lambda cfg: float(cfg["a"]),
            name="pt",
            directory=fresh(),
            progress=False,
        ).run()

    assert benchmark.pedantic(run, rounds=1, iterations=1).counts["complete"] == n


def per_point(config: dict[str, Any]) -> dict[str, float]:
    return {"score": 1.0}


CALLABLE_POINTS = 200_000


@pytest.mark.benchmark(group="batch: per-point callable (divide by points; subtract the bare loop)")
def test_run_batch_per_point_callable(benchmark: Any) -> None:
    n = 5_000 if benchmark.disabled else CALLABLE_POINTS
    spec = {"a": {"type": "int", "low": 1, "high": n}, "k": 3}

    def run() -> Any:
        return run_batch(spec, callable=per_point, name="pp", metric="score", directory=fresh(), top_k=0)

    r = benchmark.pedantic(run, rounds=1, iterations=1)
    assert r.counts["done"] == n and r.counts["failed"] == 0


@pytest.mark.benchmark(group="batch: per-point callable (divide by points; subtract the bare loop)")
def test_bare_merge_and_call_loop(benchmark: Any) -> None:
    n = 5_000 if benchmark.disabled else CALLABLE_POINTS
    template = ConfigTemplate({"a": 0, "k": 3})

    def run() -> int:
        done = 0
        for a in range(1, n + 1):
            per_point(template.merged({"a": a, "k": 3}))
            done += 1
        return done

    assert benchmark.pedantic(run, rounds=3, iterations=1) == n


_KILLED = """
import sys, time
from fastgrid.batch import run_batch

def slow(cols, config):
    time.sleep(0.02)
    return {"score": cols["a"] * 1.0}

n, chunk, where = int(sys.argv[2]), int(sys.argv[3]), sys.argv[1]
params = {"a": {"type": "int", "low": 1, "high": n}, "b": {"type": "int", "low": 1, "high": 10}}
run_batch(params, batch=slow, name="k", metric="score", chunk=chunk, directory=where, top_k=0)
"""


@pytest.mark.benchmark(group="batch: kill -9 at a random moment, then resume (time to the first chunk)")
def test_kill_9_and_resume(benchmark: Any) -> None:
    n = 2_000 if benchmark.disabled else BIG // 10
    directory = fresh()
    script = directory / "killed.py"
    script.write_text(textwrap.dedent(_KILLED))
    chunk = min(65_536, n * 10 // 20)  # at least 20 chunks, so the kill lands mid-sweep
    proc = subprocess.Popen(
        [sys.executable, str(script), str(directory), str(n), str(chunk)], start_new_session=True
    )
    store = BatchStore(directory / "fastgrid.db")
    deadline = time.monotonic() + 120
    rng = np.random.default_rng()
    target = int(rng.integers(1, 4))
    while time.monotonic() < deadline and proc.poll() is None:
        if "k" in store.sweeps() and store.counts("k")["chunks_done"] >= target:
            break
        time.sleep(0.005)
    assert proc.poll() is None, "the sweep ended before the kill"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    first: list[float] = []

    def resume() -> Any:
        t0 = time.perf_counter()
        return run_batch(
            {"a": {"type": "int", "low": 1, "high": n}, "b": {"type": "int", "low": 1, "high": 10}},
            batch=lambda cols, config: {"score": cols["a"] * 1.0},
            name="k",
            metric="score",
            chunk=chunk,
            directory=directory,
            top_k=0,
            progress=lambda event: first.append(time.perf_counter() - t0) if not first else None,
        )

    r = benchmark.pedantic(resume, rounds=1, iterations=1)
    cols = r.results.columns(["slot", "a", "score"])
    assert cols["slot"].tolist() == list(range(n * 10)) and (cols["score"] == cols["a"]).all()
    benchmark.extra_info["first_chunk_after_s"] = first[0] if first else None
    assert max(c["claims"] for c in store.chunks("k")) <= 2


@pytest.fixture(scope="module")
def big_results(request: Any) -> BatchResults:
    cfg = request.config
    disabled = cfg.getoption("benchmark_disable") and not cfg.getoption("benchmark_enable")
    n = 20_000 if disabled else BIG

    def metrics(columns: dict[str, Any], config: Any) -> dict[str, Any]:
        a = columns["a"].astype(np.float64)
        score = np.sin(a * columns["c"] + columns["d"])
        # Some points fail (a NaN metric), so that failures by reason have something to group.
        return {
            "score": np.where((columns["a"] == 7) & (columns["c"] == 0), np.nan, score),
            "trades": columns["b"],
        }

    directory = fresh()
    run_batch(
        params(n),
        batch=metrics,
        name="big",
        metric="score",
        direction="maximize",
        where=["a < b"],
        require=["trades >= 5"],
        directory=directory,
        top_k=0,
    )
    return BatchResults(BatchStore(directory / "fastgrid.db"), "big")


@pytest.mark.benchmark(group="batch: report top 20 and failures by reason from the store")
def test_report_top_20(benchmark: Any, big_results: BatchResults) -> None:
    def report() -> Any:
        return big_results.top(20), big_results.failures(), big_results.counts()

    top, failures, counts = benchmark.pedantic(report, rounds=3, iterations=1)
    assert len(top) == 20 and list(failures) == ["metric 'score' is NaN"]
    assert failures["metric 'score' is NaN"] == counts["failed"] > 0
    benchmark.extra_info["rows"] = counts["done"]
    values = [row["metrics"]["score"] for row in top]
    assert values == sorted(values, reverse=True)


@pytest.mark.benchmark(group="batch: report top 20 and failures by reason from the store")
def test_argpartition_in_memory_floor(benchmark: Any, big_results: BatchResults) -> None:
    cols = big_results.columns(["score", "feasible"])
    score, feasible = cols["score"], cols["feasible"]

    def floor() -> Any:
        masked = np.where(feasible, score, -np.inf)
        return np.argpartition(-masked, 19)[:20]

    assert len(benchmark.pedantic(floor, rounds=3, iterations=1)) == 20


def busy(columns: dict[str, Any], config: Any) -> dict[str, Any]:
    """CPU-bound and vectorized: ~40 ms of numpy per 2,048 points, no I/O."""
    a = columns["a"].astype(np.float64)
    waves = np.sin(np.outer(a, np.linspace(0.0, 1.0, 800)) * columns["b"][:, None])
    return {"score": waves.sum(axis=1), "trades": columns["b"]}


@pytest.mark.benchmark(group="batch: 1 vs 2 workers, CPU-bound vectorized objective")
@pytest.mark.parametrize("workers", [1, 2])
def test_workers_on_a_cpu_bound_objective(benchmark: Any, workers: int) -> None:
    n = 4_000 if benchmark.disabled else 120_000
    spec = params(n)

    def run() -> Any:
        return run_batch(
            spec,
            batch=busy,
            name="cpu",
            metric="score",
            where=["a < b"],
            chunk=2_048,
            workers=workers,
            directory=fresh(),
            top_k=0,
        )

    r = benchmark.pedantic(run, rounds=1 if benchmark.disabled else 3, iterations=1)
    assert r.counts["done"] == r.results.total and r.counts["failed"] == 0
    owners = {c["info"]["owner"].split("/")[1] for c in r.results.store.chunks("cpu")}
    # Timed runs have ~50 chunks of 40 ms: each worker takes some (tests/test_batch.py checks it always).
    assert len(owners) == workers or benchmark.disabled


def _busy_chunk(bounds: tuple[int, int]) -> int:
    return len(busy(_CEILING_GRID.columns(*bounds, fixed="scalar"), {})["score"])


_CEILING_GRID: Any = None


@pytest.mark.benchmark(group="batch: 1 vs 2 workers, CPU-bound vectorized objective")
@pytest.mark.parametrize("workers", [1, 2])
def test_fork_pool_ceiling_on_the_same_chunks(benchmark: Any, workers: int) -> None:
    """The same chunks through ``multiprocessing.Pool`` (fork), nothing recorded: the speed-up
    this machine gives two processes at that moment (a shared VM may give less than 2x)."""
    global _CEILING_GRID
    n = 4_000 if benchmark.disabled else 120_000
    _CEILING_GRID = Grid(params(n), constraints="a < b", flat=True)
    bounds = [(s, min(s + 2_048, len(_CEILING_GRID))) for s in range(0, len(_CEILING_GRID), 2_048)]

    def run() -> int:
        if workers == 1:
            return sum(map(_busy_chunk, bounds))
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            return sum(pool.map(_busy_chunk, bounds, chunksize=1))

    assert benchmark.pedantic(run, rounds=1 if benchmark.disabled else 3, iterations=1) == len(_CEILING_GRID)


def test_paired_batch_worker_scaling(benchmark: Any) -> None:
    """1 and 2 workers alternately on ~4.5 s of CPU-bound chunks (~490,000 points), fastgrid and
    the forked-pool ceiling in each round, so that a shared VM's drifting speed hits all alike.

    ``extra_info``: per round, fastgrid's 1-worker / 2-worker time ratio and the pool's; the
    groups above time each side in its own stretch, which this machine's drift can skew.
    """
    if benchmark.disabled:
        pytest.skip("a timing comparison: runs with --benchmark-enable")
    import statistics
    import time

    global _CEILING_GRID
    spec = params(500_000)
    _CEILING_GRID = Grid(spec, constraints="a < b", flat=True)
    bounds = [(s, min(s + 2_048, len(_CEILING_GRID))) for s in range(0, len(_CEILING_GRID), 2_048)]
    ours: list[float] = []
    pool: list[float] = []

    def fastgrid_run(workers: int) -> float:
        start = time.perf_counter()
        r = run_batch(
            spec, batch=busy, name="cpu", metric="score", where=["a < b"], chunk=2_048,
            workers=workers, directory=fresh(), top_k=0,
        )  # fmt: skip
        assert r.counts["done"] == len(_CEILING_GRID)
        return time.perf_counter() - start

    def pool_run(workers: int) -> float:
        start = time.perf_counter()
        if workers == 1:
            done = sum(map(_busy_chunk, bounds))
        else:
            with multiprocessing.get_context("fork").Pool(workers) as p:
                done = sum(p.map(_busy_chunk, bounds, chunksize=1))
        assert done == len(_CEILING_GRID)
        return time.perf_counter() - start

    def rounds() -> None:
        for _ in range(3):
            ours.append(fastgrid_run(1) / fastgrid_run(2))
            pool.append(pool_run(1) / pool_run(2))

    benchmark.pedantic(rounds, rounds=1, iterations=1)
    print(
        f"\nbatch, CPU-bound: 1-worker / 2-worker time per round: fastgrid {[round(r, 2) for r in ours]} "
        f"(median {statistics.median(ours):.2f}x), forked pool {[round(r, 2) for r in pool]} "
        f"(median {statistics.median(pool):.2f}x)"
    )
    benchmark.extra_info["fastgrid_ratios"] = ours
    benchmark.extra_info["pool_ratios"] = pool


@pytest.mark.benchmark(group="batch: heatmap of 2 parameters over every stored point")
def test_heatmap_cells_from_the_store(benchmark: Any, big_results: BatchResults) -> None:
    _, _, grid = benchmark.pedantic(
        lambda: big_results.aggregate("a", "b", "score", agg="max"), rounds=3, iterations=1
    )
    cols = big_results.columns(["a", "b", "feasible", "failed"])
    ok = cols["feasible"] & ~cols["failed"]
    assert np.isfinite(grid).sum() == len(
        set(zip(cols["a"][ok].tolist(), cols["b"][ok].tolist(), strict=True))
    )
    benchmark.extra_info["rows"] = big_results.counts()["done"]


@pytest.mark.benchmark(group="batch: heatmap of 2 parameters over every stored point")
def test_heatmap_bincount_in_memory_floor(benchmark: Any, big_results: BatchResults) -> None:
    cols = big_results.columns(["a", "b", "score", "feasible", "failed"])
    a, b, score, ok = cols["a"], cols["b"], cols["score"], cols["feasible"] & ~cols["failed"]

    def floor() -> Any:
        cell = (a[ok] - 1) * 40 + (b[ok] - 1)
        out = np.full(1600, -np.inf)
        np.maximum.at(out, cell, score[ok])
        return out

    assert np.isfinite(benchmark.pedantic(floor, rounds=3, iterations=1)).sum() > 0


# --- the bundled SMA crossover: vectorized batch objective against the same strategy per trial ---

SMA_EXAMPLES = Path(__file__).resolve().parents[1] / "python" / "fastgrid" / "examples"
SMA_WHERE = ["signal.fast < signal.slow"]
SMA_REQUIRE = ["trades >= 10"]
# Per-trial metrics of the first points in grid order, by trial key: the batch run checks its own.
_SMA_PER_TRIAL: dict[str, dict[str, float]] = {}


def sma_params(costs: int, *, slow_high: int = 400) -> dict[str, Any]:
    """The example's grid (sma_batch.toml) with ``costs`` cost levels: 34,576 points per level
    (slow windows up to ``slow_high``: fewer points, for the untimed correctness run)."""
    return {
        "signal.fast": {"type": "int", "low": 2, "high": 100},
        "signal.slow": {"type": "int", "low": 10, "high": slow_high, "step": 2},
        "signal.mode": {"type": "grid", "values": ["long", "long_short"]},
        "costs.per_trade": {"type": "grid", "values": [round(0.0002 * (k + 1), 6) for k in range(costs)]},
    }


def sma_costs(benchmark: Any) -> int:
    # 29 levels: 1,002,704 points (~150 us each on one core) with FASTGRID_BENCH_FULL=1; else 3.
    return 1 if benchmark.disabled else (29 if FULL else 3)


def sma_slow_high(benchmark: Any) -> int:
    return 40 if benchmark.disabled else 400


@pytest.mark.benchmark(group="batch: the SMA crossover example, vectorized vs per trial (divide by points)")
def test_sma_per_trial_sweep(benchmark: Any) -> None:
    """``fastgrid.examples.sma:run`` one Optuna trial per point over the first points in grid order."""
    n = 40 if benchmark.disabled else 600
    from fastgrid import trial_key

    def run() -> Any:
        return Sweep(
            direction="maximize",
            metric="sharpe",
            parameters=sma_params(1, slow_high=sma_slow_high(benchmark)),
            objective="fastgrid.examples.sma:run",
            config=SMA_EXAMPLES / "sma_config.json",
            where=SMA_WHERE,
            require=SMA_REQUIRE,
            max_trials=n,
            name="sma-trials",
            directory=fresh(),
            progress=False,
        ).run()

    result = benchmark.pedantic(run, rounds=1, iterations=1)
    assert result.counts["complete"] == n
    for row in result.rows:
        _SMA_PER_TRIAL[trial_key(row["params"])] = row["metrics"]
    if benchmark.stats is not None:
        benchmark.extra_info["points_per_s"] = n / benchmark.stats.stats.median


@pytest.mark.benchmark(group="batch: the SMA crossover example, vectorized vs per trial (divide by points)")
def test_sma_vectorized_batch_sweep(benchmark: Any) -> None:
    """``fastgrid.examples.sma_batch:run`` over the whole grid (one worker, like the per-trial
    run); the points the per-trial run scored must have the same metrics here."""
    from fastgrid import trial_key

    spec = sma_params(sma_costs(benchmark), slow_high=sma_slow_high(benchmark))

    def run() -> Any:
        return run_batch(
            spec,
            batch="fastgrid.examples.sma_batch:run",
            config=SMA_EXAMPLES / "sma_config.json",
            direction="maximize",
            metric="sharpe",
            where=SMA_WHERE,
            require=SMA_REQUIRE,
            name="sma-batch",
            directory=fresh(),
            top_k=10,
        )

    r = benchmark.pedantic(run, rounds=1, iterations=1)
    assert r.counts["done"] == r.results.total and r.counts["failed"] == 0
    table = r.results.to_pandas()
    paths = list(r.results.paths)
    compared = 0
    # The per-trial run has one cost level, the first: its points are among those rows.
    first_cost = sma_params(1)["costs.per_trade"]["values"][0]
    for values in table[table["costs.per_trade"] == first_cost].to_dict("records"):
        point = {p: values[p].item() if hasattr(values[p], "item") else values[p] for p in paths}
        want = _SMA_PER_TRIAL.get(trial_key(point))
        if want is None:
            continue
        for metric in ("sharpe", "total_return", "max_drawdown", "trades", "win_rate"):
            assert values[metric] == pytest.approx(want[metric], rel=1e-9, abs=1e-12), (metric, point)
        compared += 1
    assert compared == len(_SMA_PER_TRIAL), (compared, len(_SMA_PER_TRIAL))
    benchmark.extra_info["points"] = r.counts["done"]
    benchmark.extra_info["compared_with_per_trial"] = compared
    if benchmark.stats is not None:
        benchmark.extra_info["points_per_s"] = r.counts["done"] / benchmark.stats.stats.median
