"""fastgrid.trial_key: canonical, type-strict, order-free and stable keys of parameter sets."""

from __future__ import annotations

import json
import math
import os
import random
import struct
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import fastgrid
import pytest
import xxhash
from fastgrid import SpecError, trial_key
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

DATA = Path(__file__).parent / "data"

# --- an independent implementation of the documented encoding (docs/formats.md) ---------------


def _u64(n: int) -> bytes:
    return struct.pack("<Q", n)


def _str(s: str) -> bytes:
    raw = s.encode()
    return _u64(len(raw)) + raw


def _value(v: Any) -> bytes:
    if v is None:
        return b"N"
    if v is True:
        return b"T"
    if v is False:
        return b"F"
    if isinstance(v, int):
        return b"I" + struct.pack("<q", v)
    if isinstance(v, float):
        bits = 0x7FF8000000000000 if math.isnan(v) else struct.unpack("<Q", struct.pack("<d", v))[0]
        return b"D" + _u64(bits)
    if isinstance(v, str):
        return b"S" + _str(v)
    if isinstance(v, (list, tuple)):
        return b"L" + _u64(len(v)) + b"".join(_value(x) for x in v)
    if isinstance(v, dict):
        entries = sorted(v.items(), key=lambda kv: kv[0].encode())
        return b"M" + _u64(len(v)) + b"".join(_str(k) + _value(x) for k, x in entries)
    raise TypeError(type(v))


def _leaves(params: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, Any]]:
    out = []
    for key, value in params.items():
        path = prefix + tuple(key.split("."))
        if isinstance(value, dict) and value:
            out += _leaves(value, path)
        else:
            out.append(("\0".join(path), value))
    return out


def reference_key(params: dict[str, Any]) -> str:
    leaves = sorted(_leaves(params), key=lambda lv: lv[0].encode())
    data = b"fastgrid.trial_key.v1\0" + _u64(len(leaves))
    data += b"".join(_str(path) + _value(value) for path, value in leaves)
    return xxhash.xxh3_128_hexdigest(data)


# --- strategies -------------------------------------------------------------------------------

names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789é", min_size=1, max_size=8)
scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats() | st.text(max_size=10)
# Inside lists, dicts are plain values with any keys (not split on dots).
in_lists = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=2),
    max_leaves=4,
)
values: st.SearchStrategy[Any] = scalars | st.lists(in_lists, max_size=3) | st.just({})
params_trees = st.recursive(
    st.dictionaries(names, values, max_size=4),
    lambda inner: st.dictionaries(names, inner | values, max_size=3),
    max_leaves=6,
)


def _shuffled(value: Any, rng: random.Random) -> Any:
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {k: _shuffled(v, rng) for k, v in items}
    if isinstance(value, list):
        return [_shuffled(v, rng) for v in value]
    return value


def _dotted(params: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict) and value:
            out.update(_dotted(value, path))
        else:
            out[path] = value
    return out


# The machine is shared: generous limits keep these from failing on a slow moment.
relaxed = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- properties -------------------------------------------------------------------------------


@settings(relaxed, max_examples=300)
@given(params_trees)
def test_key_follows_the_documented_encoding(params: dict[str, Any]) -> None:
    assert trial_key(params) == reference_key(params)


@relaxed
@given(params_trees, st.randoms())
def test_dict_order_never_matters(params: dict[str, Any], rng: random.Random) -> None:
    assert trial_key(_shuffled(params, rng)) == trial_key(params)


@relaxed
@given(params_trees)
def test_dotted_and_nested_forms_are_one_key(params: dict[str, Any]) -> None:
    assert trial_key(_dotted(params)) == trial_key(params)


@relaxed
@given(params_trees, params_trees)
def test_different_params_give_different_keys(a: dict[str, Any], b: dict[str, Any]) -> None:
    # Equality that keeps types apart: json of the canonical leaves, with the type named.
    def canon(p: dict[str, Any]) -> list[tuple[str, str]]:
        return sorted((path, _value(v).hex()) for path, v in _leaves(p))

    assert (trial_key(a) == trial_key(b)) == (canon(a) == canon(b))


