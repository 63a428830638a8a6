"""The Grid API: workloads, values, views, mutability, sizes, threads, interrupts."""

from __future__ import annotations

import collections.abc
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import fastgrid
import numpy as np
import pytest
from fastgrid import Grid
from fastgrid.files import read_document as read_file
from fastgrid.sweepfile import load_parameters
from grid_reference import expand, strict

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
WORKLOADS = sorted(p for p in EXAMPLES.iterdir() if p.suffix in (".json", ".toml"))


def test_every_shared_workload_is_shipped() -> None:
    names = {p.name for p in WORKLOADS}
    assert {
        "billion.json",
        "coarse_grid.json",
        "exit_refine.toml",
        "explore_search.json",
        "million.json",
    } <= names


@pytest.mark.parametrize("path", WORKLOADS, ids=lambda p: p.name)
def test_workload_sizes(path: Path) -> None:
    expected = read_file(path)["expected_grid_size"]
    g = Grid(load_parameters(path))
    assert g.size == expected
    assert len(g) == expected
    assert g.index(g[-1]) == expected - 1


def test_small_workloads_equal_the_reference() -> None:
    for name in ("coarse_grid.json", "exit_refine.toml"):
        tree = load_parameters(EXAMPLES / name)
        assert [strict(p) for p in Grid(tree)] == [strict(p) for p in expand(tree)]


def test_exit_refine_merges_dotted_keys_and_tables() -> None:
    g = Grid(load_parameters(EXAMPLES / "exit_refine.toml"))
    first = g[0]
    assert list(first) == ["exit_engine", "thresholds", "exit"]
    assert first["exit_engine"]["trail_atr_multiplier"] == 2.0
    assert first["thresholds"] == {"entry_conf": 0.35, "regime_proba": {"balanced": 0.6}}
    assert first["exit"] == {"exit_conf": 0.4, "max_hold_bars": 18}
    assert sorted({p["exit_engine"]["trail_atr_multiplier"] for p in g}) == [2.0, 2.4, 2.8, 3.2]


def _values(leaf: dict[str, Any]) -> list[Any]:
    return [p["x"] for p in Grid({"x": leaf})]


def test_explore_search_steps_start_at_low_stay_inside_and_include_high() -> None:
    tree = load_parameters(EXAMPLES / "explore_search.json")
    assert _values(tree["thresholds"]["zones"]["low"]["entry_conf"]) == [0.18, 0.22, 0.26, 0.3, 0.34]
    assert _values(tree["risk"]["bear_size_mult"]) == [0.2, 0.3, 0.4, 0.5, 0.6]
    assert _values(tree["exit"]["max_hold_bars"]) == list(range(6, 25, 2))
    stops = _values(tree["exit"]["trailing_stop_pct"])
    assert stops[0] == 0.01 and stops[-1] == 0.024 and len(stops) == 8


def test_decimal_steps_and_high_off_the_step() -> None:
    assert _values({"type": "float", "low": 0.0, "high": 1.0, "step": 0.3}) == [0.0, 0.3, 0.6, 0.9]
    assert len(_values({"type": "float", "low": 0.0, "high": 0.0001, "step": 1e-05})) == 11
    assert _values({"type": "float", "low": 0.1, "high": 0.3, "step": 0.1}) == [0.1, 0.2, 0.3]
    assert _values({"type": "int", "low": 1, "high": 10, "step": 4}) == [1, 5, 9]
    assert _values({"type": "float", "low": 1, "high": 2, "step": 1}) == [1.0, 2.0]
    assert all(isinstance(v, float) for v in _values({"type": "float", "low": 1, "high": 2, "step": 1}))


def test_num_and_log_ranges_include_both_ends() -> None:
    lin = _values({"type": "float", "low": 0.0, "high": 1.0, "num": 5})
    assert lin == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert _values({"type": "float", "low": 0.1, "high": 0.7, "num": 7}) == [
        0.1,
        0.2,
        0.3,
        0.4,
        0.5,
        0.6,
        0.7,
    ]
    geo = _values({"type": "float", "low": 1e-4, "high": 1.0, "num": 5, "log": True})
    assert geo[0] == 1e-4 and geo[-1] == 1.0
    np.testing.assert_allclose(geo, np.geomspace(1e-4, 1.0, 5), rtol=1e-12)
    assert _values({"type": "loguniform", "low": 1e-3, "high": 1e-1, "num": 3})[::2] == [1e-3, 1e-1]


