"""A long grid sweep on the embedded store: throughput, and memory sampled along the run.

1,000 trials by default, 10,000 with ``FASTGRID_BENCH_FULL=1`` (50 when benchmarks are disabled,
so the plain test run stays quick). The objective records the process's resident set size every
1/10 of the run; the benchmark prints those samples and checks that memory grows by no more than
a small, per-trial amount (the storage keeps each finished trial; the grid, sampler and config
are never materialized). Paired with the bare Optuna loop on its journal file, in the same run.

Measure with:
FASTGRID_BENCH_FULL=1 python -m pytest benches/test_bench_scale.py --benchmark-enable \
    --benchmark-only --benchmark-columns=median,min,rounds -s
"""

from __future__ import annotations

import os
import resource
import tempfile
from pathlib import Path
from typing import Any

import optuna
import pytest
from fastgrid import Sweep
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

optuna.logging.set_verbosity(optuna.logging.WARNING)

FULL = os.environ.get("FASTGRID_BENCH_FULL") == "1"
GROUP = "scale: long grid sweep, trivial objective, embedded store"
_PAGE = os.sysconf("SC_PAGE_SIZE")


def n_trials(benchmark: Any) -> int:
    if benchmark.disabled:
        return 50
    return 10_000 if FULL else 1_000


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE / 2**20


def fresh_dir() -> tuple[tuple[Path], dict[str, Any]]:
    return (Path(tempfile.mkdtemp(prefix="fastgrid-scale-")),), {}


def grid(n: int) -> dict[str, Any]:
    # n points of a two-axis grid (plus a fixed value), like a real sweep's shape.
    return {"a": {"type": "int", "low": 0, "high": n // 10 - 1}, "b": {"type": "int", "low": 0, "high": 9}}


@pytest.mark.benchmark(group=GROUP)
def test_fastgrid_long_sweep_memory_along_the_run(benchmark: Any) -> None:
    n = n_trials(benchmark)
    samples: list[tuple[int, float]] = []
    every = max(n // 10, 1)
    calls = [0]

    def objective(config: dict[str, Any]) -> float:
        calls[0] += 1
        if calls[0] % every == 0:
            samples.append((calls[0], rss_mb()))
        return float(config["a"] * 10 + config["b"])

    results = []

    def run(directory: Path) -> None:
        samples.clear()
        calls[0] = 0
        sweep = Sweep(
            direction="minimize",
            name="scale",
            parameters=grid(n),
            objective=objective,
            directory=directory,
            progress=False,
        )
        results.append(sweep.run())

    benchmark.pedantic(run, setup=fresh_dir, rounds=1, iterations=1)
    result = results[-1]
    assert result.counts["complete"] == n and result.best is not None and result.best["values"] == [0.0]
    assert sorted(r["values"][0] for r in result.rows) == [float(i) for i in range(n)]
    first, last = samples[0], samples[-1]
    per_trial_kb = (last[1] - first[1]) * 1024 / max(last[0] - first[0], 1)
    print(f"\n{n} trials; RSS (trial, MiB): {[(k, round(v, 1)) for k, v in samples]}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"growth {per_trial_kb:.2f} KiB per trial; peak {peak:.0f} MiB")
    benchmark.extra_info.update(trials=n, rss_samples=samples, kib_per_trial=per_trial_kb)
    # The storage keeps every finished trial (a few KiB each); nothing else may grow with the run.
    assert per_trial_kb < 16, samples


@pytest.mark.benchmark(group=GROUP)
def test_optuna_journal_loop_same_trials(benchmark: Any) -> None:
    """The pure-Optuna anchor: the bare ask/tell loop on its journal file, nothing recorded."""
    n = n_trials(benchmark)
    studies = []

    def run(directory: Path) -> None:
        storage = JournalStorage(JournalFileBackend(str(directory / "journal.log")))
        study = optuna.create_study(
            study_name="scale", storage=storage, sampler=optuna.samplers.RandomSampler(0)
        )
        study.optimize(lambda t: float(t.suggest_int("a", 0, n - 1)), n_trials=n)
        studies.append(study)

    benchmark.pedantic(run, setup=fresh_dir, rounds=1, iterations=1)
    assert len(studies[-1].trials) == n
