"""Batch sweeps end to end: chunks recorded once, bad results named, failures isolated, resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from fastgrid import Sweep
from fastgrid.batch import (
    BatchFailedError,
    BatchObjectiveError,
    BatchResults,
    BatchStore,
    StoreMismatchError,
    run_batch,
)
from support.meeting import meet

PARAMS = {
    "a": {"type": "int", "low": 1, "high": 40},
    "b": {"type": "int", "low": 1, "high": 40},
    "mode": {"type": "grid", "values": ["x", "y"]},
    "k": 3,
}


def score(cols: dict[str, Any], config: Any) -> dict[str, Any]:
    a, b = cols["a"], cols["b"]
    bonus = np.where(cols["mode"] == "y", 0.5, 0.0)
    return {"score": a * 2.0 - b + bonus + cols["k"], "trades": (a + b).astype(np.int64)}


def expected(point: dict[str, Any]) -> float:
    return point["a"] * 2.0 - point["b"] + (0.5 if point["mode"] == "y" else 0.0) + point["k"]


def run(tmp_path: Path, **kw: Any) -> Any:
    options: dict[str, Any] = {
        "batch": score,
        "name": "s",
        "direction": "maximize",
        "metric": "score",
        "where": ["a < b"],
        "chunk": 97,
        "directory": tmp_path,
    }
    options.update(kw)
    if "callable" in kw:
        options.pop("batch")
    return run_batch(PARAMS, **options)


def test_every_point_is_recorded_once_with_its_metrics(tmp_path: Path) -> None:
    calls: list[int] = []

    def counted(cols: dict[str, Any], config: Any) -> dict[str, Any]:
        calls.append(len(cols["a"]))
        return score(cols, config)

    r = run(tmp_path, batch=counted, require=["trades >= 20"])
    from fastgrid import Grid

    grid = Grid(PARAMS, constraints="a < b", flat=True)
    cols = r.results.columns()
    assert cols["slot"].tolist() == list(range(len(grid)))
    assert sum(calls) == len(grid) and max(calls) == 97
    for slot in range(0, len(grid), 53):
        point = grid[slot]
        assert cols["a"][slot] == point["a"] and cols["mode"][slot] == point["mode"] and cols["k"][slot] == 3
        assert cols["score"][slot] == expected(point)
        assert cols["feasible"][slot] == (point["a"] + point["b"] >= 20)
        assert cols["reason"][slot] == (None if cols["feasible"][slot] else "infeasible: trades >= 20")
    infeasible = sum(1 for p in grid if p["a"] + p["b"] < 20)
    assert r.counts["done"] == len(grid) and r.counts["infeasible"] == infeasible and r.counts["failed"] == 0
    # The best feasible point, and the top-K as completed trials of the study.
    best = max((p for p in grid if p["a"] + p["b"] >= 20), key=lambda p: (expected(p), -grid.index(p)))
    assert r.best is not None and r.best["params"] == best and r.best["metrics"]["score"] == expected(best)
    study = optuna.load_study(study_name="s", storage=r.study._storage)
    trials = study.get_trials()
    assert len(trials) == 100 and all(t.state.name == "COMPLETE" for t in trials)
    assert study.best_trial.user_attrs["params"] == best and study.best_value == expected(best)
    assert study.best_trial.params == {"a": best["a"], "b": best["b"], "mode": best["mode"]}
    # Resuming a finished sweep evaluates nothing and writes no duplicate trials.
    calls.clear()
    again = run(tmp_path, batch=counted, require=["trades >= 20"])
    assert calls == [] and again.counts == r.counts and len(study.get_trials()) == 100


def test_partial_runs_resume_where_they_stopped_in_shuffled_order(tmp_path: Path) -> None:
    first = run(tmp_path, order="shuffled", seed=5, max_chunks=3)
    assert first.counts["chunks_done"] == 3 and first.counts["remaining"] > 0
    done = run(tmp_path, order="shuffled", seed=5)
    cols = done.results.columns(["slot", "a", "b", "mode", "score"])
    from fastgrid import Grid

    view = Grid(PARAMS, constraints="a < b", flat=True).shuffled(5)
    assert cols["slot"].tolist() == list(range(len(view)))
    for slot in range(0, len(view), 41):
        assert cols["score"][slot] == expected(view[slot])
    with pytest.raises(StoreMismatchError, match="started with a different seed; use another sweep name"):
        run(tmp_path, order="shuffled", seed=6)
    with pytest.raises(StoreMismatchError, match="chunk = 97, this run asks for 50"):
        run(tmp_path, order="shuffled", seed=5, chunk=50)


@pytest.mark.parametrize(
    ("result", "message"),
    [
        (
            lambda c: {"score": np.zeros(len(c["a"]) - 1)},
            r"metric 'score' has shape \(\d+,\), expected \d+ values",
        ),
        (lambda c: {"trades": np.zeros(len(c["a"]))}, r"missing metric 'score' \(got 'trades'\)"),
        (lambda c: {"score": np.array(["x"] * len(c["a"]))}, r"metric 'score' is not numeric \(dtype <U1\)"),
        (
            lambda c: {
                "score": np.array([1, "x"] * (len(c["a"]) // 2) + [1] * (len(c["a"]) % 2), dtype=object)
            },
            r"metric 'score' is not numeric \(mixed or non-numeric values\)",
        ),
        (lambda c: {"score": 1.0}, "metric 'score' has a scalar"),
        (lambda c: [1, 2], "returned list; a batch objective returns a dict of metric columns"),
    ],
)
def test_bad_results_name_the_objective_metric_and_slots(tmp_path: Path, result: Any, message: str) -> None:
    def bad(cols: dict[str, Any], config: Any) -> Any:
        return result(cols)

    with pytest.raises(BatchObjectiveError, match=message) as info:
        run(tmp_path, batch=bad)
    assert "chunk slots 0..96" in str(info.value) and "objective 'test_batch:" in str(info.value)
    assert info.value.slots == (0, 97)


def test_raising_points_are_isolated_by_bisection_and_nan_metrics_fail_points(tmp_path: Path) -> None:
    def flaky(cols: dict[str, Any], config: Any) -> dict[str, Any]:
        if np.any((cols["a"] == 13) & (cols["b"] == 29)):
            raise ValueError("cannot trade 13/29")
        out = score(cols, config)
        out["score"] = np.where((cols["a"] == 2) & (cols["b"] == 3), np.nan, out["score"])
        return out

    r = run(tmp_path, batch=flaky)
    assert r.results.failures() == {"ValueError: cannot trade 13/29": 2, "metric 'score' is NaN": 2}
    cols = r.results.columns(["a", "b", "failed", "score"])
    bad = ((cols["a"] == 13) & (cols["b"] == 29)) | ((cols["a"] == 2) & (cols["b"] == 3))
    assert (cols["failed"] == bad).all()
    assert np.isfinite(cols["score"][~bad]).all()
    assert r.counts["failed"] == 4 and r.counts["complete"] == r.counts["done"] - 4


def test_a_systematic_failure_stops_early_and_records_nothing(tmp_path: Path) -> None:
    calls: list[int] = []

    def broken(cols: dict[str, Any], config: Any) -> Any:
        calls.append(len(cols["a"]))
        raise KeyError("close")

    with pytest.raises(BatchFailedError, match=r"first 3 chunks all failed the same way.*KeyError: 'close'"):
        run(tmp_path, batch=broken)
    assert len(calls) < 3 * 70  # bisection gave up on identical failures instead of isolating 291 points
    results = BatchResults(BatchStore(tmp_path / "fastgrid.db"), "s")
    assert results.counts()["done"] == 0 and results.counts()["chunks_in_flight"] == 0
    # Fixed objective: the run starts from the first chunk.
    assert run(tmp_path).counts["done"] == results.total


def test_per_point_callable_gets_the_merged_config(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"a": 0, "b": 0, "mode": "x", "k": 0, "scale": 10}))
    seen: list[dict[str, Any]] = []

    def per_point(cfg: dict[str, Any]) -> dict[str, float]:
        if len(seen) < 2:
            seen.append(cfg)
        if cfg["a"] == 5 and cfg["b"] == 6:
            raise RuntimeError("bad point")
        return {"score": expected(cfg) * cfg["scale"], "trades": float(cfg["a"] + cfg["b"])}

    r = run(tmp_path, callable=per_point, config=config)
    assert seen[0] == {"a": 1, "b": 2, "mode": "x", "k": 3, "scale": 10}
    cols = r.results.columns(["a", "b", "mode", "score", "failed", "reason", "duration"])
    ok = ~cols["failed"]
    assert cols["failed"].sum() == 2 and set(cols["reason"][~ok]) == {"RuntimeError: bad point"}
    from fastgrid import Grid

    grid = Grid(PARAMS, constraints="a < b", flat=True)
    for slot in np.flatnonzero(ok)[::29].tolist():
        assert cols["score"][slot] == expected(grid[slot]) * 10
    assert (cols["duration"] >= 0).all() and cols["duration"].dtype == np.float64
    chunk = r.results.store.chunks("s")[0]
    assert chunk["info"]["fingerprint"] == r.results.store.chunks("s")[-1]["info"]["fingerprint"] != "-"


def test_modes_do_not_mix(tmp_path: Path) -> None:
    Sweep(
        direction="minimize",
        parameters={"a": {"type": "int", "low": 1, "high": 3}},
        objective=lambda cfg: float(cfg["a"]),
        name="s",
        directory=tmp_path,
        progress=False,
    ).run()
    with pytest.raises(
        StoreMismatchError, match="was run per trial \\(3 trials\\); a batch sweep cannot continue"
    ):
        run(tmp_path)
    run(tmp_path, name="b")
    per_trial = Sweep(
        parameters=PARAMS,
        objective=lambda cfg: 1.0,
        name="b",
        directory=tmp_path,
        progress=False,
        direction="maximize",
    )
    with pytest.raises(ValueError, match="is a batch sweep"):
        per_trial.run()


def test_a_fresh_per_trial_run_never_deletes_under_a_live_batch_run_and_deletes_a_stopped_one(
    tmp_path: Path,
) -> None:
    import socket

    from fastgrid.exceptions import SweepInUseError

    small = {"a": {"type": "int", "low": 1, "high": 3}, "b": {"type": "int", "low": 1, "high": 2}}
    run(tmp_path, name="b", max_points=97 * 2)  # two chunks done, the rest never claimed
    store = BatchStore(tmp_path / "fastgrid.db")
    done = len(store.chunks("b"))
    me = f"{socket.gethostname()}/{os.getpid()}/test"  # a worker of a live batch run: this process
    assert done == 2 and store.claim("b", me, grace=20.0) is not None

    def per_trial(fresh: bool) -> Any:
        return Sweep(
            parameters=small,
            objective=lambda cfg: float(cfg["a"]),
            name="b",
            directory=tmp_path,
            progress=False,
            direction="maximize",
            fresh=fresh,
        ).run()

    with pytest.raises(SweepInUseError, match=r"batch sweep 'b' is being run by another process"):
        per_trial(fresh=True)
    with pytest.raises(ValueError, match="is a batch sweep"):
        per_trial(fresh=False)
    # Nothing was deleted: the batch sweep's chunks and columns, and its study, are whole.
    assert len(store.chunks("b")) == done and store.sweep("b") is not None
    assert len(BatchResults(store, "b").columns(["score"])["score"]) == 97 * 2
    from fastgrid.storages import open_storage

    study = optuna.load_study(study_name="b", storage=open_storage(None, directory=tmp_path))
    assert study.user_attrs["fastgrid.mode"] == "batch"

    store.release("b", me)  # that run stopped: --fresh deletes the batch sweep, tables included
    assert per_trial(fresh=True).counts["complete"] == 6
    assert store.sweep("b") is None and store.chunks("b", state=None) == []
    with pytest.raises(StoreMismatchError, match="was run per trial"):
        run(tmp_path, name="b")


def test_claims_are_exclusive_stale_ones_are_taken_over_and_a_lost_claim_writes_nothing(
    tmp_path: Path,
) -> None:
    store = BatchStore(tmp_path / "x.db")
    store.register("s", total=10, chunk=4, space={"p": 1}, meta={})
    live = f"{os.uname().nodename}/{os.getpid()}/aaaa"
    other = "elsewhere/1/bbbb"
    a = store.claim("s", live, grace=60)
    b = store.claim("s", other, grace=60)
    assert a is not None and b is not None and (a.start, a.stop, b.start, b.stop) == (0, 4, 4, 8)
    # Another host's claim is stale only by its heartbeat; a dead pid on this host at once.
    assert store.claim("s", "third/1/cccc", grace=60).start == 8  # type: ignore[union-attr]
    assert store.claim("s", "third/1/cccc", grace=60) is None
    time.sleep(0.2)
    store.beat("s", live)  # chunk 0's worker is alive; the others stopped beating
    taken = store.claim("s", "fourth/1/dddd", grace=0.1)
    assert taken is not None and taken.index == 1 and taken.claims == 2
    # The first holder of chunk 1 finishes late: nothing is written, the new holder records it.
    assert not store.finish("s", other, b, {"m:x": np.zeros(4)}, failed=0, infeasible=0, duration=0, info={})
    assert store.finish(
        "s", "fourth/1/dddd", taken, {"m:x": np.ones(4)}, failed=0, infeasible=0, duration=0, info={}
    )
    assert store.column("s", "m:x")[1].tolist() == [1.0] * 4
    dead = f"{os.uname().nodename}/999999999/eeee"
    store2 = BatchStore(tmp_path / "y.db")
    store2.register("s", total=4, chunk=4, space={}, meta={})
    assert store2.claim("s", dead, grace=60) is not None
    assert store2.claim("s", live, grace=60) is not None  # the dead pid's claim, taken over at once


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="zombies are read from /proc")
def test_a_killed_runner_not_yet_reaped_frees_its_claim_at_once(tmp_path: Path) -> None:
    # A runner killed by kill -9 stays a zombie until its parent reaps it (seconds, under a busy
    # init or a supervisor): a resumed run took its pid for alive and skipped its chunk.
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 30
    while Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    try:
        store = BatchStore(tmp_path / "x.db")
        store.register("s", total=4, chunk=4, space={}, meta={})
        assert store.claim("s", f"{os.uname().nodename}/{child.pid}/zzzz", grace=60) is not None
        taken = store.claim("s", f"{os.uname().nodename}/{os.getpid()}/aaaa", grace=60)
        assert taken is not None and taken.claims == 2
    finally:
        child.wait()


def meeting_score(cols: dict[str, Any], config: Any) -> dict[str, Any]:
    """``score``, once both worker processes have called it: a sleep here was not enough, as on
    a busy CI box the first process could run every chunk before the second one started."""
    meet(config["meeting"])
    return score(cols, config)


def test_two_workers_record_every_chunk_once(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"meeting": str(tmp_path / "meeting")}))
    r = run(tmp_path, workers=2, chunk=50, batch=meeting_score, config=config)
    cols = r.results.columns(["slot", "score"])
    assert cols["slot"].tolist() == list(range(r.results.total))
    owners = {c["info"]["owner"].split("/")[1] for c in r.results.store.chunks("s")}
    assert len(owners) == 2  # both processes took chunks


_KILLED = """
import sys, time
import numpy as np
from fastgrid.batch import run_batch

