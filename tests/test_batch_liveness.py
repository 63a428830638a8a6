"""A batch run is live for its whole duration, and a worker that loses its store stops (issue 13).

``--fresh`` (batch or per-trial) deletes a sweep only when no run of it is live: a run registers in
the chunk store from its start to its end, between chunks too, and goes stale by the rule that
lets other workers take a chunk over. A run whose sweep is deleted anyway stops with one line; a
worker whose heartbeat fails past the grace period stops after its chunk, recorded only if its
claim was still its own.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from fastgrid.batch import BatchResults, BatchStore, ChunkStore, open_batch_store, run_batch
from fastgrid.batch._runner import _Beat
from fastgrid.exceptions import HeartbeatLostError, SweepDeletedError, SweepInUseError
from fastgrid.runner import Sweep
from fastgrid.storages import open_storage
from support.pgjournal import fresh_journal_url

SPACE = {"parameters": "x", "total": 10}


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ChunkStore:
    if request.param == "sqlite":
        return open_batch_store(tmp_path / "fastgrid.db")
    return open_batch_store(fresh_journal_url(request.getfixturevalue("postgres_url")))


def _register(store: ChunkStore, run: str) -> None:
    store.register("s", total=10, chunk=5, space=SPACE, meta={}, run=run)


def _columns(n: int) -> dict[str, Any]:
    return {"m:x": np.zeros(n)}


def test_a_run_is_live_from_registering_to_leaving_holding_a_chunk_or_not(store: ChunkStore) -> None:
    host = socket.gethostname()
    me = f"{host}/{os.getpid()}/run"
    _register(store, me)
    # Between chunks (it holds none): --fresh deletes nothing and names the run.
    assert [(r["host"], r["pid"]) for r in store.delete_unless_live("s", grace=60)] == [
        (host, str(os.getpid()))
    ]
    assert store.sweep("s") is not None and store.beat("s", me, run=True)
    store.leave("s", me)  # its clean end
    assert store.delete_unless_live("s", grace=60) == [] and store.sweep("s") is None

    # A run killed -9 on this host is not live at once; one on another machine while it beats.
    dead, far = f"{host}/999999999/x", "elsewhere/1/y"
    _register(store, dead)
    _register(store, far)
    assert [r["owner"] for r in store.delete_unless_live("s", grace=60)] == [far]
    time.sleep(0.05)  # the store's clock moves past far's last heartbeat by more than the grace below
    assert store.delete_unless_live("s", grace=0.01) == [] and store.sweep("s") is None


def test_a_run_whose_sweep_or_registration_is_gone_writes_nothing_more(store: ChunkStore) -> None:
    me, other = f"{socket.gethostname()}/{os.getpid()}/me", "elsewhere/1/other"
    _register(store, me)
    chunk = store.claim("s", me, grace=60, run=me)
    assert chunk is not None
    store.delete("s")  # by hand, or by --fresh of an older fastgrid
    assert not store.beat("s", me, run=True)
    gone = r"no batch sweep named 's' in .*deleted while this run was running it"
    with pytest.raises(SweepDeletedError, match=gone):
        store.finish("s", me, chunk, _columns(5), failed=0, infeasible=0, duration=0, info={})
    with pytest.raises(SweepDeletedError, match=gone):
        store.claim("s", me, grace=60, run=me)
    # Created again by another run: this run claims and records nothing in it.
    _register(store, other)
    with pytest.raises(SweepDeletedError, match=r"this run's registration in .* was removed"):
        store.claim("s", me, grace=60, run=me)
    with pytest.raises(SweepDeletedError, match=gone):
        store.finish("s", me, chunk, _columns(5), failed=0, infeasible=0, duration=0, info={})
    assert store.chunks("s", state=None) == []


# --- real processes: a run between chunks, a sweep deleted under a run ----------------------------

GATE = """
import contextlib
import os
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent


def _wait(name):
    (HERE / name).write_text(str(os.getpid()))
    deadline = time.monotonic() + 120
    while not (HERE / "go").exists():
        if time.monotonic() > deadline:
            raise TimeoutError("the test never said go")
        time.sleep(0.01)


def between(cols, config, *, returns=False):
    score = np.asarray(cols["a"], dtype=float) * 10 + cols["b"]
    out = {"score": score}
    if returns:
        # After the last chunk: the run holds no chunk while it computes these.
        _wait("between")
        out["returns"] = np.tile(np.linspace(-0.01, 0.02, 30), (len(score), 1)) + score[:, None] * 1e-4
    return out


