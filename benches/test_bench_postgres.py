"""PostgreSQL: fastgrid's journal store (``fastgrid+postgresql://``) against Optuna on the same server,
in the same run (the server is started by this module, on loopback).

- per trial, 1 worker, trivial objective: a fastgrid sweep on the journal, end to end, against the bare
  Optuna loop (random sampler, one suggest, nothing recorded) on Optuna's ``RDBStorage``; with
  ``FASTGRID_BENCH_FULL=1`` also a fastgrid sweep on ``postgresql://`` (the RDB path, ~50 ms a trial);
- 4 ``fastgrid worker`` processes against 1 on 20 ms sleep trials: throughput from the moment all
  workers are running trials (their first trial waits for the others: process start-up is not trial
  throughput) to the last trial's end, wall time alongside;
- a late worker joining a 10,000-trial study: from ``Sweep.run()`` to its first trial, against a stock
  Optuna ``JournalStorage`` over the same log (a full replay, no snapshot) reaching its first ``ask``;
- resuming the finished 10,000-trial sweep (nothing left to run), against that stock load.

Measure (release build) with:

    python -m pytest benches/test_bench_postgres.py --benchmark-enable --benchmark-only \\
        --benchmark-columns=median,min,rounds -s

As plain tests (benchmarks disabled) every case runs a few dozen trials and checks its results.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import psycopg
import pytest
from fastgrid import Sweep
from fastgrid.storages import open_storage
from fastgrid.storages.postgres import PostgresJournalBackend, parse_url
from optuna.storages import JournalStorage, RDBStorage
from optuna.trial import TrialState

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.pgserver import PostgresUnavailable, running_server

optuna.logging.set_verbosity(optuna.logging.WARNING)

FULL = os.environ.get("FASTGRID_BENCH_FULL") == "1"
PER_TRIAL = 1_000
SCALING_TRIALS = 400
BIG = 10_000


def enabled(request: pytest.FixtureRequest) -> bool:
    option = request.config.getoption
    return bool(option("benchmark_enable") or not option("benchmark_disable"))


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    try:
        with running_server() as url:
            yield url
    except PostgresUnavailable as exc:
        pytest.skip(f"no PostgreSQL server: {exc}")


def new_schema(server: str) -> str:
    schema = "b_" + uuid.uuid4().hex[:12]
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")  # type: ignore[arg-type]
    return schema


def journal_url(server: str) -> str:
    return f"fastgrid+{server}?options=-csearch_path%3D{new_schema(server)}"


def rdb_url(server: str) -> str:
    return f"{server.replace('postgresql://', 'postgresql+psycopg://')}?options=-csearch_path%3D{new_schema(server)}"


def trivial(config: dict[str, Any]) -> float:
    return float(config["a"])


def fresh_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="fastgrid-pg-bench-"))


# --- per trial, one worker ----------------------------------------------------------------------------

GROUP_PER_TRIAL = "postgres: 1 worker, trivial objective (divide by trials)"


def _sweep_run(benchmark: Any, server: str, url_for: Any, n: int) -> None:
    results = []

    def setup() -> tuple[tuple[Sweep], dict[str, Any]]:
        sweep = Sweep(
            name="overhead",
            direction="minimize",
            parameters={"a": {"type": "int", "low": 0, "high": n - 1}, "b": "fixed"},
            objective=trivial,
            directory=fresh_dir(),
            storage=url_for(server),
            progress=False,
        )
        return (sweep,), {}

    def run(sweep: Sweep) -> None:
        start = time.perf_counter()
        results.append(sweep.run())
        benchmark.extra_info["ms_per_trial"] = round((time.perf_counter() - start) / n * 1e3, 3)

    benchmark.pedantic(run, setup=setup, rounds=3 if not benchmark.disabled and n < 5_000 else 1)
    for result in results:
        assert result.counts["complete"] == n and result.best is not None and result.best["values"] == [0.0]
    if not benchmark.disabled:
        print(f"\n  {benchmark.name}: {benchmark.extra_info['ms_per_trial']} ms/trial")


@pytest.mark.benchmark(group=GROUP_PER_TRIAL)
def test_fastgrid_sweep_on_the_postgres_journal(benchmark: Any, server: str) -> None:
    _sweep_run(benchmark, server, journal_url, PER_TRIAL if not benchmark.disabled else 40)


@pytest.mark.skipif(not FULL, reason="~50 ms a trial: with FASTGRID_BENCH_FULL=1")
@pytest.mark.benchmark(group=GROUP_PER_TRIAL)
def test_fastgrid_sweep_on_optunas_rdb(benchmark: Any, server: str) -> None:
    _sweep_run(benchmark, server, rdb_url, PER_TRIAL if not benchmark.disabled else 40)


@pytest.mark.benchmark(group=GROUP_PER_TRIAL)
def test_bare_optuna_loop_on_optunas_rdb(benchmark: Any, server: str) -> None:
    """The anchor: Optuna's own loop on its RDBStorage (random sampler, one suggest, nothing recorded)."""
    n = PER_TRIAL if not benchmark.disabled else 40
    counts: list[int] = []

    def run() -> None:
        storage = RDBStorage(rdb_url(server))
        study = optuna.create_study(storage=storage, sampler=optuna.samplers.RandomSampler(seed=0))
        start = time.perf_counter()
        study.optimize(lambda t: float(t.suggest_int("a", 0, n - 1)), n_trials=n)
        benchmark.extra_info["ms_per_trial"] = round((time.perf_counter() - start) / n * 1e3, 3)
        counts.append(len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))))
        storage.remove_session()
        storage.engine.dispose()  # its pooled connections, closed before the server stops

    benchmark.pedantic(run, rounds=1)
    assert counts == [n]
    if not benchmark.disabled:
        print(f"\n  {benchmark.name}: {benchmark.extra_info['ms_per_trial']} ms/trial")


