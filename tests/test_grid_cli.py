"""`fastgrid grid` through a subprocess, and reading parameter files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fastgrid import Grid, SpecError
from fastgrid.sweepfile import load_parameters

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fastgrid", "grid", *args], capture_output=True, text=True)


def lines(out: str) -> list[object]:
    return [json.loads(line) for line in out.splitlines()]


def test_quickstart_command() -> None:
    out = run(str(EXAMPLES / "million.json"), "--count", "--head", "3")
    assert out.returncode == 0, out.stderr
    count, *points = lines(out.stdout)
    g = Grid(load_parameters(EXAMPLES / "million.json"))
    assert count == 1_000_000
    assert points == [g[0], g[1], g[2]]


def test_index_sample_shard_flat_and_constraints() -> None:
    path = str(EXAMPLES / "exit_refine.toml")
    g = Grid(load_parameters(EXAMPLES / "exit_refine.toml"), flat=True)
    out = run(path, "--index", "-1", "--index", "5", "--flat")
    assert lines(out.stdout) == [g[-1], g[5]]
    out = run(path, "--sample", "4", "--seed", "9", "--flat")
    assert lines(out.stdout) == g.sample(4, seed=9)
    out = run(path, "--shard", "1/4", "--count", "--flat")
    count, *points = lines(out.stdout)
    assert count == len(g.shard(1, 4)) == 36
    assert points == []
    out = run(path, "-c", "exit_engine.partial_1_pct < 0.5", "--count")
    assert lines(out.stdout) == [48]


def test_a_sweep_files_where_constraints_shape_the_printed_grid(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep.toml"
    sweep.write_text(
        '[sweep]\nname = "s"\nwhere = ["fast < slow"]\n'
        '[parameters]\nfast = {type = "int", low = 1, high = 4}\nslow = {type = "int", low = 1, high = 4}\n'
    )
    out = run(str(sweep), "--count", "-c", "fast > 1")
    assert out.returncode == 0, out.stderr
    (count,) = lines(out.stdout)
    expected = [p for p in Grid(load_parameters(sweep)) if 1 < p["fast"] < p["slow"]]
    assert count == len(expected) == 3
    assert lines(run(str(sweep)).stdout) == [p for p in Grid(load_parameters(sweep)) if p["fast"] < p["slow"]]


def test_without_options_every_point_is_printed() -> None:
    out = run(str(EXAMPLES / "coarse_grid.json"))
    assert lines(out.stdout) == list(Grid(load_parameters(EXAMPLES / "coarse_grid.json")))


@pytest.mark.parametrize(
    ("content", "suffix", "expected"),
    [
        ('{"parameters": {"a": [1,}}', ".json", "bad.json:1:"),
        ("parameters:\n  a: [1, 2\n", ".yaml", "bad.yaml:3:"),
        ('[parameters]\na = {type = "int" low = 1}\n', ".toml", "bad.toml:2:"),
        ('{"a": {"type": "int", "low": 3, "high": 1}}', ".json", "bad.json: a: `low` (3) is greater"),
        ("a = 1\n", ".ini", "unknown file type"),
    ],
)
def test_bad_files_give_one_line_errors(tmp_path: Path, content: str, suffix: str, expected: str) -> None:
    bad = tmp_path / f"bad{suffix}"
    bad.write_text(content)
    out = run(str(bad), "--count")
    assert out.returncode == 2
    assert expected in out.stderr
    assert "Traceback" not in out.stderr


def test_bad_options() -> None:
    path = str(EXAMPLES / "coarse_grid.json")
    assert "--seed" in run(path, "--sample", "2").stderr
    assert "K/N" in run(path, "--shard", "4/4").stderr
    assert "out of range" in run(path, "--index", "324").stderr
    assert run(str(EXAMPLES / "missing.json")).returncode == 2


def test_file_formats_read_the_same_tree(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text("a:\n  type: grid\n  values: [1, 2]\nb.c: x\n")
    (tmp_path / "p.toml").write_text('a = {type = "grid", values = [1, 2]}\nb.c = "x"\n')
    (tmp_path / "p.json").write_text(
        '{"parameters": {"a": {"type": "grid", "values": [1, 2]}, "b": {"c": "x"}}}'
    )
    points = [list(Grid(load_parameters(tmp_path / f"p.{s}"))) for s in ("yaml", "toml", "json")]
    assert points[0] == [{"a": 1, "b": {"c": "x"}}, {"a": 2, "b": {"c": "x"}}]
    assert [json.dumps(p) for p in points[1]] == [json.dumps(p) for p in points[0]]
    assert [json.dumps(p) for p in points[2]] == [json.dumps(p) for p in points[0]]


def test_syntax_errors_carry_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "s.yaml"
    bad.write_text("a: 1\nb: [\n")
    with pytest.raises(SpecError) as e:
        load_parameters(bad)
    assert e.value.file == str(bad)  # type: ignore[attr-defined]
    assert e.value.line == 3  # type: ignore[attr-defined]
    empty = tmp_path / "e.yaml"
    empty.write_text("")
    with pytest.raises(SpecError, match="empty"):
        load_parameters(empty)
