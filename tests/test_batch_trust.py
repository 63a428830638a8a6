"""Batch sweeps tried as a hostile new user would: results that must never be silently wrong,
bad results named in one line, and faults that must not waste the grid (issue 13)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from fastgrid.batch import (
    BatchFailedError,
    BatchObjectiveError,
    BatchResults,
    open_batch_store,
    run_batch,
)

PARAMS = {"a": {"type": "int", "low": 0, "high": 9}, "b": {"type": "int", "low": 0, "high": 4}}


def _exact(cols: dict[str, Any]) -> np.ndarray[Any, Any]:
    return np.asarray(cols["a"], dtype=float) * 10 + np.asarray(cols["b"], dtype=float)


def _run(tmp_path: Path, fn: Any, **kw: Any) -> Any:
    options: dict[str, Any] = {"metric": "score", "direction": "maximize", "chunk": 7}
    options.update(kw)
    return run_batch(PARAMS, batch=fn, directory=tmp_path, **options)


def _slots(cols: dict[str, Any]) -> np.ndarray[Any, Any]:
    return np.asarray(cols["a"]) * 5 + np.asarray(cols["b"])  # the grid slot of each point


def _table(run: Any) -> pd.DataFrame:
    return run.to_pandas().sort_values("slot").reset_index(drop=True)


def sorted_frame(cols: dict[str, Any], config: Any) -> pd.DataFrame:
    frame = pd.DataFrame({"score": _exact(cols)})
    return frame.sort_values("score", ascending=False)  # the index still says which point is which


def sorted_series(cols: dict[str, Any], config: Any) -> dict[str, Any]:
    return {"score": sorted_frame(cols, config)["score"]}


def test_a_dataframe_whose_rows_were_reordered_is_aligned_by_its_index(tmp_path: Path) -> None:
    for fn in (sorted_frame, sorted_series):
        table = _table(_run(tmp_path, fn, name=fn.__name__))
        assert np.array_equal(table["score"], table["a"] * 10.0 + table["b"])


def test_a_dataframe_with_an_index_that_is_not_point_positions_is_refused(tmp_path: Path) -> None:
    def labelled(cols: dict[str, Any], config: Any) -> pd.DataFrame:
        n = len(cols["a"])
        return pd.DataFrame({"score": _exact(cols)}, index=np.arange(n)[::-1] + 100)

    with pytest.raises(BatchObjectiveError, match=r"chunk slots 0\.\.6: .*index.*reset_index"):
        _run(tmp_path, labelled)


def test_masked_values_fail_their_points_instead_of_being_read_as_numbers(tmp_path: Path) -> None:
    def masked(cols: dict[str, Any], config: Any) -> dict[str, Any]:
        return {"score": np.ma.masked_array(_exact(cols), mask=_slots(cols) == 37)}

    table = _table(_run(tmp_path, masked))
    assert table.loc[table["score"].isna(), "slot"].tolist() == [37]
    assert table.loc[table["slot"] == 37, "failed"].item()


def test_nullable_and_arrow_nulls_fail_their_points(tmp_path: Path) -> None:
    def nullable_bool(cols: dict[str, Any], config: Any) -> pd.DataFrame:
        pairs = zip(_slots(cols), _exact(cols), strict=True)
        flag = pd.array([None if t == 37 else bool(s > 20) for t, s in pairs], dtype="boolean")
        return pd.DataFrame({"score": flag})

    def arrow_bool(cols: dict[str, Any], config: Any) -> pa.Table:
        pairs = zip(_slots(cols), _exact(cols), strict=True)
        return pa.table({"score": pa.array([None if t == 37 else bool(s > 20) for t, s in pairs])})

    for fn in (nullable_bool, arrow_bool):
        table = _table(_run(tmp_path, fn, name=fn.__name__))
        assert table.loc[table["failed"], "slot"].tolist() == [37]
        ok = table[~table["failed"]]
        assert np.array_equal(ok["score"], (ok["a"] * 10 + ok["b"] > 20).astype(float))


def test_duplicate_metric_columns_are_named_as_such(tmp_path: Path) -> None:
    def twice(cols: dict[str, Any], config: Any) -> pd.DataFrame:
        score = _exact(cols)
        return pd.DataFrame(np.stack([score, -score], axis=1), columns=["score", "score"])

    with pytest.raises(BatchObjectiveError, match=r"more than one column named 'score'"):
        _run(tmp_path, twice)


def test_an_objective_that_writes_into_its_columns_cannot_corrupt_the_stored_parameters(
    tmp_path: Path,
) -> None:
    def scribble(cols: dict[str, Any], config: Any) -> dict[str, Any]:
        out = {"score": _exact(cols)}
        cols["a"] *= 100  # a user's in-place normalisation
        return out

    with pytest.raises(BatchFailedError, match="read-only"):
        _run(tmp_path, scribble)
    table = _table(_run(tmp_path, scribble, fail_fast=0))
    assert table["a"].tolist() == [slot // 5 for slot in range(50)]  # as the grid made them
    assert table["failed"].all()


@pytest.mark.parametrize("name", ["b", "slot", "failed", "feasible", "reason", "duration", "", " "])
def test_a_metric_named_like_a_parameter_or_a_result_column_is_refused(tmp_path: Path, name: str) -> None:
    def shadow(cols: dict[str, Any], config: Any) -> dict[str, Any]:
        return {"score": _exact(cols), name: np.zeros(len(cols["a"]))}

    message = rf"metric '{name}'.*rename" if name.strip() else "a metric name is empty"
    with pytest.raises(BatchObjectiveError, match=message):
        _run(tmp_path, shadow)

    def per_point(config: dict[str, Any]) -> dict[str, float]:
        return {"score": 1.0, name: 0.0}

    with pytest.raises(BatchObjectiveError, match=message):
        run_batch(PARAMS, callable=per_point, metric="score", directory=tmp_path, name="pp", chunk=7)


def test_a_chunk_whose_points_all_raise_is_recorded_when_require_names_another_metric(
    tmp_path: Path,
) -> None:
    def some_raise(cols: dict[str, Any], config: Any) -> dict[str, Any]:
        score = _exact(cols)
        if (score >= 90).any():
            raise ValueError("too big")
        return {"score": score, "trades": score}

    run = _run(tmp_path, some_raise, require=["trades >= 0"], fail_fast=0)
    table = _table(run)
    assert len(table) == 50
    assert table.loc[table["failed"], "slot"].tolist() == list(range(45, 50))
    assert set(table.loc[table["failed"], "reason"]) == {"ValueError: too big"}


def test_two_workers_count_every_point_they_ran(tmp_path: Path) -> None:
    def slow(cols: dict[str, Any], config: Any) -> dict[str, Any]:
        import time

        time.sleep(0.02)  # both processes get chunks
        return {"score": _exact(cols)}

    run = _run(tmp_path, slow, chunk=2, workers=2)
    assert run.counts["done"] == 50
    assert run.ran == 50  # the worker process's own count reached its runner


def test_a_sweep_with_no_recorded_point_reads_as_empty(tmp_path: Path) -> None:
    run = _run(tmp_path, lambda cols, config: {"score": _exact(cols)}, where=["a > 100"])
    assert run.counts["total"] == 0 and run.best is None
    results = BatchResults(open_batch_store(tmp_path / "fastgrid.db"), "sweep")
    assert results.top(5) == [] and results.pareto() == []
    assert list(results.to_pandas()["score"]) == []


SLOW_CHUNKS = """
import os
import re
import time