# --- 4 worker processes against 1 ----------------------------------------------------------------------

SLEEPER = """
import os
import time
from pathlib import Path

BARRIER = Path(os.environ["FASTGRID_BENCH_BARRIER"])
WORKERS = int(os.environ["FASTGRID_BENCH_WORKERS"])
released = False


def run(cfg):
    global released
    if not released:
        # The workers start their trials together: process start-up is not trial throughput.
        (BARRIER / str(os.getpid())).touch()
        while len(list(BARRIER.iterdir())) < WORKERS:
            time.sleep(0.001)
        released = True
        with open(BARRIER.parent / "released", "a") as f:
            f.write(f"{time.time()}\\n")
    time.sleep(0.02)
    return float(cfg["a"])
"""


def _scaling_round(server: str, workers: int, n: int) -> tuple[float, float]:
    """``n`` 20 ms trials on ``workers`` processes: (trials per second once all run, wall seconds)."""
    directory = fresh_dir()
    (directory / "sleeper.py").write_text(SLEEPER)
    (directory / "barrier").mkdir()
    url = journal_url(server)
    sweep = directory / "sweep.toml"
    sweep.write_text(
        textwrap.dedent(
            f"""
            [sweep]
            name = "scale"
            direction = "minimize"
            storage = "{url}"
            [objective]
            callable = "sleeper:run"
            [parameters]
            a = {{ type = "int", low = 0, high = {n - 1} }}
            """
        )
    )
    env = {
        **os.environ,
        "FASTGRID_BENCH_BARRIER": str(directory / "barrier"),
        "FASTGRID_BENCH_WORKERS": str(workers),
    }
    start = time.perf_counter()
    argv = [sys.executable, "-m", "fastgrid", "worker", str(sweep), "--no-progress"]
    procs = [
        subprocess.Popen(
            argv, cwd=directory, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env
        )
        for _ in range(workers)
    ]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
    wall = time.perf_counter() - start
    trials = optuna.load_study(study_name="scale", storage=open_storage(url)).get_trials(deepcopy=False)
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    assert sorted(t.params["a"] for t in done) == list(range(n))
    released = max(float(x) for x in (directory / "released").read_text().split())
    last = max(t.datetime_complete.timestamp() for t in done if t.datetime_complete is not None)
    return n / (last - released), wall


def _workers_run(benchmark: Any, server: str, workers: int) -> None:
    n = SCALING_TRIALS if not benchmark.disabled else 12
    measured: list[tuple[float, float]] = []
    benchmark.pedantic(lambda: measured.append(_scaling_round(server, workers, n)), rounds=1)
    throughput, wall = measured[-1]
    benchmark.extra_info.update(trials_per_second=round(throughput, 1), wall_seconds=round(wall, 2))
    if not benchmark.disabled:
        print(
            f"\n  {workers} worker(s): {throughput:.1f} trials/s (all started to last end), wall {wall:.2f} s"
        )


@pytest.mark.benchmark(group="postgres: 20 ms sleep trials, fastgrid worker processes, 4 vs 1")
def test_one_worker_process(benchmark: Any, server: str) -> None:
    _workers_run(benchmark, server, 1)


@pytest.mark.benchmark(group="postgres: 20 ms sleep trials, fastgrid worker processes, 4 vs 1")
def test_four_worker_processes(benchmark: Any, server: str) -> None:
    _workers_run(benchmark, server, 4)


