"""ConfigTemplate (the Rust merge) and ConfigCache (files, validation, snapshots, reloads)."""

from __future__ import annotations

import copy
import json
import os
import pickle
import threading
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import fastgrid
import fastgrid.config as config_module
import pytest
import yaml
from fastgrid import ConfigCache, ConfigChangedWarning, ConfigError, ConfigTemplate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field

DATA = Path(__file__).parent / "data"
DEFAULT = json.loads((DATA / "strategy_default.json").read_text())

OVERRIDES = {
    "thresholds.entry_z": 2.5,
    "exit.trailing.distance_pct": 0.01,
    "risk.max_positions": 3,
    "universe.symbols": ["BTCUSDT"],
    "signals": {"hedge_ratio": {"window": 144}},
}


def _get(tree: Any, path: str) -> Any:
    for key in path.split("."):
        tree = tree[key]
    return tree


def _containers(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    """Every dict and list in a tree, with the path that reaches it."""
    out: list[tuple[tuple[Any, ...], Any]] = []
    if isinstance(value, dict):
        out.append((path, value))
        for k, v in value.items():
            out += _containers(v, (*path, k))
    elif isinstance(value, list):
        out.append((path, value))
        for i, v in enumerate(value):
            out += _containers(v, (*path, i))
    return out


def _write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data))
    return path


# --- ConfigTemplate ----------------------------------------------------------------------------


def test_merged_writes_overrides_at_their_paths() -> None:
    template = ConfigTemplate(DEFAULT)
    merged = template.merged(OVERRIDES)
    expected = copy.deepcopy(DEFAULT)
    expected["thresholds"]["entry_z"] = 2.5
    expected["exit"]["trailing"]["distance_pct"] = 0.01
    expected["risk"]["max_positions"] = 3
    expected["universe"]["symbols"] = ["BTCUSDT"]
    expected["signals"]["hedge_ratio"]["window"] = 144
    assert merged == expected
    assert list(merged) == list(DEFAULT)
    assert list(merged["signals"]["hedge_ratio"]) == list(DEFAULT["signals"]["hedge_ratio"])
    assert template.to_dict() == DEFAULT


def test_dotted_and_nested_overrides_give_the_same_dict() -> None:
    template = ConfigTemplate(DEFAULT)
    nested = {"risk": {"stop_loss": 0.01, "kill_switch": {"enabled": False}}}
    dotted = {"risk.stop_loss": 0.01, "risk.kill_switch.enabled": False}
    mixed = {"risk.kill_switch": {"enabled": False}, "risk": {"stop_loss": 0.01}}
    assert template.merged(nested) == template.merged(dotted) == template.merged(mixed)


def test_leaves_take_any_type_and_values_are_copied_in() -> None:
    template = ConfigTemplate(DEFAULT)
    weights = [0.6, 0.4]
    merged = template.merged({"entry.scale_in.weights": weights, "logging.file": "run.log"})
    assert merged["entry"]["scale_in"]["weights"] == weights
    assert merged["entry"]["scale_in"]["weights"] is not weights
    assert merged["logging"]["file"] == "run.log"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutating_any_container_of_a_result_leaks_nowhere(data: st.DataObject) -> None:
    cache_template = ConfigTemplate(DEFAULT)
    first = cache_template.merged(OVERRIDES)
    pristine = copy.deepcopy(first)
    containers = _containers(first)
    path, target = data.draw(st.sampled_from(containers), label="container")
    if isinstance(target, dict):
        key = data.draw(st.sampled_from([*target, "__new__"]), label="key")
        if data.draw(st.booleans(), label="delete") and key in target:
            del target[key]
        else:
            target[key] = "mutated"
    else:
        target.append("mutated")
    assert first != pristine, path
    assert cache_template.to_dict() == DEFAULT
    assert cache_template.merged(OVERRIDES) == pristine
    assert cache_template.fingerprint == fastgrid.trial_key(DEFAULT)