def test_types_are_kept_apart() -> None:
    variants = [True, 1, 1.0, "1", [1], (1.0,), None, 0, False, 0.0, -0.0, "", [], {}]
    keys = {trial_key({"p": v}) for v in variants}
    # (1.0,) is a list of a float, [1] a list of an int: all fourteen differ.
    assert len(keys) == len(variants)


def test_nan_keys_alike_and_tuples_key_as_lists() -> None:
    assert trial_key({"p": float("nan")}) == trial_key({"p": -float("nan")})
    assert trial_key({"p": (1, "a")}) == trial_key({"p": [1, "a"]})


def test_nested_and_mixed_forms_agree() -> None:
    nested = {"risk": {"stop_loss": 0.02, "limits": {"max": 5}}, "fast": 10}
    dotted = {"risk.stop_loss": 0.02, "risk.limits.max": 5, "fast": 10}
    mixed = {"fast": 10, "risk.limits": {"max": 5}, "risk": {"stop_loss": 0.02}}
    assert trial_key(nested) == trial_key(dotted) == trial_key(mixed)
    assert trial_key({"a": {}}) != trial_key({})


def test_any_mapping_is_accepted() -> None:
    params = {"risk": {"stop_loss": 0.02}, "fast": 10}
    proxy = MappingProxyType({"risk": MappingProxyType({"stop_loss": 0.02}), "fast": 10})
    assert trial_key(proxy) == trial_key(params)


def test_keys_are_stable_across_processes_and_hash_seeds() -> None:
    params = json.loads((DATA / "strategy_default.json").read_text())
    code = "import json, sys, fastgrid; print(fastgrid.trial_key(json.loads(sys.stdin.read())))"
    seen = set()
    for seed in ("0", "1", "12345"):
        out = subprocess.run(
            [sys.executable, "-c", code],
            input=json.dumps(params),
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        )
        seen.add(out.stdout.strip())
    assert seen == {trial_key(params)}
    assert len(trial_key(params)) == 32


def test_fingerprint_of_a_template_is_the_key_of_its_tree() -> None:
    tree = json.loads((DATA / "strategy_default.json").read_text())
    template = fastgrid.ConfigTemplate(tree)
    assert template.fingerprint == trial_key(tree) == reference_key(tree)


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "path", "fragment"),
    [
        ({"a.b": 1, "a": {"b": 2}}, "a.b", "more than once"),
        ({"a": 1, "a.b": 2}, "a.b", "also used as a section"),
        ({"a": 1, "a-c": 2, "a.b": 3}, "a.b", "also used as a section"),
        ({"a..b": 1}, "a..b", "empty segment"),
        ({"sec": {"x.": 1}}, "sec.x.", "empty segment"),
        ({"big": 2**64}, "big", "64 bits"),
        ({"l": [1, 2**70]}, "l[1]", "64 bits"),
    ],
)
def test_bad_params_name_the_path(params: dict[str, Any], path: str, fragment: str) -> None:
    with pytest.raises(SpecError, match=fragment) as info:
        trial_key(params)
    assert info.value.path == path


def test_non_json_values_and_keys_are_type_errors() -> None:
    with pytest.raises(TypeError, match=r"risk\.when: .*object"):
        trial_key({"risk": {"when": object()}})
    with pytest.raises(TypeError, match="strings"):
        trial_key({1: 2})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="mapping"):
        trial_key([("a", 1)])  # type: ignore[arg-type]


# --- the hot path: names seen again and again ------------------------------------------------

# Flat dotted names as a sampler reports them: long shared prefixes (heads that tie past 16
# bytes), a '-' that sorts between '.' and letters, non-ASCII, and the odd bad name.
dotted_names = st.lists(
    st.sampled_from(["a", "a-c", "risk", "execution", "slippage", "slippage_bps", "thresholds", "é"])
    | st.text(alphabet="abcxyz_", min_size=1, max_size=20),
    min_size=1,
    max_size=4,
).map(".".join) | st.sampled_from(["a..b", ".a", "a.", "a\0b"])
flat_params = st.dictionaries(dotted_names, scalars | st.lists(scalars, max_size=3), max_size=24)


