"""Batch sweeps through the per-trial front doors (issue 13): ``Sweep.from_file``, ``fastgrid run``,
``worker``, ``report``, ``plot`` and ``export``; the result object; heatmaps, the Pareto front and
retries on resume, each checked against a plain computation over the same points."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import support.meeting
from click.testing import CliRunner
from fastgrid import Grid, Sweep
from fastgrid.batch import BatchResults, BatchStore, run_batch
from fastgrid.cli import main
from fastgrid.runner import BatchSweepResult

OBJECTIVE = """
import json, os
from pathlib import Path
import numpy as np

def score(cols, config):
    a, b = cols["a"], cols["b"]
    if np.any((a == 3) & (b == 7)):
        raise ValueError("cannot trade 3/7")
    return {
        "score": a * 2.0 - b + np.where(cols["mode"] == "y", 0.5, 0.0) + config.get("bonus", 0),
        "trades": (a + b).astype(np.int64),
    }

def two(cols, config):
    a, b = cols["a"].astype(float), cols["b"].astype(float)
    return {"gain": np.sin(a) * b, "risk": np.cos(b) + a / 10}

def broken(cols, config):
    raise KeyError("close")

def flaky(cols, config):
    # Fails on (4, 9) until the file config["marker"] exists.
    if not Path(config["marker"]).exists() and np.any((cols["a"] == 4) & (cols["b"] == 9)):
        raise RuntimeError("data not ready")
    return {"score": cols["a"] * 1.0, "trades": cols["b"] * 1}
"""

SWEEP = """
[sweep]
name = "{name}"
mode = "batch"
chunk = {chunk}
direction = {direction}
{metric}
where = ["a < b"]
top_k = {top_k}
{extra}

[objective]
batch = "batchobj:{fn}"

[config]
path = "config.json"

[constraints]
require = {require}