def inside(cols, config):
    if not (HERE / "go").exists():
        _wait("inside")
    return {"score": np.asarray(cols["a"], dtype=float) * 10 + cols["b"]}
"""

SWEEP = """
[sweep]
name = "g"
mode = "batch"
chunk = 50
direction = "maximize"
metric = "score"

[objective]
batch = "gate:{objective}"

[parameters]
a = {{ type = "int", low = 0, high = 19 }}
b = {{ type = "int", low = 0, high = 9 }}
"""


def _fastgrid(folder: Path, *args: str, wait: bool = True) -> Any:
    cmd = [sys.executable, "-m", "fastgrid", "run", "sweep.toml", "--no-progress", *args]
    if wait:
        return subprocess.run(cmd, cwd=folder, capture_output=True, text=True, timeout=300)
    return subprocess.Popen(cmd, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(path: Path, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path.name} never came"
        time.sleep(0.02)


@contextlib.contextmanager
def _gated(folder: Path, objective: str) -> Iterator[subprocess.Popen[str]]:
    """A ``fastgrid run`` whose objective waits at the gate ``objective`` until the file ``go``
    exists; killed if the test fails before letting it through."""
    (folder / "gate.py").write_text(GATE)
    (folder / "sweep.toml").write_text(SWEEP.format(objective=objective))
    run = _fastgrid(folder, wait=False)
    try:
        yield run
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()


def _let_through(folder: Path, run: subprocess.Popen[str]) -> str:
    """Opens the gate; the run's stderr once it ended."""
    (folder / "go").write_text("")
    return run.communicate(timeout=120)[1]


def test_fresh_is_refused_while_a_batch_run_holds_no_chunk_and_allowed_after_it_ends(tmp_path: Path) -> None:
    with _gated(tmp_path, "between") as run:
        _wait_for(tmp_path / "between", run)
        store = open_batch_store(tmp_path / "fastgrid.db")
        assert store.counts("g")["chunks_in_flight"] == 0 and store.counts("g")["done"] == 200

        fresh = _fastgrid(tmp_path, "--fresh")  # another process: the CLI's batch --fresh
        assert fresh.returncode == 2, fresh.stderr
        assert fresh.stderr.count("\n") == 1 and "Traceback" not in fresh.stderr
        assert fresh.stderr.startswith(
            f"error: batch sweep 'g' is being run by another process (host {socket.gethostname()}, "
            f"pid {run.pid}, last heartbeat "
        )
        assert "Stop that run first, or run without --fresh to join it" in fresh.stderr
        with pytest.raises(SweepInUseError, match=r"batch sweep 'g' is being run by another process"):
            Sweep(  # a per-trial --fresh of that name, in this process
                parameters={"a": {"type": "int", "low": 0, "high": 1}},
                objective=lambda cfg: float(cfg["a"]),
                direction="maximize",
                name="g",
                directory=tmp_path,
                progress=False,
                fresh=True,
            ).run()
        assert store.counts("g")["done"] == 200  # nothing was deleted
        err = _let_through(tmp_path, run)
    assert run.returncode == 0, err
    kept = optuna.load_study(study_name="g", storage=open_storage(tmp_path / "fastgrid.db"))
    assert "fastgrid.batch_returns" in kept.user_attrs  # the work after the chunks went through
    again = _fastgrid(tmp_path, "--fresh")  # that run ended: --fresh starts over
    assert again.returncode == 0, again.stderr
    assert "200 of 200 points done" in again.stdout


def test_a_run_whose_sweep_is_deleted_by_hand_stops_with_one_line_and_recreates_nothing(
    tmp_path: Path,
) -> None:
    with _gated(tmp_path, "inside") as run:
        _wait_for(tmp_path / "inside", run)  # the run holds chunk 0
        db = sqlite3.connect(tmp_path / "fastgrid.db")
        with db:  # what --fresh of an older fastgrid deleted (it knew no runs table)
            for table, key in (
                ("fastgrid_batch_leaders", "sweep"),
                ("fastgrid_batch_columns", "sweep"),
                ("fastgrid_batch_chunks", "sweep"),
                ("fastgrid_batch_sweeps", "name"),
            ):
                db.execute(f"DELETE FROM {table} WHERE {key} = 'g'")
        db.close()
        err = _let_through(tmp_path, run)
    assert run.returncode == 1, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert (
        err.startswith("error: no batch sweep named 'g' in ")
        and "deleted while this run was running it" in err
    )
    store = open_batch_store(tmp_path / "fastgrid.db")
    assert store.sweep("g") is None and store.chunks("g", state=None) == []


