"""Storage benchmarks: per-trial framework overhead and resume time, fastgrid's store vs Optuna's.

Measure (release build) with:

    python -m pytest benches/test_bench_storage.py --benchmark-enable --benchmark-only \\
        --benchmark-columns=median,min,rounds -s

Sizes: as plain tests (benchmarks disabled) every case runs on a few dozen trials in seconds; when
enabled, per-trial overhead runs 1,000 trials, resume loads 2,000 and 10,000 and the memory case keeps
2,000; ``FASTGRID_BENCH_FULL=1`` adds 10,000 trials to the per-trial overhead (Optuna's SQLite storage
then takes several minutes).

The sampler is Optuna's ``RandomSampler`` (seeded) over two parameters, and the objective is trivial,
so what is timed is Optuna's trial machinery plus the storage. ``InMemoryStorage`` is included as the
floor: the part of the per-trial cost that no storage can remove.
"""

from __future__ import annotations

import gc
import hashlib
import os
import sqlite3
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest
from fastgrid.storages import EmbeddedStorage, open_storage
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.storages import BaseStorage, InMemoryStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

optuna.logging.set_verbosity(optuna.logging.WARNING)

FULL = os.environ.get("FASTGRID_BENCH_FULL") == "1"
OVERHEAD_SIZES = [1_000, 10_000] if FULL else [1_000]
RESUME_SIZES = [2_000, 10_000]
MEMORY_TRIALS = 2_000
SMOKE_TRIALS = 20  # the size every case runs at when benchmarks are disabled


def objective(trial: optuna.Trial) -> float:
    return trial.suggest_float("x", 0.0, 1.0) + trial.suggest_int("n", 1, 64)


STORES: dict[str, Callable[[Path], BaseStorage]] = {
    "fastgrid embedded": lambda d: open_storage(None, directory=d),
    "optuna in-memory (floor)": lambda d: InMemoryStorage(),
    "optuna JournalFileBackend": lambda d: JournalStorage(JournalFileBackend(str(d / "journal.log"))),
    "optuna sqlite RDB": lambda d: open_storage(f"sqlite:///{d / 'optuna.db'}"),
}


def _size(benchmark: Any, size: int) -> int:
    return SMOKE_TRIALS if benchmark.disabled else size


