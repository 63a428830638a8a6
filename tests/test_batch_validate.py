"""``[validate]`` in a batch sweep: the top points re-scored with the override, as per trial."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastgrid import Sweep, SweepFileError, load
from fastgrid.batch import open_batch_store
from fastgrid.reporting import render_report

# In sample (window 0) x = 3 is best; held out (window 1) x = 1 would be, but there x = 4 raises,
# (x, y) = (2, 1) scores NaN and y = 1 with x = 3 breaks `trades >= 7`. VAL_LOG counts held-out calls.
OBJECTIVE = """
import math, os, time
import numpy as np

def _log(config):
    if config["data"]["window"] == 1 and os.environ.get("VAL_LOG"):
        with open(os.environ["VAL_LOG"], "a") as fh:
            fh.write(f"{os.getpid()}\\n")

def point(config):
    _log(config)
    x, y, w = config["p"]["x"], config["p"]["y"], config["data"]["window"]
    if w == 1 and x == 4:
        raise ValueError("bad held-out point")
    score = -((x - (1 if w == 1 else 3)) ** 2) - 0.1 * y
    if w == 1 and x == 2 and y == 1:
        score = math.nan
    return {"score": score, "trades": 10 - 2 * x * y * w}

def batch(columns, config):
    _log(config)
    x, y, w = columns["p.x"], columns["p.y"], config["data"]["window"]
    if w == 1 and (x == 4).any():
        raise ValueError("bad held-out point")
    score = -((x - (1 if w == 1 else 3)) ** 2) - 0.1 * y
    score = np.where((w == 1) & (x == 2) & (y == 1), np.nan, score)
    return {"score": score, "trades": 10 - 2 * x * y * w}

def slow(columns, config):
    time.sleep(float(os.environ.get("VAL_SLEEP", "0")))
    return batch(columns, config)
"""

SWEEP = """
[sweep]
name = "{name}"
mode = "{mode}"
direction = "maximize"
metric = "score"
{extra}

[objective]
{objective}

[config]
path = "config.json"

[constraints]
require = ["trades >= 7"]

[validate]
top = {top}
override = {{ "data.window" = 1 }}

