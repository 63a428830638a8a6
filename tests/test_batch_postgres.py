"""Batch sweeps on PostgreSQL (issue 13): workers on several machines share one sweep's chunks.

A real server (tests/support/pgserver.py); each test uses its own sweep name in the shared database.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from click.testing import CliRunner
from fastgrid import Grid
from fastgrid.batch import BatchResults, PgBatchStore, open_batch_store, run_batch
from fastgrid.cli import main

PARAMS = {"a": {"type": "int", "low": 1, "high": 30}, "b": {"type": "int", "low": 1, "high": 30}}


def score(cols: dict[str, Any], config: Any) -> dict[str, Any]:
    return {"score": cols["a"] * 10.0 - cols["b"], "trades": cols["b"] * 1}


def test_run_batch_on_postgres_records_every_point_once(postgres_url: str, tmp_path: Path) -> None:
    name = f"pg-{uuid.uuid4().hex[:8]}"
    r = run_batch(
        PARAMS,
        batch=score,
        name=name,
        metric="score",
        direction="maximize",
        where=["a < b"],
        require=["trades >= 3"],
        chunk=37,
        workers=2,
        storage=postgres_url,
        directory=tmp_path,
        top_k=5,  # each trial written to Optuna's RDB storage costs a dozen queries
    )
    assert isinstance(r.results.store, PgBatchStore)
    grid = Grid(PARAMS, constraints="a < b", flat=True)
    cols = r.results.columns(["slot", "a", "b", "score", "feasible"])
    assert cols["slot"].tolist() == list(range(len(grid)))
    assert (cols["score"] == cols["a"] * 10.0 - cols["b"]).all()
    assert (cols["feasible"] == (cols["b"] >= 3)).all()
    assert r.best is not None and r.best["params"] == {"a": 29, "b": 30}
    owners = {c["info"]["owner"].split("/")[1] for c in r.results.store.chunks(name)}
    assert len(owners) == 2
    # Resumed: nothing to run; the same rows read from a fresh connection.
    again = run_batch(
        PARAMS,
        batch=score,
        name=name,
        metric="score",
        direction="maximize",
        where=["a < b"],
        require=["trades >= 3"],
        storage=postgres_url,
        directory=tmp_path,
        top_k=5,
    )
    assert again.ran == 0
    assert sorted(t.user_attrs["slot"] for t in again.study.get_trials()) == sorted(
        row["slot"] for row in r.top
    )
    fresh = BatchResults(open_batch_store(postgres_url), name)
    assert np.array_equal(fresh.columns(["score"])["score"], cols["score"])
    # The report reads the columns through the storage URL.
    out = CliRunner().invoke(main, ["report", "--storage", postgres_url, "--study", name, "--top", "2"])
    assert out.exit_code == 0, out.output
    assert f"{len(grid):,} of {len(grid):,} points done" in out.output and "top 2 points" in out.output


WORKER_SWEEP = """
[sweep]
name = "{name}"
mode = "batch"
chunk = 20
direction = "maximize"
metric = "score"
storage = "{url}"
heartbeat_interval = 1
grace_period = 3
top_k = 5

[objective]
batch = "pgobj:slow"

[parameters]
a = {{ type = "int", low = 1, high = 40 }}
b = {{ type = "int", low = 1, high = 10 }}
"""

OBJECTIVE = """
import time

def slow(cols, config):
    time.sleep(0.1)
    return {"score": cols["a"] * 1.0 + cols["b"]}
"""


def test_fastgrid_workers_share_a_sweep_and_take_over_a_killed_ones_chunk(
    postgres_url: str, tmp_path: Path
) -> None:
    name = f"pgw-{uuid.uuid4().hex[:8]}"
    (tmp_path / "pgobj.py").write_text(textwrap.dedent(OBJECTIVE))
    (tmp_path / "w.toml").write_text(WORKER_SWEEP.format(name=name, url=postgres_url))
    cmd = [sys.executable, "-m", "fastgrid", "worker", "w.toml", "--no-progress"]
    logs = [open(tmp_path / f"w{i}.log", "w") for i in range(3)]  # noqa: SIM115 - closed below
    try:
        procs = [
            subprocess.Popen(cmd, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            for log in logs
        ]
        store = open_batch_store(postgres_url)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if name in store.sweeps() and store.counts(name)["chunks_done"] >= 3:
                break
            time.sleep(0.05)
        os.killpg(procs[0].pid, signal.SIGKILL)  # a worker dies holding a chunk
        for p in procs[1:]:
            assert p.wait(timeout=240) == 0, (tmp_path / "w1.log").read_text()
        procs[0].wait()
    finally:
        for log in logs:
            log.close()
    results = BatchResults(store, name)
    cols = results.columns(["slot", "a", "b", "score"])
    assert cols["slot"].tolist() == list(range(400))
    assert (cols["score"] == cols["a"] + cols["b"]).all()
    taken_over = [c for c in store.chunks(name) if c["claims"] > 1]
    assert taken_over, "the killed worker's chunk was run again by another worker"
    done = (tmp_path / "w1.log").read_text() + (tmp_path / "w2.log").read_text()
    assert "worker done: sweep" in done
    # Both survivors wrote the top 5 at the end; each point is one trial of the study.

    study = optuna.load_study(
        study_name=name, storage=postgres_url.replace("postgresql", "postgresql+psycopg")
    )
    slots = [t.user_attrs["slot"] for t in study.get_trials()]
    assert len(slots) == len(set(slots)) == 5


def test_a_missing_sweep_is_named_and_the_password_never_printed(postgres_url: str) -> None:
    with pytest.raises(KeyError, match="no batch sweep named 'no-such-sweep' in PgBatchStore"):
        PgBatchStore(postgres_url).claim("no-such-sweep", "me/1/x", grace=10)
    store = PgBatchStore.__new__(PgBatchStore)
    store.url = "postgresql://fastgrid:hunter2@db.example/sweeps"
    assert "hunter2" not in repr(store) and "db.example/sweeps" in repr(store)