def test_no_two_results_share_a_container() -> None:
    template = ConfigTemplate(DEFAULT)
    a, b, c = template.merged(OVERRIDES), template.merged({}), template.to_dict()
    ids = [{id(obj) for _, obj in _containers(x)} for x in (a, b, c)]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    source = ConfigTemplate(tree := copy.deepcopy(DEFAULT))
    assert not ({id(o) for _, o in _containers(tree)} & {id(o) for _, o in _containers(source.to_dict())})
    tree["risk"]["stop_loss"] = 0.5
    assert source.to_dict() == DEFAULT


@pytest.mark.parametrize(
    ("params", "path", "fragments"),
    [
        ({"risk.stop_los": 0.1}, "risk.stop_los", ['did you mean "stop_loss"', "allow_new"]),
        ({"risk": {"kill_switch": {"drawdon": 0.1}}}, "risk.kill_switch.drawdon", ['"drawdown"']),
        ({"nonsense_section": 1}, "nonsense_section", ["top level", '"risk"']),
        ({"risk.stop_loss.x": 1}, "risk.stop_loss.x", ['"risk.stop_loss" is a float']),
        ({"universe.symbols.0": "ETH"}, "universe.symbols.0", ["is a list"]),
        ({"risk": 0.5}, "risk", ["section", "cannot be replaced by a float"]),
        ({"exit.trailing": [1]}, "exit.trailing", ["cannot be replaced by a list"]),
        ({"risk.stop_loss": 0.1, "risk": {"stop_loss": 0.2}}, "risk.stop_loss", ["more than once"]),
        ({"risk..stop_loss": 0.1}, "risk..stop_loss", ["empty segment"]),
    ],
)
def test_merge_errors_name_the_path(params: dict[str, Any], path: str, fragments: list[str]) -> None:
    template = ConfigTemplate(DEFAULT)
    with pytest.raises(ConfigError) as info:
        template.merged(params)
    assert info.value.path == path
    for fragment in fragments:
        assert fragment in str(info.value)


def test_allow_new_adds_keys_and_sections() -> None:
    template = ConfigTemplate(DEFAULT)
    merged = template.merged({"risk.trailing_lock": True, "ml.model.depth": 4}, allow_new=True)
    assert merged["risk"]["trailing_lock"] is True
    assert merged["ml"] == {"model": {"depth": 4}}
    assert list(merged)[-1] == "ml"
    with pytest.raises(ConfigError, match="used as a section"):
        template.merged({"ml": 1, "ml.depth": 2}, allow_new=True)


def test_template_refuses_unaddressable_keys_and_non_dicts() -> None:
    with pytest.raises(ConfigError) as info:
        ConfigTemplate({"data": {"BTC.USD": 1}})
    assert info.value.path == "data"
    assert ConfigTemplate({"rules": [{"a.b": 1}]}).to_dict() == {"rules": [{"a.b": 1}]}
    with pytest.raises(TypeError, match="dict"):
        ConfigTemplate([1, 2])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"risk\.when"):
        ConfigTemplate({"risk": {"when": object()}})


def test_template_pickles_and_converts_tuples() -> None:
    template = ConfigTemplate({"a": (1, 2), "b": {"c": None}})
    assert template.to_dict() == {"a": [1, 2], "b": {"c": None}}
    clone = pickle.loads(pickle.dumps(template))
    assert clone.to_dict() == template.to_dict()
    assert clone.fingerprint == template.fingerprint


# --- ConfigCache: files ------------------------------------------------------------------------


def test_json_toml_and_yaml_load_to_the_same_config(tmp_path: Path) -> None:
    small = {"data": {"timeframe": "15m", "bars": 500}, "risk": {"stop_loss": 0.02, "on": True}}
    json_file = _write_json(tmp_path / "c.json", small)
    toml_file = tmp_path / "c.toml"
    toml_file.write_text('[data]\ntimeframe = "15m"\nbars = 500\n[risk]\nstop_loss = 0.02\non = true\n')
    yaml_file = tmp_path / "c.yml"
    yaml_file.write_text(yaml.safe_dump(small))
    caches = [ConfigCache(f) for f in (json_file, toml_file, yaml_file)]
    assert [c.to_dict() for c in caches] == [small] * 3
    assert len({c.fingerprint for c in caches}) == 1