[parameters]
a = {{ type = "int", low = 1, high = 12 }}
b = {{ type = "int", low = 2, high = 20 }}
mode = {{ type = "grid", values = ["x", "y"] }}
"""

PARAMS = {
    "a": {"type": "int", "low": 1, "high": 12},
    "b": {"type": "int", "low": 2, "high": 20},
    "mode": {"type": "grid", "values": ["x", "y"]},
}


def sweep_file(
    folder: Path,
    *,
    name: str = "b",
    fn: str = "score",
    chunk: int = 40,
    direction: str = '"maximize"',
    metric: str = 'metric = "score"',
    require: str = '["trades >= 8"]',
    extra: str = "",
    top_k: int = 10,
) -> Path:
    (folder / "batchobj.py").write_text(textwrap.dedent(OBJECTIVE))
    config = {"a": 0, "b": 0, "mode": "x", "bonus": 1, "marker": str(folder / "healed")}
    (folder / "config.json").write_text(json.dumps(config))
    path = folder / f"{name}.toml"
    path.write_text(
        SWEEP.format(
            name=name,
            fn=fn,
            chunk=chunk,
            direction=direction,
            metric=metric,
            require=require,
            extra=extra,
            top_k=top_k,
        )
    )
    return path


def frame(folder: Path, name: str = "b") -> pd.DataFrame:
    return BatchResults(BatchStore(folder / "fastgrid.db"), name).to_pandas()


def cli(folder: Path, *args: str) -> Any:
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        return CliRunner().invoke(main, list(args), catch_exceptions=False)
    finally:
        os.chdir(cwd)


def test_sweep_from_file_runs_a_batch_sweep_and_returns_the_sweep_result_interface(tmp_path: Path) -> None:
    path = sweep_file(tmp_path)
    r = Sweep.from_file(path, directory=tmp_path, progress=False).run()
    assert isinstance(r, BatchSweepResult)
    df = r.to_pandas()
    grid = Grid(PARAMS, constraints="a < b", flat=True)
    assert df["slot"].tolist() == list(range(len(grid))) and r.counts["done"] == len(grid)
    bad = (df["a"] == 3) & (df["b"] == 7)
    assert df["failed"].tolist() == bad.tolist()
    assert r.failures() == {"ValueError: cannot trade 3/7": int(bad.sum())}
    want = df["a"] * 2.0 - df["b"] + np.where(df["mode"] == "y", 0.5, 0.0) + 1
    assert np.allclose(df["score"][~bad], want[~bad])
    assert (df["feasible"] == (~bad & (df["a"] + df["b"] >= 8))).all()
    # best: the feasible maximum, ties to the lower slot; a Row whose number is the slot.
    ok = df[df["feasible"]]
    top = ok.sort_values(["score", "slot"], ascending=[False, True])
    assert r.best is not None and r.best["number"] == int(top["slot"].iloc[0])
    assert r.best["values"] == [top["score"].iloc[0]] and r.best["params"]["mode"] == top["mode"].iloc[0]
    assert [row["number"] for row in r.rows] == top["slot"].iloc[:10].tolist()
    assert r.best_config == {
        "a": r.best["params"]["a"],
        "b": r.best["params"]["b"],
        "mode": "y",
        "bonus": 1,
        "marker": str(tmp_path / "healed"),
    }
    assert r.best_config_path is not None and json.loads(r.best_config_path.read_text()) == r.best_config
    assert r.counts["failed"] == int(bad.sum())
    assert r.counts["infeasible"] == int((~bad & ~df["feasible"]).sum())
    if _has_pyarrow():
        assert r.to_arrow().num_rows == len(df)
    # The study holds the top 10 as completed trials, so Optuna and its dashboard see them.
    assert sorted(t.user_attrs["slot"] for t in r.study.get_trials()) == sorted(top["slot"].iloc[:10])
    again = Sweep.from_file(path, directory=tmp_path, progress=False).run()
    assert again.ran == int(bad.sum())  # a new run retries the failed points only
    assert again.counts["failed"] == int(bad.sum())


def _has_pyarrow() -> bool:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


def test_failed_points_are_retried_by_the_next_run_once(tmp_path: Path) -> None:
    path = sweep_file(tmp_path, fn="flaky", require="[]")
    first = Sweep.from_file(path, directory=tmp_path, progress=False).run()
    assert first.failures() == {"RuntimeError: data not ready": 2}
    (tmp_path / "healed").write_text("")
    second = Sweep.from_file(path, directory=tmp_path, progress=False).run()
    assert second.ran == 2 and second.counts["failed"] == 0 and second.failures() == {}
    df = frame(tmp_path)
    assert df["score"].tolist() == df["a"].astype(float).tolist()  # every row holds its own point
    assert df["slot"].tolist() == list(range(len(df)))
    third = Sweep.from_file(path, directory=tmp_path, progress=False).run()
    assert third.ran == 0


def test_fastgrid_run_report_plot_and_export_read_a_batch_sweep(tmp_path: Path) -> None:
    sweep_file(tmp_path)
    out = cli(tmp_path, "run", "b.toml", "--no-progress")
    assert out.exit_code == 0, out.output
    df = frame(tmp_path)
    best = df[df["feasible"]].sort_values(["score", "slot"], ascending=[False, True]).iloc[0]
    assert f"best point (grid slot {best['slot']})" in out.output
    assert f"{len(df):,} of {len(df):,} points done (2 failed" in out.output
    assert "2 failed: ValueError: cannot trade 3/7" in out.output

    rep = cli(tmp_path, "report", "b.toml", "--top", "3", "--csv", "all.csv", "--json", "rep.json")
    assert rep.exit_code == 0, rep.output
    assert "failed points by reason" in rep.output and "ValueError: cannot trade 3/7" in rep.output
    assert "top 3 points" in rep.output and f"best point: slot {best['slot']}" in rep.output
    written = pd.read_csv(tmp_path / "all.csv")
    assert written["slot"].tolist() == df["slot"].tolist() and np.allclose(
        written["score"].fillna(-1e9), df["score"].fillna(-1e9)
    )
    summary = json.loads((tmp_path / "rep.json").read_text())
    assert summary["mode"] == "batch" and summary["failures"][0]["count"] == 2
    assert summary["best"]["number"] == best["slot"] and len(summary["top"]) == 100  # KEPT_ROWS

    plot = cli(tmp_path, "plot", "b.toml", "heatmap", "a", "b", "-o", "hm.png", "--agg", "mean")
    assert plot.exit_code == 0 and (tmp_path / "hm.png").stat().st_size > 1000
    bad_metric = cli(tmp_path, "plot", "b.toml", "heatmap", "a", "b", "--metric", "scor")
    assert bad_metric.exit_code == 2 and "no metric 'scor'" in bad_metric.output

    exported = cli(tmp_path, "export", "b.toml", "--to", "points.csv")
    assert exported.exit_code == 0 and len(pd.read_csv(tmp_path / "points.csv")) == len(df)
    if _has_pyarrow():
        assert cli(tmp_path, "export", "b.toml", "--to", "points.parquet").exit_code == 0
        assert pd.read_parquet(tmp_path / "points.parquet")["slot"].tolist() == df["slot"].tolist()


def test_a_batch_report_dash_writes_json_to_stdout(tmp_path: Path) -> None:
    sweep_file(tmp_path)
    Sweep.from_file(tmp_path / "b.toml", directory=tmp_path, progress=False).run()
    out = subprocess.run(
        [sys.executable, "-m", "fastgrid", "report", "b.toml", "--json", "-"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["mode"] == "batch" and "best point" in out.stderr
    csv = subprocess.run(
        [sys.executable, "-m", "fastgrid", "report", "b.toml", "--csv", "-"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert csv.returncode == 0, csv.stderr
    assert len(csv.stdout.splitlines()) == len(frame(tmp_path)) + 1 and not (tmp_path / "-").exists()


def test_a_sweep_that_fails_the_same_way_from_the_start_exits_1_with_the_reason(tmp_path: Path) -> None:
    sweep_file(tmp_path, fn="broken", chunk=16)
    out = cli(tmp_path, "run", "b.toml", "--no-progress")
    assert out.exit_code == 1
    assert "the first 3 chunks all failed the same way" in out.output and "KeyError: 'close'" in out.output
    assert "Traceback" not in out.output


def test_parquet_without_pyarrow_is_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sweep_file(tmp_path)
    Sweep.from_file(tmp_path / "b.toml", directory=tmp_path, progress=False).run()
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    out = cli(tmp_path, "export", "b.toml", "--to", "points.parquet")
    assert out.exit_code == 2
    assert "Parquet needs pyarrow: pip install pyarrow (or export to .csv)" in out.output
    assert "Traceback" not in out.output


def test_per_trial_sweeps_export_tables_too(tmp_path: Path) -> None:
    Sweep(
        parameters={"a": {"type": "int", "low": 1, "high": 4}, "s": {"type": "grid", "values": ["p", 2]}},
        objective=lambda cfg: float(cfg["a"]),
        name="t",
        direction="minimize",
        directory=tmp_path,
        progress=False,
    ).run()
    assert cli(tmp_path, "export", "t", "--to", "t.csv").exit_code == 0
    table = pd.read_csv(tmp_path / "t.csv")
    assert sorted(table["value"]) == [1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0]
    if _has_pyarrow():
        assert cli(tmp_path, "export", "t", "--to", "t.parquet").exit_code == 0
        assert sorted(pd.read_parquet(tmp_path / "t.parquet")["params.s"]) == ['"p"'] * 4 + ["2"] * 4


@pytest.mark.parametrize("agg", ["max", "mean", "min"])
@pytest.mark.parametrize("feasible_only", [True, False])
def test_heatmap_cells_equal_a_pandas_groupby(tmp_path: Path, agg: str, feasible_only: bool) -> None:
    sweep_file(tmp_path, chunk=23)
    Sweep.from_file(tmp_path / "b.toml", directory=tmp_path, progress=False).run()
    results = BatchResults(BatchStore(tmp_path / "fastgrid.db"), "b")
    xs, ys, grid = results.aggregate("mode", "a", "score", agg=agg, feasible_only=feasible_only)
    df = results.to_pandas()
    keep = ~df["failed"] & (df["feasible"] if feasible_only else True)
    want = df[keep].groupby(["mode", "a"])["score"].agg(agg)
    assert sorted(xs) == ["x", "y"] and sorted(ys) == sorted(df["a"].unique().tolist())
    for (mode, a), value in want.items():
        assert grid[ys.index(a), xs.index(mode)] == pytest.approx(value)
    assert np.isfinite(grid).sum() == len(want)


def test_a_minimize_batch_heatmap_shows_the_smallest_value_per_cell_by_default(tmp_path: Path) -> None:
    sweep_file(tmp_path, chunk=23, direction='"minimize"')
    Sweep.from_file(tmp_path / "b.toml", directory=tmp_path, progress=False).run()
    results = BatchResults(BatchStore(tmp_path / "fastgrid.db"), "b")
    df = results.to_pandas()
    want = df[~df["failed"] & df["feasible"]].groupby(["mode", "a"])["score"].min()
    plot = cli(tmp_path, "plot", "b.toml", "heatmap", "mode", "a", "-o", "hm.png")
    assert plot.exit_code == 0, plot.output
    from fastgrid.reporting import heatmap_figure, load_report

    figure = heatmap_figure(load_report(tmp_path / "b.toml", directory=tmp_path), "mode", "a")
    ax = figure.axes[0]
    xs = [t.get_text() for t in ax.get_xticklabels()]
    ys = [int(t.get_text()) for t in ax.get_yticklabels()]
    grid = ax.images[0].get_array()
    for (mode, a), value in want.items():
        assert grid[ys.index(a), xs.index(mode)] == pytest.approx(value)
    assert "score, min over b" in ax.get_title() and figure.axes[1].get_ylabel() == "score (min)"


def test_several_objectives_keep_the_pareto_front_in_the_study(tmp_path: Path) -> None:
    path = sweep_file(
        tmp_path,
        fn="two",
        direction='["maximize", "minimize"]',
        metric='metrics = ["gain", "risk"]',
        require="[]",
        top_k=20,
    )
    r = Sweep.from_file(path, directory=tmp_path, progress=False).run()
    df = r.to_pandas()
    gain, risk = df["gain"].to_numpy(), df["risk"].to_numpy()
    front = [
        i
        for i in range(len(df))
        if not any(
            gain[j] >= gain[i] and risk[j] <= risk[i] and (gain[j] > gain[i] or risk[j] < risk[i])
            for j in range(len(df))
        )
    ]
    slots = df["slot"].to_numpy()[front]
    assert sorted(row["number"] for row in r.best_trials) == sorted(slots.tolist())
    assert r.best is not None and r.best["number"] == int(slots[gain[front].argmax()])
    assert len(front) <= 20  # top_k: the whole front is in the study, so Optuna's front is the same
    assert {t.user_attrs["slot"] for t in r.study.best_trials} == set(slots.tolist())


def test_max_trials_caps_the_points_in_whole_chunks(tmp_path: Path) -> None:
    path = sweep_file(tmp_path, chunk=40)
    r = Sweep.from_file(path, directory=tmp_path, max_trials=100, progress=False).run()
    assert r.counts["done"] == 120 and r.counts["remaining"] > 0  # chunks starting below 100
    assert Sweep.from_file(path, directory=tmp_path, progress=False).run().counts["remaining"] == 0


def test_two_fastgrid_workers_share_a_batch_sweep(tmp_path: Path) -> None:
    sweep_file(tmp_path, chunk=8)
    # Each process returns its first chunk only once the other has called the objective too: with
    # a sleep instead, one worker could run every chunk before the other started (a busy CI box).
    (tmp_path / "meeting.py").write_text(Path(support.meeting.__file__).read_text())
    met = textwrap.dedent(OBJECTIVE).replace(
        "def score(cols, config):\n",
        "def score(cols, config):\n    __import__('meeting').meet(Path(__file__).parent / 'met')\n",
    )
    (tmp_path / "batchobj.py").write_text(met)
    cmd = [sys.executable, "-m", "fastgrid", "worker", "b.toml", "--no-progress"]
    procs = [
        subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=240)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    df = frame(tmp_path)
    assert df["slot"].tolist() == list(range(len(Grid(PARAMS, constraints="a < b"))))
    owners = {c["info"]["owner"].split("/")[1] for c in BatchStore(tmp_path / "fastgrid.db").chunks("b")}
    assert len(owners) == 2
    assert all("worker done: sweep b: ran" in out and "points done" in out for out in outputs)


def test_chunk_columns_carry_axis_positions_and_the_store_keeps_codes(tmp_path: Path) -> None:
    spec = {
        "a": {"type": "int", "low": 1, "high": 30},
        "w": {"type": "float", "low": 0.5, "high": 2.0, "step": 0.25},
        "b": {"type": "int", "low": 1, "high": 30},
        "tag": {"type": "grid", "values": ["p", None, [1, 2], True, 1]},
        "on": {"type": "grid", "values": [False, True]},
    }
    for constraints in (["a < b"], ["a < b", "w * a < 20"], ["a < w * 10"]):
        grid = Grid(spec, constraints=constraints, flat=True)
        for view in (grid, grid.shuffled(3)):
            n = len(view)
            for start, stop in ((0, n), (7, n - 5), (n // 2, n // 2 + 1)):
                cols, pos = view.columns(start, stop, fixed="scalar", positions=True)
                for path in spec:
                    table = grid.axis_values(path)
                    got = table[pos[path].astype(np.int64)]
                    assert got.tolist() == cols[path].tolist(), (constraints, path, start)
                for j in range(0, stop - start, 53):
                    assert {p: cols[p][j] for p in ("a", "b", "w")} == {
                        p: view[start + j][p] for p in ("a", "b", "w")
                    }
    assert grid.axis_values("w", 1, 3).tolist() == [0.75, 1.0]
    with pytest.raises(KeyError, match="no parameter 'x'"):
        grid.axis_values("x")
    with pytest.raises(ValueError, match=r"0 <= start <= stop <= 7"):
        grid.axis_values("w", 3, 9)
    with pytest.raises(ValueError, match=r"columns\(positions=True\) needs a grid of one tree"):
        Grid([{"a": 1}, {"a": 2}]).columns(positions=True)
    # End to end: the stored parameter columns (codes) read back as the points.
    r = run_batch(
        spec,
        batch=lambda c, cfg: {"v": c["a"] * c["w"]},
        metric="v",
        where=["a < b"],
        chunk=333,
        directory=tmp_path,
    )
    cols = r.results.columns()
    grid = Grid(spec, constraints=["a < b"], flat=True)
    for slot in range(0, len(grid), 97):
        point = grid[slot]
        assert {p: cols[p][slot] for p in spec} == point
    raw = sum(8 * len(grid) for _ in spec) + 8 * len(grid)
    assert (tmp_path / "fastgrid.db").stat().st_size < raw  # codes, not eight bytes per value


def test_batch_objective_modules_see_the_sweep_files_folder_in_worker_processes(tmp_path: Path) -> None:
    path = sweep_file(tmp_path, chunk=16, extra="workers = 2")
    r = Sweep.from_file(path, directory=tmp_path, progress=False).run()
    assert r.counts["done"] == len(Grid(PARAMS, constraints="a < b"))
    assert list(itertools.islice(r.failures(), 1)) == ["ValueError: cannot trade 3/7"]


def test_a_single_valued_range_is_a_constant_of_every_row(tmp_path: Path) -> None:
    spec = {"a": {"type": "int", "low": 1, "high": 9}, "c": {"type": "int", "low": 4, "high": 4}, "k": "x"}
    r = run_batch(spec, batch=lambda c, cfg: {"v": c["a"] * c["c"]}, metric="v", chunk=4, directory=tmp_path)
    assert r.best is not None and r.best["params"] == {"a": 1, "c": 4, "k": "x"}
    assert r.results.columns(["c", "k"])["c"].tolist() == [4] * 9


def test_workers_finishing_together_write_each_top_point_once(tmp_path: Path) -> None:
    store = BatchStore(tmp_path / "x.db")
    store.register("s", total=10, chunk=5, space={}, meta={})
    host = os.uname().nodename
    me, other, dead = f"{host}/{os.getpid()}/a", "elsewhere/1/b", f"{host}/999999999/c"
    assert store.claim_leaders("s", me, [1, 2, 3]) == [1, 2, 3]
    assert store.claim_leaders("s", other, [2, 3, 4]) == [4]  # 2 and 3 are being written by me
    assert store.claim_leaders("s", dead, [5]) == [5]
    assert store.claim_leaders("s", me, [4, 5]) == [5]  # the dead writer's slot is taken over
