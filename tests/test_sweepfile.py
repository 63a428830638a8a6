"""The sweep file: every section validated, every error naming the file, key path and fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from fastgrid import SweepFileError
from fastgrid.sweepfile import load_sweep_file, parse_duration

MINIMAL = """
[objective]
callable = "mod:run"

[parameters]
fast = { type = "int", low = 2, high = 5 }
"""


def with_direction(text: str) -> str:
    """A TOML sweep file with ``direction`` set (it is required), unless it sets one itself."""
    if "direction" in text:
        return text
    if "[sweep]\n" in text:
        return text.replace("[sweep]\n", '[sweep]\ndirection = "minimize"\n', 1)
    return '[sweep]\ndirection = "minimize"\n' + text


def write(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    path = tmp_path / name
    path.write_text(with_direction(text) if name.endswith(".toml") else text)
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(SweepFileError) as info:
        load_sweep_file(path)
    assert str(path) in str(info.value)
    return info.value.problems


def test_minimal_file_gets_documented_defaults_and_its_stem_as_name(tmp_path: Path) -> None:
    spec = load_sweep_file(write(tmp_path, MINIMAL, "my-sweep.toml"))
    assert spec.sweep.name == "my-sweep"
    assert spec.sweep.all_directions == ["minimize"]
    assert spec.sweep.objective_metrics == ["value"]
    assert spec.sweep.sampler.name == "grid"
    assert spec.sweep.order == "sequential"
    assert spec.sweep.workers == 1
    assert spec.sweep.max_trials is None and spec.sweep.timeout is None
    assert spec.objective.callable == "mod:run" and spec.objective.command is None
    assert spec.config is None
    assert spec.constraints.require == []


def test_relative_paths_resolve_against_the_sweep_files_directory(tmp_path: Path) -> None:
    sub = tmp_path / "sweeps"
    sub.mkdir()
    text = """
[objective]
command = ["python", "bt.py", "{config_file}"]
cwd = "work"
results = { dir = "out", pattern = "{trial_number}.json" }

[config]
path = "../configs/default.json"

[parameters]
a = { type = "grid", values = [1, 2] }
"""
    spec = load_sweep_file(write(sub, text))
    assert spec.config is not None
    assert spec.config.path == sub / "../configs/default.json"
    assert spec.objective.cwd == sub / "work"
    assert spec.objective.results is not None and spec.objective.results.dir == sub / "out"


def test_yaml_and_json_files_mean_the_same_as_toml(tmp_path: Path) -> None:
    data = {
        "sweep": {"name": "x", "direction": "maximize", "metric": "sharpe", "timeout": "2h"},
        "objective": {"callable": "mod:run"},
        "parameters": {"fast": {"type": "int", "low": 2, "high": 5}},
    }
    from_yaml = load_sweep_file(write(tmp_path, yaml.safe_dump(data), "s.yaml"))
    from_json = load_sweep_file(write(tmp_path, json.dumps(data), "s.json"))
    assert from_yaml == from_json
    assert from_yaml.sweep.timeout == 7200.0


def test_a_typo_names_the_key_path_and_suggests_the_right_key(tmp_path: Path) -> None:
    found = problems(write(tmp_path, '[sweep]\nordr = "shuffled"\n' + MINIMAL))
    assert len(found) == 1
    assert found[0].startswith("sweep.ordr: unknown key (did you mean 'order'?)")


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    text = """
[sweep]
sampler = { name = "tpee" }
max_trials = 0
timeout = "2 fortnights"

[objective]
callable = "mod:run"
retries = -1