def test_bool_int_and_none_are_distinct_choices() -> None:
    g = Grid({"h": {"type": "grid", "values": [True, 1, 1.0, None, 0, False]}})
    assert [type(p["h"]) for p in g] == [bool, int, float, type(None), int, bool]
    assert g.index({"h": 1}) == 1
    assert g.index({"h": True}) == 0
    assert g.index({"h": 1.0}) == 2
    assert g.index({"h": False}) == 5
    assert {"h": 2} not in g
    with pytest.raises(ValueError, match="not in the grid"):
        g.index({"h": 2})


def test_points_never_share_mutable_values() -> None:
    tree = {
        "ladder": {"type": "grid", "values": [[1, 2], {"k": [3]}]},
        "risk": [[0.6, 0.02]],
        "n": {"inner": {"type": "fixed", "value": {"a": []}}, "x": {"type": "grid", "values": [1, 2]}},
    }
    g = Grid(tree)
    first = g[0]
    first["ladder"].append(99)
    first["risk"][0][0] = -1
    first["n"]["inner"]["a"].append(1)
    first["n"]["x"] = "changed"
    assert g[0] == {"ladder": [1, 2], "risk": [[0.6, 0.02]], "n": {"inner": {"a": []}, "x": 1}}
    points = list(g)
    for p in points:
        p["risk"].append("mutated")
        p["n"]["inner"]["a"].append("mutated")
    assert [p["risk"] for p in g] == [[[0.6, 0.02]]] * 4
    assert len({id(p["risk"]) for p in points}) == len(points)
    assert len({id(p["n"]) for p in points}) == len(points)
    column = g.columns()["risk"]
    column[0].append("mutated")
    assert column[1] == [[0.6, 0.02]]


def test_iteration_hands_out_independent_dicts() -> None:
    g = Grid({"a": {"type": "int", "low": 0, "high": 2}, "b": {"type": "grid", "values": ["x", "y"]}})
    it = iter(g)
    first = next(it)
    first["b"] = "mutated"
    first["new"] = 1
    assert list(it) == [{"a": a, "b": b} for a in range(3) for b in "xy"][1:]


def test_sequence_protocol_and_errors() -> None:
    g = Grid({"a": {"type": "int", "low": 0, "high": 9}})
    assert isinstance(g, collections.abc.Sequence)
    assert g[-1] == {"a": 9}
    assert g[-10] == {"a": 0}
    with pytest.raises(IndexError):
        g[10]
    with pytest.raises(IndexError):
        g[-11]
    with pytest.raises(IndexError):
        g[2**200]
    with pytest.raises(TypeError, match="integers or slices"):
        g["1"]  # type: ignore[index]
    with pytest.raises(ValueError, match="step cannot be zero"):
        g[::0]
    assert list(g[2**100 : -(2**100)]) == []
    assert [p["a"] for p in g[-(2**100) : 2**100 : 3]] == [0, 3, 6, 9]
    assert [p["a"] for p in g[::-1][::2]] == [9, 7, 5, 3, 1]
    assert g.count({"a": 3}) == 1 and g.count({"a": 30}) == 0
    assert object() not in g
    assert {"a": 3, "b": 1} not in g
    assert "shuffled" not in repr(g) and "a=10" in repr(g)


def test_views_index_within_themselves() -> None:
    g = Grid({"a": {"type": "int", "low": 0, "high": 99}})
    v = g[10:50:3]
    assert v.index({"a": 13}) == 1
    with pytest.raises(ValueError):
        v.index({"a": 14})
    s = g.shuffled(5)
    assert [s.index(p) for p in s[:20]] == list(range(20))
    shard = g.shard(2, 3)
    assert [p["a"] for p in shard] == list(range(67, 100))
    with pytest.raises(ValueError, match="0 <= k < n"):
        g.shard(3, 3)
    with pytest.raises(ValueError, match="larger than the grid"):
        g.sample(101, seed=1)
    with pytest.raises(ValueError, match="seed"):
        g.shuffled(-1)