def test_paired_worker_scaling(benchmark: Any, server: str) -> None:
    """1 and 4 workers alternately, so that a shared machine's drifting load hits both alike;
    prints each pair's throughput ratio and their median."""
    if benchmark.disabled:
        pytest.skip("a timing comparison: runs with --benchmark-enable")
    import statistics

    ratios: list[float] = []

    def pairs() -> None:
        for _ in range(2):
            one = _scaling_round(server, 1, SCALING_TRIALS)[0]
            four = _scaling_round(server, 4, SCALING_TRIALS)[0]
            ratios.append(four / one)

    benchmark.pedantic(pairs, rounds=1, iterations=1)
    benchmark.extra_info["ratios"] = ratios
    median = statistics.median(ratios)
    print(f"\n  4 workers / 1, throughput per pair: {[round(r, 2) for r in ratios]}; median {median:.2f}x")


# --- a 10,000-trial study: a late worker joins, then the finished sweep is resumed -----------------------

FIRST_CALL: list[float] = []


def first_trial(config: dict[str, Any]) -> float:
    FIRST_CALL.append(time.perf_counter())
    return float(config["a"])


@pytest.fixture(scope="module")
def big_study(server: str, request: pytest.FixtureRequest) -> dict[str, Any]:
    """A sweep of ``n`` points with all but ``late`` done, on a journal, built by running it."""
    n = BIG if enabled(request) else 60
    late = 10 if enabled(request) else 4
    url, directory = journal_url(server), fresh_dir()
    parameters = {"a": {"type": "int", "low": 0, "high": n - 1}, "b": "fixed"}
    big = {"n": n, "late": late, "url": url, "directory": directory, "parameters": parameters}
    result = _sweep(big, trivial, max_trials=n - late).run()
    assert result.counts["complete"] == n - late
    return big


def _sweep(
    big: dict[str, Any], objective: Any, *, max_trials: int | None = None, more: int | None = None
) -> Sweep:
    return Sweep(
        name="big",
        direction="minimize",
        parameters=big["parameters"],
        objective=objective,
        directory=big["directory"],
        storage=big["url"],
        max_trials=max_trials,
        more=more,
        progress=False,
    )


@pytest.mark.benchmark(group="postgres: a late worker joins a 10,000-trial study (time to its first trial)")
def test_fastgrid_late_worker_first_trial(benchmark: Any, big_study: dict[str, Any]) -> None:
    joined: list[float] = []

    def join() -> None:
        FIRST_CALL.clear()
        start = time.perf_counter()
        result = _sweep(big_study, first_trial, more=1).run()
        assert result.ran == 1 and FIRST_CALL
        joined.append(FIRST_CALL[0] - start)

    benchmark.pedantic(join, rounds=min(big_study["late"], 5), iterations=1)
    joined.sort()
    benchmark.extra_info["median_to_first_trial_s"] = round(joined[len(joined) // 2], 4)
    if not benchmark.disabled:
        print(f"\n  late worker: first trial {joined[len(joined) // 2] * 1e3:.0f} ms (median) after joining")


@pytest.mark.benchmark(group="postgres: a late worker joins a 10,000-trial study (time to its first trial)")
def test_stock_optuna_journal_replay_before_a_first_ask(benchmark: Any, big_study: dict[str, Any]) -> None:
    """The anchor: what an Optuna worker on its JournalStorage over the same log does before its
    first ask (load the study: a replay of the whole log; then read its trials)."""
    backend = PostgresJournalBackend(parse_url(big_study["url"], display="bench"))

    def join() -> int:
        study = optuna.load_study(study_name="big", storage=JournalStorage(backend))
        return len(study.get_trials(deepcopy=False))

    assert benchmark.pedantic(join, rounds=3, iterations=1) >= big_study["n"] - big_study["late"]


@pytest.mark.benchmark(group="postgres: resume a finished 10,000-trial sweep (nothing left to run)")
def test_fastgrid_resume_finished_sweep_on_postgres(benchmark: Any, big_study: dict[str, Any]) -> None:
    _sweep(big_study, trivial).run()  # the points still left (not timed): the sweep is finished
    n = big_study["n"]

    def resume() -> Any:
        return _sweep(big_study, trivial).run()

    result = benchmark.pedantic(resume, rounds=5, iterations=1, warmup_rounds=1)
    assert result.ran == 0 and result.counts["complete"] == n
    assert result.best is not None and result.best["values"] == [0.0]


@pytest.mark.benchmark(group="postgres: resume a finished 10,000-trial sweep (nothing left to run)")
def test_stock_optuna_journal_load_on_postgres(benchmark: Any, big_study: dict[str, Any]) -> None:
    """The anchor: only reading the same trials back through Optuna's JournalStorage (full replay)."""
    backend = PostgresJournalBackend(parse_url(big_study["url"], display="bench"))

    def load() -> list[Any]:
        return optuna.load_study(study_name="big", storage=JournalStorage(backend)).trials

    trials = benchmark.pedantic(load, rounds=3, iterations=1)
    assert len([t for t in trials if t.state == TrialState.COMPLETE]) >= big_study["n"] - big_study["late"]
