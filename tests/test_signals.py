"""A runner that is stopped or killed leaves nothing running (issue 12, items 1 and 2).

SIGTERM stops worker processes as Ctrl-C does; SIGKILL of the runner (its pid, or its whole
process group) leaves no command, no command's background child and no worker process behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import optuna
import pytest
from fastgrid.storages import open_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)

COMMAND = """
import os, subprocess, sys, time
trial_dir = sys.argv[1]
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
with open(os.path.join(trial_dir, "pids.tmp"), "w") as f:
    f.write(f"{os.getpid()} {child.pid}")
os.replace(os.path.join(trial_dir, "pids.tmp"), os.path.join(trial_dir, "pids"))
time.sleep(60)
"""

CALLABLE = """
import os, time

def run(cfg):
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, f"pid{cfg['x']}.tmp"), "w") as f:
        f.write(str(os.getpid()))
    os.replace(os.path.join(here, f"pid{cfg['x']}.tmp"), os.path.join(here, f"pid{cfg['x']}"))
    time.sleep(60)
    return 0.0
"""


def gone(pid: int) -> bool:
    """No such process, or only its zombie (its parent died and nobody reaped it yet)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def wait_until(check: object, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return bool(check())  # type: ignore[operator]


@pytest.fixture
def start() -> Iterator[Callable[[Path], subprocess.Popen[bytes]]]:
    """Starts ``fastgrid run`` in a process group of its own (so a test can kill the group); a
    runner a failed test left behind is killed with its group afterwards."""
    started: list[subprocess.Popen[bytes]] = []

    def run(folder: Path) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fastgrid", "run", "sweep.toml", "--no-progress"],
            cwd=folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        started.append(proc)
        return proc

    yield run
    for proc in started:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()


def sweep_file(folder: Path, objective: str, workers: int = 1) -> None:
    (folder / "sweep.toml").write_text(
        textwrap.dedent(
            f"""
            [sweep]
            name = "s"
            direction = "minimize"
            workers = {workers}

            [objective]
            {objective}

            [parameters]
            x = {{ type = "int", low = 0, high = 3 }}
            """
        )
    )


@pytest.mark.parametrize("target", ["pid", "group"])
def test_a_runner_killed_with_sigkill_leaves_no_command_running(
    tmp_path: Path, target: str, start: Callable[[Path], subprocess.Popen[bytes]]
) -> None:
    (tmp_path / "cmd.py").write_text(COMMAND)
    sweep_file(
        tmp_path, f'command = ["{sys.executable}", "{tmp_path / "cmd.py"}", "{{trial_dir}}"]', workers=2
    )
    proc = start(tmp_path)
    pid_files = [tmp_path / "runs" / "s" / f"trial_{n}" / "pids" for n in (0, 1)]
    assert wait_until(lambda: all(p.exists() for p in pid_files), 60), proc.stderr
    pids = [int(p) for f in pid_files for p in f.read_text().split()]
    if target == "pid":
        os.kill(proc.pid, signal.SIGKILL)
    else:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert wait_until(lambda: all(gone(p) for p in pids), 15), [p for p in pids if not gone(p)]


def test_a_runner_killed_with_sigkill_stops_its_worker_processes(
    tmp_path: Path, start: Callable[[Path], subprocess.Popen[bytes]]
) -> None:
    (tmp_path / "slow.py").write_text(CALLABLE)
    sweep_file(tmp_path, 'callable = "slow:run"', workers=2)
    proc = start(tmp_path)
    assert wait_until(lambda: len(list(tmp_path.glob("pid[0-9]"))) == 2, 90), proc.stderr
    workers = [int(p.read_text()) for p in tmp_path.glob("pid[0-9]") if int(p.read_text()) != proc.pid]
    assert len(workers) == 1  # worker 0 is the runner itself
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert wait_until(lambda: gone(workers[0]), 15), "the worker process outlived its runner"
    # It recorded its trial as interrupted on its way out; the runner's own trial is left RUNNING.
    study = optuna.load_study(study_name="s", storage=open_storage(None, directory=tmp_path))
    reasons = sorted(str(t.user_attrs.get("reason")) for t in study.trials)
    assert reasons == ["None", "interrupted"], [(t.state, t.user_attrs) for t in study.trials]


def test_sigterm_stops_worker_processes_and_exits_143(
    tmp_path: Path, start: Callable[[Path], subprocess.Popen[bytes]]
) -> None:
    (tmp_path / "slow.py").write_text(CALLABLE)
    sweep_file(tmp_path, 'callable = "slow:run"', workers=2)
    proc = start(tmp_path)
    assert wait_until(lambda: len(list(tmp_path.glob("pid[0-9]"))) == 2, 90), proc.stderr
    pids = [int(p.read_text()) for p in tmp_path.glob("pid[0-9]")]
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert b"Traceback" not in err and b"interrupted" in err, err
    assert wait_until(lambda: all(gone(p) for p in pids), 15)
    study = optuna.load_study(study_name="s", storage=open_storage(None, directory=tmp_path))
    assert sorted(t.user_attrs.get("reason") for t in study.trials) == ["interrupted", "interrupted"]


FOLLOWER = """
import multiprocessing as mp, os, sys, time
from fastgrid.runner._signals import first_interrupt_only, follow_parent

def child(runner, path):
    try:
        with first_interrupt_only():
            follow_parent(runner)
            with open(path + ".tmp", "w") as f:
                f.write(str(os.getpid()))
            os.replace(path + ".tmp", path)
            time.sleep(60)
    except KeyboardInterrupt:
        sys.exit(130)

if __name__ == "__main__":
    ctx = mp.get_context(sys.argv[2])
    ctx.Process(target=child, args=(os.getpid(), sys.argv[1])).start()
    time.sleep(60)
"""


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_a_worker_process_follows_its_runner_however_it_was_started(tmp_path: Path, method: str) -> None:
    # A forkserver's child has the forkserver, not the runner, for a parent (issue 12, item 2).
    (tmp_path / "follower.py").write_text(FOLLOWER)
    pid_file = tmp_path / "child.pid"
    runner = subprocess.Popen(
        [sys.executable, str(tmp_path / "follower.py"), str(pid_file), method], start_new_session=True
    )
    try:
        assert wait_until(pid_file.exists, 60), "the worker never started"
        child = int(pid_file.read_text())
        assert wait_until(lambda: not gone(child), 1)
        os.kill(runner.pid, signal.SIGKILL)
        runner.wait(timeout=30)
        assert wait_until(lambda: gone(child), 15), f"the {method} worker outlived its runner"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(runner.pid, signal.SIGKILL)
        runner.wait()


BATCH = """
import os, sys, time
from fastgrid.batch import run_batch

def slow(cols, config):
    path = os.path.join(sys.argv[1], f"pid{os.getpid()}")
    if not os.path.exists(path):
        with open(path + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.replace(path + ".tmp", path)
    time.sleep(5)  # longer than the test waits: only following its runner ends this worker
    return {"score": cols["a"] * 1.0}

run_batch({"a": {"type": "int", "low": 1, "high": 400}}, batch=slow, name="k", metric="score",
          direction="minimize", chunk=10, directory=sys.argv[1], workers=2)
"""


def test_a_batch_runner_killed_with_sigkill_stops_its_worker_processes(tmp_path: Path) -> None:
    (tmp_path / "batch.py").write_text(BATCH)
    runner = subprocess.Popen(
        [sys.executable, str(tmp_path / "batch.py"), str(tmp_path)],
        start_new_session=True,
        stderr=subprocess.PIPE,
    )
    try:
        assert wait_until(lambda: len(list(tmp_path.glob("pid[0-9]*[0-9]"))) == 2, 60), runner.stderr
        workers = [int(p.read_text()) for p in tmp_path.glob("pid[0-9]*[0-9]")]
        workers.remove(runner.pid)
        os.kill(runner.pid, signal.SIGKILL)
        runner.communicate(timeout=30)
        assert wait_until(lambda: gone(workers[0]), 15), "the batch worker outlived its runner"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(runner.pid, signal.SIGKILL)
        runner.communicate()
