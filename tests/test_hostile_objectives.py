"""Objectives that misbehave fail (or finish) only their own trial; the runner goes on and exits.

Issue 12, items 9 and 10: commands that make ``{output_file}`` a directory or a FIFO or delete their
own trial folder, and callables that return 10**400, odd dicts, raise exceptions that cannot be
printed or GeneratorExit, or leave a thread running.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from fastgrid import Sweep
from fastgrid.runner._evaluate import jsonable, objective_values


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no message for you")


class BadReal(float):
    def __float__(self) -> float:
        raise RuntimeError("not today")


def _cyclic() -> dict[str, Any]:
    d: dict[str, Any] = {"value": 1.0}
    d["self"] = d
    return d


BEHAVIOURS: list[tuple[Any, str | None]] = [
    (lambda: 10**400, "too large"),
    (lambda: {("a", 1): 2.0, "value": 1.0}, None),
    (lambda: {1: 2.0}, "missing"),
    (_cyclic, None),
    (lambda: (_ for _ in ()).throw(Unprintable()), "Unprintable"),
    (lambda: (_ for _ in ()).throw(GeneratorExit()), "GeneratorExit"),
    (lambda: {"value": BadReal(1.0)}, "not a number"),
    (lambda: 0.5, None),
]


def hostile(config: dict[str, Any]) -> Any:
    return BEHAVIOURS[config["case"]][0]()


def test_hostile_callables_fail_only_their_own_trial(tmp_path: Path) -> None:
    parameters = {"case": {"type": "int", "low": 0, "high": len(BEHAVIOURS) - 1}}
    sweep = Sweep(
        parameters=parameters,
        objective=hostile,
        direction="minimize",
        directory=tmp_path,
        progress=False,
        retry_failed=0,
    )
    result = sweep.run()
    by_case = {r["params"]["case"]: r for r in result.rows}
    assert len(by_case) == len(BEHAVIOURS)
    for case, (_, reason) in enumerate(BEHAVIOURS):
        row = by_case[case]
        if reason is None:
            assert row["state"] == "COMPLETE", row
        else:
            assert row["state"] == "FAIL" and reason in str(row["reason"]), row
    assert by_case[3]["metrics"]["self"] == {"value": 1.0, "self": "<cycle>"}
    assert by_case[1]["metrics"] == {"('a', 1)": 2.0, "value": 1.0}


def test_stored_metrics_are_json_whatever_the_objective_returned() -> None:
    assert jsonable({"a": float("nan"), 1: [1, (2, 3)], "b": {"c": 10**400}}) == {
        "a": None,
        "1": [1, [2, 3]],
        "b": {"c": 10**400},
    }
    assert jsonable(_cyclic()) == {"value": 1.0, "self": "<cycle>"}
    assert objective_values(["value"], {"value": 10**400}, None) == "metric value is too large for a float"
    assert "not a number" in str(objective_values(["value"], {"value": BadReal(2.0)}, None))


THREAD_OBJECTIVE = """
import threading, time

def run(cfg):
    threading.Thread(target=time.sleep, args=(3600,), name="left-behind").start()
    return float(cfg["x"])
"""


@pytest.mark.parametrize("workers", [1, 2])
def test_a_thread_left_running_by_the_objective_does_not_keep_the_runner_alive(
    tmp_path: Path, workers: int
) -> None:
    (tmp_path / "threads.py").write_text(THREAD_OBJECTIVE)
    (tmp_path / "sweep.toml").write_text(
        textwrap.dedent(
            f"""
            [sweep]
            name = "threads"
            direction = "minimize"
            workers = {workers}

            [objective]
            callable = "threads:run"

            [parameters]
            x = {{ type = "int", low = 0, high = 3 }}
            """
        )
    )
    proc = subprocess.run(
        [sys.executable, "-m", "fastgrid", "run", "sweep.toml", "--no-progress"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert proc.returncode == 0, proc.stderr
    assert "left-behind" in proc.stderr, proc.stderr  # said, not silently dropped


# -- commands -----------------------------------------------------------------------------------
COMMAND = """
import json, os, shutil, sys
case, out, trial_dir = int(sys.argv[1]), sys.argv[2], sys.argv[3]
if case == 0:
    os.mkdir(out)
elif case == 1:
    os.mkfifo(out)
elif case == 2:
    shutil.rmtree(trial_dir)
elif case == 3:
    os.mkfifo(os.path.join(trial_dir, "stdout.log.fifo"))
    os.replace(os.path.join(trial_dir, "stdout.log.fifo"), os.path.join(trial_dir, "stdout.log"))
else:
    with open(out, "w") as f:
        json.dump({"value": case}, f)
"""


def test_hostile_commands_fail_only_their_own_trial(tmp_path: Path) -> None:
    script = tmp_path / "hostile.py"
    script.write_text(COMMAND)
    started = time.monotonic()
    result = Sweep(
        parameters={"case": {"type": "int", "low": 0, "high": 4}},
        objective=[sys.executable, str(script), "{params.case}", "{output_file}", "{trial_dir}"],
        direction="minimize",
        directory=tmp_path,
        progress=False,
        retry_failed=0,
        objective_timeout=60,
    ).run()
    assert time.monotonic() - started < 50  # nothing waited for a writer of the FIFO
    by_case = {r["params"]["case"]: r for r in result.rows}
    assert by_case[4]["state"] == "COMPLETE"
    for case, needle in [(0, "directory"), (1, "FIFO"), (2, "output")]:
        assert by_case[case]["state"] == "FAIL" and needle in str(by_case[case]["reason"]), by_case[case]
    assert by_case[3]["state"] == "FAIL", by_case[3]  # stdout.log is a FIFO: no JSON line read from it
    assert result.counts["running"] == 0
    # A retry finds the trial folder in a usable state again.
    again = Sweep(
        parameters={"case": {"type": "int", "low": 0, "high": 4}},
        objective=[sys.executable, str(script), "{params.case}", "{output_file}", "{trial_dir}"],
        direction="minimize",
        directory=tmp_path,
        progress=False,
    ).run()
    assert again.counts["running"] == 0
    assert os.path.isdir(tmp_path / "runs" / "sweep")
