"""Distributed mode: ``fastgrid worker`` processes sharing one storage (PostgreSQL or embedded).

Real worker subprocesses, a real server, real ``kill -9``. The objective appends one ledger line
per completed evaluation, so "every point exactly once" is counted from what actually ran, not
from what the storage says.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from fastgrid import Sweep
from fastgrid.samplers import SLOT_ATTR
from fastgrid.storages import HEARTBEAT_ATTR, STALE_REASON, Heartbeat
from optuna.trial import TrialState

GRID = [(x, y) for x in range(30) for y in range(10)]
HANG = (17, 3)

OBJECTIVE = f"""
import os
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def run(cfg):
    point = (cfg["x"], cfg["y"])
    if point == {HANG!r} and os.path.exists(os.path.join(HERE, "hang")):
        # This worker is the one the test kills: say who we are, then hang in the trial.
        with open(os.path.join(HERE, "hang.pid.tmp"), "w") as f:
            f.write(str(os.getpid()))
        os.replace(os.path.join(HERE, "hang.pid.tmp"), os.path.join(HERE, "hang.pid"))
        time.sleep(600)
    time.sleep(0.005)
    # O_APPEND writes of one short line are atomic, so concurrent workers never interleave.
    with open(os.path.join(HERE, "ledger"), "a") as f:
        f.write(f"{{point[0]}},{{point[1]}},{{os.getpid()}}\\n")
    return {{"value": point[0] * 100 + point[1]}}
