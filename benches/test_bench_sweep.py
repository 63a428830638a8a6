"""A whole Sweep: framework overhead per trial on the embedded store, and 1 vs 2 worker processes.

- overhead: a grid sweep whose objective does nothing, timed end to end (open storage, every
  trial with its bookkeeping, result), against the bare Optuna loop (random sampler, one
  suggest, nothing recorded) on Optuna's journal file and on fastgrid's embedded store, in the
  same run. Divide by TRIALS.
- workers: the same CPU-bound trials with 1 and with 2 workers, as commands (worker threads,
  each waiting on its subprocess) and as a Python callable (worker processes).
Measure with:
python -m pytest benches/test_bench_sweep.py --benchmark-enable --benchmark-only \
    --benchmark-columns=median,min,rounds
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import optuna
import pytest
from fastgrid import Sweep, open_storage
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

optuna.logging.set_verbosity(optuna.logging.WARNING)


TRIALS = 1_000


def n_trials(benchmark: Any, big: int, small: int) -> int:
    return small if benchmark.disabled else big


def trivial(config: dict[str, Any]) -> float:
    return float(config["a"])


def fresh_dir() -> tuple[tuple[Path], dict[str, Any]]:
    return (Path(tempfile.mkdtemp(prefix="fastgrid-bench-")),), {}


@pytest.mark.benchmark(group="sweep: framework overhead, trivial objective (divide by trials)")
def test_fastgrid_sweep_overhead(benchmark: Any) -> None:
    n = n_trials(benchmark, TRIALS, 50)
    results = []

    def run(directory: Path) -> None:
        sweep = Sweep(
            direction="minimize",
            name="overhead",
            parameters={"a": {"type": "int", "low": 0, "high": n - 1}, "b": "fixed"},
            objective=trivial,
            directory=directory,
            progress=False,
        )
        results.append(sweep.run())

    benchmark.pedantic(run, setup=fresh_dir, rounds=3 if not benchmark.disabled else 1, iterations=1)
    for result in results:
        assert result.counts["complete"] == n and result.best is not None and result.best["values"] == [0.0]


def optuna_loop(benchmark: Any, storage_for: Callable[[Path], Any]) -> None:
    """The bare Optuna loop: random sampler, one suggest, trivial objective, nothing recorded."""
    n = n_trials(benchmark, TRIALS, 50)
    studies = []

    def run(directory: Path) -> None:
        sampler = optuna.samplers.RandomSampler(seed=0)
        study = optuna.create_study(study_name="overhead", storage=storage_for(directory), sampler=sampler)
        study.optimize(lambda t: float(t.suggest_int("a", 0, n - 1)), n_trials=n)
        studies.append(study)

    benchmark.pedantic(run, setup=fresh_dir, rounds=3 if not benchmark.disabled else 1, iterations=1)
    for study in studies:
        assert len(study.trials) == n


@pytest.mark.benchmark(group="sweep: framework overhead, trivial objective (divide by trials)")
def test_optuna_loop_on_its_journal_file(benchmark: Any) -> None:
    optuna_loop(benchmark, lambda d: JournalStorage(JournalFileBackend(str(d / "journal.log"))))


@pytest.mark.benchmark(group="sweep: framework overhead, trivial objective (divide by trials)")
def test_optuna_loop_on_the_embedded_store(benchmark: Any) -> None:
    optuna_loop(benchmark, lambda d: open_storage(None, directory=d))


BURN = "import json, sys\nsum(i * i for i in range(int(sys.argv[1])))\nprint(json.dumps({'value': 1.0}))\n"


def burn_callable(config: dict[str, Any]) -> float:
    """A CPU-bound Python "backtest" (pure Python, holds the GIL: only processes scale it)."""
    return float(sum(i * i for i in range(int(config["burn"]))) % 7)


def burn_sweep(directory: Path, workers: int, *, trials: int, burn: int, command: bool) -> Sweep:
    """``trials`` CPU-bound trials, as a command (burn.py) or as a Python callable."""
    (directory / "burn.py").write_text(BURN)
    objective: Any = [sys.executable, str(directory / "burn.py"), str(burn)] if command else burn_callable
    return Sweep(
        direction="minimize",
        name="workers",
        parameters={"a": {"type": "int", "low": 1, "high": trials}, "burn": burn},
        objective=objective,
        directory=directory,
        workers=workers,
        progress=False,
    )


def workers_run(benchmark: Any, workers: int, *, command: bool) -> None:
    """The same CPU-bound trials, as a command (burn.py) or as a Python callable."""
    trials = n_trials(benchmark, 16, 2)
    burn = 12_000_000 if not benchmark.disabled else 10_000
    results = []

    def run(directory: Path) -> None:
        results.append(burn_sweep(directory, workers, trials=trials, burn=burn, command=command).run())

    benchmark.pedantic(run, setup=fresh_dir, rounds=2 if not benchmark.disabled else 1, iterations=1)
    for result in results:
        assert result.counts["complete"] == trials and result.counts["failed"] == 0


@pytest.mark.benchmark(group="sweep: CPU-bound command trials, 1 vs 2 workers")
def test_one_worker(benchmark: Any) -> None:
    workers_run(benchmark, 1, command=True)


@pytest.mark.benchmark(group="sweep: CPU-bound command trials, 1 vs 2 workers")
def test_two_workers(benchmark: Any) -> None:
    workers_run(benchmark, 2, command=True)


def bare_run(benchmark: Any, at_once: int) -> None:
    """The ceiling: the same 16 commands with subprocess.run, ``at_once`` at a time, nothing else.

    On a shared 2-core VM two CPU-bound processes do not always get two whole cores; this
    measures what the machine gives two at once in the same run.
    """
    trials = n_trials(benchmark, 16, 2)
    burn = 12_000_000 if not benchmark.disabled else 10_000

    def run(directory: Path) -> None:
        (directory / "burn.py").write_text(BURN)
        argv = [sys.executable, str(directory / "burn.py"), str(burn)]
        with ThreadPoolExecutor(at_once) as pool:
            futures = [pool.submit(subprocess.run, argv, capture_output=True) for _ in range(trials)]
            done = [f.result() for f in futures]
        assert [p.returncode for p in done] == [0] * trials

    benchmark.pedantic(run, setup=fresh_dir, rounds=2 if not benchmark.disabled else 1, iterations=1)


@pytest.mark.benchmark(group="sweep: CPU-bound command trials, 1 vs 2 workers")
def test_bare_subprocesses_one_at_a_time(benchmark: Any) -> None:
    bare_run(benchmark, 1)


@pytest.mark.benchmark(group="sweep: CPU-bound command trials, 1 vs 2 workers")
def test_bare_subprocesses_two_at_a_time(benchmark: Any) -> None:
    bare_run(benchmark, 2)


@pytest.mark.benchmark(group="sweep: CPU-bound Python callable trials, 1 vs 2 workers")
def test_callable_one_worker(benchmark: Any) -> None:
    workers_run(benchmark, 1, command=False)


@pytest.mark.benchmark(group="sweep: CPU-bound Python callable trials, 1 vs 2 workers")
def test_callable_two_workers(benchmark: Any) -> None:
    workers_run(benchmark, 2, command=False)


# -- resume: a finished sweep, run again ------------------------------------------------------------
RESUME_TRIALS = 10_000


@pytest.fixture(scope="module")
def finished_sweeps(request: pytest.FixtureRequest) -> dict[str, Any]:
    """A finished grid sweep on the embedded store, and the same trials in Optuna's journal file."""
    # As pytest-benchmark decides it: the project's addopts disable, --benchmark-enable wins.
    option = request.config.getoption
    enabled = option("benchmark_enable") or not option("benchmark_disable")
    n = RESUME_TRIALS if enabled else 50
    directory = Path(tempfile.mkdtemp(prefix="fastgrid-resume-"))
    parameters = {"a": {"type": "int", "low": 0, "high": n - 1}, "b": "fixed"}
    Sweep(
        direction="minimize",
        name="resume",
        parameters=parameters,
        objective=trivial,
        directory=directory,
        progress=False,
    ).run()
    journal = directory / "journal.log"
    study = optuna.create_study(
        study_name="resume",
        storage=JournalStorage(JournalFileBackend(str(journal))),
        sampler=optuna.samplers.RandomSampler(seed=0),
    )
    study.optimize(lambda t: float(t.suggest_int("a", 0, n - 1)), n_trials=n)
    return {"n": n, "directory": directory, "parameters": parameters, "journal": journal}