# --- a heartbeat that fails -----------------------------------------------------------------------


def test_a_failing_heartbeat_is_tolerated_within_the_grace_period_and_stops_the_worker_after_it(
    tmp_path: Path,
) -> None:
    store = BatchStore(tmp_path / "x.db")
    me = f"{socket.gethostname()}/{os.getpid()}/me"
    _register(store, me)
    beat = _Beat(store, "s", me, interval=3600, grace=10, run=True)
    try:
        now = [0.0]
        beat._clock = lambda: now[0]  # type: ignore[method-assign]
        beat._ok = 0.0
        real: Callable[..., bool] = store.beat
        down = sqlite3.OperationalError("disk I/O error")

        def broken(*args: Any, **kwargs: Any) -> bool:
            raise down

        store.beat = broken  # type: ignore[method-assign]
        now[0] = 9.0
        beat.beat()
        beat.check()  # failing for 9 s of a 10 s grace: a hiccup
        now[0] = 11.0
        with pytest.raises(
            HeartbeatLostError, match=r"for 11s \(grace_period 10s; last error: OperationalError"
        ):
            beat.check()
        store.beat = real  # type: ignore[method-assign]
        beat.beat()  # the store is back
        now[0] = 30.0
        beat.check()
    finally:
        beat.close()


def test_a_worker_whose_claim_was_taken_over_records_nothing_and_stops_after_its_chunk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker's heartbeats fail (its store's disk, say) while it evaluates chunk 0; another
    worker takes chunk 0 over as stale and records it. The first one's result is not recorded
    (the claim is no longer its own) and it stops, rather than computing chunks others take."""
    tried = threading.Event()

    def broken(self: ChunkStore, name: str, owner: str, *, run: bool = False) -> bool:
        tried.set()
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(BatchStore, "beat", broken)
    other = "elsewhere/1/other"
    taken: list[int] = []

    def objective(cols: dict[str, Any], config: Any) -> dict[str, Any]:
        if not taken:
            assert tried.wait(60)  # a heartbeat was tried, and failed
            takeover = BatchStore(tmp_path / "fastgrid.db")
            deadline = time.monotonic() + 60
            # limit=0: only a stale claim, never a new chunk. Chunk 0 goes stale 0.2 s after its
            # claim by the store's clock, no heartbeat getting through.
            while (chunk := takeover.claim("hb", other, grace=0.2, limit=0)) is None:
                assert time.monotonic() < deadline
                time.sleep(0.02)
            assert chunk.index == 0 and chunk.claims == 2
            marked = {"p:a": np.arange(chunk.start, chunk.stop), "m:score": np.full(len(chunk), -1.0)}
            assert takeover.finish("hb", other, chunk, marked, failed=0, infeasible=0, duration=0, info={})
            taken.append(chunk.index)
        return {"score": np.asarray(cols["a"], dtype=float)}

    def run() -> Any:
        return run_batch(
            {"a": {"type": "int", "low": 0, "high": 19}},
            batch=objective,
            name="hb",
            metric="score",
            direction="maximize",
            chunk=5,
            directory=tmp_path,
            heartbeat_interval=0.05,
            grace_period=0.2,
        )

    lost = r"could not renew its heartbeat .*disk I/O error.*recorded only if its claim was still its own"
    with pytest.raises(HeartbeatLostError, match=lost):
        run()
    store = BatchStore(tmp_path / "fastgrid.db")
    # Chunk 0 is the other worker's, recorded once; the stopped worker claimed nothing more.
    assert [(c["chunk"], c["state"], c["owner"]) for c in store.chunks("hb", state=None)] == [
        (0, "done", other)
    ]
    assert store.column("hb", "m:score")[0].tolist() == [-1.0] * 5
    monkeypatch.undo()
    resumed = run()
    table = BatchResults(store, "hb").to_pandas()
    assert resumed.counts["done"] == 20 and sorted(table["slot"]) == list(range(20))
    assert table["score"].tolist() == [-1.0] * 5 + [float(a) for a in range(5, 20)]