@pytest.mark.parametrize(
    ("name", "text", "pattern"),
    [
        ("bad.json", '{\n  "a": 1,\n  "b": ,\n}', r"bad\.json:3:8: invalid JSON"),
        ("bad.yaml", "a: 1\nb: [1, 2\nc: 3\n", r"bad\.yaml:\d+:\d+: invalid YAML"),
        ("bad.toml", "a = 1\nb = = 2\n", r"bad\.toml:2:\d+: invalid TOML"),
        ("list.json", "[1, 2]", r"list\.json: a config must be a mapping at the top level, got list"),
        ("conf.ini", "a=1", r"conf\.ini: unknown file type '\.ini'"),
    ],
)
def test_file_errors_name_the_file_and_line(tmp_path: Path, name: str, text: str, pattern: str) -> None:
    (tmp_path / name).write_text(text)
    with pytest.raises(ConfigError, match=pattern):
        ConfigCache(tmp_path / name).to_dict()


def test_yaml_line_is_where_the_problem_is(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("a: 1\nb:\n  c: 2\n   d: 3\n")
    with pytest.raises(ConfigError, match=r"c\.yaml:4:\d+:"):
        ConfigCache(tmp_path / "c.yaml").to_dict()


def test_missing_file_is_file_not_found(tmp_path: Path) -> None:
    cache = ConfigCache(tmp_path / "absent.json")
    with pytest.raises(FileNotFoundError):
        cache.to_dict()


def test_unaddressable_config_names_the_file(tmp_path: Path) -> None:
    path = _write_json(tmp_path / "c.json", {"fees": {"BTC.USD": 1}})
    with pytest.raises(ConfigError, match=r"c\.json: fees: .*BTC\.USD") as info:
        ConfigCache(path).to_dict()
    assert info.value.path == "fees"


# --- ConfigCache: snapshot, merge, fingerprint --------------------------------------------------


def test_snapshot_is_deeply_read_only_and_not_live(tmp_path: Path) -> None:
    cache = ConfigCache(DATA / "strategy_default.json")
    snap = cache.snapshot
    with pytest.raises(TypeError):
        snap["risk"] = {}  # type: ignore[index]
    with pytest.raises(TypeError):
        snap["risk"]["stop_loss"] = 1.0
    assert isinstance(snap["universe"]["symbols"], tuple)
    merged = cache.merged({"risk.stop_loss": 0.05})
    merged["risk"]["kill_switch"]["enabled"] = False
    merged["universe"]["symbols"].append("DOGEUSDT")
    assert snap["risk"]["stop_loss"] == DEFAULT["risk"]["stop_loss"]
    assert snap["risk"]["kill_switch"]["enabled"] is True
    assert list(snap["universe"]["symbols"]) == DEFAULT["universe"]["symbols"]
    assert cache.snapshot is snap
    assert cache.to_dict() == DEFAULT


def test_snapshot_sections_can_be_passed_back_as_overrides() -> None:
    cache = ConfigCache(DATA / "strategy_default.json")
    snap = cache.snapshot
    merged = cache.merged({"risk": snap["risk"], "universe.symbols": snap["universe"]["symbols"]})
    assert merged == DEFAULT
    assert isinstance(merged["universe"]["symbols"], list)


def test_fingerprint_tracks_content(tmp_path: Path) -> None:
    a = ConfigCache(_write_json(tmp_path / "a.json", DEFAULT))
    reordered = {k: DEFAULT[k] for k in reversed(list(DEFAULT))}
    b = ConfigCache(_write_json(tmp_path / "b.json", reordered))
    changed = copy.deepcopy(DEFAULT)
    changed["risk"]["max_positions"] = 6
    c = ConfigCache(_write_json(tmp_path / "c.json", changed))
    assert a.fingerprint == b.fingerprint == fastgrid.trial_key(DEFAULT)
    assert a.fingerprint != c.fingerprint


def test_allow_new_is_a_cache_option(tmp_path: Path) -> None:
    strict = ConfigCache(DATA / "strategy_default.json")
    loose = ConfigCache(DATA / "strategy_default.json", allow_new=True)
    with pytest.raises(ConfigError):
        strict.merged({"risk.new_knob": 1})
    assert loose.merged({"risk.new_knob": 1})["risk"]["new_knob"] == 1


# --- ConfigCache: models -----------------------------------------------------------------------


class Risk(BaseModel):
    stop_loss: float = Field(gt=0, lt=1)
    max_positions: int = Field(gt=0)


class Small(BaseModel):
    risk: Risk
    symbols: list[str]


def test_model_validates_every_merged_config(tmp_path: Path) -> None:
    path = _write_json(tmp_path / "c.json", {"risk": {"stop_loss": 0.02, "max_positions": 3}, "symbols": []})
    cache = ConfigCache(path, model=Small)
    assert cache.merged({"risk.stop_loss": 0.5})["risk"]["stop_loss"] == 0.5
    with pytest.raises(ConfigError) as info:
        cache.merged({"risk.stop_loss": 1.5, "symbols": ["A", 7]})
    message = str(info.value)
    assert "risk.stop_loss: Input should be less than 1 (got 1.5)" in message
    assert "symbols[1]: Input should be a valid string (got 7)" in message
    assert "risk.stop_loss=1.5" in message
    assert info.value.path == "risk.stop_loss"


def test_model_validates_the_default(tmp_path: Path) -> None:
    path = _write_json(tmp_path / "c.json", {"risk": {"stop_loss": -1, "max_positions": 3}})
    with pytest.raises(ConfigError) as info:
        ConfigCache(path, model=Small).to_dict()
    message = str(info.value)
    assert str(path) in message
    assert "risk.stop_loss: Input should be greater than 0 (got -1)" in message
    assert "symbols: Field required" in message


def test_model_by_import_string(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(DATA))
    cache = ConfigCache(DATA / "strategy_default.json", model="strategy_model:StrategyConfig")
    assert cache.model is not None and cache.model.__name__ == "StrategyConfig"
    with pytest.raises(ConfigError, match=r"exit\.stop_loss_pct: Input should be less than 1 \(got 2\.0\)"):
        cache.merged({"exit.stop_loss_pct": 2.0})
    assert cache.merged({"exit.stop_loss_pct": 0.03})["exit"]["stop_loss_pct"] == 0.03


@pytest.mark.parametrize(
    ("model", "error", "pattern"),
    [
        ("no_colon", ValueError, "module:Class"),
        ("fastgrid_no_such_module:X", ValueError, "cannot import"),
        ("fastgrid.config:NoSuchClass", ValueError, "has no attribute 'NoSuchClass'"),
        ("fastgrid.config:ConfigCache", TypeError, "BaseModel"),
        (dict, TypeError, "BaseModel"),
    ],
)
def test_bad_model_specs(model: Any, error: type[Exception], pattern: str) -> None:
    with pytest.raises(error, match=pattern):
        ConfigCache(DATA / "strategy_default.json", model=model)


# --- ConfigCache: concurrency, changes, pickling ------------------------------------------------


def test_eight_threads_cause_one_load(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = config_module._read_file

    def slow_read(path: Path) -> dict[str, Any]:
        calls.append(path)
        time.sleep(0.05)  # widens the window in which the other threads arrive
        return real(path)

    monkeypatch.setattr(config_module, "_read_file", slow_read)
    cache = ConfigCache(DATA / "strategy_default.json")
    barrier = threading.Barrier(8)
    fingerprints: list[str] = []

    def worker() -> None:
        barrier.wait()
        fingerprints.append(cache.fingerprint)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(calls) == 1
    assert fingerprints == [fastgrid.trial_key(DEFAULT)] * 8


def _bump(path: Path, data: Any) -> None:
    """Rewrites a file so that its size or mtime surely differs."""
    before = path.stat()
    _write_json(path, data)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + 10**9))


