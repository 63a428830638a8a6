"""The one strict reader (``fastgrid.files``) against hostile files: each is one clear error naming it.

Issue 12, items 13 and 14: a few hundred bytes of YAML aliases that expand to billions of nodes, and a
TOML dotted key of 20,000 parts (``tomllib`` is quadratic in them), must be refused before anything
big is allocated; so must a file nested deeper than any real one and a duplicate key.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastgrid.exceptions import DocumentError
from fastgrid.files import MAX_DEPTH, MAX_KEY_PARTS, read_document


def yaml_bomb() -> str:
    """Anchors nested nine deep, each naming the one before eight times: 8**9 (134M) leaves."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 8) + "]")
    return "\n".join(lines) + "\n"


def deep_json(depth: int) -> str:
    return "[" * depth + "]" * depth


CASES = {
    "alias-bomb.yaml": (yaml_bomb(), "alias bomb"),
    "dotted.toml": ("a" + ".a" * 19_999 + " = 1\n", f"at most {MAX_KEY_PARTS}"),
    "dotted-header.toml": ("[" + ".".join(["t"] * 20_000) + "]\nx = 1\n", f"at most {MAX_KEY_PARTS}"),
    "deep.json": (deep_json(MAX_DEPTH + 50), f"nested deeper than {MAX_DEPTH}"),
    "deep.yaml": (deep_json(MAX_DEPTH + 50), f"nested deeper than {MAX_DEPTH}"),
    "deep.toml": ("x = " + deep_json(MAX_DEPTH + 50) + "\n", "nested"),
    "duplicate.yaml": ("a: 1\nb: 2\na: 3\n", "duplicate key 'a'"),
    "duplicate.json": ('{"a": 1, "a": 2}', "duplicate key 'a'"),
    "duplicate.toml": ("a = 1\na = 2\n", "a"),
}


def test_the_yaml_bomb_is_the_small_file_of_the_report() -> None:
    assert len(yaml_bomb().encode()) <= 481


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_hostile_file_is_one_document_error_naming_it(name: str, tmp_path: Path) -> None:
    text, expected = CASES[name]
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(DocumentError) as info:
        read_document(path)
    message = str(info.value)
    assert message.startswith(str(path)), message
    assert expected in message, message
    assert "\n" not in message


@pytest.mark.parametrize("name", ["alias-bomb.yaml", "dotted.toml", "deep.json", "duplicate.yaml"])
def test_the_cli_refuses_a_hostile_parameters_file_in_one_line(name: str, tmp_path: Path) -> None:
    text, expected = CASES[name]
    path = tmp_path / name
    path.write_text(text)
    proc = subprocess.run(
        [sys.executable, "-m", "fastgrid", "grid", str(path), "--count"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert str(path) in proc.stderr and expected in proc.stderr, proc.stderr


def test_a_sweep_file_that_is_an_alias_bomb_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml_bomb())
    proc = subprocess.run(
        [sys.executable, "-m", "fastgrid", "run", str(path), "--no-progress"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert str(path) in proc.stderr and "alias" in proc.stderr, proc.stderr


def test_a_tree_of_shared_references_given_in_python_is_refused_not_copied() -> None:
    # The sibling of the YAML bomb: the same aliases loaded by the user's own yaml.safe_load
    # reach the compiled core as one list referenced 8**9 times.
    import yaml
    from fastgrid import Grid, SpecError

    bomb = yaml.safe_load(yaml_bomb())
    with pytest.raises(SpecError, match="more than 10000000 values"):
        Grid({"x": {"type": "grid", "values": [bomb]}})


def test_a_big_tree_with_shared_references_under_the_bound_still_converts() -> None:
    from fastgrid import Grid

    shared = list(range(150_000))  # past the size at which the core counts before building
    grid = Grid({"x": {"type": "grid", "values": [shared, shared]}, "y": {"type": "grid", "values": shared}})
    assert len(grid) == 2 * 150_000
    assert grid[0] == {"x": shared, "y": 0}


def test_a_write_that_fails_midway_leaves_the_old_file_and_no_half_file(tmp_path: Path) -> None:
    from fastgrid.files import open_text

    target = tmp_path / "points.csv"
    target.write_text("the last complete export\n")
    with pytest.raises(RuntimeError, match="disk gone"), open_text(target) as fh:
        fh.write("slot,score\n0,1.0\n")
        raise RuntimeError("disk gone")
    assert target.read_text() == "the last complete export\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["points.csv"]  # no temporary file left
    with open_text(target) as fh:
        fh.write("slot,score\n")
    assert target.read_text() == "slot,score\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["points.csv"]


def test_a_target_that_is_no_regular_file_is_written_in_place(tmp_path: Path) -> None:
    from fastgrid.files import open_text

    with open_text(os.devnull) as fh:  # /dev/null stays the device: never renamed over
        fh.write("anything\n")
    assert Path(os.devnull).exists() and not Path(os.devnull).is_file()