def _expected(params: dict[str, Any]) -> str | None:
    """The reference key, or None where trial_key must refuse the names."""
    paths = [tuple(name.split(".")) for name in params]
    if any("" in path or "\0" in "".join(path) for path in paths):
        return None
    if any(p != q and q[: len(p)] == p for p in paths for q in paths):
        return None
    return reference_key(params)


@settings(relaxed, max_examples=400)
@given(flat_params, st.randoms())
def test_flat_dotted_keys_follow_the_documented_encoding(params: dict[str, Any], rng: random.Random) -> None:
    expected = _expected(params)
    # Twice with the same name objects (the cached way), then with fresh copies of the names.
    fresh = {"".join(list(name)): value for name, value in _shuffled(params, rng).items()}
    for each in (params, params, fresh):
        if expected is None:
            with pytest.raises(SpecError):
                trial_key(each)
        else:
            assert trial_key(each) == expected


def test_known_keys_never_change() -> None:
    # Frozen v1 keys, as the implementation before the cached fast path computed them (and the
    # independent reference above does): a change here changes every stored trial key.
    params = {
        "thresholds.entry_z": 1.75,
        "exit.take_profit_pct": 0.04,
        "exit.trailing.enabled": True,
        "risk.max_positions": 5,
        "data.timeframe": "15m",
        "filters.session.hours": [8, 20],
    }
    nested = {
        "risk": {"stop_loss": 0.02, "limits": {"max": 5}},
        "fast": 10,
        "name": "é",
        "on": True,
        "nothing": None,
        "grid": [1, 2.5, "x", [False]],
        "empty": {},
    }
    types = {"i": -(2**63), "f": -0.0, "nan": float("nan"), "s": "", "t": (1, "a"), "m": [{"b": 1, "a.x": 2}]}
    default = json.loads((DATA / "strategy_default.json").read_text())
    known = [
        ({}, "8dbcb2d2e4a4732a0be7bc0498bd05de"),
        (nested, "58480793157c598c97ce85351703ca56"),
        (types, "53df93812c3c7b3daad606862c61c270"),
        (default, "cf6279481f40a9cee0174b6837cd9c5c"),
    ]
    for tree, key in known:
        assert reference_key(tree) == key
        # Twice: the second call takes the cached names and the remembered order.
        assert trial_key(tree) == trial_key(tree) == key
    assert trial_key(params) == reference_key(params)


def test_names_reused_with_new_values_and_after_errors() -> None:
    names = [f"section_{i % 7}.name_{i}_with_a_long_tail" for i in range(40)]
    for round_ in range(3):
        params = {name: float(i * round_) for i, name in enumerate(names)}
        assert trial_key(params) == reference_key(params)
        with pytest.raises(SpecError, match="also used as a section"):
            trial_key({**params, "section_1": 1})
        with pytest.raises(SpecError, match="empty segment"):
            trial_key({**params, "section_1..x": 1})
        assert trial_key(params) == reference_key(params)


def test_many_and_long_names_are_keyed_right() -> None:
    # More names than the per-thread cache holds, and names longer than it keeps.
    wide = {f"p{i}.x": i for i in range(2000)}
    long = {"a" * 70_000: 1, "b." + "c" * 70_000: 2.5}
    for params in (wide, long, wide, long):
        assert trial_key(params) == reference_key(params)


def test_a_mapping_that_asks_for_a_key_while_being_keyed() -> None:
    inner = {"x.y": 1, "z": "s"}

    class Reentrant(Mapping[str, Any]):
        def __getitem__(self, name: str) -> Any:
            return inner[name]

        def __iter__(self) -> Iterator[str]:
            return iter(inner)

        def __len__(self) -> int:
            return len(inner)

        def items(self) -> Any:
            seen.append(trial_key(inner))
            return inner.items()

    seen: list[str] = []
    params = {"a": 1.5, "sec": Reentrant(), "b.c": [1, 2]}
    assert trial_key(params) == reference_key({"a": 1.5, "sec": inner, "b.c": [1, 2]})
    assert seen == [reference_key(inner)]


def test_string_subclass_names() -> None:
    class Name(str):
        pass

    params = {Name("risk.stop"): 0.1, "fast": 3}
    assert trial_key(params) == trial_key(params) == reference_key({"risk.stop": 0.1, "fast": 3})