"""


def write_sweep(folder: Path, *, name: str, storage: str | None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "objective.py").write_text(OBJECTIVE)
    storage_line = f'storage = "{storage}"' if storage else ""
    path = folder / "sweep.toml"
    path.write_text(
        textwrap.dedent(
            f"""
            [sweep]
            name = "{name}"
            direction = "minimize"
            {storage_line}
            heartbeat_interval = 1
            grace_period = 8

            [objective]
            callable = "objective:run"

            [parameters]
            x = {{ type = "int", low = 0, high = 29 }}
            y = {{ type = "int", low = 0, high = 9 }}
            """
        )
    )
    return path


def start_workers(folder: Path, sweep: Path, n: int) -> list[subprocess.Popen[str]]:
    procs = []
    for i in range(n):
        # The worker writes to its own copy of the descriptor; this one is closed at once.
        with open(folder / f"worker{i}.log", "w") as log:
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "fastgrid", "worker", str(sweep), "--no-progress"],
                    cwd=folder,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
            )
    return procs


def wait_all(procs: list[subprocess.Popen[str]], timeout: float = 300) -> list[int]:
    deadline = time.monotonic() + timeout
    codes = []
    for p in procs:
        try:
            codes.append(p.wait(timeout=max(deadline - time.monotonic(), 1)))
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise
    return codes


def ledger(folder: Path) -> Counter[tuple[int, int]]:
    lines = (folder / "ledger").read_text().splitlines()
    return Counter((int(x), int(y)) for x, y, _ in (line.split(",") for line in lines))


_OPENED: list[object] = []


@pytest.fixture(autouse=True)
def _close_databases() -> Iterator[None]:
    """Pooled PostgreSQL connections left to the GC warn (ResourceWarning) inside whichever test
    runs then: the storages this file opens are closed after each test."""
    yield
    while _OPENED:
        engine = getattr(getattr(_OPENED.pop(), "_backend", None), "engine", None)
        if engine is not None:
            engine.dispose()


def load(sweep: Path, folder: Path) -> optuna.Study:
    s = Sweep.from_file(sweep, directory=folder)
    storage = s.open_storage()
    _OPENED.append(storage)
    return optuna.load_study(study_name=s.name, storage=storage)


def completed_points(study: optuna.Study) -> Counter[tuple[int, int]]:
    return Counter(
        (t.params["x"], t.params["y"])
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if not t.user_attrs.get("reused")
    )


def logs(folder: Path) -> str:
    return "\n".join(p.read_text() for p in sorted(folder.glob("worker*.log")))


def wait_for(path: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} never appeared")
        time.sleep(0.05)


def assert_each_point_once(folder: Path, study: optuna.Study) -> None:
    ran = ledger(folder)
    assert set(ran) == set(GRID), f"missing: {sorted(set(GRID) - set(ran))[:10]}"
    assert [p for p, n in ran.items() if n != 1] == []
    done = completed_points(study)
    assert set(done) == set(GRID) and max(done.values()) == 1
    values = {
        (t.params["x"], t.params["y"]): t.value
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    }
    assert all(values[(x, y)] == x * 100 + y for x, y in GRID)
    assert not study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))


def run_with_a_kill(folder: Path, sweep: Path, n: int) -> optuna.Study:
    """n workers; the one that draws the HANG point is killed with SIGKILL inside that trial."""
    (folder / "hang").write_text("")
    procs = start_workers(folder, sweep, n)
    try:
        wait_for(folder / "hang.pid")
        victim = int((folder / "hang.pid").read_text())
        (folder / "hang").unlink()  # the retry of that point runs normally
        os.kill(victim, signal.SIGKILL)
        codes = {p.pid: code for p, code in zip(procs, wait_all(procs), strict=True)}
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert codes.pop(victim) == -signal.SIGKILL
    assert set(codes.values()) == {0}, logs(folder)
    study = load(sweep, folder)
    # Reaped by its heartbeat, or at once when its process is seen gone (issue 12, item 3).
    stale = [
        t
        for t in study.trials
        if t.state == TrialState.FAIL and str(t.user_attrs.get("reason")).startswith("stale:")
    ]
    # The embedded store may not have persisted a killed trial's params: its grid slot says it.
    assert [GRID[int(t.system_attrs.get(SLOT_ATTR, t.number))] for t in stale] == [HANG]
    return study


# -- PostgreSQL ------------------------------------------------------------------------------------
def test_four_workers_on_postgresql_complete_every_point_exactly_once(
    tmp_path: Path, postgres_url: str
) -> None:
    sweep = write_sweep(tmp_path, name="pg-four", storage=postgres_url)
    codes = wait_all(start_workers(tmp_path, sweep, 4))
    assert codes == [0, 0, 0, 0], logs(tmp_path)
    study = load(sweep, tmp_path)
    assert_each_point_once(tmp_path, study)
    # Work really was shared: more than one process ran points.
    pids = {line.split(",")[2] for line in (tmp_path / "ledger").read_text().splitlines()}
    assert len(pids) > 1
    assert "Traceback" not in logs(tmp_path)


def test_a_killed_worker_on_postgresql_has_its_trial_retried_by_the_others(
    tmp_path: Path, postgres_url: str
) -> None:
    sweep = write_sweep(tmp_path, name="pg-kill", storage=postgres_url)
    study = run_with_a_kill(tmp_path, sweep, 4)
    assert_each_point_once(tmp_path, study)
    assert "Traceback" not in logs(tmp_path)


# -- embedded store ------------------------------------------------------------------------------
def test_local_workers_on_the_embedded_store_lose_nothing_and_survive_a_kill(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path, name="local-kill", storage=None)
    study = run_with_a_kill(tmp_path, sweep, 3)
    assert_each_point_once(tmp_path, study)
    text = logs(tmp_path)
    assert "locked" not in text.lower() and "Traceback" not in text


# -- the heartbeat itself ------------------------------------------------------------------------
def test_the_embedded_heartbeat_keeps_a_slow_trial_alive_and_reaps_a_silent_one(tmp_path: Path) -> None:
    from fastgrid.storages import open_storage

    storage = open_storage(None, directory=tmp_path)
    study = optuna.create_study(study_name="hb", storage=storage)
    beat = Heartbeat(storage, interval=0.2, grace=1.0)
    assert not beat.native
    alive = study.ask()
    silent = study.ask()
    with beat.beating(alive._trial_id):
        time.sleep(1.6)
        assert beat.fail_stale(study) == [silent.number]
        assert HEARTBEAT_ATTR in storage.get_trial(alive._trial_id).system_attrs
    states = {t.number: t.state for t in study.get_trials(deepcopy=False)}
    assert states == {alive.number: TrialState.RUNNING, silent.number: TrialState.FAIL}
    assert storage.get_trial(silent._trial_id).user_attrs["reason"] == STALE_REASON
    # A second reaper finds nothing left to do.
    assert beat.fail_stale(study) == []


def test_the_embedded_heartbeat_reaches_the_other_workers_while_the_trial_runs(tmp_path: Path) -> None:
    """The beat is a deferred write to the running trial: it must be committed at once, or another
    worker (here: a second storage on the same file) sees no beat and fails a live trial."""
    from fastgrid.storages import open_storage

    owner = open_storage(None, directory=tmp_path)
    study = optuna.create_study(study_name="hb-two", storage=owner)
    trial = study.ask()
    reaper = open_storage(None, directory=tmp_path)
    reaper_study = optuna.load_study(study_name="hb-two", storage=reaper)
    with Heartbeat(owner, interval=0.2, grace=1.0).beating(trial._trial_id):
        time.sleep(1.6)  # the owner makes no storage call of its own meanwhile
        assert Heartbeat(reaper, interval=0.2, grace=1.0).fail_stale(reaper_study) == []
    assert reaper.get_trial(trial._trial_id).state == TrialState.RUNNING


def test_one_beat_thread_serves_every_trial_and_close_stops_it(tmp_path: Path) -> None:
    from fastgrid.storages import open_storage

    storage = open_storage(None, directory=tmp_path)
    study = optuna.create_study(study_name="hb-one", storage=storage)
    beat = Heartbeat(storage, interval=0.1, grace=1.0)
    before = threading.active_count()
    for _ in range(20):
        with beat.beating(study.ask()._trial_id):
            assert threading.active_count() == before + 1
    slow = study.ask()
    with beat.beating(slow._trial_id):
        # Its first beat comes one interval in: wait for it, not for a fixed 0.35 s that left
        # the beat thread a quarter of a second of slack on a loaded CI box.
        deadline = time.monotonic() + 30
        while HEARTBEAT_ATTR not in storage.get_trial(slow._trial_id).system_attrs:
            assert time.monotonic() < deadline, "the beat thread never beat the running trial"
            time.sleep(0.05)
    beat.close()
    assert threading.active_count() == before


def test_postgresql_storage_uses_optunas_heartbeat(tmp_path: Path, postgres_url: str) -> None:
    from fastgrid.storages import open_heartbeat_storage

    storage = open_heartbeat_storage(postgres_url, directory=tmp_path, interval=1, grace=2)
    _OPENED.append(storage)
    study = optuna.create_study(study_name="hb-native", storage=storage)
    beat = Heartbeat(storage, interval=1, grace=2)
    assert beat.native
    alive = study.ask()
    silent = study.ask()
    with beat.beating(silent._trial_id):
        pass  # one beat, then silence
    with beat.beating(alive._trial_id):
        time.sleep(3.5)
        assert beat.fail_stale(study) == [silent.number]
    assert storage.get_trial(alive._trial_id).state == TrialState.RUNNING
    assert storage.get_trial(silent._trial_id).user_attrs["reason"] == STALE_REASON


def test_grace_period_must_exceed_the_interval(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path, name="bad-hb", storage=None)
    text = sweep.read_text().replace("grace_period = 8", "grace_period = 1")
    sweep.write_text(text)
    out = subprocess.run(
        [sys.executable, "-m", "fastgrid", "worker", str(sweep)], cwd=tmp_path, capture_output=True, text=True
    )
    assert out.returncode == 2
    assert "sweep.grace_period" in out.stderr or "grace_period (1s)" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("flag", ["--heartbeat-interval", "--grace-period"])
def test_worker_heartbeat_flags_reject_nonsense(tmp_path: Path, flag: str) -> None:
    sweep = write_sweep(tmp_path, name="flags", storage=None)
    out = subprocess.run(
        [sys.executable, "-m", "fastgrid", "worker", str(sweep), flag, "0"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2 and flag in out.stderr and "Traceback" not in out.stderr
