"""Hypothesis properties: Grid against the pure-Python reference expander on random trees."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
from fastgrid import Grid
from grid_reference import expand, strict
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

NAMES = st.sampled_from(["a", "b", "c", "d", "e", "x", "y", "fast", "slow"])

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.sampled_from([0.5, -1.25, 0.1, 2.0]),
    st.sampled_from(["long", "short", ""]),
)
choices = st.one_of(
    scalars, st.lists(st.integers(0, 3), max_size=2), st.dictionaries(NAMES, st.integers(0, 2), max_size=2)
)


def _unique(values: list[Any]) -> list[Any]:
    seen: set[Any] = set()
    out = []
    for v in values:
        if strict(v) not in seen:
            seen.add(strict(v))
            out.append(v)
    return out


grid_leaf = (
    st.lists(choices, min_size=1, max_size=4).map(_unique).map(lambda v: {"type": "grid", "values": v})
)
int_leaf = st.tuples(st.integers(-5, 5), st.integers(0, 6), st.integers(1, 3)).map(
    lambda t: {"type": "int", "low": t[0], "high": t[0] + t[1], "step": t[2]}
)
float_leaf = st.tuples(
    st.sampled_from([0.0, 0.18, 0.2, -0.5, 1.0, 0.05]),
    st.sampled_from([0.0, 0.1, 0.16, 0.4, 0.33]),
    st.sampled_from([0.1, 0.04, 0.05, 0.3, 0.25]),
).map(lambda t: {"type": "float", "low": t[0], "high": round(t[0] + t[1], 10), "step": t[2]})
fixed_leaf = st.one_of(choices.map(lambda v: {"type": "fixed", "value": v}), scalars)
leaf = st.one_of(grid_leaf, int_leaf, float_leaf, fixed_leaf)

trees = st.recursive(
    st.dictionaries(NAMES, leaf, min_size=1, max_size=4),
    lambda inner: st.dictionaries(NAMES, st.one_of(leaf, inner), min_size=1, max_size=3),
    max_leaves=6,
)


def small(tree: dict[str, Any]) -> bool:
    return 0 < len(expand(tree)) <= 3000


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def keys(points: Any) -> list[Any]:
    return [strict(p) for p in points]


@SETTINGS
@given(trees.filter(small), st.booleans())
def test_order_len_and_indexing_match_the_reference(tree: dict[str, Any], flat: bool) -> None:
    ref = expand(tree, flat=flat)
    g = Grid(tree, flat=flat)
    assert len(g) == g.size == len(ref)
    assert keys(g) == keys(ref)
    n = len(ref)
    for i in {0, n - 1, n // 2, n // 3}:
        assert strict(g[i]) == strict(ref[i])
        assert strict(g[i - n]) == strict(ref[i])
        assert g.index(ref[i]) == i
        assert ref[i] in g
    assert keys(reversed(g)) == keys(reversed(ref))


@SETTINGS
@given(
    trees.filter(small), st.integers(-40, 40), st.integers(-40, 40), st.sampled_from([1, 2, 3, -1, -3, None])
)
def test_slices_are_lazy_views_equal_to_list_slices(
    tree: dict[str, Any], a: int, b: int, c: int | None
) -> None:
    ref = expand(tree)
    g = Grid(tree)
    view = g[a:b:c]
    assert isinstance(view, Grid)
    assert keys(view) == keys(ref[a:b:c])
    assert len(view) == len(ref[a:b:c])
    inner = view[1::2]
    assert keys(inner) == keys(ref[a:b:c][1::2])
    for i, p in enumerate(ref[a:b:c][:5]):
        assert view.index(p) == i


@SETTINGS
@given(trees.filter(small), st.integers(1, 7))
def test_shards_partition_the_grid_in_order(tree: dict[str, Any], n: int) -> None:
    ref = expand(tree)
    g = Grid(tree)
    shards = [g.shard(k, n) for k in range(n)]
    assert keys(itertools.chain.from_iterable(shards)) == keys(ref)
    sizes = [len(s) for s in shards]
    assert max(sizes) - min(sizes) <= 1


@SETTINGS
@given(trees.filter(small), st.integers(0, 2**64 - 1))
def test_shuffled_is_a_permutation_and_sample_its_prefix(tree: dict[str, Any], seed: int) -> None:
    g = Grid(tree)
    shuffled = g.shuffled(seed)
    order = [g.index(p) for p in shuffled]
    assert sorted(order) == list(range(len(g)))
    assert [shuffled.index(g[i]) for i in order[:10]] == list(range(min(10, len(g))))
    k = min(5, len(g))
    assert keys(g.sample(k, seed=seed)) == keys(shuffled[:k])
    assert keys(Grid(tree).shuffled(seed)) == keys(shuffled)


ints3 = st.tuples(*(st.integers(0, 4) for _ in range(3))).map(
    lambda t: {
        "fast": {"type": "int", "low": 0, "high": t[0] + 2},
        "mode": {"type": "grid", "values": ["long", "short", "flip"][: t[1] % 3 + 1]},
        "mid": {"type": "fixed", "value": 1},
        "slow": {"type": "int", "low": 1, "high": t[2] + 3},
        "lev": {"type": "grid", "values": [1, 2, 3.5]},
    }
)
CONSTRAINTS = [
    ("fast < slow", lambda p: p["fast"] < p["slow"]),
    ("fast + mid <= slow - 1", lambda p: p["fast"] + p["mid"] <= p["slow"] - 1),
    ("mode == 'long' or lev <= 2", lambda p: p["mode"] == "long" or p["lev"] <= 2),
    ("not (fast == 2 and lev > 1)", lambda p: not (p["fast"] == 2 and p["lev"] > 1)),
    ("slow * lev / 2 > fast", lambda p: p["slow"] * p["lev"] / 2 > p["fast"]),
    ("1 > 2", lambda p: False),
]


@SETTINGS
@given(ints3, st.lists(st.sampled_from(range(len(CONSTRAINTS))), min_size=1, max_size=3, unique=True))
def test_constraints_equal_filtering(tree: dict[str, Any], picks: list[int]) -> None:
    texts = [CONSTRAINTS[i][0] for i in picks]
    ref = [p for p in expand(tree) if all(CONSTRAINTS[i][1](p) for i in picks)]
    g = Grid(tree, constraints=texts)
    assert len(g) == len(ref)
    assert keys(g) == keys(ref)
    assert keys(g[i] for i in range(len(ref))) == keys(ref)
    assert [g.index(p) for p in ref] == list(range(len(ref)))
    for p in expand(tree):
        assert (p in g) == any(strict(p) == strict(r) for r in ref)


@SETTINGS
@given(trees.filter(small), st.integers(1, 50))
def test_columns_equal_the_points(tree: dict[str, Any], chunk: int) -> None:
    g = Grid(tree, flat=True)
    ref = expand(tree, flat=True)
    cols = g.columns()
    assert list(cols) == list(g.paths)
    for path, col in cols.items():
        assert len(col) == len(ref)
        values = col.tolist()
        assert [strict(v) for v in values] == [strict(p[path]) for p in ref], path
        if col.dtype != object:
            assert col.dtype in (np.int64, np.float64, np.bool_)
    chunks = list(g.iter_columns(chunk=chunk))
    for path in g.paths:
        joined = [v for c in chunks for v in c[path].tolist()]
        assert [strict(v) for v in joined] == [strict(p[path]) for p in ref]
    shuffled = g.shuffled(3)
    scols = shuffled.columns()
    for path in g.paths:
        assert [strict(v) for v in scols[path].tolist()] == [strict(p[path]) for p in shuffled]


@SETTINGS
@given(st.lists(trees.filter(small), min_size=2, max_size=3))
def test_a_list_of_trees_is_the_union_in_order(forest: list[dict[str, Any]]) -> None:
    ref = expand(forest)
    g = Grid(forest)
    assert len(g) == len(ref)
    assert keys(g) == keys(ref)
    assert keys(g[i] for i in range(len(ref))) == keys(ref)
    cols = g.columns()
    for path, col in cols.items():
        expected = [strict(p.get(path)) for p in expand(forest, flat=True)]
        assert [strict(v) for v in col.tolist()] == expected