def test_a_changed_file_keeps_the_snapshot_and_warns_once(tmp_path: Path) -> None:
    path = _write_json(tmp_path / "c.json", {"risk": {"stop_loss": 0.02}})
    cache = ConfigCache(path, check_interval=0)
    fingerprint = cache.fingerprint
    assert not cache.changed()
    _bump(path, {"risk": {"stop_loss": 0.03}})
    assert cache.changed()
    with pytest.warns(ConfigChangedWarning, match=r"c\.json changed on disk") as record:
        assert cache.merged({})["risk"]["stop_loss"] == 0.02
    assert len(record) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cache.merged({})["risk"]["stop_loss"] == 0.02
    assert cache.fingerprint == fingerprint
    cache.reload()
    assert cache.merged({})["risk"]["stop_loss"] == 0.03


def test_reload_true_picks_up_changes(tmp_path: Path) -> None:
    path = _write_json(tmp_path / "c.json", {"risk": {"stop_loss": 0.02}})
    cache = ConfigCache(path, reload=True, check_interval=0)
    first = cache.fingerprint
    _bump(path, {"risk": {"stop_loss": 0.04}})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cache.merged({})["risk"]["stop_loss"] == 0.04
    assert cache.fingerprint != first
    assert cache.snapshot["risk"]["stop_loss"] == 0.04


