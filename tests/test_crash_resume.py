"""Crash safety: a single-process sweep killed with SIGKILL at ten random moments, resumed each time.

The objective appends ``start`` and ``done`` lines to a ledger, so what actually ran is counted
independently of what the storage recorded.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import optuna
from fastgrid import Sweep
from fastgrid.samplers import SLOT_ATTR
from optuna.trial import TrialState

GRID = [(x, y) for x in range(5) for y in range(8)]
KILLS = 10

OBJECTIVE = """
import os
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def _log(kind, x, y):
    with open(os.path.join(HERE, "ledger"), "a") as f:
        f.write(f"{kind},{x},{y}\\n")


def run(cfg):
    x, y = cfg["x"], cfg["y"]
    _log("start", x, y)
    time.sleep(0.03)
    _log("done", x, y)
    return {"value": (x - 2) ** 2 + 0.1 * y, "trades": x * 10 + y}
"""


def write_sweep(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "objective.py").write_text(OBJECTIVE)
    path = folder / "crash.toml"
    path.write_text(
        textwrap.dedent(
            """
            [sweep]
            name = "crash"
            direction = "minimize"

            [objective]
            callable = "objective:run"

            [parameters]
            x = { type = "int", low = 0, high = 4 }
            y = { type = "int", low = 0, high = 7 }
            """
        )
    )
    return path


def start(folder: Path, sweep: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "fastgrid", "run", str(sweep), "--no-progress"],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def ledger(folder: Path, kind: str) -> Counter[tuple[int, int]]:
    path = folder / "ledger"
    if not path.exists():
        return Counter()
    rows = [line.split(",") for line in path.read_text().splitlines()]
    return Counter((int(x), int(y)) for k, x, y in rows if k == kind)


def results(folder: Path, sweep: Path) -> tuple[dict[tuple[int, int], float], list[optuna.trial.FrozenTrial]]:
    s = Sweep.from_file(sweep, directory=folder)
    trials = optuna.load_study(study_name=s.name, storage=s.open_storage()).get_trials(deepcopy=False)
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    values = {(t.params["x"], t.params["y"]): float(t.value or 0.0) for t in done}
    assert len(values) == len(done), "a point completed twice"
    return values, trials


def point(t: optuna.trial.FrozenTrial) -> tuple[int, int]:
    """The grid point of a trial from its slot: a killed trial may have no params recorded."""
    slot = t.system_attrs.get(SLOT_ATTR, t.number)
    return GRID[int(slot)]


def test_sigkill_at_ten_random_moments_then_resume_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    rng = random.Random(20261129)
    folder = tmp_path / "killed"
    sweep = write_sweep(folder)
    targets = sorted(rng.sample(range(1, len(GRID) - 2), KILLS))
    kills = 0
    for target in targets:
        proc = start(folder, sweep)
        deadline = time.monotonic() + 120
        while sum(ledger(folder, "done").values()) < target and proc.poll() is None:
            assert time.monotonic() < deadline, "the sweep made no progress"
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.04))  # anywhere in a trial, or between two
        if proc.poll() is None:
            proc.kill()
            kills += 1
        proc.communicate()  # reaps it and closes its stderr pipe
        assert proc.returncode in (0, -signal.SIGKILL)
    assert kills >= KILLS // 2, "most kills must land while the sweep was running"
    final = start(folder, sweep)
    _, err = final.communicate(timeout=300)
    assert final.returncode == 0, err.decode()
    assert b"Traceback" not in err

    values, trials = results(folder, sweep)
    clean = tmp_path / "clean"
    clean_sweep = write_sweep(clean)
    out = subprocess.run(
        [sys.executable, "-m", "fastgrid", "run", str(clean_sweep), "--no-progress"],
        cwd=clean,
        capture_output=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr.decode()
    expected, _ = results(clean, clean_sweep)
    assert set(expected) == set(GRID)
    assert values == expected

    # No completed point ran again: a point started once more only for each failed attempt.
    failed = Counter(point(t) for t in trials if t.state == TrialState.FAIL)
    started = ledger(folder, "start")
    assert all(started[p] <= 1 + failed[p] for p in GRID), (started, failed)
    # Interrupted trials were found (RUNNING left by a killed process) and retried.
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    interrupted = [
        t for t in trials if t.state == TrialState.FAIL and "stale" in t.user_attrs.get("reason", "")
    ]
    assert interrupted, "no kill landed inside a trial"
    assert all(point(t) in values for t in interrupted)
    assert ledger(folder, "done").keys() == set(GRID)