def test_sizes_beyond_sys_maxsize() -> None:
    big = {f"p{i}": {"type": "int", "low": 0, "high": 2**20 - 1} for i in range(4)}
    g = Grid(big)
    assert g.size == 2**80
    with pytest.raises(OverflowError, match="size"):
        len(g)
    last = g[g.size - 1]
    assert last == {f"p{i}": 2**20 - 1 for i in range(4)}
    assert g.index(last) == 2**80 - 1
    assert g[-1] == last
    assert g.shuffled(1)[2**79] in g
    assert g.shard(3, 7).size in (2**80 // 7, 2**80 // 7 + 1)
    huge = {f"p{i}": {"type": "int", "low": 0, "high": 2**62} for i in range(3)}
    with pytest.raises(fastgrid.SpecError, match="2\\^128"):
        Grid(huge)


def test_axes_paths_and_parse_parameters() -> None:
    tree = {
        "fast": {"type": "int", "low": 5, "high": 50, "step": 5},
        "exit": {"stop": {"type": "float", "low": 0.01, "high": 0.05, "num": 5}},
        "lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
        "mode": {"type": "grid", "values": ["a", "b"]},
        "tag": "v1",
    }
    described = fastgrid.parse_parameters(tree)
    assert [d["path"] for d in described] == ["fast", "exit.stop", "lr", "mode", "tag"]
    assert described[0] == {
        "path": "fast",
        "kind": "int",
        "size": 10,
        "low": 5,
        "high": 50,
        "step": 5,
        "log": False,
    }
    assert described[2] == {
        "path": "lr",
        "kind": "float",
        "size": None,
        "low": 1e-4,
        "high": 1e-1,
        "log": True,
    }
    assert described[3]["values"] == ["a", "b"]
    assert described[4] == {"path": "tag", "kind": "fixed", "size": 1, "value": "v1"}
    with pytest.raises(fastgrid.SpecError, match="step") as e:
        Grid(tree)
    assert e.value.path == "lr"
    del tree["lr"]
    g = Grid(tree)
    assert g.paths == ("fast", "exit.stop", "mode", "tag")
    assert [a["kind"] for a in g.axes] == ["int", "float", "grid", "fixed"]
    assert all(a["tree"] == 0 for a in g.axes)
    assert g.axes[1]["num"] == 5


def test_threads_share_a_grid() -> None:
    g = Grid(load_parameters(EXAMPLES / "coarse_grid.json"))
    expected = [strict(p) for p in g]
    results: list[list[Any]] = []

    def work() -> None:
        results.append([strict(p) for p in g])

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [expected] * 4


def test_shuffled_order_is_the_same_in_another_process() -> None:
    code = (
        "import json, sys, fastgrid\n"
        "g = fastgrid.Grid({'a': {'type': 'int', 'low': 0, 'high': 999}, 'b': [1]})\n"
        "print(json.dumps([p['a'] for p in g.shuffled(12345)[:50]]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    here = [
        p["a"] for p in Grid({"a": {"type": "int", "low": 0, "high": 999}, "b": [1]}).shuffled(12345)[:50]
    ]
    assert json.loads(out.stdout) == here
    assert here != sorted(here)


def test_billion_grid_is_lazy() -> None:
    g = Grid(load_parameters(EXAMPLES / "billion.json"))
    assert g[123_456_789] == {
        "a": 1, "b": 2, "c": 3, "d": 0.5, "e": 0.06, "f": "g", "g": 8, "h": 5, "i": 10.0,
    }  # fmt: skip
    assert g.index(g[987_654_321]) == 987_654_321
    chunk = next(g.iter_columns(chunk=1000))
    assert chunk["a"].dtype == np.int64 and len(chunk["a"]) == 1000
    assert chunk["h"].dtype == object and chunk["h"][:30:10].tolist() == [True, False, None]
    with pytest.raises(ValueError, match="iter_columns"):
        g.columns()


def test_long_constrained_builds_stop_on_ctrl_c() -> None:
    code = (
        "import fastgrid, sys\n"
        "print('ready', flush=True)\n"
        "try:\n"
        "    fastgrid.Grid({'a': {'type': 'int', 'low': 0, 'high': 99999},"
        " 'b': {'type': 'int', 'low': 0, 'high': 99999}}, constraints=['a < b'])\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted', flush=True)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert "interrupted" in out
