"""``fastgrid run --check`` on a batch sweep: one grid point scored in the foreground as its chunk
would score it (the same columns, config, result checks and ``require``), with the objective's whole
traceback, recording nothing. It failed with ``objective.callable: callable 'None'``."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastgrid import Grid, Sweep
from fastgrid.cli import main
from test_batch_sweep import PARAMS, frame, sweep_file


@pytest.fixture
def folder(tmp_path: Path) -> Any:
    sys.modules.pop("batchobj", None)  # each test writes its own objective module
    yield tmp_path
    sys.modules.pop("batchobj", None)


def check(folder: Path, *args: str, file: str = "b.toml") -> Any:
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        return CliRunner().invoke(main, ["run", file, "--check", *args], catch_exceptions=False)
    finally:
        os.chdir(cwd)


def slot_of(**values: Any) -> int:
    grid = Grid(PARAMS, constraints=("a < b",))
    return next(i for i in range(len(grid)) if all(grid[i][k] == v for k, v in values.items()))


def test_check_scores_a_point_as_the_run_records_it_and_records_nothing(folder: Path) -> None:
    sweep_file(folder)
    slot = slot_of(a=5, b=11, mode="y")
    done = check(folder, "--point", str(slot))
    assert done.exit_code == 0, done.output
    assert not (folder / "fastgrid.db").exists()
    lines = done.output.splitlines()
    assert lines[0] == f'checking point {slot} of sweep b: {{"a": 5, "b": 11, "mode": "y"}}'
    assert lines[-1] == "nothing was recorded (no storage was opened)"
    # The run's recorded row for that slot has the metrics the check printed.
    Sweep.from_file(folder / "b.toml", directory=folder, progress=False).run()
    row = frame(folder).set_index("slot").loc[slot]
    assert row["score"] == 5 * 2.0 - 11 + 0.5 + 1  # the config's bonus reached the objective
    assert f'metrics: {{"score": {row["score"]}, "trades": {float(row["trades"])}}}' in lines


def test_a_point_that_raises_shows_its_whole_traceback_and_fails(folder: Path) -> None:
    sweep_file(folder)
    done = check(folder, "--point", str(slot_of(a=3, b=7, mode="x")))
    assert done.exit_code == 1, done.output
    assert "Traceback (most recent call last)" in done.output
    assert 'batchobj.py", line 9, in score' in done.output  # the objective's own frame
    assert done.output.splitlines()[-1] == "FAIL: ValueError: cannot trade 3/7"


def test_an_infeasible_point_names_the_requirement_it_breaks(folder: Path) -> None:
    sweep_file(folder, require='["trades >= 10"]')
    done = check(folder, "--point", str(slot_of(a=1, b=2, mode="x")))
    assert done.exit_code == 1, done.output
    assert "infeasible: trades >= 10" in done.output.splitlines()
    assert done.output.splitlines()[-1] == "nothing was recorded (no storage was opened)"


def test_a_result_of_the_wrong_shape_is_the_chunks_error(folder: Path) -> None:
    sweep_file(folder, fn="broken")
    (folder / "batchobj.py").write_text(
        "import numpy as np\ndef broken(cols, config):\n    return {'score': 1.0, 'trades': np.zeros(2)}\n"
    )
    done = check(folder)
    assert done.exit_code == 1, done.output
    assert done.output.splitlines()[-1] == (
        "FAIL: objective 'batchobj:broken', chunk slots 0..0: metric 'score' has a scalar, "
        "expected 1 values (one per point, in order)"
    )


def test_a_non_finite_objective_metric_fails_the_point_as_in_a_run(folder: Path) -> None:
    sweep_file(folder, fn="nan")
    (folder / "batchobj.py").write_text(
        "import numpy as np\n"
        "def nan(cols, config):\n"
        "    return {'score': np.full(len(cols['a']), np.nan), 'trades': cols['b'] * 1}\n"
    )
    done = check(folder)
    assert done.exit_code == 1, done.output
    assert done.output.splitlines()[-1] == "FAIL: metric 'score' is NaN"


def test_check_of_a_per_point_callable_in_batch_mode(folder: Path) -> None:
    calls: list[dict[str, Any]] = []

    def per_point(config: dict[str, Any]) -> dict[str, float]:
        calls.append(config)
        return {"score": config["a"] * 1.0, "trades": float(config["b"])}

    sweep_file(folder)
    sweep = Sweep(
        name="pp",
        mode="batch",
        objective=per_point,
        parameters=PARAMS,
        where=["a < b"],
        config=folder / "config.json",
        direction="maximize",
        metric="score",
        directory=folder,
        progress=False,
    )
    lines: list[str] = []

    class Out:
        def write(self, text: str) -> None:
            lines.extend(text.splitlines())

        def flush(self) -> None:
            pass

    assert sweep.check(-1, out=Out())  # type: ignore[arg-type]
    assert len(calls) == 1 and calls[0]["a"] == 12 and calls[0]["b"] == 20 and calls[0]["bonus"] == 1
    assert 'metrics: {"score": 12.0, "trades": 20.0}' in lines


def test_a_point_past_the_grid_is_one_line(folder: Path) -> None:
    sweep_file(folder)
    size = len(Grid(PARAMS, constraints=("a < b",)))
    done = check(folder, "--point", str(size))
    assert done.exit_code == 2
    assert f"--point {size}: the grid has {size} points (0..{size - 1})" in done.output


def test_check_of_a_shuffled_sweep_scores_the_point_its_report_numbers_so(folder: Path) -> None:
    path = sweep_file(folder, extra='order = "shuffled"\nseed = 11')
    result = Sweep.from_file(path, directory=folder, progress=False).run()
    best = result.best
    assert best is not None
    done = check(folder, "--point", str(best["number"]))
    assert done.exit_code == 0, done.output
    params = best["params"]
    assert done.output.splitlines()[0] == (
        f"checking point {best['number']} of sweep b: "
        f'{{"a": {params["a"]}, "b": {params["b"]}, "mode": "{params["mode"]}"}}'
    )
    assert f'"score": {best["metrics"]["score"]}' in done.output
