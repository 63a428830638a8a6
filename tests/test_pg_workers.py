"""``fastgrid worker`` processes sharing a ``fastgrid+postgresql://`` journal: real processes, a real
server, real ``kill -9`` and a real server restart.

The sweep, objective and ledger are those of ``test_workers.py`` (the objective appends one line per
evaluation, so "every point exactly once" is counted from what actually ran), with a 3 s grace period
so that a killed worker's trial is retried quickly.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import optuna
import psycopg
import pytest
from fastgrid.storages import open_storage
from optuna.trial import TrialState
from support.pgjournal import alice_url, fresh_journal_url, schema_of
from support.pgserver import Server
from test_workers import (
    GRID,
    assert_each_point_once,
    completed_points,
    ledger,
    load,
    logs,
    run_with_a_kill,
    start_workers,
    wait_all,
    write_sweep,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)


def pg_sweep(folder: Path, url: str, *, name: str, trial_seconds: float = 0.005) -> Path:
    sweep = write_sweep(folder, name=name, storage=url)
    sweep.write_text(sweep.read_text().replace("grace_period = 8", "grace_period = 3"))
    objective = folder / "objective.py"
    objective.write_text(objective.read_text().replace("time.sleep(0.005)", f"time.sleep({trial_seconds})"))
    return sweep


def wait_for_ledger(folder: Path, lines: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not (folder / "ledger").exists() or len((folder / "ledger").read_text().splitlines()) < lines:
        if time.monotonic() > deadline:
            raise AssertionError(f"the workers never ran {lines} trials:\n{logs(folder)}")
        time.sleep(0.02)


@pytest.fixture
def url(postgres_url: str) -> str:
    return fresh_journal_url(postgres_url)


def test_four_workers_complete_every_point_exactly_once(tmp_path: Path, url: str) -> None:
    sweep = pg_sweep(tmp_path, url, name="four")
    codes = wait_all(start_workers(tmp_path, sweep, 4))
    assert codes == [0, 0, 0, 0], logs(tmp_path)
    study = load(sweep, tmp_path)
    assert_each_point_once(tmp_path, study)
    # Trial numbers come from the log's order: one per trial, no gaps, and the work was shared.
    assert sorted(t.number for t in study.trials) == list(range(len(study.trials)))
    assert len({line.split(",")[2] for line in (tmp_path / "ledger").read_text().splitlines()}) > 1
    assert "Traceback" not in logs(tmp_path)


def test_a_worker_killed_mid_trial_has_its_point_run_by_the_others(tmp_path: Path, url: str) -> None:
    sweep = pg_sweep(tmp_path, url, name="kill-trial")
    study = run_with_a_kill(tmp_path, sweep, 4)
    assert_each_point_once(tmp_path, study)
    assert "Traceback" not in logs(tmp_path)


def test_a_worker_killed_mid_append_leaves_the_log_whole(tmp_path: Path, url: str, postgres_url: str) -> None:
    """Hold the append lock so every worker blocks inside an append, kill -9 one of them there,
    then let the appends go: its batch is written whole or not at all, and the sweep completes."""
    sweep = pg_sweep(tmp_path, url, name="kill-append", trial_seconds=0.02)
    procs = start_workers(tmp_path, sweep, 4)
    by_pid = {p.pid: p for p in procs}
    schema = url.rsplit("%3D", 1)[1]
    try:
        wait_for_ledger(tmp_path, 20)
        with psycopg.connect(postgres_url, autocommit=True, options=f"-csearch_path={schema}") as admin:
            key = admin.execute(
                "SELECT (x'6667'::bigint << 32) | 'fastgrid_journal'::regclass::oid::bigint"
            ).fetchone()
            assert key is not None
            admin.execute("SELECT pg_advisory_lock(%s)", (key[0],))
            deadline = time.monotonic() + 30
            waiting: list[int] = []
            while not waiting:
                assert time.monotonic() < deadline, "no worker ever waited for the append lock"
                rows = admin.execute(
                    "SELECT application_name FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND application_name LIKE 'fastgrid (pid %%)'"
                ).fetchall()
                waiting = [int(name.split()[-1].rstrip(")")) for (name,) in rows]
                waiting = [pid for pid in waiting if pid in by_pid]
                time.sleep(0.02)
            victim = waiting[0]
            os.kill(victim, signal.SIGKILL)
            by_pid[victim].wait(timeout=30)
            admin.execute("SELECT pg_advisory_unlock(%s)", (key[0],))
        codes = {p.pid: code for p, code in zip(procs, wait_all(procs), strict=True)}
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert codes.pop(victim) == -signal.SIGKILL
    assert set(codes.values()) == {0}, logs(tmp_path)
    study = load(sweep, tmp_path)
    # Recorded exactly once each; evaluated at least once, and twice at most for the one point the
    # victim may have evaluated but not recorded before it died.
    done = completed_points(study)
    assert set(done) == set(GRID) and max(done.values()) == 1
    ran = ledger(tmp_path)
    assert set(ran) == set(GRID)
    assert len([p for p, n in ran.items() if n > 1]) <= 1 and max(ran.values()) <= 2
    assert not study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    assert "Traceback" not in logs(tmp_path)


# --- a server of our own: restarted, stopped, and with password logins ------------------------------


def test_a_wrong_password_is_one_line_with_the_password_masked(own_server: Server) -> None:
    url = alice_url(own_server).replace("alice:hunter2@", "alice:hunter3@")
    with pytest.raises(ValueError) as info:
        open_storage(url)
    message = str(info.value)
    assert "\n" not in message and "hunter3" not in message
    assert "alice:***@127.0.0.1" in message
    assert 'password authentication failed for user "alice"' in message
    assert "check the user and password" in message


def test_workers_wait_out_a_server_restart_and_lose_or_double_nothing(
    tmp_path: Path, own_server: Server
) -> None:
    sweep = pg_sweep(tmp_path, alice_url(own_server), name="restart", trial_seconds=0.03)
    procs = start_workers(tmp_path, sweep, 4)
    try:
        wait_for_ledger(tmp_path, 60)
        own_server.stop("fast")  # every connection is cut, mid-append or not
        time.sleep(1.0)
        own_server.start()
        codes = wait_all(procs)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        own_server.ensure_running()
    assert codes == [0, 0, 0, 0], logs(tmp_path)
    assert_each_point_once(tmp_path, load(sweep, tmp_path))
    text = logs(tmp_path)
    assert "connection lost" in text and "reconnected" in text
    assert "Traceback" not in text and "hunter2" not in text


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used")
def test_a_restarted_server_gives_running_trials_a_fresh_grace_period(own_server: Server) -> None:
    url = alice_url(own_server)
    storage = open_storage(url, heartbeat_interval=1, grace_period=2)
    study = optuna.create_study(storage=storage, study_name="grace")
    trial = study.ask()
    backend = storage.backend  # type: ignore[attr-defined]
    backend.beat(trial._trial_id)
    own_server.psql(f"UPDATE {schema_of(url)}.fastgrid_heartbeat SET beat = now() - interval '1 hour'")
    age = own_server.psql("SELECT extract(epoch FROM now() - pg_postmaster_start_time())")
    time.sleep(max(0.0, 2.1 - float(age)))  # the server may have just started (for this module)
    assert backend.stale([trial._trial_id], 2.0) == [trial._trial_id]
    own_server.stop("fast")
    own_server.start()
    # Nobody could beat while the server was down: the trial is not judged until 2 s after start.
    assert backend.stale([trial._trial_id], 2.0) == []


def test_a_server_gone_for_good_ends_the_worker_with_one_clear_line(
    tmp_path: Path, own_server: Server
) -> None:
    url = alice_url(own_server, reconnect_timeout="2")
    sweep = pg_sweep(tmp_path, url, name="gone", trial_seconds=0.05)
    [proc] = start_workers(tmp_path, sweep, 1)
    try:
        wait_for_ledger(tmp_path, 5)
        own_server.stop("fast")
        start = time.monotonic()
        code = proc.wait(timeout=60)
        elapsed = time.monotonic() - start
    finally:
        if proc.poll() is None:
            proc.kill()
        own_server.start()
    assert code == 2, logs(tmp_path)
    last = logs(tmp_path).strip().splitlines()[-1]
    assert "lost the connection to the server and could not reconnect within 2 s" in last, last
    assert "alice:***@127.0.0.1" in last and "hunter2" not in logs(tmp_path)
    assert "Traceback" not in logs(tmp_path)
    assert elapsed < 30  # one reconnect window, not one per statement still to send