def test_changes_are_looked_for_at_most_every_check_interval(tmp_path: Path) -> None:
    path = _write_json(tmp_path / "c.json", {"a": 1})
    cache = ConfigCache(path, reload=True, check_interval=3600)
    assert cache.to_dict() == {"a": 1}
    _bump(path, {"a": 2})
    assert cache.to_dict() == {"a": 1}
    assert cache.changed()


def test_an_unloaded_cache_pickles_by_path_and_loads_lazily(tmp_path: Path) -> None:
    path = _write_json(tmp_path / "c.json", {"risk": {"stop_loss": 0.02, "max_positions": 1}, "symbols": []})
    cache = ConfigCache(path, model=Small, allow_new=True)
    clone = pickle.loads(pickle.dumps(cache))
    assert "not loaded" in repr(clone)
    assert clone.model is Small and clone.allow_new
    assert clone.merged({"extra": 1})["extra"] == 1
    assert clone.fingerprint == cache.fingerprint


def test_a_loaded_cache_pickles_its_snapshot_not_the_file(tmp_path: Path) -> None:
    # Issue 12, item 5: a spawned worker re-read a config edited after the run started, so trials
    # of one fingerprint ran with two configs.
    path = _write_json(tmp_path / "c.json", {"risk": {"stop_loss": 0.02, "max_positions": 1}, "symbols": []})
    cache = ConfigCache(path, model=Small, allow_new=True, check_interval=3600)
    fingerprint = cache.fingerprint
    _bump(path, {"risk": {"stop_loss": 0.09, "max_positions": 1}, "symbols": []})
    clone = pickle.loads(pickle.dumps(cache))
    assert "not loaded" not in repr(clone)
    assert clone.fingerprint == fingerprint
    assert clone.merged({"extra": 1}) == {
        "risk": {"stop_loss": 0.02, "max_positions": 1},
        "symbols": [],
        "extra": 1,
    }
    assert clone.snapshot["risk"]["stop_loss"] == 0.02


def test_worker_processes_build_their_own_cache() -> None:
    cache = ConfigCache(DATA / "strategy_default.json")
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        merged = pool.submit(cache.merged, {"risk.stop_loss": 0.05}).result(timeout=120)
        fingerprint = pool.submit(getattr, cache, "fingerprint").result(timeout=120)
    assert merged == ConfigTemplate(DEFAULT).merged({"risk.stop_loss": 0.05})
    assert fingerprint == fastgrid.trial_key(DEFAULT)