@pytest.mark.benchmark(group="sweep: resume a finished 10,000-trial sweep (nothing left to run)")
def test_fastgrid_resume_finished_sweep(benchmark: Any, finished_sweeps: dict[str, Any]) -> None:
    def resume() -> Any:
        return Sweep(
            direction="minimize",
            name="resume",
            parameters=finished_sweeps["parameters"],
            objective=trivial,
            directory=finished_sweeps["directory"],
            progress=False,
        ).run()

    result = benchmark.pedantic(resume, rounds=5, iterations=1, warmup_rounds=1)
    assert result.ran == 0 and result.counts["complete"] == finished_sweeps["n"]
    assert result.best is not None and result.best["values"] == [0.0]


@pytest.mark.benchmark(group="sweep: resume a finished 10,000-trial sweep (nothing left to run)")
def test_optuna_journal_load_study_and_trials(benchmark: Any, finished_sweeps: dict[str, Any]) -> None:
    """The anchor: only reading the same trials back from Optuna's journal file."""

    def load() -> list[Any]:
        storage = JournalStorage(JournalFileBackend(str(finished_sweeps["journal"])))
        return optuna.load_study(study_name="resume", storage=storage).trials

    trials = benchmark.pedantic(load, rounds=5, iterations=1)
    assert len(trials) == finished_sweeps["n"]


@pytest.mark.parametrize("command", [True, False], ids=["command", "callable"])
def test_paired_worker_scaling(benchmark: Any, command: bool) -> None:
    """1 and 2 workers alternately, so that a shared VM's drifting speed hits both alike.

    Prints each pair's 1-worker / 2-worker time ratio and their median; the separate groups
    above time each side in its own stretch of minutes, which this machine's drift can skew.
    """
    if benchmark.disabled:
        pytest.skip("a timing comparison: runs with --benchmark-enable")
    import statistics
    import time

    trials, burn = 8, 12_000_000
    ratios = []

    def once(workers: int) -> float:
        sweep = burn_sweep(fresh_dir()[0][0], workers, trials=trials, burn=burn, command=command)
        start = time.perf_counter()
        result = sweep.run()
        assert result.counts["complete"] == trials
        return time.perf_counter() - start

    def pairs() -> None:
        for _ in range(3):
            one, two = once(1), once(2)
            ratios.append(one / two)

    benchmark.pedantic(pairs, rounds=1, iterations=1)
    kind = "command" if command else "callable"
    print(
        f"\n{kind}: 1-worker / 2-worker time, per pair: {[round(r, 2) for r in ratios]}; "
        f"median {statistics.median(ratios):.2f}x"
    )
    benchmark.extra_info["ratios"] = ratios
