"""Objectives against REAL small scripts (run with this interpreter) in temporary directories."""

from __future__ import annotations

import json
import math
import os
import pickle
import re
import signal
import subprocess
import sys
import textwrap
import time
import tracemalloc
from pathlib import Path
from typing import Any, ClassVar

import fastgrid
import pytest
from fastgrid import CallableObjective, CommandObjective, ResultsSpec, TrialOutcome
from fastgrid.objective import Objective
from fastgrid.objective import _results as results_module

PY = sys.executable


def script(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return str(path)


def run(obj: Any, tmp_path: Path, config: dict | None = None, *, n: int = 0, params: dict | None = None):
    return obj.run(
        config if config is not None else {"a": 1},
        trial_number=n,
        trial_dir=tmp_path / "runs" / f"trial_{n}",
        params=params or {},
    )


def gone(pid: int, within: float = 15.0) -> bool:
    """True once ``pid`` no longer runs (a zombie nobody reaped counts as gone)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.02)
    return False


def wait_for_file(path: Path, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not path.exists() or not path.read_text().strip():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


ECHO = """
import json, os, sys
cfg = json.load(open(sys.argv[1]))
out = {"sharpe": cfg["a"] * 2.0, "argv": sys.argv[2:],
       "env": {k: v for k, v in os.environ.items() if k.startswith(("FASTGRID_", "MY_"))}}
with open(os.environ["FASTGRID_OUTPUT_FILE"], "w") as f:
    json.dump(out, f)
"""

# Spawns a sleeping grandchild, records both pids, then hangs.
HANG = """
import json, os, subprocess, sys, time
trial = sys.argv[1]
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
with open(os.path.join(trial, "pids.tmp"), "w") as f:
    json.dump({"self": os.getpid(), "grandchild": child.pid}, f)
os.replace(os.path.join(trial, "pids.tmp"), os.path.join(trial, "pids.json"))
time.sleep(120)
"""


# --- success paths -----------------------------------------------------------------------------


def test_success_via_output_file_writes_the_trial_layout(tmp_path: Path) -> None:
    echo = script(tmp_path, "echo.py", ECHO)
    obj = CommandObjective(
        [PY, echo, "{config_file}", "{trial_number}", "{trial_dir}", "{output_file}"],
        metrics=["sharpe"],
        env={"MY_VAR": "hello"},
    )
    config = {"a": 1.5, "nested": {"list": [1, 2]}}
    outcome = run(obj, tmp_path, config, n=7)
    trial = tmp_path / "runs" / "trial_7"
    assert outcome.ok, outcome.reason
    assert outcome.value == 3.0
    assert outcome.metrics["sharpe"] == 3.0
    assert outcome.attempts == 1
    assert outcome.returncode == 0
    assert outcome.result_path == str(trial / "output.json")
    assert json.loads((trial / "config.json").read_text()) == config
    assert outcome.metrics["argv"] == ["7", str(trial), str(trial / "output.json")]
    assert outcome.metrics["env"] == {
        "MY_VAR": "hello",
        "FASTGRID_TRIAL_NUMBER": "7",
        "FASTGRID_TRIAL_DIR": str(trial),
        "FASTGRID_CONFIG_FILE": str(trial / "config.json"),
        "FASTGRID_OUTPUT_FILE": str(trial / "output.json"),
    }
    assert sorted(p.name for p in trial.iterdir()) == [
        "config.json",
        "output.json",
        "stderr.log",
        "stdout.log",
    ]
    assert isinstance(obj, Objective)


def test_success_via_the_last_json_object_line_of_stdout(tmp_path: Path) -> None:
    s = script(
        tmp_path,
        "s.py",
        """
        import json
        print('{"sharpe": -1, "note": "an earlier line"}')
        print("progress: 100%")
        print(json.dumps({"sharpe": 1.25, "trades": 40}))
        print("done, bye")
        """,
    )
    outcome = run(CommandObjective([PY, s], metrics=["sharpe", "trades"]), tmp_path)
    assert outcome.ok, outcome.reason
    assert outcome.value == (1.25, 40.0)
    assert outcome.metrics == {"sharpe": 1.25, "trades": 40}
    assert outcome.result_path is None
    assert outcome.stdout_tail.splitlines()[-1] == "done, bye"


def test_a_stale_output_file_from_an_earlier_run_is_never_read(tmp_path: Path) -> None:
    s = script(tmp_path, "s.py", "print('nothing useful')\n")
    trial = tmp_path / "runs" / "trial_0"
    trial.mkdir(parents=True)
    (trial / "output.json").write_text('{"sharpe": 99}')
    outcome = run(CommandObjective([PY, s], metrics=["sharpe"]), tmp_path)
    assert not outcome.ok
    assert outcome.reason is not None and outcome.reason.startswith("no output")
    assert not (trial / "output.json").exists()


class FakeIndex:
    """A tiny stand-in for fastgrid.ResultIndex: `{field}` patterns, newest by the stamp field."""

    opened: ClassVar[list[FakeIndex]] = []

    def __init__(self, directory: Path, spec: ResultsSpec) -> None:
        self.directory = Path(directory)
        names = re.findall(r"\{(\w+)\}", spec.pattern)
        regex = re.escape(spec.pattern)
        for name in names:
            regex = regex.replace(re.escape("{" + name + "}"), f"(?P<{name}>[^_/]+)")
        self.regex = re.compile(regex + "$")
        self.closed = False
        FakeIndex.opened.append(self)

    def _matches(self, fields: dict[str, str]) -> list[tuple[str, Path]]:
        found = []
        for path in self.directory.iterdir():
            m = self.regex.match(path.name)
            if m and all(m.group(k) == v for k, v in fields.items()):
                found.append((m.group("stamp"), path))
        return sorted(found)

    def latest(self, **fields: str) -> Path | None:
        found = self._matches(fields)
        return found[-1][1] if found else None

    def wait_for(self, *, newer_than: Path | None = None, timeout: float, **fields: str) -> Path:
        deadline = time.monotonic() + timeout
        while True:
            found = self._matches(fields)
            if found and (
                newer_than is None or (found[-1][1] != newer_than and found[-1][1].name > newer_than.name)
            ):
                return found[-1][1]
            if time.monotonic() >= deadline:
                raise TimeoutError("no newer result")
            time.sleep(0.01)

    def close(self) -> None:
        self.closed = True


WRITE_RESULT = """
import json, os, sys
symbol, stamp, value = sys.argv[1], sys.argv[2], sys.argv[3]
os.makedirs("results", exist_ok=True)
if stamp != "none":
    with open(os.path.join("results", f"{symbol}_1h_{stamp}.json"), "w") as f:
        json.dump({"sharpe": float(value), "symbol": symbol}, f)
"""


@pytest.fixture
def fake_index(monkeypatch: pytest.MonkeyPatch) -> type[FakeIndex]:
    FakeIndex.opened = []
    monkeypatch.setattr(results_module, "open_index", FakeIndex)
    return FakeIndex


def results_objective(tmp_path: Path, *, wait: float = 5.0) -> CommandObjective:
    s = script(tmp_path, "writer.py", WRITE_RESULT)
    (tmp_path / "results").mkdir(exist_ok=True)
    spec = ResultsSpec(
        "results",
        pattern="{symbol}_{timeframe}_{stamp}.json",
        key={"symbol": "{params.symbol}", "timeframe": "1h"},
        wait=wait,
    )
    return CommandObjective(
        [PY, s, "{params.symbol}", "{params.stamp}", "{params.value}"],
        metrics=["sharpe"],
        cwd=tmp_path,
        results=spec,
    )


def test_success_via_the_results_directory_takes_only_a_newer_file(tmp_path: Path, fake_index: Any) -> None:
    obj = results_objective(tmp_path)
    (tmp_path / "results" / "BTC_1h_20260101.json").write_text('{"sharpe": -5}')
    (tmp_path / "results" / "ETH_1h_20261231.json").write_text('{"sharpe": -6}')
    outcome = run(obj, tmp_path, params={"symbol": "BTC", "stamp": "20261129", "value": 2.5})
    assert outcome.ok, outcome.reason
    assert outcome.value == 2.5
    assert outcome.result_path == str(tmp_path / "results" / "BTC_1h_20261129.json")
    obj.close()
    assert fake_index.opened and fake_index.opened[0].closed


def test_results_directory_without_a_new_file_fails_instead_of_reusing_the_old_one(
    tmp_path: Path, fake_index: Any
) -> None:
    obj = results_objective(tmp_path, wait=0.3)
    (tmp_path / "results" / "BTC_1h_20260101.json").write_text('{"sharpe": 5}')
    outcome = run(obj, tmp_path, params={"symbol": "BTC", "stamp": "none", "value": 1})
    assert not outcome.ok
    assert outcome.reason is not None
    assert outcome.reason.startswith("no output: no new result file matching")
    assert "symbol='BTC'" in outcome.reason


def test_results_directory_with_the_real_result_index(tmp_path: Path) -> None:
    obj = results_objective(tmp_path, wait=2.0)
    (tmp_path / "results" / "BTC_1h_20260101.json").write_text('{"sharpe": -5}')
    (tmp_path / "results" / "BTC_1h_20270101.json.tmp").write_text('{"sharpe": -7}')
    try:
        first = run(obj, tmp_path, params={"symbol": "BTC", "stamp": "20261129", "value": 2.5})
        assert first.ok, first.reason
        assert (first.value, first.result_path) == (2.5, str(tmp_path / "results" / "BTC_1h_20261129.json"))
        # The newest BTC file now exists; a trial writing nothing must not be handed it.
        again = run(obj, tmp_path, n=1, params={"symbol": "BTC", "stamp": "none", "value": 0})
        assert not again.ok and again.reason is not None and again.reason.startswith("no output")
        other = run(obj, tmp_path, n=2, params={"symbol": "ETH", "stamp": "20261130", "value": 1.0})
        assert other.ok and other.value == 1.0
    finally:
        obj.close()


def test_results_key_must_name_every_key_field_of_the_pattern() -> None:
    with pytest.raises(ValueError, match=r"results.key: 'sym' is not a key field of the pattern"):
        ResultsSpec("results", pattern="{symbol}_{stamp}.json", key={"sym": "{params.s}"})
    with pytest.raises(ValueError, match=r"results.key: 'stamp' is not a key field"):
        ResultsSpec("results", pattern="{symbol}_{stamp}.json", key={"symbol": "x", "stamp": "1"})
    with pytest.raises(ValueError, match=r"results.key: missing 'timeframe'; give a template for every key"):
        ResultsSpec("results", key={"symbol": "{params.symbol}"})
    spec = ResultsSpec("r", pattern="{symbol}_{_run}_{{x}}_{stamp}.json", key={"symbol": "{params.symbol}"})
    assert spec.key == {"symbol": "{params.symbol}"}


def test_results_key_placeholders_are_checked_like_argv(tmp_path: Path) -> None:
    spec = ResultsSpec("results", key={"symbol": "{param.symbol}", "timeframe": "1h"})
    with pytest.raises(ValueError, match=r"results.key\['symbol'\]: unknown placeholder '\{param.symbol\}'"):
        CommandObjective([PY, "-c", "pass"], metrics=["x"], results=spec, cwd=tmp_path)


# --- faults ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("1 / 0\n", "exit code 1: ZeroDivisionError: division by zero"),
        ("import sys\nsys.exit(3)\n", "exit code 3"),
        ("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n", "killed by SIGKILL"),
        ("print('hello')\n", "no output: the command exited 0 but wrote no output.json"),
        (
            "import os\nopen(os.environ['FASTGRID_OUTPUT_FILE'], 'w').write('sharpe=1.5')\n",
            "output is not JSON: line 1 col 1: Expecting value (output.json)",
        ),
        (
            "import os\nopen(os.environ['FASTGRID_OUTPUT_FILE'], 'w').write('{\"sharpe\": 1.5, \"tra')\n",
            "output is truncated JSON: unterminated string starting at line 1 col 17 (output.json)",
        ),
        (
            "print('{\"sharpe\": 1.5, ')\n",
            "output is truncated JSON: line 1 col 16: Expecting property name enclosed in double quotes",
        ),
        (
            "print('{\"sharpe\" 1.5}')\n",
            "output is not JSON: line 1 col 11: Expecting ':' delimiter (stdout)",
        ),
        (
            "import os\nopen(os.environ['FASTGRID_OUTPUT_FILE'], 'w').write('')\n",
            "output is empty (output.json)",
        ),
        (
            "import os\nopen(os.environ['FASTGRID_OUTPUT_FILE'], 'wb').write(b'\\xff\\xfe{')\n",
            "output is not",
        ),
        (
            "import os\nopen(os.environ['FASTGRID_OUTPUT_FILE'], 'w').write('[' * 100000 + ']' * 100000)\n",
            "output is nested too deeply to parse (output.json)",
        ),
        ('print(\'{"trades": 3, "pnl": 1}\')\n', "metric 'sharpe' missing from output (keys: pnl, trades)"),
        ("print('{\"sharpe\": NaN}')\n", "metric 'sharpe' is NaN"),
        ("print('{\"sharpe\": Infinity}')\n", "metric 'sharpe' is infinite (inf)"),
        ('print(\'{"sharpe": "1.5"}\')\n', "metric 'sharpe' is not a number: '1.5' (str)"),
        ("print('{\"sharpe\": true}')\n", "metric 'sharpe' is not a number: True (bool)"),
        (
            "import os\nopen(os.environ['FASTGRID_OUTPUT_FILE'], 'w').write('[1, 2]')\n",
            "output is not a JSON object of metrics (got list)",
        ),
    ],
)
def test_each_fault_is_a_failed_outcome_with_its_reason(tmp_path: Path, body: str, reason: str) -> None:
    s = script(tmp_path, "fault.py", body)
    outcome = run(CommandObjective([PY, s], metrics=["sharpe"]), tmp_path)
    assert not outcome.ok
    assert outcome.reason is not None and outcome.reason.startswith(reason), outcome.reason
    assert outcome.metrics == {}
    assert outcome.value is None
    assert outcome.attempts == 1


def test_a_bare_number_in_the_output_file_is_the_single_metric(tmp_path: Path) -> None:
    s = script(tmp_path, "s.py", "import os\nopen(os.environ['FASTGRID_OUTPUT_FILE'], 'w').write('0.75')\n")
    outcome = run(CommandObjective([PY, s], metrics=["sharpe"]), tmp_path)
    assert outcome.ok and outcome.value == 0.75 and outcome.metrics == {"sharpe": 0.75}


def test_the_stderr_tail_is_kept_for_the_report(tmp_path: Path) -> None:
    s = script(
        tmp_path,
        "s.py",
        "import sys\nfor i in range(50):\n    print('line', i, file=sys.stderr)\nsys.exit(2)\n",
    )
    outcome = run(CommandObjective([PY, s], metrics=["x"]), tmp_path)
    assert outcome.reason == "exit code 2: line 49"
    assert outcome.stderr_tail.splitlines() == [f"line {i}" for i in range(30, 50)]
    assert outcome.returncode == 2


def test_hang_past_the_timeout_kills_the_whole_group(tmp_path: Path) -> None:
    s = script(tmp_path, "hang.py", HANG)
    outcome = run(CommandObjective([PY, s, "{trial_dir}"], metrics=["x"], timeout=1.0), tmp_path)
    assert not outcome.ok
    assert outcome.reason == "timeout after 1.0s"
    pids = json.loads((tmp_path / "runs" / "trial_0" / "pids.json").read_text())
    assert gone(pids["self"])
    assert gone(pids["grandchild"])


def test_timeout_sigkills_a_group_that_ignores_sigterm(tmp_path: Path) -> None:
    stubborn = HANG.replace(
        "import json, os, subprocess, sys, time",
        "import json, os, signal, subprocess, sys, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)",
    )
    s = script(tmp_path, "stubborn.py", stubborn)
    outcome = run(
        CommandObjective([PY, s, "{trial_dir}"], metrics=["x"], timeout=1.0, kill_grace=0.2), tmp_path
    )
    assert outcome.reason == "timeout after 1.0s"
    assert outcome.returncode == -signal.SIGKILL
    pids = json.loads((tmp_path / "runs" / "trial_0" / "pids.json").read_text())
    assert gone(pids["self"]) and gone(pids["grandchild"])


def test_background_children_are_killed_when_the_command_exits(tmp_path: Path) -> None:
    s = script(
        tmp_path,
        "bg.py",
        """
        import json, os, subprocess, sys
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        with open(os.path.join(sys.argv[1], "pids.json"), "w") as f:
            json.dump({"grandchild": child.pid}, f)
        print('{"x": 1}')
        """,
    )
    outcome = run(CommandObjective([PY, s, "{trial_dir}"], metrics=["x"]), tmp_path)
    assert outcome.ok, outcome.reason
    pids = json.loads((tmp_path / "runs" / "trial_0" / "pids.json").read_text())
    assert gone(pids["grandchild"])


def test_an_output_file_of_100_mb_fails_without_being_read(tmp_path: Path) -> None:
    s = script(
        tmp_path,
        "big.py",
        """
        import os
        with open(os.environ["FASTGRID_OUTPUT_FILE"], "w") as f:
            f.write('{"sharpe": 1, "pad": "')
            for _ in range(100):
                f.write("x" * 1_000_000)
            f.write('"}')
        """,
    )
    tracemalloc.start()
    try:
        outcome = run(CommandObjective([PY, s], metrics=["sharpe"]), tmp_path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        (tmp_path / "runs" / "trial_0" / "output.json").unlink(missing_ok=True)
    assert not outcome.ok
    assert outcome.reason is not None and outcome.reason.startswith("output larger than 10 MB (output.json:")
    assert peak < 5_000_000


@pytest.mark.parametrize("log_limit", [None, 10 * 1024 * 1024])
def test_100_mb_of_stdout_is_streamed_and_its_last_json_line_read_from_the_tail(
    tmp_path: Path, log_limit: int | None
) -> None:
    s = script(
        tmp_path,
        "chatty.py",
        """
        import sys
        line = b"y" * 999_999 + b"\\n"
        for _ in range(100):
            sys.stdout.buffer.write(line)
        sys.stdout.buffer.write(b'{"sharpe": 0.5}\\n')
        """,
    )
    tracemalloc.start()
    try:
        outcome = run(CommandObjective([PY, s], metrics=["sharpe"], log_limit=log_limit), tmp_path)
        peak = tracemalloc.get_traced_memory()[1]
        log_size = (tmp_path / "runs" / "trial_0" / "stdout.log").stat().st_size
    finally:
        tracemalloc.stop()
        (tmp_path / "runs" / "trial_0" / "stdout.log").unlink(missing_ok=True)
    assert outcome.ok, outcome.reason
    assert outcome.value == 0.5
    if log_limit is None:
        assert log_size > 100_000_000
    else:  # capped: head, marker line, tail
        assert log_limit - 1_000_000 < log_size < log_limit + 100
    assert peak < 5_000_000


def test_one_json_line_larger_than_the_limit_fails(tmp_path: Path) -> None:
    s = script(tmp_path, "s.py", "import json\nprint(json.dumps({'sharpe': 1, 'pad': 'z' * 300_000}))\n")
    outcome = run(CommandObjective([PY, s], metrics=["sharpe"], max_output_bytes=100_000), tmp_path)
    assert outcome.reason == "output larger than 100 KB (stdout line)"


def test_a_missing_program_is_refused_at_construction_or_fails_the_trial(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"argv\[0\]: program 'no-such-program-xyz' not found on PATH"):
        CommandObjective(["no-such-program-xyz"], metrics=["x"])
    with pytest.raises(ValueError, match=r"argv\[0\]: program './missing.py' not found"):
        CommandObjective(["./missing.py"], metrics=["x"], cwd=tmp_path)
    obj = CommandObjective(["{params.program}"], metrics=["x"], retries=3)
    outcome = run(obj, tmp_path, params={"program": str(tmp_path / "nope")})
    assert not outcome.ok and outcome.attempts == 1
    assert outcome.reason == f"cannot start {str(tmp_path / 'nope')!r}: No such file or directory"


# --- retries -----------------------------------------------------------------------------------

FLAKY = """
import os, sys
counter = sys.argv[1]
n = int(open(counter).read()) + 1 if os.path.exists(counter) else 1
open(counter, "w").write(str(n))
print("attempt", n)
if n < int(sys.argv[2]):
    sys.exit(5)
print('{"sharpe": %d}' % n)
"""


def test_retries_until_success_and_count_attempts(tmp_path: Path) -> None:
    s = script(tmp_path, "flaky.py", FLAKY)
    counter = tmp_path / "counter"
    obj = CommandObjective([PY, s, str(counter), "3"], metrics=["sharpe"], retries=5, backoff=0.01)
    outcome = run(obj, tmp_path)
    assert outcome.ok, outcome.reason
    assert outcome.attempts == 3
    assert outcome.value == 3.0
    trial = tmp_path / "runs" / "trial_0"
    assert (trial / "stdout.attempt1.log").read_text() == "attempt 1\n"
    assert (trial / "stdout.attempt2.log").read_text() == "attempt 2\n"
    assert (trial / "stdout.log").read_text().startswith("attempt 3\n")


def test_retries_give_up_after_retries_plus_one_attempts(tmp_path: Path) -> None:
    s = script(tmp_path, "flaky.py", FLAKY)
    obj = CommandObjective(
        [PY, s, str(tmp_path / "counter"), "100"], metrics=["sharpe"], retries=2, backoff=0
    )
    outcome = run(obj, tmp_path)
    assert not outcome.ok
    assert outcome.attempts == 3
    assert outcome.reason == "exit code 5"
    assert (tmp_path / "counter").read_text() == "3"


# --- placeholders and injection ------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        '"; rm -rf /',
        "--flag=evil",
        "../../etc",
        "$(whoami) `id` | cat > x",
        "two words\nand a newline",
        "",
        "-",
    ],
)
def test_a_parameter_value_stays_one_literal_argument(tmp_path: Path, value: str) -> None:
    echo = script(tmp_path, "echo.py", ECHO)
    obj = CommandObjective(
        [PY, echo, "{config_file}", "{params.x}", "--name={params.x}", "{{params.x}}"], metrics=["sharpe"]
    )
    outcome = run(obj, tmp_path, params={"x": value})
    assert outcome.ok, outcome.reason
    assert outcome.metrics["argv"] == [value, f"--name={value}", "{params.x}"]


def test_values_render_as_text_or_json(tmp_path: Path) -> None:
    echo = script(tmp_path, "echo.py", ECHO)
    obj = CommandObjective(
        [
            PY,
            echo,
            "{config_file}",
            "{params.i}",
            "{params.f}",
            "{params.b}",
            "{params.n}",
            "{params.l}",
            "{params.d}",
        ],
        metrics=["sharpe"],
    )
    params = {"i": 12, "f": 0.1, "b": True, "n": None, "l": [1, "a"], "d": {"k": [2.5]}}
    outcome = run(obj, tmp_path, params=params)
    assert outcome.metrics["argv"] == ["12", "0.1", "true", "null", '[1,"a"]', '{"k":[2.5]}']


def test_params_are_found_flat_nested_or_in_the_merged_config(tmp_path: Path) -> None:
    echo = script(tmp_path, "echo.py", ECHO)
    obj = CommandObjective(
        [PY, echo, "{config_file}", "{params.strategy.fast}", "{params.risk.stop}", "{params.fees.rate}"],
        metrics=["sharpe"],
    )
    config = {"a": 1, "strategy": {"fast": 5}, "risk": {"stop": 0.02}, "fees": {"rate": 0.001}}
    outcome = run(obj, tmp_path, config, params={"strategy.fast": 5, "risk": {"stop": 0.02}})
    assert outcome.metrics["argv"] == ["5", "0.02", "0.001"]


@pytest.mark.parametrize("value", ["../../etc", "a/../../x", "..", "/../../../etc/passwd"])
def test_a_value_cannot_lead_a_path_out_of_the_trial_directory(tmp_path: Path, value: str) -> None:
    marker = tmp_path / "ran"
    s = script(tmp_path, "s.py", f"open({str(marker)!r}, 'w').write('ran')\n")
    obj = CommandObjective([PY, s, "--out={trial_dir}/{params.name}"], metrics=["x"], retries=2)
    outcome = run(obj, tmp_path, params={"name": value})
    assert not outcome.ok
    assert outcome.attempts == 0
    assert outcome.reason is not None
    assert outcome.reason.startswith("{params.name} in argv[2] would point outside the trial directory")
    assert not marker.exists()


def test_a_value_may_name_a_file_inside_the_trial_directory(tmp_path: Path) -> None:
    echo = script(tmp_path, "echo.py", ECHO)
    obj = CommandObjective([PY, echo, "{config_file}", "{trial_dir}/{params.name}.csv"], metrics=["sharpe"])
    outcome = run(obj, tmp_path, params={"name": "sub/../BTC"})
    assert outcome.ok, outcome.reason
    assert outcome.metrics["argv"] == [str(tmp_path / "runs" / "trial_0" / "sub/../BTC.csv")]


def test_a_nul_byte_in_a_value_fails_the_trial(tmp_path: Path) -> None:
    obj = CommandObjective([PY, "-c", "pass", "{params.x}"], metrics=["x"])
    outcome = run(obj, tmp_path, params={"x": "a\x00b"})
    assert not outcome.ok and outcome.reason == "{params.x} in argv[3]: the value contains a NUL byte"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["{cfg}"], r"argv\[0\]: unknown placeholder '\{cfg\}' in '\{cfg\}'; known: \{config_file\}"),
        ([PY, "--x={param.fast}"], r"argv\[1\]: unknown placeholder '\{param.fast\}'"),
        ([PY, "{params}"], r"argv\[1\]: placeholder '\{params\}' in '\{params\}' needs a path"),
        ([PY, "{params.a..b}"], r"argv\[1\]: placeholder '\{params.a..b\}' .* has an empty path segment"),
        ([PY, "{params.}"], r"argv\[1\]: placeholder '\{params.\}' .* has an empty path segment"),
        ([PY, "a", "{trial_dir"], r"argv\[2\]: unclosed '\{' at column 1 of '\{trial_dir'"),
        ([PY, "x}"], r"argv\[1\]: single '\}' at column 2 of 'x\}'"),
        ([PY, "{ config_file }"], r"argv\[1\]: unknown placeholder '\{ config_file \}'"),
        ([PY, "{config_file!r}"], r"argv\[1\]: unknown placeholder '\{config_file!r\}'"),
        ([PY, 3], r"argv\[1\]: expected a string, got int 3"),
        ("python run.py {config_file}", r"argv: expected a list of arguments, not one string"),
        ([], r"argv: expected at least the program"),
    ],
)
def test_bad_templates_are_refused_at_construction(argv: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CommandObjective(argv, metrics=["x"])


def test_params_placeholders_are_validated_against_the_parameters() -> None:
    obj = CommandObjective(
        [PY, "-c", "pass", "{params.fast}", "--slow={params.strategy.slow}"], metrics=["x"]
    )
    assert obj.parameter_paths == ("fast", "strategy.slow")
    obj.validate(["fast", "strategy.slow", "other"])
    with pytest.raises(
        ValueError, match=r"argv\[4\]: placeholder \{params.strategy.slow\} names no parameter"
    ):
        obj.validate(["fast", "strategy.fast"])
    with pytest.raises(ValueError, match=r"argv\[3\]: placeholder \{params.fast\} names no parameter"):
        CommandObjective([PY, "-c", "pass", "{params.fast}"], metrics=["x"], parameters=["slow"])


def test_an_unknown_parameter_at_run_time_is_a_value_error(tmp_path: Path) -> None:
    obj = CommandObjective([PY, "-c", "pass", "{params.missing}"], metrics=["x"])
    with pytest.raises(ValueError, match=r"argv\[3\]: placeholder \{params.missing\} names no parameter"):
        run(obj, tmp_path, params={"fast": 1})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metrics": []}, "metrics: name at least one metric"),
        ({"metrics": ["a", "a"]}, "metrics: 'a' is listed twice"),
        ({"metrics": ["x"], "timeout": 0}, "timeout: expected seconds > 0 or None, got 0"),
        ({"metrics": ["x"], "timeout": "5s"}, "timeout: expected seconds > 0"),
        ({"metrics": ["x"], "retries": -1}, "retries: expected an integer >= 0, got -1"),
        ({"metrics": ["x"], "backoff": float("nan")}, "backoff: expected seconds >= 0, got nan"),
        ({"metrics": ["x"], "env": {"A": 1}}, r"env\['A'\]: expected a variable name and a string value"),
        ({"metrics": ["x"], "max_output_bytes": 0}, "max_output_bytes: expected a positive integer"),
        ({"metrics": ["x"], "cwd": Path("/no/such/dir")}, "cwd: '/no/such/dir' is not a directory"),
    ],
)
def test_bad_options_name_the_option(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CommandObjective([PY, "-c", "pass"], **kwargs)


# --- KeyboardInterrupt ---------------------------------------------------------------------

HARNESS = """
import sys
from pathlib import Path
from fastgrid import CommandObjective
obj = CommandObjective([sys.executable, sys.argv[1], "{trial_dir}"], metrics=["x"], retries=3)
try:
    obj.run({}, trial_number=0, trial_dir=Path(sys.argv[2]), params={})
except KeyboardInterrupt:
    print("interrupted", flush=True)
    sys.exit(130)
print("finished", flush=True)
"""


def test_keyboard_interrupt_kills_the_group_and_propagates(tmp_path: Path) -> None:
    hang = script(tmp_path, "hang.py", HANG)
    harness = script(tmp_path, "harness.py", HARNESS)
    trial = tmp_path / "trial"
    proc = subprocess.Popen([PY, harness, hang, str(trial)], stdout=subprocess.PIPE, text=True)
    try:
        wait_for_file(trial / "pids.json")
        pids = json.loads((trial / "pids.json").read_text())
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert out.strip() == "interrupted"
    assert proc.returncode == 130
    assert gone(pids["self"])
    assert gone(pids["grandchild"])


# --- callables -----------------------------------------------------------------------------


def test_callable_returning_a_number_or_a_dict(tmp_path: Path) -> None:
    number = CallableObjective(lambda cfg: cfg["a"] * 3, metrics=["score"])
    outcome = run(number, tmp_path, {"a": 2})
    assert outcome == TrialOutcome(
        ok=True, metrics={"score": 6}, value=6.0, duration=outcome.duration, attempts=1
    )
    assert json.loads((tmp_path / "runs" / "trial_0" / "config.json").read_text()) == {"a": 2}
    several = CallableObjective(lambda cfg: {"sharpe": 1.5, "dd": 0.2, "note": "x"}, metrics=["sharpe", "dd"])
    outcome = run(several, tmp_path, n=1)
    assert outcome.ok and outcome.value == (1.5, 0.2)
    assert outcome.metrics == {"sharpe": 1.5, "dd": 0.2, "note": "x"}


def boom(config: dict) -> float:
    raise RuntimeError(f"bad window {config['a']}\nsecond line")


def test_callable_exception_is_a_failed_outcome_with_the_traceback_logged(tmp_path: Path) -> None:
    outcome = run(CallableObjective(boom, metrics=["x"]), tmp_path)
    assert not outcome.ok
    assert outcome.reason == "RuntimeError: bad window 1"
    log = (tmp_path / "runs" / "trial_0" / "error.log").read_text()
    assert "Traceback (most recent call last)" in log and "in boom" in log


@pytest.mark.parametrize(
    ("result", "reason"),
    [
        (None, "callable returned NoneType; expected a number, a dict of metrics or a pandas Series"),
        ("1.0", "callable returned str; expected a number, a dict of metrics or a pandas Series"),
        (math.nan, "metric 'x' is NaN"),
        ({"y": 1}, "metric 'x' missing from the callable's result (keys: y)"),
        (True, "callable returned bool; expected a number, a dict of metrics or a pandas Series"),
    ],
)
def test_callable_bad_results(tmp_path: Path, result: Any, reason: str) -> None:
    outcome = run(CallableObjective(lambda cfg: result, metrics=["x"]), tmp_path)
    assert (outcome.ok, outcome.reason) == (False, reason)


def test_callable_keyboard_interrupt_propagates(tmp_path: Path) -> None:
    def interrupted(cfg: dict) -> float:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(CallableObjective(interrupted, metrics=["x"], retries=3), tmp_path)


def test_callable_timeout_interrupts_it_in_the_main_thread(tmp_path: Path) -> None:
    def slow(cfg: dict) -> float:
        try:
            time.sleep(60)
        except Exception:  # user code catching everything must not swallow the deadline
            return 1.0
        return 2.0

    outcome = run(CallableObjective(slow, metrics=["x"], timeout=0.3), tmp_path)
    assert (outcome.ok, outcome.reason) == (False, "timeout after 0.3s")
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_callable_retries_see_the_pristine_config(tmp_path: Path) -> None:
    seen: list[Any] = []

    def mutating(cfg: dict) -> float:
        seen.append(json.dumps(cfg))
        cfg["inner"]["n"] += 1
        if len(seen) < 3:
            raise ValueError("flaky")
        return cfg["inner"]["n"]

    outcome = run(
        CallableObjective(mutating, metrics=["x"], retries=4, backoff=0), tmp_path, {"inner": {"n": 0}}
    )
    assert outcome.ok and outcome.attempts == 3 and outcome.value == 1.0
    assert seen == ['{"inner": {"n": 0}}'] * 3


def test_callable_target_string_is_imported_lazily_and_errors_name_it(tmp_path: Path) -> None:
    module = tmp_path / "my_bt_module.py"
    module.write_text("def run(cfg):\n    return {'sharpe': cfg['a'] + 0.5}\n")
    sys.path.insert(0, str(tmp_path))
    try:
        obj = CallableObjective("my_bt_module:run", metrics=["sharpe"])
        assert "my_bt_module" not in sys.modules
        assert run(obj, tmp_path).value == 1.5
        copy = pickle.loads(pickle.dumps(obj))
        assert run(copy, tmp_path, n=1).value == 1.5
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("my_bt_module", None)
    with pytest.raises(ValueError, match=r"callable 'no_such_mod_xyz:run': cannot import 'no_such_mod_xyz'"):
        run(CallableObjective("no_such_mod_xyz:run", metrics=["x"]), tmp_path)
    with pytest.raises(ValueError, match=r"callable 'math:nope': module 'math' has no attribute 'nope'"):
        CallableObjective("math:nope", metrics=["x"]).load()
    with pytest.raises(ValueError, match=r"callable: expected 'module:function'"):
        CallableObjective("math.sqrt", metrics=["x"])


def test_objectives_and_outcomes_pickle_for_worker_processes(tmp_path: Path) -> None:
    echo = script(tmp_path, "echo.py", ECHO)
    obj = CommandObjective([PY, echo, "{config_file}"], metrics=["sharpe"], timeout=30)
    copy = pickle.loads(pickle.dumps(obj))
    outcome = run(copy, tmp_path)
    assert outcome.ok and outcome.value == 2.0
    assert pickle.loads(pickle.dumps(outcome)) == outcome


def test_public_names_are_exported() -> None:
    for name in ("CallableObjective", "CommandObjective", "ResultsSpec", "TrialOutcome"):
        assert name in fastgrid.__all__
    assert os.path.basename(fastgrid.objective.__file__) == "__init__.py"


def test_without_pidfd_the_polling_fallback_behaves_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(os, "pidfd_open", raising=False)
    hang = script(tmp_path, "hang.py", HANG)
    outcome = run(CommandObjective([PY, hang, "{trial_dir}"], metrics=["x"], timeout=1.0), tmp_path)
    assert outcome.reason == "timeout after 1.0s"
    pids = json.loads((tmp_path / "runs" / "trial_0" / "pids.json").read_text())
    assert gone(pids["self"]) and gone(pids["grandchild"])
    s = script(tmp_path, "ok.py", "print('{\"x\": 4}')\n")
    assert run(CommandObjective([PY, s], metrics=["x"]), tmp_path, n=1).value == 4.0


def test_callable_timeout_outside_the_main_thread_warns_and_runs_to_completion(tmp_path: Path) -> None:
    import threading
    import warnings

    obj = CallableObjective(lambda cfg: 5, metrics=["x"], timeout=0.5)
    box: dict[str, Any] = {}

    def worker() -> None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            box["outcome"] = run(obj, tmp_path)
        box["warnings"] = [str(w.message) for w in caught if w.category is RuntimeWarning]

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(60)
    assert box["outcome"].ok and box["outcome"].value == 5.0
    assert len(box["warnings"]) == 1
    assert box["warnings"][0].startswith(
        "CallableObjective: the timeout is only enforced in a process's main thread"
    )


def test_tail_text_reads_a_bounded_window_even_of_a_device(tmp_path: Path) -> None:
    from fastgrid.objective._reading import tail_text

    log = tmp_path / "stdout.log"
    log.write_text("".join(f"line {i}\n" for i in range(5000)))
    assert tail_text(log, lines=3) == "line 4997\nline 4998\nline 4999"
    zero = tmp_path / "zero.log"
    zero.symlink_to("/dev/zero")
    assert len(tail_text(zero, max_bytes=1024)) <= 1024
