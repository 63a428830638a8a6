"""Which runs of a sweep are alive, and what a dead one left RUNNING (issue 12, items 3 and 4).

A run killed in a container (where it was PID 1) or under another hostname must not hold its
trial RUNNING forever; a run that cannot be looked at from here is alive only while its heartbeat
is fresh; ``--fresh`` is refused while another run is alive.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
from fastgrid import Sweep
from fastgrid.exceptions import SweepInUseError
from fastgrid.liveness import identity
from fastgrid.storages import open_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)

CALLS: list[int] = []


def objective(config: dict[str, Any]) -> float:
    CALLS.append(config["x"])
    return float(config["x"])


def make(tmp_path: Path, **options: Any) -> Sweep:
    return Sweep(
        parameters={"x": {"type": "int", "low": 0, "high": 3}},
        objective=objective,
        direction="minimize",
        name="runs",
        directory=tmp_path,
        progress=False,
        **options,
    )


def leave_a_trial_running(tmp_path: Path, run_id: str, info: dict[str, Any] | None) -> int:
    """The first run did points 0 and 1; another run (``info``) started point 2 and then vanished."""
    make(tmp_path, max_trials=2).run()
    study = optuna.load_study(study_name="runs", storage=open_storage(None, directory=tmp_path))
    trial = study.ask()
    trial.suggest_int("x", 0, 3)  # what the grid sampler gives trial 2
    study._storage.set_trial_system_attr(trial._trial_id, "fastgrid:run", run_id)
    if info is not None:
        study._storage.set_study_system_attr(study._study_id, f"fastgrid:run:{run_id}", info)
    CALLS.clear()
    return trial.number


def ghost(**info: Any) -> dict[str, Any]:
    return {"host": "another-container", "pid": 1, "started": time.time() - 3600, **info}


@pytest.mark.parametrize(
    "info",
    [
        # The case of the report: PID 1 of a container, this hostname, an old fastgrid's record.
        {"host": socket.gethostname(), "pid": 1, "started": time.time() - 3600},
        # Another container: nothing to look at, a heartbeat long gone.
        ghost(boot="another-boot", pidns=1, ticks=1, beat=time.time() - 3600),
        # This machine, this namespace, a pid that is not that run's (another start time).
        {**identity(), "ticks": -1, "started": time.time(), "beat": time.time()},
    ],
    ids=["pid-1-same-hostname", "other-container", "reused-pid"],
)
def test_a_trial_of_a_dead_run_is_failed_and_its_point_run(tmp_path: Path, info: dict[str, Any]) -> None:
    number = leave_a_trial_running(tmp_path, "ghost", info)
    result = make(tmp_path).run()
    rows = {r["number"]: r for r in result.rows}
    assert rows[number]["state"] == "FAIL" and rows[number]["reason"].startswith("stale")
    assert sorted(CALLS) == [2, 3]
    assert result.counts["running"] == 0 and result.counts["complete"] == 4


def test_a_run_elsewhere_is_waited_for_until_its_heartbeat_stops(tmp_path: Path) -> None:
    # Alive by its heartbeat when this run starts; it never beats again (it was killed).
    beat = time.time()
    number = leave_a_trial_running(tmp_path, "far", ghost(boot="b", pidns=1, ticks=1, beat=beat))
    result = make(tmp_path, grace_period=2, heartbeat_interval=1).run()
    # It waited until that heartbeat was older than the grace period instead of calling the sweep
    # done. Timed from the beat: the setup above alone may take a second on a busy CI box.
    assert time.time() - beat > 2
    rows = {r["number"]: r for r in result.rows}
    assert rows[number]["state"] == "FAIL"
    assert sorted(CALLS) == [2, 3]
    assert result.counts["running"] == 0 and result.counts["complete"] == 4


def test_a_live_run_on_this_machine_keeps_its_trial_and_is_not_waited_for(tmp_path: Path) -> None:
    me = {**identity(), "started": time.time(), "beat": time.time() - 3600}  # alive: its process is
    number = leave_a_trial_running(tmp_path, "alive", me)
    result = make(tmp_path).run()
    rows = {r["number"]: r for r in result.rows}
    assert rows[number]["state"] == "RUNNING"
    assert sorted(CALLS) == [3]
    assert result.counts["running"] == 1


def test_fresh_is_refused_while_another_run_is_alive(tmp_path: Path) -> None:
    number = leave_a_trial_running(tmp_path, "alive", {**identity(), "started": time.time()})
    with pytest.raises(SweepInUseError, match=r"is being run by another process \(host .*--fresh"):
        make(tmp_path, fresh=True).run()
    study = optuna.load_study(study_name="runs", storage=open_storage(None, directory=tmp_path))
    assert len(study.trials) == number + 1  # nothing was deleted
    # Once that run is gone, --fresh starts over.
    study._storage.set_study_system_attr(study._study_id, "fastgrid:run:alive", None)
    result = make(tmp_path, fresh=True).run()
    assert result.counts["complete"] == 4 and len(result.study.trials) == 4


def test_a_study_deleted_under_a_run_is_one_clear_error(tmp_path: Path) -> None:
    # The sibling of item 4 that no --fresh check can stop: Optuna's own tools delete studies too.
    from fastgrid.exceptions import SweepChangedError

    def deleting(config: dict[str, Any]) -> float:
        if config["x"] == 1:
            optuna.delete_study(study_name="runs", storage=open_storage(None, directory=tmp_path))
        return 0.0

    sweep = Sweep(
        parameters={"x": {"type": "int", "low": 0, "high": 3}},
        objective=deleting,
        direction="minimize",
        name="runs",
        directory=tmp_path,
        progress=False,
    )
    with pytest.raises(SweepChangedError, match="deleted while this run was writing it"):
        sweep.run()