[parameters]
"p.x" = {{ type = "int", low = 1, high = 6 }}
"p.y" = {{ type = "int", low = 0, high = 1 }}
"""

BATCH = 'batch = "valobj:batch"'
CALLABLE = 'callable = "valobj:point"'


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "valobj.py").write_text(OBJECTIVE)
    (tmp_path / "config.json").write_text(json.dumps({"data": {"window": 0}, "p": {"x": 0, "y": 0}}))
    monkeypatch.setenv("VAL_LOG", str(tmp_path / "held_out.log"))
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def sweep_file(
    folder: Path, *, name: str, mode: str = "batch", objective: str = BATCH, top: int = 6, extra: str = ""
) -> Path:
    path = folder / f"{name}.toml"
    path.write_text(SWEEP.format(name=name, mode=mode, objective=objective, top=top, extra=extra))
    return path


def held_out_calls(folder: Path) -> int:
    log = folder / "held_out.log"
    return len(log.read_text().splitlines()) if log.exists() else 0


def shown(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    keys = ("number", "params", "value", "validated", "feasible")
    return [{k: r[k] for k in keys} | {"failed": r["reason"] is not None} for r in rows]


@pytest.mark.parametrize("objective", [BATCH, CALLABLE], ids=["batch", "callable"])
def test_batch_validation_equals_the_per_trial_one(folder: Path, objective: str) -> None:
    trial = Sweep.from_file(
        sweep_file(folder, name="t", mode="trial", objective=CALLABLE), directory=folder, progress=False
    ).run()
    batch = Sweep.from_file(sweep_file(folder, name="b", objective=objective), directory=folder).run()
    assert shown(batch.validation) == shown(trial.validation)
    # Best held out first, then the points without a held-out score, each for its reason.
    assert [(v["number"], v["validated"]) for v in batch.validation[:2]] == [(2, -1.0), (4, -4.0)]
    reasons = {v["number"]: v["reason"] for v in batch.validation}
    assert reasons[3] == "metric 'score' is NaN"
    assert reasons[5] == "infeasible: trades >= 7" == {v["number"]: v["reason"] for v in trial.validation}[5]
    assert reasons[6] == reasons[7] == "ValueError: bad held-out point"
    for b, t in zip(batch.validation, trial.validation, strict=True):
        if b["validated"] is not None or b["reason"].startswith("infeasible"):
            assert b["metrics"] == t["metrics"]
    # Best: the best held out (not the search's best, slot 4), its config the in-sample one.
    assert batch.best is not None and trial.best is not None
    assert batch.best["number"] == trial.best["number"] == 2
    assert batch.best["params"] == trial.best["params"] == {"p.x": 2, "p.y": 0}
    assert batch.best_trials == [batch.best]
    assert batch.best_config == trial.best_config
    assert json.loads(batch.best_config_path.read_text())["data"]["window"] == 0
    # Stored on the study, read back by load() (BatchReport.best is the validated best too).
    report = load(folder / "b.toml", directory=folder)
    assert report.validation == json.loads(json.dumps(batch.validation))
    assert report.best is not None and report.best["number"] == 2
    assert report.best_config is not None and report.best_config["p"] == {"x": 2, "y": 0}


def test_a_batch_objective_scores_the_top_points_in_one_call(folder: Path) -> None:
    # The top two (slots 4 and 5) do not raise held out: one call scores both.
    result = Sweep.from_file(sweep_file(folder, name="one", top=2), directory=folder).run()
    assert held_out_calls(folder) == 1
    assert [v["number"] for v in result.validation] == [4, 5]
    assert result.best is not None and result.best["number"] == 4  # slot 5 is infeasible held out


def test_an_override_path_the_config_lacks_is_refused_before_any_chunk_runs(folder: Path) -> None:
    path = sweep_file(folder, name="typo")
    path.write_text(path.read_text().replace('"data.window" = 1', '"data.windw" = 1'))
    with pytest.raises(SweepFileError, match=r"validate.override\['data.windw'\]: the config has no key"):
        Sweep.from_file(path, directory=folder).run()
    store = open_batch_store(folder / "fastgrid.db")
    try:
        assert store.sweep("typo") is None  # not even registered: no chunk ran
    finally:
        store.close()
    out = subprocess.run(
        [sys.executable, "-m", "fastgrid", "run", str(path), "--no-progress"],
        cwd=folder,
        capture_output=True,
        text=True,
    )
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert "validate.override['data.windw']: the config has no key 'data.windw'" in out.stderr


def test_no_point_validates_then_best_is_the_search_best(folder: Path) -> None:
    # The top point held out: x = 3, y = 0 scores -4 and is feasible; make every top point fail.
    path = sweep_file(folder, name="none", top=1)
    path.write_text(path.read_text().replace('"data.window" = 1', '"data.window" = 1, "p.x" = 4'))
    result = Sweep.from_file(path, directory=folder).run()
    assert [(v["number"], v["validated"], v["reason"]) for v in result.validation] == [
        (4, None, "ValueError: bad held-out point")
    ]
    assert result.best is not None and result.best["number"] == 4  # the search's best
    report = load(path, directory=folder)
    assert report.best is not None and report.best["number"] == 4


def test_run_and_report_print_the_validation(folder: Path) -> None:
    path = sweep_file(folder, name="cli")
    run = subprocess.run(
        [sys.executable, "-m", "fastgrid", "run", str(path), "--no-progress"],
        cwd=folder,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert "best validated: point 2, -1 in the search, -1 held out" in lines
    assert "best validated point (grid slot 2): -1" in lines
    assert "  validated point 4: search 0, held-out -4" in lines
    assert "  validated point 5: search -0.1, held-out - (infeasible: trades >= 7)" in lines
    report = subprocess.run(
        [sys.executable, "-m", "fastgrid", "report", str(path), "--top", "3"],
        cwd=folder,
        capture_output=True,
        text=True,
    )
    assert report.returncode == 0, report.stderr
    assert "validation (held-out re-run of the top points)" in report.stdout
    assert "ValueError: bad held-out point" in report.stdout
    assert "best validated point: slot 2 score=-1" in report.stdout


def test_render_and_json_of_a_batch_report(folder: Path) -> None:
    from rich.console import Console

    path = sweep_file(folder, name="json")
    Sweep.from_file(path, directory=folder).run()
    report = load(path, directory=folder)
    console = Console(record=True, width=200)
    render_report(report, top=3, console=console)
    text = console.export_text()
    assert text.index("validation (held-out re-run of the top points)") < text.index("best validated point")
    report.to_json(folder / "r.json")
    data = json.loads((folder / "r.json").read_text())
    assert data["best"]["number"] == 2
    assert [v["number"] for v in data["validation"]] == [2, 4, 3, 5, 6, 7]


def test_a_new_run_validates_again_and_workers_finishing_together_validate_once(folder: Path) -> None:
    path = sweep_file(folder, name="join", top=2, objective='batch = "valobj:slow"', extra="chunk = 1")
    env = {**os.environ, "VAL_SLEEP": "0.25", "PYTHONPATH": str(folder)}
    command = [sys.executable, "-m", "fastgrid", "worker", str(path), "--no-progress"]
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    workers = [subprocess.Popen(command, cwd=folder, env=env, **pipes) for _ in range(2)]
    outs = [w.communicate(timeout=120) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], [o[1] for o in outs]
    ran = [int(o[0].split("ran ")[1].split(" point")[0]) for o in outs]
    assert sum(ran) == 12 and min(ran) > 0, outs  # both workers ran chunks, then finished together
    # One of them validated (one call for both points), the other one read its rows.
    assert held_out_calls(folder) == 1
    for out, _ in outs:
        assert "best validated point (grid slot 4): 0" in out
    # A later run validates again, as a per-trial run does (the objective may have changed).
    result = Sweep.from_file(path, directory=folder).run()
    assert result.ran == 0 and held_out_calls(folder) == 2
    assert result.best is not None and result.best["number"] == 4


def test_a_run_waits_while_another_worker_holds_the_validation(folder: Path) -> None:
    import threading
    import time

    from fastgrid.batch import owner_id
    from fastgrid.runner._batchvalidate import VALIDATION_SLOT

    path = sweep_file(folder, name="held", top=2)
    Sweep.from_file(path, directory=folder).run()
    assert held_out_calls(folder) == 1
    store = open_batch_store(folder / "fastgrid.db")
    other = owner_id()  # a live process (this one) that is not the run's owner
    assert store.claim_leaders("held", other, [VALIDATION_SLOT]) == [VALIDATION_SLOT]
    timer = threading.Timer(0.5, store.release_leaders, ("held", other, [VALIDATION_SLOT]))
    timer.start()
    started = time.monotonic()
    try:
        result = Sweep.from_file(path, directory=folder).run()
    finally:
        timer.join()
        store.close()
    # It waited for the holder, then validated itself (what is stored predates this run).
    assert time.monotonic() - started >= 0.5
    assert held_out_calls(folder) == 2
    assert result.best is not None and result.best["number"] == 4


def test_the_validating_worker_renews_its_claim_while_it_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from fastgrid.runner import _batchvalidate

    class Store:
        def __init__(self) -> None:
            self.claims: list[tuple[str, str, list[int]]] = []

        def claim_leaders(self, name: str, owner: str, slots: list[int]) -> list[int]:
            self.claims.append((name, owner, slots))
            return slots

    monkeypatch.setattr(_batchvalidate, "RENEW_S", 0.02)
    store = Store()
    with _batchvalidate._Renew(store, "s", "me"):
        time.sleep(0.3)
    renewed = len(store.claims)
    time.sleep(0.1)
    assert renewed >= 3 and len(store.claims) == renewed  # renewed while running, not after
    assert set(map(str, store.claims)) == {str(("s", "me", [_batchvalidate.VALIDATION_SLOT]))}


def test_batch_validation_on_postgresql(folder: Path, postgres_url: str) -> None:
    from support.pgjournal import fresh_journal_url

    url = fresh_journal_url(postgres_url)
    local = Sweep.from_file(sweep_file(folder, name="sq"), directory=folder).run()
    path = sweep_file(folder, name="pg", extra=f'storage = "{url}"')
    result = Sweep.from_file(path, directory=folder).run()
    assert shown(result.validation) == shown(local.validation)
    assert result.best is not None and result.best["number"] == 2
    report = load(path, directory=folder)
    assert report.best is not None and report.best["number"] == 2
    assert [v["number"] for v in report.validation] == [2, 4, 3, 5, 6, 7]


def _by_type(columns: dict[str, Any], config: Any) -> dict[str, Any]:
    # An int 1 and a string "1" on one axis score differently; the chunk's object column keeps them
    # apart (a column rebuilt from the stored params with np.array made both the string "1").
    import numpy as np

    kind = np.array([10.0 if isinstance(v, str) else 20.0 for v in columns["m"]])
    return {"score": kind + columns["k"] + config["shift"]}


@pytest.mark.parametrize("order", ["sequential", "shuffled"])
def test_the_re_run_gets_the_columns_its_chunk_got(tmp_path: Path, order: str) -> None:
    result = Sweep(
        name="types",
        mode="batch",
        batch=_by_type,
        parameters={
            "m": {"type": "grid", "values": [1, "1", [1]]},
            "k": {"type": "int", "low": 0, "high": 4},
        },
        config={"shift": 0, "m": 0, "k": 0},
        order=order,
        seed=7,
        validate={"top": 15, "override": {"shift": 0}},  # held out = in sample: scores must repeat
        direction="maximize",
        metric="score",
        directory=tmp_path,
        progress=False,
    ).run()
    rows = result.validation
    assert len(rows) == 15
    assert all(r["validated"] == r["value"] for r in rows), [
        (r["params"], r["value"], r["validated"]) for r in rows
    ]