def slow(cols, config):
    time.sleep(0.05)
    return {"score": cols["a"] * 1.0 + cols["b"]}

run_batch({"a": {"type": "int", "low": 1, "high": 100}, "b": {"type": "int", "low": 1, "high": 60}},
          batch=slow, name="k", metric="score", chunk=100, directory=sys.argv[1], workers=int(sys.argv[2]))
print("finished")
"""


@pytest.mark.parametrize("workers", [1, 2])
def test_kill_9_then_resume_records_every_point_exactly_once(tmp_path: Path, workers: int) -> None:
    script = tmp_path / "killed.py"
    script.write_text(textwrap.dedent(_KILLED))
    proc = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path), str(workers)], start_new_session=True
    )
    store = BatchStore(tmp_path / "fastgrid.db")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if "k" in store.sweeps() and store.counts("k")["chunks_done"] >= 8:
            break
        assert proc.poll() is None, "the sweep ended before it was killed"
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = store.counts("k")
    assert 0 < before["done"] < 6000
    out = subprocess.run(
        [sys.executable, str(script), str(tmp_path), "1"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    results = BatchResults(store, "k")
    cols = results.columns(["slot", "a", "b", "score"])
    assert cols["slot"].tolist() == list(range(6000))
    assert (cols["score"] == cols["a"] + cols["b"]).all()
    claims = [c["claims"] for c in store.chunks("k")]
    assert sum(c > 1 for c in claims) <= workers  # only the chunks in flight ran again


def test_to_pandas_and_to_arrow(tmp_path: Path) -> None:
    r = run(tmp_path)
    pd = pytest.importorskip("pandas")
    frame = r.to_pandas(["slot", "a", "mode", "score"])
    assert isinstance(frame, pd.DataFrame) and len(frame) == r.counts["done"]
    pa = pytest.importorskip("pyarrow")
    table = r.to_arrow(["slot", "mode", "score"])
    assert isinstance(table, pa.Table) and table.num_rows == r.counts["done"]


def test_sweep_file_model_of_batch_mode(tmp_path: Path) -> None:
    from fastgrid.sweepfile import SweepFileError, load_sweep_file

    def load(text: str) -> Any:
        f = tmp_path / "s.toml"
        text = textwrap.dedent(text)
        if "direction" not in text:  # required; what is checked here is the rest
            text = text.replace("[sweep]\n", '[sweep]\ndirection = "maximize"\n', 1)
            text = text if "[sweep]" in text else '[sweep]\ndirection = "maximize"\n' + text
        f.write_text(text)
        return load_sweep_file(f)

    ok = load("""
        [sweep]
        direction = "maximize"
        mode = "batch"
        chunk = 1000
        [objective]
        batch = "m:f"
        [parameters]
        a = { type = "int", low = 1, high = 3 }
    """)
    assert ok.sweep.mode == "batch" and ok.sweep.chunk == 1000 and ok.objective.batch == "m:f"
    for body, message in [
        (
            '[sweep]\nmode = "batch"\nsampler = "tpe"\nmax_trials = 5\n[objective]\nbatch = "m:f"',
            "a batch sweep evaluates a grid chunk by chunk; a 'tpe' search",
        ),
        ('[sweep]\nmode = "batch"\n[objective]\ncommand = ["x"]', "a command runs one process per point"),
        ('[objective]\nbatch = "m:f"', r'objective.batch: applies to batch sweeps only: add mode = "batch"'),
        (
            '[sweep]\nmode = "batch"\n[objective]\nbatch = "m:f"\ncallable = "m:g"',
            "exactly one of 'callable'",
        ),
    ]:
        with pytest.raises(SweepFileError, match=message):
            load(body + '\n[parameters]\na = { type = "int", low = 1, high = 3 }\n')


def test_a_batch_fresh_run_is_refused_while_a_per_trial_run_of_that_name_is_alive(tmp_path: Path) -> None:
    """--fresh on a batch sweep deletes the Optuna study of that name: never under a live per-trial
    run (whose registration says it is alive), as a per-trial --fresh refuses."""
    from fastgrid.exceptions import SweepInUseError
    from fastgrid.runner._runs import register_run
    from fastgrid.storages import open_storage

    def per_trial() -> Any:
        return Sweep(
            name="shared",
            direction="maximize",
            parameters={"a": {"type": "int", "low": 0, "high": 4}},
            objective=lambda config: float(config["a"]),
            directory=tmp_path,
            progress=False,
        ).run()

    assert per_trial().counts["complete"] == 5
    storage = open_storage(tmp_path / "fastgrid.db")
    study = optuna.load_study(study_name="shared", storage=storage)
    register_run(study, "live", active=True)  # a run of this very process: alive

    def batch_fresh() -> Any:
        return run_batch(
            {"a": {"type": "int", "low": 0, "high": 4}},
            batch=lambda cols, config: {"value": cols["a"] * 1.0},
            name="shared",
            directory=tmp_path,
            fresh=True,
        )

    with pytest.raises(SweepInUseError, match=r"'shared' is being run by another process .*Stop that run"):
        batch_fresh()
    assert len(optuna.load_study(study_name="shared", storage=storage).trials) == 5  # nothing deleted
    register_run(study, "live", active=False)  # that run ended
    assert batch_fresh().counts["done"] == 5