[parameters]
a = 1
"""
    found = problems(write(tmp_path, text))
    paths = sorted(p.split(":")[0] for p in found)
    assert paths == ["objective.retries", "sweep.max_trials", "sweep.sampler.name", "sweep.timeout"]
    sampler = next(p for p in found if p.startswith("sweep.sampler.name"))
    assert "'tpe'" in sampler and "tpee" in sampler


def test_objective_needs_exactly_one_of_callable_and_command(tmp_path: Path) -> None:
    both = '[objective]\ncallable = "m:f"\ncommand = ["x"]\n[parameters]\na = 1\n'
    neither = '[objective]\ntimeout = "5s"\n[parameters]\na = 1\n'
    for text in (both, neither):
        (found,) = problems(write(tmp_path, text))
        assert found.startswith("objective:") and "exactly one of 'callable'" in found


def test_callable_and_model_references_must_look_like_module_colon_name(tmp_path: Path) -> None:
    text = (
        '[objective]\ncallable = "run"\n[config]\npath = "c.json"\nmodel = "Settings"\n[parameters]\na = 1\n'
    )
    found = problems(write(tmp_path, text))
    assert any(p.startswith("objective.callable: expected 'module:function'") for p in found)
    assert any(p.startswith("config.model: expected 'module:Class'") for p in found)


def test_several_directions_need_matching_metrics(tmp_path: Path) -> None:
    text = '[sweep]\ndirections = ["maximize", "minimize"]\n' + MINIMAL
    (found,) = problems(write(tmp_path, text))
    assert found.startswith("sweep:") and "'metrics'" in found
    ok = '[sweep]\ndirections = ["maximize", "minimize"]\nmetrics = ["sharpe", "dd"]\n' + MINIMAL
    spec = load_sweep_file(write(tmp_path, ok))
    assert spec.sweep.all_directions == ["maximize", "minimize"]
    assert spec.sweep.objective_metrics == ["sharpe", "dd"]


def test_sampler_table_keeps_optuna_options(tmp_path: Path) -> None:
    text = '[sweep]\nsampler = { name = "tpe", n_startup_trials = 7 }\n' + MINIMAL
    spec = load_sweep_file(write(tmp_path, text))
    assert spec.sweep.sampler.name == "tpe"
    assert spec.sweep.sampler.options == {"n_startup_trials": 7}


def test_sweep_name_must_be_usable_as_a_folder(tmp_path: Path) -> None:
    (found,) = problems(write(tmp_path, '[sweep]\nname = "../escape"\n' + MINIMAL))
    assert found.startswith("sweep.name:")


def test_a_sweep_name_too_long_for_a_folder_is_refused_up_front(tmp_path: Path) -> None:
    # Issue 12, item 15: 300 characters passed, then the run failed after its trials.
    (found,) = problems(write(tmp_path, f'[sweep]\nname = "{"n" * 300}"\n' + MINIMAL))
    assert found.startswith("sweep.name:") and "at most 100 characters" in found
    spec = load_sweep_file(write(tmp_path, f'[sweep]\nname = "{"n" * 100}"\n' + MINIMAL))
    assert spec.sweep.name == "n" * 100


def test_missing_sections_are_named(tmp_path: Path) -> None:
    found = problems(write(tmp_path, '[sweep]\nname = "x"\n'))
    assert sorted(found) == ["objective: required key is missing", "parameters: required key is missing"]


@pytest.mark.parametrize(
    ("name", "text", "needle"),
    [
        ("bad.toml", "[sweep\nname = 1", "invalid TOML"),
        ("bad.yaml", "sweep: [1, 2\n", "invalid YAML: line"),
        ("bad.json", '{"sweep": }', "invalid JSON: line 1"),
        ("bad.ini", "x", "unknown file type '.ini'"),
        ("empty.toml", "", "parameters: required key is missing"),
    ],
)
def test_unparsable_files_say_where(tmp_path: Path, name: str, text: str, needle: str) -> None:
    assert any(needle in p for p in problems(write(tmp_path, text, name)))


def test_missing_file_is_reported_as_such(tmp_path: Path) -> None:
    assert problems(tmp_path / "nope.toml") == ["file not found"]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90.0), ("30m", 1800.0), ("2h", 7200.0), ("1h30m", 5400.0), ("1d", 86400.0), (45, 45.0)],
)
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["2x", "h", "-5", "0s", "", True])
def test_bad_durations_are_refused(text: str | bool) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize("key", ["chunk", "workers", "top_k", "max_trials", "retry_failed"])
def test_true_or_false_for_a_number_is_refused_not_read_as_one(tmp_path: Path, key: str) -> None:
    path = tmp_path / "s.toml"
    path.write_text(
        f'[sweep]\nname = "s"\nmode = "batch"\ndirection = "maximize"\n{key} = true\n'
        '[objective]\nbatch = "m:f"\n[parameters]\na = { type = "int", low = 0, high = 3 }\n'
    )
    with pytest.raises(SweepFileError, match=rf"sweep\.{key}: expected a number, not true"):
        load_sweep_file(path)


@pytest.mark.parametrize("line", ["retries = 2", "backoff = 3.0", 'env = { A = "1" }', 'cwd = "."'])
def test_an_objective_key_a_batch_sweep_would_ignore_is_refused(tmp_path: Path, line: str) -> None:
    path = tmp_path / "s.toml"
    path.write_text(
        '[sweep]\nname = "s"\nmode = "batch"\ndirection = "maximize"\n'
        f'[objective]\nbatch = "m:f"\n{line}\n[parameters]\na = {{ type = "int", low = 0, high = 3 }}\n'
    )
    key = line.split(" ", 1)[0]
    with pytest.raises(SweepFileError, match=rf"objective\.{key}: applies to .*: drop it"):
        load_sweep_file(path)
