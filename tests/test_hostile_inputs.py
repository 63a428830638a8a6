"""A catalogue of malformed and hostile inputs: each fails with the right exception (or exit status 2
for the CLI, with no traceback) and a message that names the offending file, key path or field.

Layers covered: sweep files (TOML/YAML/JSON), parameter trees in a sweep, constraint expressions,
result patterns, config files and models, command placeholders, CLI arguments and storage URLs.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastgrid import (
    CommandObjective,
    ConfigCache,
    ConfigError,
    Expression,
    PatternError,
    ResultIndex,
    SpecError,
)
from fastgrid.cli import main
from fastgrid.sweepfile import SweepFileError, load_sweep_file

GOOD_OBJECTIVE = '[objective]\ncallable = "objective:run"\n'
GOOD_PARAMS = '[parameters]\nx = { type = "int", low = 0, high = 3 }\n'


@dataclass(frozen=True)
class Case:
    id: str
    run: Callable[[Path], Any]
    raises: type[BaseException]
    names: str  # text that the message must contain: the file, key path or field at fault


def with_direction(text: str) -> str:
    """A TOML sweep file with ``direction`` set (it is required), unless it sets one itself."""
    if "direction" in text:
        return text
    if "[sweep]\n" in text:
        return text.replace("[sweep]\n", '[sweep]\ndirection = "minimize"\n', 1)
    return '[sweep]\ndirection = "minimize"\n' + text


def sweep_toml(body: str) -> Callable[[Path], Any]:
    def run(tmp: Path) -> Any:
        path = tmp / "s.toml"
        path.write_text(with_direction(body))
        return load_sweep_file(path)

    return run


def sweep_bytes(name: str, data: bytes) -> Callable[[Path], Any]:
    def run(tmp: Path) -> Any:
        path = tmp / name
        path.write_bytes(data)
        return load_sweep_file(path)

    return run


def config_file(name: str, data: bytes, *, model: Any = None) -> Callable[[Path], Any]:
    def run(tmp: Path) -> Any:
        path = tmp / name
        path.write_bytes(data)
        return ConfigCache(path, model=model).merged({})

    return run


def merged(overrides: dict[str, Any], *, model: Any = None) -> Callable[[Path], Any]:
    def run(tmp: Path) -> Any:
        path = tmp / "c.json"
        path.write_text(json.dumps({"risk": {"stop": 0.02, "size": 1}, "name": "sma"}))
        return ConfigCache(path, model=model).merged(overrides)

    return run


def deep(n: int) -> bytes:
    return ("[" * n + "]" * n).encode()


SWEEP_CASES = [
    Case("empty toml", sweep_toml(""), SweepFileError, "objective"),
    Case("empty yaml", sweep_bytes("s.yaml", b""), SweepFileError, "(top level)"),
    Case("top-level list json", sweep_bytes("s.json", b"[1, 2]"), SweepFileError, "(top level)"),
    Case("invalid utf-8", sweep_bytes("s.toml", b"[sweep]\nname = '\xff\xfe'\n"), SweepFileError, "UTF-8"),
    Case("toml syntax", sweep_toml("[sweep\nname = 1"), SweepFileError, "invalid TOML"),
    Case(
        "yaml python tag (never executed)",
        sweep_bytes("s.yaml", b'objective: !!python/object/apply:os.system ["touch PWNED"]\n'),
        SweepFileError,
        "invalid YAML",
    ),
    Case(
        "json duplicate key",
        sweep_bytes("s.json", b'{"sweep": {"workers": 1, "workers": 8}}'),
        SweepFileError,
        "duplicate key 'workers'",
    ),
    Case(
        "yaml duplicate key",
        sweep_bytes("s.yaml", b"sweep:\n  seed: 1\n  seed: 2\n"),
        SweepFileError,
        "duplicate key 'seed'",
    ),
    Case("toml duplicate key", sweep_toml("[sweep]\nseed = 1\nseed = 2\n"), SweepFileError, "invalid TOML"),
    Case("json deep nesting", sweep_bytes("s.json", deep(100_000)), SweepFileError, "nested too deeply"),
    Case("yaml deep nesting", sweep_bytes("s.yaml", deep(100_000)), SweepFileError, "s.yaml"),
    Case("unknown file type", sweep_bytes("s.ini", b"[sweep]"), SweepFileError, "unknown file type"),
    Case(
        "unknown key with hint",
        sweep_toml("[sweep]\nworker = 2\n" + GOOD_OBJECTIVE + GOOD_PARAMS),
        SweepFileError,
        "sweep.worker: unknown key (did you mean 'workers'?)",
    ),
    Case(
        "unknown section", sweep_toml("[sweeps]\n" + GOOD_OBJECTIVE + GOOD_PARAMS), SweepFileError, "sweeps"
    ),
    Case(
        "wrong type workers",
        sweep_toml('[sweep]\nworkers = "two"\n' + GOOD_OBJECTIVE + GOOD_PARAMS),
        SweepFileError,
        "sweep.workers",
    ),
    Case(
        "zero workers",
        sweep_toml("[sweep]\nworkers = 0\n" + GOOD_OBJECTIVE + GOOD_PARAMS),
        SweepFileError,
        "sweep.workers",
    ),
    Case(
        "huge max_trials",
        sweep_bytes(
            "s.json",
            b'{"sweep": {"max_trials": 1e400}, "objective": {"callable": "m:f"}, "parameters": {"x": 1}}',
        ),
        SweepFileError,
        "sweep.max_trials",
    ),
    Case(
        "nan timeout",
        sweep_toml("[sweep]\ntimeout = nan\n" + GOOD_OBJECTIVE + GOOD_PARAMS),
        SweepFileError,
        "sweep.timeout",
    ),
    Case(
        "nonsense duration",
        sweep_toml('[sweep]\ntimeout = "2 fortnights"\n' + GOOD_OBJECTIVE + GOOD_PARAMS),
        SweepFileError,
        "sweep.timeout",
    ),
    Case(
        "bad end_at",
        sweep_toml('[sweep]\nend_at = "tomorrow"\n' + GOOD_OBJECTIVE + GOOD_PARAMS),
        SweepFileError,
        "sweep.end_at",
    ),
    Case(
        "negative seed",
        sweep_toml("[sweep]\nseed = -1\n" + GOOD_OBJECTIVE + GOOD_PARAMS),
        SweepFileError,
        "sweep.seed",
    ),
    Case(
        "path traversal in sweep name",
        sweep_toml('[sweep]\nname = "../../etc"\n' + GOOD_OBJECTIVE + GOOD_PARAMS),
        SweepFileError,
        "sweep.name",
    ),
    Case(
        "unknown sampler",
        sweep_toml('[sweep]\nsampler = "annealing"\n' + GOOD_OBJECTIVE + GOOD_PARAMS),
        SweepFileError,
        "sweep.sampler",
    ),
    Case(
        "conflicting direction and directions",
        sweep_toml(
            '[sweep]\ndirection = "maximize"\ndirections = ["maximize"]\nmetrics = ["a"]\n'
            + GOOD_OBJECTIVE
            + GOOD_PARAMS
        ),
        SweepFileError,
        "'direction' or 'directions', not both",
    ),
    Case(
        "directions without metrics",
        sweep_toml('[sweep]\ndirection = ["maximize", "minimize"]\n' + GOOD_OBJECTIVE + GOOD_PARAMS),
        SweepFileError,
        "metrics",
    ),
    Case(
        "heartbeat grace not above interval",
        sweep_toml("[sweep]\nheartbeat_interval = 10\ngrace_period = 5\n" + GOOD_OBJECTIVE + GOOD_PARAMS),
        SweepFileError,
        "grace_period",
    ),
    Case(
        "callable and command both",
        sweep_toml('[objective]\ncallable = "m:f"\ncommand = ["python"]\n' + GOOD_PARAMS),
        SweepFileError,
        "exactly one of 'callable'",
    ),
    Case("missing objective", sweep_toml(GOOD_PARAMS), SweepFileError, "objective: required key is missing"),
    Case(
        "empty command",
        sweep_toml("[objective]\ncommand = []\n" + GOOD_PARAMS),
        SweepFileError,
        "objective.command",
    ),
    Case(
        "callable not module:function",
        sweep_toml('[objective]\ncallable = "os.system"\n' + GOOD_PARAMS),
        SweepFileError,
        "objective.callable",
    ),
    Case(
        "env value not a string",
        sweep_toml(GOOD_OBJECTIVE + "env = { THREADS = 1 }\n" + GOOD_PARAMS),
        SweepFileError,
        "objective.env.THREADS",
    ),
    Case(
        "negative retries",
        sweep_toml(GOOD_OBJECTIVE + "retries = -1\n" + GOOD_PARAMS),
        SweepFileError,
        "objective.retries",
    ),
    Case(
        "results typo",
        sweep_toml(
            '[objective]\ncommand = ["python"]\nresults = { dir = "out", patern = "{x}.json" }\n'
            + GOOD_PARAMS
        ),
        SweepFileError,
        "objective.results.patern",
    ),
    Case(
        "config model not module:Class",
        sweep_toml('[config]\npath = "c.json"\nmodel = "Settings"\n' + GOOD_OBJECTIVE + GOOD_PARAMS),
        SweepFileError,
        "config.model",
    ),
    Case("empty parameters", sweep_toml(GOOD_OBJECTIVE + "[parameters]\n"), SweepFileError, "parameters"),
    Case(
        "require not a list",
        sweep_toml('[constraints]\nrequire = "trades > 5"\n' + GOOD_OBJECTIVE + GOOD_PARAMS),
        SweepFileError,
        "constraints.require",
    ),
]

EXPRESSION_CASES = [
    Case("empty expression", lambda tmp: Expression(""), SpecError, "constraint"),
    Case("dangling operator", lambda tmp: Expression("fast <"), SpecError, 'constraint "fast <", column'),
    Case(
        "function call",
        lambda tmp: Expression("__import__('os').system('x')"),
        SpecError,
        'constraint "__import__',
    ),
    Case("function call alone", lambda tmp: Expression("len(x) > 1"), SpecError, "function calls"),
    Case("power operator", lambda tmp: Expression("x ** 2 > 1"), SpecError, "'**'"),
    Case("lambda", lambda tmp: Expression("lambda: 1"), SpecError, 'constraint "lambda: 1"'),
    Case(
        "deep parentheses", lambda tmp: Expression("(" * 10_000 + "x" + ")" * 10_000), SpecError, "constraint"
    ),
    Case("statement separator", lambda tmp: Expression("x > 1; y"), SpecError, 'constraint "x > 1; y"'),
]

PATTERN_CASES = [
    Case(
        "unbalanced brace",
        lambda tmp: ResultIndex(tmp, pattern="{symbol_{stamp}.json"),
        PatternError,
        "{symbol",
    ),
    Case("pattern path traversal", lambda tmp: ResultIndex(tmp, pattern="../{x}.json"), PatternError, "'..'"),
    Case("absolute pattern", lambda tmp: ResultIndex(tmp, pattern="/etc/{x}"), PatternError, "/etc/{x}"),
    Case("adjacent fields", lambda tmp: ResultIndex(tmp, pattern="{a}{b}.json"), PatternError, "{a} and {b}"),
    Case("repeated field", lambda tmp: ResultIndex(tmp, pattern="{x}_{x}.json"), PatternError, "{x}"),
    Case(
        "missing results dir",
        lambda tmp: ResultIndex(tmp / "nope", pattern="{x}.json", order_by="mtime"),
        FileNotFoundError,
        "nope",
    ),
]


class Settings:  # replaced below by a pydantic model (kept importable from this module)
    pass


CONFIG_CASES = [
    Case(
        "missing config file",
        lambda tmp: ConfigCache(tmp / "gone.json").merged({}),
        FileNotFoundError,
        "gone.json",
    ),
    Case("config invalid utf-8", config_file("c.json", b'{"a": "\xff"}'), ConfigError, "c.json"),
    Case(
        "config duplicate key", config_file("c.json", b'{"a": 1, "a": 2}'), ConfigError, "duplicate key 'a'"
    ),
    Case(
        "config deep nesting", config_file("c.json", b'{"a": ' + deep(100_000) + b"}"), ConfigError, "c.json"
    ),
    Case(
        "config yaml python tag",
        config_file("c.yaml", b"a: !!python/name:os.system\n"),
        ConfigError,
        "c.yaml",
    ),
    Case("config empty yaml", config_file("c.yaml", b""), ConfigError, "c.yaml"),
    Case("config unknown suffix", config_file("c.ini", b"a=1"), ConfigError, "c.ini"),
    Case("override unknown path", merged({"risk": {"stopp": 0.1}}), ConfigError, "risk.stopp"),
    Case("model not importable", merged({}, model="no_such_module:Model"), ValueError, "no_such_module"),
]

PLACEHOLDER_CASES = [
    Case(
        "placeholder attribute access",
        lambda tmp: CommandObjective(["cat", "{trial_dir.parent}"], metrics=["value"]),
        ValueError,
        "argv[1]",
    ),
    Case(
        "placeholder format conversion",
        lambda tmp: CommandObjective(["cat", "{config_file!r}"], metrics=["value"]),
        ValueError,
        "argv[1]",
    ),
    Case(
        "placeholder traversal in params path",
        lambda tmp: CommandObjective(["cat", "{params.../etc}"], metrics=["value"]),
        ValueError,
        "argv[1]",
    ),
    Case(
        "unknown placeholder",
        lambda tmp: CommandObjective(["run", "--out={nope}"], metrics=["value"]),
        ValueError,
        "{nope}",
    ),
]

CASES = SWEEP_CASES + EXPRESSION_CASES + PATTERN_CASES + CONFIG_CASES + PLACEHOLDER_CASES


def test_the_catalogue_is_large_enough() -> None:
    assert len(CASES) + len(CLI_CASES) >= 40


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_malformed_input_fails_clearly(case: Case, tmp_path: Path) -> None:
    with pytest.raises(case.raises) as info:
        case.run(tmp_path)
    message = str(info.value)
    filename = getattr(info.value, "filename", None)
    assert case.names in message or (filename is not None and case.names in str(filename)), message
    # One clear message, not a chained internal failure.
    assert (
        info.value.__suppress_context__ or info.value.__context__ is None or case.raises is FileNotFoundError
    )


# -- the CLI: exit status 2, a one-line cause, never a traceback -----------------------------------
def write(tmp: Path, name: str, text: str) -> str:
    (tmp / name).write_text(with_direction(text) if name.endswith(".toml") else text)
    return str(tmp / name)


GOOD = GOOD_OBJECTIVE + GOOD_PARAMS
CLI_CASES: list[tuple[str, Callable[[Path], list[str]], str]] = [
    ("run missing file", lambda tmp: ["run", str(tmp / "none.toml")], "none.toml"),
    ("run directory as file", lambda tmp: ["run", str(tmp)], "is a directory"),
    ("run zero workers", lambda tmp: ["run", write(tmp, "s.toml", GOOD), "--workers", "0"], "--workers"),
    (
        "run workers not a number",
        lambda tmp: ["run", write(tmp, "s.toml", GOOD), "--workers", "many"],
        "--workers",
    ),
    ("run bad timeout", lambda tmp: ["run", write(tmp, "s.toml", GOOD), "--timeout", "soon"], "--timeout"),
    (
        "run negative max trials",
        lambda tmp: ["run", write(tmp, "s.toml", GOOD), "--max-trials", "-1"],
        "--max-trials",
    ),
    ("run unknown option", lambda tmp: ["run", write(tmp, "s.toml", GOOD), "--wrokers", "2"], "--wrokers"),
    (
        "run bad sweep file",
        lambda tmp: ["run", write(tmp, "s.toml", "[sweep]\nworker = 2\n" + GOOD)],
        "sweep.worker",
    ),
    (
        "run bad storage scheme",
        lambda tmp: ["run", write(tmp, "s.toml", GOOD), "--storage", "ftp://bob:hunter2@host/x"],
        "storage",
    ),
    (
        "worker zero grace",
        lambda tmp: ["worker", write(tmp, "s.toml", GOOD), "--grace-period", "0"],
        "--grace-period",
    ),
    ("worker has no --fresh", lambda tmp: ["worker", write(tmp, "s.toml", GOOD), "--fresh"], "--fresh"),
    (
        "worker grace below interval",
        lambda tmp: [
            "worker",
            write(tmp, "s.toml", GOOD),
            "--heartbeat-interval",
            "5",
            "--grace-period",
            "3",
        ],
        "grace_period",
    ),
]


@pytest.mark.parametrize("case", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_refuses_bad_arguments_with_status_2_and_no_traceback(
    case: tuple[str, Callable[[Path], list[str]], str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "objective.py").write_text("def run(cfg):\n    return cfg['x']\n")
    _, args, needle = case
    result = CliRunner().invoke(main, args(tmp_path))
    output = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert result.exit_code == 2, output
    assert "Traceback" not in output
    assert needle in output, output
    assert "hunter2" not in output


# -- security ------------------------------------------------------------------------------------
def test_a_storage_password_never_reaches_the_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "objective.py").write_text("def run(cfg):\n    return cfg['x']\n")
    url = "postgresql://bob:hunter2@127.0.0.1:1/sweeps"
    sweep = write(tmp_path, "s.toml", f'[sweep]\nstorage = "{url}"\n' + GOOD)
    for command in (["run", sweep], ["worker", sweep], ["run", sweep, "--storage", url]):
        result = CliRunner().invoke(main, command)
        output = result.output + result.stderr
        assert result.exit_code == 2, output
        assert "hunter2" not in output and "Traceback" not in output
        assert "bob:***@127.0.0.1" in output, output


def test_a_placeholder_value_stays_one_argument_inside_the_trial_dir(tmp_path: Path) -> None:
    """Parameter values that look like shell syntax or paths are passed verbatim as one argv element."""
    script = tmp_path / "echo_args.py"
    script.write_text("import json, sys\nprint(json.dumps({'value': 1.0, 'args': sys.argv[1:]}))\n")
    objective = CommandObjective(
        [sys.executable, str(script), "{params.x}", "{trial_dir}"], metrics=["value"]
    )
    hostile = "; rm -rf / #$(touch PWNED) ../../etc/passwd"
    outcome = objective.run({}, trial_number=0, trial_dir=tmp_path / "trial_0", params={"x": hostile})
    assert outcome.ok, outcome.reason
    assert outcome.metrics["args"] == [hostile, str(tmp_path / "trial_0")]
    assert not (tmp_path / "PWNED").exists() and not Path("PWNED").exists()
    assert os.path.commonpath([outcome.metrics["args"][1], str(tmp_path)]) == str(tmp_path)
