"""Batch sweeps tried as a demanding new user would, second pass: the writing commands, the heatmap.
Each test is a place where fastgrid was wrong, or unclear on bad input (issue 13)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import fastgrid
import numpy as np
import pytest
from click.testing import CliRunner
from fastgrid.cli import main

SWEEP = """
[sweep]
name = "nu2"
mode = "batch"
chunk = 7
direction = ["maximize", "minimize"]
metrics = ["score", "risk"]

[objective]
batch = "nu2obj:f"

[parameters]
a = { type = "int", low = 1, high = 5 }
b = { type = "grid", values = [0.5, 1.5, 2.5] }
w = { type = "grid", values = [[1, 2], [3], { k = 1 }, "s", true, 1] }
fixed = 7
"""

OBJECTIVE = """
import numpy as np

def f(cols, config):
    a = np.asarray(cols["a"], dtype=float)
    b = np.asarray(cols["b"], dtype=float)
    w = np.array([len(x) if isinstance(x, list) else 0 for x in cols["w"]], dtype=float)
    return {"score": a * 2 + w + b, "risk": a - b}
"""


@pytest.fixture
def swept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "nu2obj.py").write_text(OBJECTIVE)
    (tmp_path / "s.toml").write_text(SWEEP)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    out = CliRunner().invoke(main, ["run", "s.toml", "--no-progress"])
    assert out.exit_code == 0, out.output
    return tmp_path


@pytest.mark.parametrize(
    "args",
    [
        ["export", "s.toml", "--to", "nodir/x.csv"],
        ["export", "s.toml", "--to", "nodir/x.parquet"],
        ["report", "s.toml", "--csv", "nodir/x.csv"],
        ["report", "s.toml", "--json", "nodir/x.json"],
        ["report", "s.toml", "--best-config", "nodir/x.json"],
    ],
)
def test_an_output_file_in_a_missing_folder_names_the_folder(swept: Path, args: list[str]) -> None:
    # It said "nodir/x.csv: file not found" (an output file!), "[Errno 2] No such file or
    # directory: ..." or pyarrow's "Failed to open local file ...".
    pytest.importorskip("pyarrow")
    out = CliRunner().invoke(main, args)
    assert out.exit_code == 2, out.output
    line = out.output.strip().splitlines()[-1]
    assert line.startswith(f"error: {args[-1]}: the folder 'nodir' does not exist"), out.output
    assert "create it first" in line
    assert not (swept / "nodir").exists()


def test_the_heatmap_cells_are_a_pandas_pivot_of_every_point(swept: Path) -> None:
    # Object values, a fixed parameter, both objectives, every --agg: one cell per distinct value.
    report = fastgrid.load("s.toml")
    frame = report.to_pandas()
    frame = frame[frame.feasible & ~frame.failed]

    def key(value: Any) -> str:
        return json.dumps(value, sort_keys=True)

    for x, y in (("a", "b"), ("a", "w"), ("w", "b"), ("a", "fixed")):
        for metric in ("score", "risk"):
            for agg in ("max", "min", "mean"):
                xs, ys, grid = report.results.aggregate(x, y, metric, agg=agg)
                pivot = frame.assign(kx=frame[x].map(key), ky=frame[y].map(key)).pivot_table(
                    index="ky", columns="kx", values=metric, aggfunc=agg
                )
                assert sorted(map(key, xs)) == sorted(pivot.columns)
                assert sorted(map(key, ys)) == sorted(pivot.index)
                for i, xv in enumerate(xs):
                    for j, yv in enumerate(ys):
                        cell = pivot.loc[key(yv), key(xv)]
                        assert np.isclose(grid[j, i], cell), (x, y, metric, agg, xv, yv)
    assert os.path.exists("fastgrid.db")


@pytest.mark.parametrize(
    ("args", "hint"),
    [
        (["fixd", "a"], "X: no parameter 'fixd' in sweep 'nu2' (did you mean 'fixed'?"),
        (["a", "bb"], "Y: no parameter 'bb' in sweep 'nu2' (did you mean 'b'?"),
        (["a", "b", "--metric", "riks"], "--metric: no metric 'riks' in sweep 'nu2' (did you mean 'risk'?"),
    ],
)
def test_a_misspelt_heatmap_parameter_or_metric_gets_a_did_you_mean(
    swept: Path, args: list[str], hint: str
) -> None:
    out = CliRunner().invoke(main, ["plot", "s.toml", "heatmap", *args, "-o", "h.png"])
    assert out.exit_code == 2 and hint in out.output, out.output
    assert not (swept / "h.png").exists()