@pytest.mark.parametrize("size", OVERHEAD_SIZES)
@pytest.mark.parametrize("store", list(STORES))
def test_per_trial_overhead(benchmark: Any, tmp_path: Path, store: str, size: int) -> None:
    n = _size(benchmark, size)
    benchmark.group = f"storage: per-trial overhead, {size} trials (total time per run)"
    rounds = 1 if store == "optuna sqlite RDB" or n > 2_000 else 3
    chunk = max(n // 10, 1)
    runs: list[tuple[optuna.Study, list[float]]] = []
    counter = iter(range(1_000))

    def setup() -> tuple[tuple[optuna.Study], dict[str, Any]]:
        directory = tmp_path / f"run{next(counter)}"
        directory.mkdir()
        study = optuna.create_study(
            storage=STORES[store](directory), sampler=optuna.samplers.RandomSampler(seed=0)
        )
        return (study,), {}

    def run(study: optuna.Study) -> None:
        per_trial_ms = []
        for _ in range(n // chunk):
            start = time.perf_counter()
            study.optimize(objective, n_trials=chunk)
            per_trial_ms.append((time.perf_counter() - start) / chunk * 1e3)
        runs.append((study, per_trial_ms))

    benchmark.pedantic(run, setup=setup, rounds=rounds, iterations=1)

    for study, _ in runs:
        trials = study.get_trials(deepcopy=False)
        assert [t.number for t in trials] == list(range(n))
        assert all(t.state == TrialState.COMPLETE and t.value == objective_value(t.params) for t in trials)
    first, last = runs[-1][1][0], runs[-1][1][-1]
    benchmark.extra_info.update(
        first_10pct_ms_per_trial=round(first, 4), last_10pct_ms_per_trial=round(last, 4)
    )
    if not benchmark.disabled:
        print(
            f"\n  {store:26s} {n:6d} trials: first 10% {first:7.3f} ms/trial, last 10% {last:7.3f} ms/trial"
        )


def objective_value(params: dict[str, Any]) -> float:
    return float(params["x"] + params["n"])


# --- one trial of many parameters --------------------------------------------------------------------

WIDE_PARAMS = 20_000


@pytest.mark.parametrize("store", [s for s in STORES if s != "optuna sqlite RDB"])
def test_one_trial_of_many_parameters(benchmark: Any, tmp_path: Path, store: str) -> None:
    """Ask one trial with every parameter given and tell it (issue 12, item 8: copying the trial per
    parameter made this quadratic). Optuna's RDB is left out: it takes minutes at this size."""
    n = 200 if benchmark.disabled else WIDE_PARAMS
    benchmark.group = f"storage: one trial of {WIDE_PARAMS} parameters (ask + tell)"
    distributions = {f"p{i}": FloatDistribution(0.0, 1.0) for i in range(n)}
    counter = iter(range(1_000))
    studies: list[optuna.Study] = []

    def setup() -> tuple[tuple[optuna.Study], dict[str, Any]]:
        directory = tmp_path / f"wide{next(counter)}"
        directory.mkdir()
        return (optuna.create_study(storage=STORES[store](directory)),), {}

    def run(study: optuna.Study) -> None:
        trial = study.ask(distributions)
        study.tell(trial, 1.0)
        studies.append(study)

    benchmark.pedantic(run, setup=setup, rounds=3, iterations=1)
    for study in studies:
        (trial,) = study.get_trials(deepcopy=False)
        assert trial.state == TrialState.COMPLETE and len(trial.params) == n


# --- resume ------------------------------------------------------------------------------------------

_DISTRIBUTIONS = {
    "fast": IntDistribution(2, 50),
    "slow": IntDistribution(20, 200, step=5),
    "stop": FloatDistribution(0.005, 0.1, log=True),
    "kind": CategoricalDistribution(["sma", "ema", "wma"]),
}


PERIOD = 200  # trial contents repeat with this period (the RDB fixture replicates one block in SQL)
FINGERPRINT = hashlib.sha256(b"sweep").hexdigest()  # one per sweep, written into every trial


def _sweep_attrs(i: int, params: dict[str, Any]) -> dict[str, Any]:
    """The user attrs fastgrid's runner writes into each finished trial."""
    return {
        "key": hashlib.md5(str(i).encode()).hexdigest(),
        "params": dict(params),
        "fingerprint": FINGERPRINT,
        "metrics": {"sharpe": (i % 101) / 50, "trades": i % 300, "max_drawdown": (i % 23) / 100},
        "duration": round(1.5 + (i % 7) / 1000, 6),
        "attempts": 1,
        "feasible": True,
    }


def _sweep_trial(number: int) -> optuna.trial.FrozenTrial:
    """A finished trial as a real sweep records it: four params, a value, the runner's attrs."""
    i = number % PERIOD
    params = {"fast": 2 + i % 49, "slow": 20 + 5 * (i % 37), "stop": 0.005 + (i % 19) / 200, "kind": "sma"}
    return optuna.trial.create_trial(
        params=params, distributions=_DISTRIBUTIONS, value=float(i % 997), user_attrs=_sweep_attrs(i, params)
    )


def _build_embedded(path: Path, n: int) -> tuple[int, str, bytes]:
    """The study as a finished sweep leaves it (snapshot covering the whole log); returns the snapshot
    taken before its last 10% of trials, to put back for the after-a-crash case."""
    storage = open_storage(path)
    assert isinstance(storage, EmbeddedStorage)
    study = optuna.create_study(storage=storage, study_name="sweep")
    # The bulk arrives through add_trials; the last 10% run through optimize() (params fixed by
    # enqueue_trial), as a sweep writes them.
    bulk = n - n // 10
    study.add_trials([_sweep_trial(i) for i in range(bulk)])
    storage.checkpoint()
    before_tail = storage.backend.load_tagged_snapshot()
    assert before_tail is not None
    for number in range(bulk, n):
        study.enqueue_trial(_sweep_trial(number).params)
    study.optimize(objective_for_tail, n_trials=n - bulk)
    storage.close()
    return before_tail


def _as_after_a_crash(path: Path, snapshot: tuple[int, str, bytes]) -> None:
    """Put back the snapshot taken before the last 10% of trials: the next open replays their log
    entries, as after a crash. Opening writes a newer snapshot when it goes, so redo before each load."""
    with sqlite3.connect(path) as conn:
        conn.execute(
            "UPDATE snapshot SET log_number = ?, tag = ?, data = ? WHERE slot = 0",
            (snapshot[0], snapshot[1], snapshot[2]),
        )


def objective_for_tail(trial: optuna.Trial) -> float:
    trial.suggest_int("fast", 2, 50)
    trial.suggest_int("slow", 20, 200, step=5)
    trial.suggest_float("stop", 0.005, 0.1, log=True)
    trial.suggest_categorical("kind", ["sma", "ema", "wma"])
    recorded = _sweep_trial(trial.number)
    for key, value in recorded.user_attrs.items():
        trial.set_user_attr(key, value)
    assert recorded.value is not None
    return recorded.value


def _build_rdb(path: Path, n: int) -> None:
    """Optuna's SQLite schema with ``n`` trials; Optuna writes ~50/s, so a block is replicated in SQL."""
    url = f"sqlite:///{path}"
    block = min(n, PERIOD)
    study = optuna.create_study(storage=RDBStorage(url), study_name="sweep")
    study.add_trials([_sweep_trial(i) for i in range(block)])
    with sqlite3.connect(path) as conn:
        tables = [
            t
            for (t,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'trial_%'"
            )
            if t != "trials" and "trial_id" in _columns(conn, t)
        ]
        trial_cols = _columns(conn, "trials")
        for copy in range(1, n // block):
            shift = copy * block
            shifted = ", ".join(f"{c} + {shift}" if c in ("trial_id", "number") else c for c in trial_cols)
            conn.execute(
                f"INSERT INTO trials ({', '.join(trial_cols)}) SELECT {shifted} FROM trials "
                f"WHERE trial_id <= {block}"
            )
            for table in tables:
                cols = _columns(conn, table)
                select = ", ".join(
                    "NULL" if i == 0 else (f"trial_id + {shift}" if c == "trial_id" else c)
                    for i, c in enumerate(cols)
                )
                conn.execute(
                    f"INSERT INTO {table} ({', '.join(cols)}) SELECT {select} FROM {table} "
                    f"WHERE trial_id <= {block}"
                )


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]


@pytest.fixture(scope="module")
def resume_files(
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[[str, int], tuple[Path, tuple[int, str, bytes] | None]]:
    built: dict[tuple[str, int], tuple[Path, tuple[int, str, bytes] | None]] = {}

    def get(kind: str, n: int) -> tuple[Path, tuple[int, str, bytes] | None]:
        if (kind, n) not in built:
            path = tmp_path_factory.mktemp("resume") / f"{kind}-{n}.db"
            if kind == "optuna sqlite RDB":
                _build_rdb(path, n)
                built[kind, n] = (path, None)
            else:
                built[kind, n] = (path, _build_embedded(path, n))
        return built[kind, n]

    return get


def _load_embedded(path: Path, deepcopy: bool) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name="sweep", storage=open_storage(path)).get_trials(deepcopy=deepcopy)


def _load_rdb(path: Path, deepcopy: bool) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name="sweep", storage=f"sqlite:///{path}").get_trials(deepcopy=deepcopy)


@pytest.mark.parametrize("size", RESUME_SIZES)
@pytest.mark.parametrize("deepcopy", [False, True], ids=["get_trials(deepcopy=False)", "trials"])
@pytest.mark.parametrize("kind", ["embedded", "embedded, after a crash", "optuna sqlite RDB"])
def test_resume_load(
    benchmark: Any,
    resume_files: Callable[[str, int], tuple[Path, tuple[int, str, bytes] | None]],
    kind: str,
    deepcopy: bool,
    size: int,
) -> None:
    """``embedded``: the store as a finished (or Ctrl-C'd) sweep leaves it, snapshot up to date;
    ``after a crash``: its last 10% of trials lie after the snapshot and are replayed from the log."""
    n = _size(benchmark, size)
    benchmark.group = f"storage: resume (load_study + get_trials), {size} trials"
    path, before_tail = resume_files("embedded" if kind.startswith("embedded") else kind, n)
    load = _load_rdb if kind == "optuna sqlite RDB" else _load_embedded
    rounds = 2 if kind == "optuna sqlite RDB" else 7

    def setup() -> tuple[tuple[Path, bool], dict[str, Any]]:
        if kind == "embedded, after a crash":
            assert before_tail is not None
            _as_after_a_crash(path, before_tail)
        gc.collect()
        return (path, deepcopy), {}

    trials = benchmark.pedantic(load, setup=setup, rounds=rounds, iterations=1, warmup_rounds=0)
    assert [t.number for t in trials] == list(range(n))
    assert all(t.state == TrialState.COMPLETE for t in trials)
    for number in (0, n // 2, n - 1):
        expected = _sweep_trial(number)
        got = trials[number]
        assert (got.value, got.params, got.user_attrs) == (
            expected.value,
            expected.params,
            expected.user_attrs,
        )


# --- memory ------------------------------------------------------------------------------------------

MEMORY_STORES: dict[str, Callable[[Path], BaseStorage]] = {
    "fastgrid embedded": lambda d: open_storage(d / "m.db"),
    "optuna JournalFileBackend": lambda d: JournalStorage(JournalFileBackend(str(d / "m.log"))),
    "optuna in-memory": lambda d: InMemoryStorage(),
}


@pytest.mark.parametrize("store", list(MEMORY_STORES))
def test_memory_per_finished_trial(benchmark: Any, tmp_path: Path, store: str) -> None:
    """Bytes of Python memory each finished sweep-shaped trial keeps alive in the storage.

    Measured with tracemalloc (allocations still live after the run, divided by the trials added);
    the time column is the run itself (slowed by tracemalloc) and not the point of this group.
    """
    n = _size(benchmark, MEMORY_TRIALS)
    benchmark.group = f"storage: memory per finished trial ({MEMORY_TRIALS} sweep-shaped trials)"
    kept: list[tuple[optuna.Study, float]] = []
    counter = iter(range(1_000))

    def setup() -> tuple[tuple[optuna.Study], dict[str, Any]]:
        directory = tmp_path / f"run{next(counter)}"
        directory.mkdir()
        study = optuna.create_study(
            storage=MEMORY_STORES[store](directory), sampler=optuna.samplers.RandomSampler(seed=0)
        )
        _run_sweep_trials(study, 0, 20)  # first-use caches and imports are not per-trial costs
        return (study,), {}

    def run(study: optuna.Study) -> None:
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            _run_sweep_trials(study, 20, n)
            gc.collect()
            after = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
        kept.append((study, (after - before) / n))

    benchmark.pedantic(run, setup=setup, rounds=1, iterations=1)
    study, per_trial = kept[-1]
    trials = study.get_trials(deepcopy=False)
    assert [t.number for t in trials] == list(range(n + 20))
    assert all(t.user_attrs == _sweep_attrs(t.number, t.params) for t in trials)
    benchmark.extra_info["bytes_per_trial"] = round(per_trial)
    if not benchmark.disabled:
        print(f"\n  {store:26s} {n} trials: {per_trial:7.0f} bytes kept per finished trial")


def _run_sweep_trials(study: optuna.Study, first: int, n: int) -> None:
    storage = study._storage
    for i in range(first, first + n):
        trial = study.ask()
        params = {name: trial._suggest(name, dist) for name, dist in _DISTRIBUTIONS.items()}
        for key, value in _sweep_attrs(i, params).items():
            storage.set_trial_user_attr(trial._trial_id, key, value)
        study.tell(trial, float(i))