import numpy as np


def run(cols, config):
    with open(os.path.join(os.path.dirname(__file__), "pids"), "a") as f:
        f.write(f"{os.getpid()}\\n")
    time.sleep(0.05)
    return {"score": np.asarray(cols["a"], dtype=float) * 10 + cols["b"]}
"""

BATCH_FILE = """
[sweep]
name = "sig"
mode = "batch"
chunk = 2
workers = 2
direction = "maximize"
metric = "score"

[objective]
batch = "slow:run"

[parameters]
a = { type = "int", low = 0, high = 19 }
b = { type = "int", low = 0, high = 9 }
"""


def _cli_run(folder: Path) -> subprocess.Popen[bytes]:
    # SIGINT may be ignored where the tests run (a background job): restore Ctrl-C for the run.
    code = (
        "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "sys.argv = ['fastgrid', 'run', 'sweep.toml', '--no-progress']; "
        "from fastgrid.cli import main; main()"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_a_two_worker_batch_run_stops_it_with_128_plus_the_signal(
    tmp_path: Path, signum: int
) -> None:
    (tmp_path / "slow.py").write_text(SLOW_CHUNKS)
    (tmp_path / "sweep.toml").write_text(BATCH_FILE)
    proc = _cli_run(tmp_path)
    try:
        pids_file = tmp_path / "pids"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not _started(_read_pids(pids_file)):
            time.sleep(0.05)
        workers = set(_read_pids(pids_file))
        assert len(workers) == 2, proc.stderr
        os.kill(proc.pid, signum)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 128 + signum, err
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(_alive(p) for p in workers):
        time.sleep(0.05)
    assert not any(_alive(p) for p in workers)
    stopped = BatchResults(open_batch_store(tmp_path / "fastgrid.db"), "sig").counts()
    assert 0 < stopped["done"] < 200  # stopped early, not after running the whole grid
    resumed = _cli_run(tmp_path)
    resumed.communicate(timeout=120)
    assert resumed.returncode == 0
    table = BatchResults(open_batch_store(tmp_path / "fastgrid.db"), "sig").to_pandas()
    assert sorted(table["slot"]) == list(range(200))
    assert np.array_equal(table["score"], table["a"] * 10.0 + table["b"])


def _started(pids: list[int]) -> bool:
    return len(set(pids)) == 2 and len(pids) >= 6  # both workers run, some chunks are done


def _read_pids(path: Path) -> list[int]:
    return [int(p) for p in path.read_text().split()] if path.exists() else []


KILLERS = """
import ctypes
import os
import re
import time

