"""Batch sweeps on PostgreSQL (issue 13): workers on several machines share one sweep's chunks.

A real server (tests/support/pgserver.py); each test uses its own sweep name in the shared database.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import psycopg
import pytest
from click.testing import CliRunner
from fastgrid import Grid
from fastgrid.batch import (
    BatchResults,
    ChunkStore,
    PgBatchStore,
    check_study_mode,
    open_batch_store,
    run_batch,
)
from fastgrid.cli import main
from fastgrid.exceptions import StorageConnectionError, StoreMismatchError, SweepDeletedError
from fastgrid.storages import PostgresJournalStorage, open_storage
from support.meeting import meet
from support.pgjournal import alice_url, fresh_journal_url, schema_of
from support.pgserver import Server

PARAMS = {"a": {"type": "int", "low": 1, "high": 30}, "b": {"type": "int", "low": 1, "high": 30}}


def score(cols: dict[str, Any], config: Any) -> dict[str, Any]:
    return {"score": cols["a"] * 10.0 - cols["b"], "trades": cols["b"] * 1}


def score_with_two_workers(cols: dict[str, Any], config: Any) -> dict[str, Any]:
    """``score``, once both worker processes have called it (each waits up to 60 s for the other):
    a trivial objective could finish every chunk before the second process starts."""
    meet(config["meeting"])
    return score(cols, config)


def test_run_batch_on_postgres_records_every_point_once(postgres_url: str, tmp_path: Path) -> None:
    name = f"pg-{uuid.uuid4().hex[:8]}"
    meeting = tmp_path / "meeting"
    meeting.mkdir()
    (tmp_path / "config.json").write_text(json.dumps({"meeting": str(meeting)}))
    sweep: dict[str, Any] = {
        "batch": score_with_two_workers,
        "config": tmp_path / "config.json",
        "name": name,
        "metric": "score",
        "direction": "maximize",
        "where": ["a < b"],
        "require": ["trades >= 3"],
        "storage": postgres_url,
        "directory": tmp_path,
        "top_k": 5,  # each trial written to Optuna's RDB storage costs a dozen queries
    }
    r = run_batch(PARAMS, chunk=37, workers=2, **sweep)
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
    again = run_batch(PARAMS, **sweep)
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
        pids = {str(p.pid): i for i, p in enumerate(procs)}
        deadline = time.monotonic() + 120
        victim = None
        while victim is None and time.monotonic() < deadline:
            # A worker that holds a chunk once the sweep is under way (whichever: the one that
            # registered the sweep creates the study first and may start after the others).
            if name in store.sweeps() and store.counts(name)["chunks_done"] >= 3:
                holders = [(c["owner"] or "").split("/")[1:2] for c in store.chunks(name, state="claimed")]
                victim = next((pids[h[0]] for h in holders if h and h[0] in pids), None)
            time.sleep(0.02)
        assert victim is not None, "no worker held a chunk"
        os.killpg(procs[victim].pid, signal.SIGKILL)  # a worker dies holding a chunk
        survivors = [i for i in range(3) if i != victim]
        for i in survivors:
            assert procs[i].wait(timeout=240) == 0, (tmp_path / f"w{i}.log").read_text()
        procs[victim].wait()
    finally:
        for log in logs:
            log.close()
    results = BatchResults(store, name)
    cols = results.columns(["slot", "a", "b", "score"])
    assert cols["slot"].tolist() == list(range(400))
    assert (cols["score"] == cols["a"] + cols["b"]).all()
    taken_over = [c for c in store.chunks(name) if c["claims"] > 1]
    assert taken_over, "the killed worker's chunk was run again by another worker"
    done = "".join((tmp_path / f"w{i}.log").read_text() for i in survivors)
    assert "worker done: sweep" in done
    # Both survivors wrote the top 5 at the end; each point is one trial of the study.

    study = optuna.load_study(
        study_name=name, storage=postgres_url.replace("postgresql", "postgresql+psycopg")
    )
    slots = [t.user_attrs["slot"] for t in study.get_trials()]
    assert len(slots) == len(set(slots)) == 5


def test_a_missing_sweep_is_named_and_the_password_never_printed(postgres_url: str) -> None:
    with pytest.raises(SweepDeletedError, match="no batch sweep named 'no-such-sweep' in PgBatchStore"):
        PgBatchStore(postgres_url).claim("no-such-sweep", "me/1/x", grace=10)
    store = PgBatchStore.__new__(PgBatchStore)
    store.url = "postgresql://fastgrid:hunter2@db.example/sweeps"
    assert "hunter2" not in repr(store) and "db.example/sweeps" in repr(store)


# --- fastgrid+postgresql://: the study in fastgrid's journal, the chunks beside it ----------------


def test_run_batch_on_fastgrid_postgresql_keeps_study_and_chunks_in_one_schema(
    postgres_url: str, tmp_path: Path
) -> None:
    url = fresh_journal_url(postgres_url)
    kwargs: dict[str, Any] = {
        "batch": score,
        "name": "fg",
        "metric": "score",
        "direction": "maximize",
        "where": ["a < b"],
        "require": ["trades >= 3"],
        "storage": url,
        "directory": tmp_path,
        "top_k": 5,
    }
    r = run_batch(PARAMS, chunk=37, workers=2, **kwargs)
    assert isinstance(r.results.store, PgBatchStore)
    grid = Grid(PARAMS, constraints="a < b", flat=True)
    cols = r.results.columns(["slot", "a", "b", "score"])
    assert cols["slot"].tolist() == list(range(len(grid)))
    assert (cols["score"] == cols["a"] * 10.0 - cols["b"]).all()
    assert r.best is not None and r.best["params"] == {"a": 29, "b": 30}
    # Both stores live in the URL's schema, none in public.
    with psycopg.connect(postgres_url) as conn:
        tables = {
            (schema, table)
            for schema, table in conn.execute(
                "SELECT table_schema, table_name FROM information_schema.tables "
                "WHERE table_name IN ('fastgrid_batch_chunks', 'fastgrid_journal') AND table_schema = %s",
                (schema_of(url),),
            ).fetchall()
        }
    assert {t for _, t in tables} == {"fastgrid_batch_chunks", "fastgrid_journal"}
    storage = open_storage(url)
    assert isinstance(storage, PostgresJournalStorage)
    study = optuna.load_study(study_name="fg", storage=storage)
    slots = sorted(t.user_attrs["slot"] for t in study.get_trials())
    assert slots == sorted(row["slot"] for row in r.top) and len(slots) == 5
    # Resumed: nothing runs and no top-K point is written twice.
    again = run_batch(PARAMS, **kwargs)
    assert again.ran == 0
    assert sorted(t.user_attrs["slot"] for t in again.study.get_trials()) == slots
    # A per-trial run of the same name is refused with the reason.
    with pytest.raises(StoreMismatchError, match="batch sweep"):
        check_study_mode(study, "trial")
    out = CliRunner().invoke(main, ["report", "--storage", url, "--study", "fg", "--top", "2"])
    assert out.exit_code == 0, out.output
    assert f"{len(grid):,} of {len(grid):,} points done" in out.output and "top 2 points" in out.output
    out = CliRunner().invoke(main, ["export", "fg", "--storage", url, "--to", str(tmp_path / "fg.csv")])
    assert out.exit_code == 0, out.output
    assert len((tmp_path / "fg.csv").read_text().splitlines()) == len(grid) + 1


def _sweep_file(tmp_path: Path, url: str, name: str, *, chunk: int = 20) -> None:
    (tmp_path / "pgobj.py").write_text(textwrap.dedent(OBJECTIVE))
    text = WORKER_SWEEP.format(name=name, url=url).replace("chunk = 20", f"chunk = {chunk}")
    (tmp_path / "w.toml").write_text(text)


def test_fastgrid_workers_and_a_late_one_on_fastgrid_postgresql(postgres_url: str, tmp_path: Path) -> None:
    url = fresh_journal_url(postgres_url)
    _sweep_file(tmp_path, url, "fgw")
    cmd = [sys.executable, "-m", "fastgrid", "worker", "w.toml", "--no-progress"]
    procs = [
        subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=240)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    store = open_batch_store(url)
    results = BatchResults(store, "fgw")
    cols = results.columns(["slot", "a", "b", "score"])
    assert cols["slot"].tolist() == list(range(400))
    assert (cols["score"] == cols["a"] + cols["b"]).all()
    assert all(c["claims"] == 1 for c in store.chunks("fgw"))
    study = optuna.load_study(study_name="fgw", storage=open_storage(url))
    top = [t.user_attrs["slot"] for t in study.get_trials()]
    assert len(top) == len(set(top)) == 5
    # A late worker finds nothing to run and leaves the study as it was.
    late = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert late.returncode == 0, late.stderr
    assert "ran 0 point(s) here; 400 of 400 points done" in late.stdout
    assert sorted(t.user_attrs["slot"] for t in study.get_trials()) == sorted(top)
    plot = subprocess.run(
        [sys.executable, "-m", "fastgrid", "plot", "w.toml", "heatmap", "a", "b", "-o", "h.png"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert plot.returncode == 0, plot.stderr
    assert (tmp_path / "h.png").stat().st_size > 0


def assert_one_clear_line(message: str, *needles: str) -> None:
    assert "\n" not in message and "hunter2" not in message, message
    for needle in needles:
        assert needle in message, message


@pytest.mark.parametrize("scheme", ["fastgrid+postgresql", "fastgrid+postgres", "postgresql"])
def test_an_unreachable_server_is_one_line_with_the_password_masked(scheme: str, tmp_path: Path) -> None:
    url = f"{scheme}://bob:hunter2@127.0.0.1:1/sweeps"
    with pytest.raises(StorageConnectionError) as info:
        run_batch(PARAMS, batch=score, storage=url, directory=tmp_path)
    assert_one_clear_line(str(info.value), f"{scheme}://bob:***@127.0.0.1:1/sweeps", "Connection refused")


def test_a_missing_database_and_bad_parameters_are_one_line(postgres_url: str, tmp_path: Path) -> None:
    missing = "fastgrid+" + postgres_url.rsplit("/", 1)[0] + "/no_such_db"
    with pytest.raises(ValueError) as info:
        run_batch(PARAMS, batch=score, storage=missing, directory=tmp_path)
    assert_one_clear_line(str(info.value), 'database "no_such_db" does not exist', "createdb")
    for query, fix in (("reconnect_timeout=soon", "reconnect_timeout must be"), ("bogus=1", '"bogus"')):
        with pytest.raises(ValueError) as info:
            open_batch_store(f"fastgrid+postgresql://bob:hunter2@h/db?{query}")
        assert_one_clear_line(str(info.value), fix, "bob:***@h/db")


def test_a_missing_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg -> ImportError
    with pytest.raises(ValueError) as info:
        run_batch(PARAMS, batch=score, storage="fastgrid+postgresql://bob:hunter2@db.example/sweeps")
    assert_one_clear_line(str(info.value), "psycopg is not installed", "pip install 'fastgrid[postgres]'")


# --- a server of our own: password logins, and a restart under running workers ----------------------


def test_a_wrong_password_is_one_line_with_the_password_masked(own_server: Server, tmp_path: Path) -> None:
    url = alice_url(own_server).replace("alice:hunter2@", "alice:hunter3@")
    with pytest.raises(ValueError) as info:
        run_batch(PARAMS, batch=score, storage=url, directory=tmp_path)
    message = str(info.value)
    assert "\n" not in message and "hunter3" not in message and "alice:***@127.0.0.1" in message
    assert 'password authentication failed for user "alice"' in message
    assert "check the user and password" in message


def test_batch_workers_wait_out_a_server_restart_and_record_every_point_once(
    own_server: Server, tmp_path: Path
) -> None:
    url = alice_url(own_server, reconnect_timeout="60")
    _sweep_file(tmp_path, url, "restart", chunk=10)
    cmd = [sys.executable, "-m", "fastgrid", "worker", "w.toml", "--no-progress"]
    logs = [open(tmp_path / f"w{i}.log", "w") for i in range(2)]  # noqa: SIM115 - closed below
    try:
        procs = [subprocess.Popen(cmd, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT) for log in logs]
        store = open_batch_store(url)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if "restart" in store.sweeps() and store.counts("restart")["chunks_done"] >= 4:
                break
            time.sleep(0.05)
        own_server.stop("fast")  # every connection is cut
        time.sleep(1.0)
        own_server.start()
        codes = [p.wait(timeout=240) for p in procs]
    finally:
        for log in logs:
            log.close()
        own_server.ensure_running()
    text = "".join((tmp_path / f"w{i}.log").read_text() for i in range(2))
    assert codes == [0, 0], text
    cols = BatchResults(open_batch_store(url), "restart").columns(["slot", "a", "b", "score"])
    assert cols["slot"].tolist() == list(range(400))
    assert (cols["score"] == cols["a"] + cols["b"]).all()
    assert "connection lost" in text and "reconnected" in text
    assert "Traceback" not in text and "hunter2" not in text


# --- one chunk store, two dialects ------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> ChunkStore:
    if request.param == "sqlite":
        return open_batch_store(tmp_path / "fastgrid.db")
    return open_batch_store(fresh_journal_url(request.getfixturevalue("postgres_url")))


def test_both_stores_register_claim_and_hand_out_top_points_alike(any_store: ChunkStore) -> None:
    space = {"parameters": "x", "total": 25}
    first = any_store.register("s", total=25, chunk=10, space=space, meta={})
    again = any_store.register("s", total=25, chunk=10, space=space, meta={"k": 1})
    assert first["new"] and not again["new"] and again["meta"] == {"k": 1}
    with pytest.raises(StoreMismatchError, match="chunk = 10, this run asks for 5"):
        any_store.register("s", total=25, chunk=5, space=space, meta={})
    host = socket.gethostname()
    me, other = f"{host}/{os.getpid()}/a", f"{host}/{os.getpid()}/b"
    chunks = [any_store.claim("s", me, grace=60) for _ in range(4)]
    assert [(c.start, c.stop) for c in chunks if c is not None] == [(0, 10), (10, 20), (20, 25)]
    assert chunks[3] is None
    assert chunks[0] is not None
    columns = {"metric:score": np.arange(10, dtype=np.float64)}
    assert any_store.finish("s", me, chunks[0], columns, failed=0, infeasible=0, duration=0.1, info={})
    assert not any_store.finish("s", other, chunks[0], columns, failed=0, infeasible=0, duration=0.1, info={})
    assert any_store.column("s", "metric:score", [0])[0].tolist() == list(range(10))
    assert any_store.counts("s")["chunks_done"] == 1 and any_store.counts("s")["chunks_in_flight"] == 2
    # Top points: claimed by one writer; once written, others skip them without reading the study.
    assert any_store.claim_leaders("s", me, [1, 2]) == [1, 2]
    assert any_store.claim_leaders("s", other, [1, 2, 3]) == [3]
    any_store.mark_leaders("s", me, [1, 2])
    assert any_store.claim_leaders("s", other, [1, 2]) == []


def test_a_fastgrid_worker_joining_a_registered_sweep_opens_no_optuna_storage(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fastgrid.storages

    url = fresh_journal_url(postgres_url)
    opened: list[str] = []
    real = fastgrid.storages.open_storage

    def counting(storage: Any, **kwargs: Any) -> Any:
        opened.append(str(storage))
        return real(storage, **kwargs)

    monkeypatch.setattr(fastgrid.storages, "open_storage", counting)
    kwargs: dict[str, Any] = {
        "batch": score,
        "name": "join",
        "metric": "score",
        "direction": "maximize",
        "storage": url,
        "directory": tmp_path,
        "top_k": 3,
        "chunk": 100,
        "wait_for_others": True,
    }
    first = run_batch(PARAMS, max_points=300, **kwargs)  # registers the sweep: creates the study
    assert len(opened) == 1 and first.study is not None
    second = run_batch(PARAMS, **kwargs)  # joins, runs the rest, and writes the new top points
    assert second.ran == 600 and len(opened) == 2
    late = run_batch(PARAMS, **kwargs)  # joins a finished sweep whose top points are written
    assert late.ran == 0 and late.study is None and len(opened) == 2
    study = optuna.load_study(study_name="join", storage=real(url))
    slots = sorted(t.user_attrs["slot"] for t in study.get_trials())
    assert len(slots) == len(set(slots)) and set(slots) >= {r["slot"] for r in late.top}


def test_the_worker_that_writes_top_points_refuses_a_study_run_per_trial_since(tmp_path: Path) -> None:
    kwargs: dict[str, Any] = {"batch": score, "name": "m", "metric": "score", "directory": tmp_path}
    run_batch(PARAMS, top_k=2, **kwargs)
    # The study was replaced by a per-trial one (a per-trial run with --fresh does that).
    storage = open_storage(None, directory=tmp_path)
    optuna.delete_study(study_name="m", storage=storage)
    optuna.create_study(study_name="m", storage=storage).optimize(lambda t: 1.0, n_trials=1)
    # A joining worker runs no Optuna storage work until it must write new top points: then it refuses.
    with pytest.raises(StoreMismatchError, match="was run per trial"):
        run_batch(PARAMS, top_k=4, wait_for_others=True, **kwargs)
    assert len(optuna.load_study(study_name="m", storage=storage).get_trials()) == 1


def test_a_server_gone_for_good_ends_a_batch_worker_with_one_clear_line(
    own_server: Server, tmp_path: Path
) -> None:
    url = alice_url(own_server, reconnect_timeout="2")
    _sweep_file(tmp_path, url, "gone", chunk=10)
    cmd = [sys.executable, "-m", "fastgrid", "worker", "w.toml", "--no-progress"]
    with open(tmp_path / "w.log", "w") as log:
        proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
        try:
            store = open_batch_store(url)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                if "gone" in store.sweeps() and store.counts("gone")["chunks_done"] >= 2:
                    break
                time.sleep(0.05)
            store.close()
            own_server.stop("fast")
            code = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
            own_server.start()
    text = (tmp_path / "w.log").read_text()
    assert code == 2, text
    last = text.strip().splitlines()[-1]
    assert "lost the connection to the server and could not reconnect within 2 s" in last, last
    assert "alice:***@127.0.0.1" in last and "hunter2" not in text and "Traceback" not in text


# --- the reading commands on a store they cannot open: one line, as `fastgrid run` says it ----------


@pytest.mark.parametrize("command", ["report", "plot", "export"])
@pytest.mark.parametrize("scheme", ["fastgrid+postgresql", "postgresql"])
def test_the_reading_commands_name_an_unreachable_server_in_one_line(
    command: str, scheme: str, tmp_path: Path
) -> None:
    # report and plot of a fastgrid+postgresql:// store printed a StorageConnectionError traceback.
    url = f"{scheme}://bob:hunter2@127.0.0.1:1/sweeps"
    sweep = tmp_path / "s.toml"
    sweep.write_text(
        f'[sweep]\nname = "s"\nmode = "batch"\nmetric = "score"\ndirection = "maximize"\nstorage = "{url}"\n'
        '[objective]\nbatch = "m:f"\n[parameters]\na = [1, 2]\nb = [1, 2]\n'
    )
    args = {
        "report": ["report", "--storage", url, "--study", "s"],
        "plot": ["plot", str(sweep), "heatmap", "a", "b", "-o", str(tmp_path / "h.png")],
        "export": ["export", "--storage", url, "s", "--to", str(tmp_path / "x.csv")],
    }[command]
    out = CliRunner().invoke(main, args)
    assert out.exit_code in (1, 2) and not isinstance(out.exception, StorageConnectionError), out.output
    assert "Traceback" not in out.output
    assert_one_clear_line(out.output.strip(), "bob:***@127.0.0.1:1/sweeps", "Connection refused")


@pytest.mark.parametrize("command", ["report", "export"])
def test_the_reading_commands_name_a_missing_database_on_postgresql_urls(
    command: str, postgres_url: str, tmp_path: Path
) -> None:
    # Optuna's RDBStorage (postgresql://) said only "cannot open (OperationalError)".
    url = postgres_url.rsplit("/", 1)[0] + "/no_such_db"
    args = {
        "report": ["report", "--storage", url, "--study", "s"],
        "export": ["export", "--storage", url, "s", "--to", str(tmp_path / "x.csv")],
    }[command]
    out = CliRunner().invoke(main, args)
    assert out.exit_code == 2, out.output
    assert_one_clear_line(out.output.strip(), url, 'database "no_such_db" does not exist', "createdb")


def test_a_wrong_password_on_a_postgresql_url_is_one_line_for_readers(own_server: Server) -> None:
    url = alice_url(own_server).replace("alice:hunter2@", "alice:hunter3@")
    url = url.replace("fastgrid+postgresql://", "postgresql://")
    with pytest.raises(ValueError) as info:
        open_storage(url, readonly=True)
    message = str(info.value)
    assert "\n" not in message and "hunter3" not in message, message
    assert "postgresql://alice:***@127.0.0.1" in message and "+psycopg" not in message, message
    assert 'password authentication failed for user "alice"' in message and "check the user" in message
