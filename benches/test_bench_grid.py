"""Grid benchmarks: each fastgrid call against the pure-Python ways in the same group.

Measure (after ``maturin develop --release``)::

    python -m pytest benches/test_bench_grid.py --benchmark-enable --benchmark-only \
        --benchmark-columns=median,min,rounds

With benchmarks disabled (the default test run) every function runs once on a 1,000-point slice of
the workload so the suite stays fast; enabled, they run on the full 1,000,000-point ``million.json``.
Each benchmark asserts the correctness of what it timed.
"""

from __future__ import annotations

import itertools
import json
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastgrid import Grid
from fastgrid.sweepfile import load_parameters

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
MILLION = load_parameters(EXAMPLES / "million.json")


@pytest.fixture(scope="module")
def full(request: pytest.FixtureRequest) -> bool:
    # pytest-benchmark's own rule: disabled by addopts unless --benchmark-enable is given.
    config = request.config
    return bool(config.getoption("benchmark_enable") or not config.getoption("benchmark_disable"))


@pytest.fixture(scope="module")
def tree(full: bool) -> dict[str, Any]:
    if full:
        return MILLION
    # The last three parameters: 1,000 points, same value types.
    return dict(list(MILLION.items())[3:])


@pytest.fixture(scope="module")
def axes(tree: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """The parameter names and value lists the pure-Python expanders start from (not timed)."""
    keys = list(tree)
    values = [[p["x"] for p in Grid({"x": leaf})] for leaf in tree.values()]
    return keys, values


# --- the pure-Python ways ------------------------------------------------------------------------


def expand_copying(keys: list[str], values: list[list[Any]]) -> Iterator[dict[str, Any]]:
    """The classic recursive `_expand_dict`: copies the partial dict at every level."""

    def rec(i: int, partial: dict[str, Any]) -> Iterator[dict[str, Any]]:
        if i == len(keys):
            yield partial
            return
        for v in values[i]:
            d = dict(partial)
            d[keys[i]] = v
            yield from rec(i + 1, d)

    return rec(0, {})


def expand_backtracking(keys: list[str], values: list[list[Any]]) -> Iterator[dict[str, Any]]:
    """Recursive backtracking over one shared dict, copied at the leaves."""
    point: dict[str, Any] = {}
    n = len(keys)

    def rec(i: int) -> Iterator[dict[str, Any]]:
        if i == n:
            yield point.copy()
            return
        key = keys[i]
        for v in values[i]:
            point[key] = v
            yield from rec(i + 1)

    return rec(0)


def expand_product(keys: list[str], values: list[list[Any]]) -> Iterator[dict[str, Any]]:
    return (dict(zip(keys, combo, strict=True)) for combo in itertools.product(*values))


def expand_odometer(keys: list[str], values: list[list[Any]]) -> Iterator[dict[str, Any]]:
    """The fastest pure-Python way found: product over the leading axes, then an inner loop that
    sets the last key and copies (one C-level dict copy per point)."""
    head_keys, last_key, last_values = keys[:-1], keys[-1], values[-1]
    for combo in itertools.product(*values[:-1]):
        point = dict(zip(head_keys, combo, strict=True))
        for v in last_values:
            point[last_key] = v
            yield point.copy()


def consume(points: Any) -> int:
    n = 0
    for _ in points:
        n += 1
    return n


def last_of(points: Any) -> Any:
    p = None
    for p in points:  # noqa: B007
        pass
    return p


# --- full iteration ------------------------------------------------------------------------------

EXPANDERS = {
    "recursive-copying": expand_copying,
    "recursive-backtracking": expand_backtracking,
    "product-dict-zip": expand_product,
    "odometer-python": expand_odometer,
}


@pytest.mark.benchmark(group="iterate")
def test_iterate_fastgrid(benchmark: Any, tree: dict[str, Any], axes: Any) -> None:
    g = Grid(tree)
    last = benchmark(last_of, g)
    keys, values = axes
    assert last == dict(zip(keys, (v[-1] for v in values), strict=True))
    assert consume(g) == len(g) == np.prod([len(v) for v in values])


@pytest.mark.parametrize("name", list(EXPANDERS))
@pytest.mark.benchmark(group="iterate")
def test_iterate_python(benchmark: Any, axes: Any, name: str) -> None:
    keys, values = axes
    expander = EXPANDERS[name]
    last = benchmark(lambda: last_of(expander(keys, values)))
    assert last == dict(zip(keys, (v[-1] for v in values), strict=True))
    g = Grid({k: {"type": "grid", "values": v} for k, v in zip(keys, values, strict=True)})
    assert list(itertools.islice(expander(keys, values), 2000)) == list(g[:2000])


@pytest.mark.benchmark(group="iterate")
def test_iterate_sklearn_parameter_grid(benchmark: Any, axes: Any) -> None:
    model_selection = pytest.importorskip("sklearn.model_selection")
    keys, values = axes
    grid = model_selection.ParameterGrid(dict(zip(keys, values, strict=True)))
    n = benchmark(consume, grid)
    assert n == len(grid)
    assert grid[0] == dict(zip(keys, (v[0] for v in values), strict=True))


@pytest.mark.benchmark(group="iterate")
def test_iterate_floor_dict_copy(benchmark: Any, tree: dict[str, Any]) -> None:
    """The floor: one C-level `dict.copy()` of a dict with the same keys per point."""
    g = Grid(tree)
    template = dict(g[0])
    copy = template.copy
    n = len(g)

    def floor() -> int:
        for _ in itertools.repeat(None, n):
            copy()
        return n

    assert benchmark(floor) == len(g)


# --- len and indexing ----------------------------------------------------------------------------


@pytest.mark.benchmark(group="len")
def test_len_fastgrid(benchmark: Any, tree: dict[str, Any], axes: Any) -> None:
    g = Grid(tree)
    assert benchmark(len, g) == np.prod([len(v) for v in axes[1]])


@pytest.mark.benchmark(group="len")
def test_len_sklearn_parameter_grid(benchmark: Any, axes: Any) -> None:
    model_selection = pytest.importorskip("sklearn.model_selection")
    grid = model_selection.ParameterGrid(dict(zip(*axes, strict=True)))
    assert benchmark(len, grid) == np.prod([len(v) for v in axes[1]])


def decode_python(keys: list[str], values: list[list[Any]], i: int) -> dict[str, Any]:
    """Mixed-radix decoding in pure Python (last key fastest)."""
    out: dict[str, Any] = {}
    for key, vals in zip(reversed(keys), reversed(values), strict=True):
        i, k = divmod(i, len(vals))
        out[key] = vals[k]
    return dict(reversed(out.items()))


INDEXES = random.Random(0).sample(range(1000), 100)


@pytest.mark.benchmark(group="getitem")
def test_getitem_fastgrid(benchmark: Any, tree: dict[str, Any], axes: Any) -> None:
    g = Grid(tree)
    i = len(g) * 3 // 7
    point = benchmark(g.__getitem__, i)
    assert point == decode_python(*axes, i)
    assert list(point) == axes[0]
    assert [g[j] for j in INDEXES] == [decode_python(*axes, j) for j in INDEXES]


@pytest.mark.benchmark(group="getitem")
def test_getitem_python_decode(benchmark: Any, tree: dict[str, Any], axes: Any) -> None:
    i = len(Grid(tree)) * 3 // 7
    point = benchmark(decode_python, *axes, i)
    assert point == Grid(tree)[i]


@pytest.mark.benchmark(group="getitem")
def test_getitem_sklearn_parameter_grid(benchmark: Any, tree: dict[str, Any], axes: Any) -> None:
    model_selection = pytest.importorskip("sklearn.model_selection")
    grid = model_selection.ParameterGrid(dict(zip(*axes, strict=True)))
    point = benchmark(grid.__getitem__, 123)
    assert point in Grid(tree)


@pytest.mark.benchmark(group="getitem")
def test_shuffled_getitem_fastgrid(benchmark: Any, tree: dict[str, Any]) -> None:
    s = Grid(tree).shuffled(7)
    i = len(s) // 3
    point = benchmark(s.__getitem__, i)
    assert s.index(point) == i


@pytest.mark.benchmark(group="index")
def test_index_fastgrid(benchmark: Any, tree: dict[str, Any]) -> None:
    g = Grid(tree)
    i = len(g) * 5 // 9
    point = g[i]
    assert benchmark(g.index, point) == i


# --- columns -------------------------------------------------------------------------------------


def columns_numpy(keys: list[str], values: list[list[Any]]) -> dict[str, np.ndarray]:
    """Columns of the product with numpy's repeat/tile (the fast pure-Python way)."""
    sizes = [len(v) for v in values]
    total = int(np.prod(sizes))
    out = {}
    inner = total
    for key, vals in zip(keys, values, strict=True):
        inner //= len(vals)
        outer = total // (inner * len(vals))
        out[key] = np.tile(np.repeat(np.asarray(vals), inner), outer)
    return out


def columns_from_dicts(keys: list[str], values: list[list[Any]]) -> dict[str, np.ndarray]:
    points = list(expand_odometer(keys, values))
    return {k: np.array([p[k] for p in points]) for k in keys}


def assert_same_columns(got: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert list(got) == list(expected)
    for k in got:
        assert got[k].tolist() == expected[k].tolist(), k


@pytest.mark.benchmark(group="columns")
def test_columns_fastgrid(benchmark: Any, tree: dict[str, Any], axes: Any) -> None:
    cols = benchmark(Grid(tree).columns)
    assert_same_columns(cols, columns_numpy(*axes))
    assert cols[axes[0][0]].dtype != object


@pytest.mark.benchmark(group="columns")
def test_columns_numpy_repeat_tile(benchmark: Any, tree: dict[str, Any], axes: Any) -> None:
    cols = benchmark(columns_numpy, *axes)
    assert_same_columns(cols, Grid(tree).columns())


@pytest.mark.benchmark(group="columns")
def test_columns_from_dicts(benchmark: Any, tree: dict[str, Any], axes: Any) -> None:
    cols = benchmark(columns_from_dicts, *axes)
    assert_same_columns(cols, Grid(tree).columns())


# --- billion.json: flat memory ------------------------------------------------------------------

RSS_SCRIPT = """
import json, random, resource, sys
from fastgrid import Grid
from fastgrid.sweepfile import load_parameters
tree = load_parameters(sys.argv[1])
n_iter, n_index = int(sys.argv[2]), int(sys.argv[3])
def peak_kib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
def rss_kib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() // 1024
before_peak, before = peak_kib(), rss_kib()
g = Grid(tree)
count = len(g)
seen = 0
for p in g:
    seen += 1
    if seen == n_iter:
        break
rng = random.Random(0)
for _ in range(n_index):
    g[rng.randrange(count)]
print(json.dumps({"count": count, "seen": seen, "peak_growth_kib": peak_kib() - before_peak,
                  "rss_growth_kib": rss_kib() - before}))
"""


def test_billion_flat_memory(benchmark: Any, full: bool) -> None:
    """Construct + count + 10^6 iterated points + 10^4 random indexes on billion.json, in a fresh
    process, with under 10 MB of RSS growth."""
    n_iter = 1_000_000 if full else 100_000

    def run() -> dict[str, int]:
        out = subprocess.run(
            [sys.executable, "-c", RSS_SCRIPT, str(EXAMPLES / "billion.json"), str(n_iter), "10000"],
            capture_output=True,
            text=True,
            check=True,
        )
        return json.loads(out.stdout)

    result = benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update(result)
    assert result["count"] == 1_000_000_000
    assert result["seen"] == n_iter
    assert result["peak_growth_kib"] < 10 * 1024
    assert result["rss_growth_kib"] < 10 * 1024