import numpy as np


def _score(cols):
    return np.asarray(cols["a"], dtype=float) * 10 + cols["b"]


def exits(cols, config):
    if (np.asarray(cols["a"]) * 10 + cols["b"] == 37).any():
        os._exit(1)
    return {"score": _score(cols)}


def segfaults(cols, config):
    if (np.asarray(cols["a"]) * 10 + cols["b"] == 37).any():
        ctypes.string_at(0)
    return {"score": _score(cols)}


def hangs(cols, config):
    if (np.asarray(cols["a"]) * 10 + cols["b"] == 37).any():
        time.sleep(3600)
    return {"score": _score(cols)}


def always_exits(cols, config):
    os._exit(3)
"""


def _killer_sweep(folder: Path, objective: str, extra: str = "") -> None:
    (folder / "killers.py").write_text(KILLERS)
    (folder / "sweep.toml").write_text(
        BATCH_FILE.replace('batch = "slow:run"', f'batch = "killers:{objective}"\n{extra}')
        .replace("workers = 2", "workers = 1")
        .replace("chunk = 2", "chunk = 8")
    )


def _cli(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fastgrid", "run", "sweep.toml", "--no-progress"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize(
    ("objective", "reason"),
    [
        ("exits", "the objective's process exited with code 1"),
        ("segfaults", "the objective's process was killed by SIGSEGV"),
    ],
)
def test_a_point_that_kills_its_process_fails_alone_on_the_next_run(
    tmp_path: Path, objective: str, reason: str
) -> None:
    _killer_sweep(tmp_path, objective)
    first = _cli(tmp_path)
    assert first.returncode != 0  # the objective took the runner with it
    second = _cli(tmp_path)
    assert second.returncode == 0, second.stderr
    table = BatchResults(open_batch_store(tmp_path / "fastgrid.db"), "sig").to_pandas()
    assert sorted(table["slot"]) == list(range(200))
    bad = table["a"] * 10 + table["b"] == 37
    assert table.loc[bad, "failed"].all() and not table.loc[~bad, "failed"].any()
    assert table.loc[bad, "reason"].item().startswith(reason)
    assert np.array_equal(table.loc[~bad, "score"], (table["a"] * 10.0 + table["b"])[~bad])
    third = _cli(tmp_path)  # retries the failed point once more, isolated again: same outcome
    assert third.returncode == 0, third.stderr


def test_an_objective_that_kills_every_process_stops_the_next_run_with_the_reason(tmp_path: Path) -> None:
    _killer_sweep(tmp_path, "always_exits")
    assert _cli(tmp_path).returncode != 0
    second = _cli(tmp_path)
    assert second.returncode == 1
    assert "the objective's process exited with code 3" in second.stderr


def test_an_objective_timeout_fails_the_points_that_hang(tmp_path: Path) -> None:
    _killer_sweep(tmp_path, "hangs", extra="timeout = 0.5")
    done = _cli(tmp_path)
    assert done.returncode == 0, done.stderr
    table = BatchResults(open_batch_store(tmp_path / "fastgrid.db"), "sig").to_pandas()
    bad = table["a"] * 10 + table["b"] == 37
    assert sorted(table["slot"]) == list(range(200))
    assert table.loc[bad, "reason"].item() == "timeout after 0.5s"
    assert not table.loc[~bad, "failed"].any()


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"direction": "minimize"}, "directions ['maximize'], this run asks for ['minimize']"),
        ({"metric": "trades"}, "metrics ['score'], this run asks for ['trades']"),
        (
            {"metrics": ["score", "trades"], "direction": ["maximize", "minimize"]},
            "metrics ['score'], this run asks for ['score', 'trades']",
        ),
        ({"require": ["trades > 3"]}, "require ['trades >= 0'], this run asks for ['trades > 3']"),
    ],
)
def test_a_resumed_run_that_changes_how_points_are_ranked_or_judged_is_refused(
    tmp_path: Path, change: dict[str, Any], named: str
) -> None:
    def fn(cols: dict[str, Any], config: Any) -> dict[str, Any]:
        return {"score": _exact(cols), "trades": _slots(cols)}

    from fastgrid.batch import StoreMismatchError

    _run(tmp_path, fn, require=["trades >= 0"], max_points=20)
    with pytest.raises(StoreMismatchError, match=re.escape(named)):
        _run(tmp_path, fn, **{"require": ["trades >= 0"], **change})
    assert len(_table(_run(tmp_path, fn, require=["trades >= 0"]))) == 50  # unchanged: resumes


def test_a_capped_sweep_of_a_huge_grid_runs_the_cap_not_a_default_chunk(tmp_path: Path) -> None:
    huge = {"a": {"type": "int", "low": 0, "high": 999_999}, "b": {"type": "int", "low": 0, "high": 999_999}}
    run = run_batch(
        huge,
        batch=lambda cols, config: {"score": np.asarray(cols["a"], dtype=float)},
        metric="score",
        directory=tmp_path,
        max_points=1000,
    )
    assert run.counts["total"] == 10**12
    assert 1000 <= run.counts["done"] <= 1024  # chunks of at least 1,024 points, not 65,536


def _per_point(tmp_path: Path, fn: Any, **kw: Any) -> pd.DataFrame:
    run = run_batch(
        PARAMS,
        callable=fn,
        metric="score",
        direction="maximize",
        directory=tmp_path,
        chunk=7,
        fail_fast=0,
        **kw,
    )
    return _table(run)


def _point_slot(config: dict[str, Any]) -> int:
    return int(config["a"]) * 5 + int(config["b"])


def test_a_per_point_callable_returns_what_it_may_return_in_a_per_trial_sweep(tmp_path: Path) -> None:
    def number(config: dict[str, Any]) -> float:
        return float(_point_slot(config))

    table = _per_point(tmp_path, number, name="number")
    assert not table["failed"].any() and table["score"].tolist() == list(range(50))

    def series(config: dict[str, Any]) -> pd.Series:
        stats = {"score": float(_point_slot(config)), "start": pd.Timestamp("2024-01-01"), "_trades": [1]}
        return pd.Series(stats)

    table = _per_point(tmp_path, series, name="series")
    assert not table["failed"].any() and table["score"].tolist() == list(range(50))
    assert "start" not in table and "_trades" not in table


def test_a_per_point_callable_that_returns_a_bad_shape_fails_that_point_with_the_reason(
    tmp_path: Path,
) -> None:
    def odd(config: dict[str, Any]) -> Any:
        slot = _point_slot(config)
        if slot == 32:
            return None
        if slot == 33:
            return {"score": [1.0, 2.0]}
        if slot == 34:
            return {"score": float("nan")}
        if slot == 35:
            return {"other": 1.0}
        return {"score": float(slot)}

    table = _per_point(tmp_path, odd).set_index("slot")
    assert table.index[table["failed"]].tolist() == [32, 33, 34, 35]
    assert table.loc[32, "reason"].startswith("callable returned NoneType")
    assert table.loc[33, "reason"].startswith("metric 'score' is not a number")
    assert table.loc[34, "reason"] == "metric 'score' is NaN"
    assert table.loc[35, "reason"].startswith("missing metric 'score'")
    ok = table[~table["failed"]]
    assert ok["score"].tolist() == [float(s) for s in ok.index]


@pytest.mark.parametrize("name", ["slot", "failed", "feasible", "reason", "duration"])
def test_a_parameter_named_like_a_result_column_is_refused_before_anything_runs(
    tmp_path: Path, name: str
) -> None:
    calls: list[int] = []

    def fn(cols: dict[str, Any], config: Any) -> dict[str, Any]:
        calls.append(1)
        return {"score": np.zeros(len(cols[name]))}

    with pytest.raises(ValueError, match=rf"parameters\.{name}: .*rename the parameter"):
        run_batch({name: {"type": "int", "low": 0, "high": 3}}, batch=fn, metric="score", directory=tmp_path)
    with pytest.raises(ValueError, match=r"metric 'a': it is the name of a parameter"):
        run_batch(PARAMS, batch=fn, metric="a", directory=tmp_path)
    assert calls == []


def test_a_frame_that_converts_to_arrow_is_read_like_a_polars_dataframe(tmp_path: Path) -> None:
    class Frame:  # what a polars DataFrame offers
        def __init__(self, columns: dict[str, Any]) -> None:
            self.columns = columns

        def to_arrow(self) -> pa.Table:
            return pa.table(self.columns)

    table = _table(_run(tmp_path, lambda cols, config: Frame({"score": _exact(cols)})))
    assert np.array_equal(table["score"], table["a"] * 10.0 + table["b"])
    with pytest.raises(BatchObjectiveError, match=r"returned set; .* polars DataFrame"):
        _run(tmp_path, lambda cols, config: {1.0}, name="set")


@pytest.mark.parametrize(
    ("keywords", "message"),
    [
        ({"chunk": 1.5}, "chunk: expected a whole number, got 1.5"),
        ({"chunk": True}, "chunk: expected a whole number, got True"),
        ({"chunk": "abc"}, "chunk: expected a whole number, got 'abc'"),
        ({"workers": "2"}, "workers: expected a whole number, got '2'"),
        ({"top_k": -1}, "top_k: expected at least 0, got -1"),
        ({"retry_failed": -1}, "retry_failed: expected at least 0, got -1"),
        ({"heartbeat_interval": 0}, "heartbeat_interval: expected a positive number of seconds, got 0"),
        ({"timeout": -1}, "timeout: expected a non-negative number of seconds, got -1"),
        ({"objective_timeout": "5"}, "objective.timeout: expected a number of seconds, got '5'"),
        ({"direction": "max"}, "direction: expected 'minimize' or 'maximize', got 'max'"),
        ({"metric": None}, "metric: expected the name of a metric, got None"),
        ({"chunk": 10**12, "parameters": "huge"}, "chunk: 1,000,000,000,000 points of 7 columns take"),
    ],
)
def test_run_batch_keywords_are_checked_before_anything_is_stored(
    tmp_path: Path, keywords: dict[str, Any], message: str
) -> None:
    huge = {"a": {"type": "int", "low": 0, "high": 999_999}, "b": {"type": "int", "low": 0, "high": 999_999}}
    params = huge if keywords.pop("parameters", None) == "huge" else PARAMS
    options = {"metric": "score", **keywords}
    with pytest.raises(ValueError, match=re.escape(message)):
        run_batch(params, batch=lambda cols, config: {"score": _exact(cols)}, directory=tmp_path, **options)
    assert not (tmp_path / "fastgrid.db").exists() or keywords.get("chunk") == 10**12


def test_a_constraint_or_metric_given_as_one_string_is_one_item(tmp_path: Path) -> None:
    run = _run(tmp_path, lambda cols, config: {"score": _exact(cols)}, where="a < b", require="score > 1")
    table = _table(run)
    assert (table["a"] < table["b"]).all() and not table.empty
    assert table.loc[table["feasible"], "score"].min() > 1


def test_plain_optuna_sees_the_same_best_point_and_front_after_a_resume(tmp_path: Path) -> None:
    import fastgrid
    import optuna

    def two(cols: dict[str, Any], config: Any) -> dict[str, Any]:
        return {"score": _exact(cols), "risk": np.asarray(cols["b"], dtype=float) ** 2}

    for cap in (20, None):  # the best point moves when the rest of the grid runs
        single = _run(tmp_path, two, name="one", top_k=5, max_points=cap)
        multi = _run(
            tmp_path,
            two,
            name="two",
            metrics=["score", "risk"],
            direction=["maximize", "minimize"],
            top_k=50,
            max_points=cap,
        )
    storage = fastgrid.open_storage(str(tmp_path / "fastgrid.db"))
    study = optuna.load_study(study_name="one", storage=storage)
    assert study.best_trial.user_attrs["slot"] == single.best["slot"]
    assert study.best_value == single.best["metrics"]["score"] == 94.0
    frame = study.trials_dataframe()
    assert frame["user_attrs_slot"].is_unique
    front = optuna.load_study(study_name="two", storage=storage).best_trials
    assert {t.user_attrs["slot"] for t in front} == {row["slot"] for row in multi.results.pareto()}
    assert multi.best["slot"] in {t.user_attrs["slot"] for t in front}


def test_workers_started_by_a_forkserver_get_a_notebook_objective_by_value(tmp_path: Path) -> None:
    """Threads run (a notebook's kernel has some), so workers come from a forkserver: a lambda is
    sent by value and both workers run it; one holding a lock cannot cross and is named."""
    import threading

    release = threading.Event()
    busy = threading.Thread(target=release.wait, daemon=True)  # threads run: no fork
    busy.start()
    try:
        # The child unpickles its job (the lambda with it) before it claims anything: had it
        # failed, run_batch would raise "a worker process failed".
        r = _run(tmp_path / "a", lambda cols, config: {"score": _exact(cols)}, workers=2)
        assert r.counts["done"] == 50 and r.counts["failed"] == 0
        lock = threading.Lock()

        def holds_a_lock(cols: dict[str, Any], config: Any) -> dict[str, Any]:
            with lock:
                return {"score": _exact(cols)}

        refused = r"threads run in this process.*cannot be pickled.*'module:function'"
        with pytest.raises(ValueError, match=refused):
            _run(tmp_path / "b", holds_a_lock, workers=2)
    finally:
        release.set()
        busy.join()


def test_fresh_is_refused_while_another_run_holds_a_chunk(tmp_path: Path) -> None:
    import socket

    from fastgrid.exceptions import SweepInUseError

    fn = _exact_metric
    _run(tmp_path, fn, max_points=14)
    store = open_batch_store(tmp_path / "fastgrid.db")
    me = f"{socket.gethostname()}/{os.getpid()}/test"  # a worker of a live run: this process
    assert store.claim("sweep", me, grace=20.0) is not None
    with pytest.raises(SweepInUseError, match=r"being run by another process .*without --fresh"):
        _run(tmp_path, fn, fresh=True)
    store.release("sweep", me)  # that run stopped (Ctrl-C): --fresh may delete it now
    assert _run(tmp_path, fn, fresh=True).counts["done"] == 50


def _exact_metric(cols: dict[str, Any], config: Any) -> dict[str, Any]:
    return {"score": _exact(cols)}


def test_a_stop_signal_while_the_top_points_are_written_waits_for_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastgrid.batch import _runner

    write = _runner._write_top

    def interrupted_write(*args: Any) -> None:
        os.kill(os.getpid(), signal.SIGTERM)  # docker stop, just as the Optuna writes begin
        write(*args)

    def as_ctrl_c(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt  # what `fastgrid run` makes of SIGTERM

    monkeypatch.setattr(_runner, "_write_top", interrupted_write)
    previous = signal.signal(signal.SIGTERM, as_ctrl_c)
    try:
        run = _run(tmp_path, _exact_metric, top_k=10)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert run.interrupted and run.signal == signal.SIGTERM
    slots = [t.user_attrs["slot"] for t in run.study.get_trials()]
    assert sorted(slots) == list(range(40, 50))  # all ten written, once
