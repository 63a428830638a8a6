"""Per-trial overhead of the objectives, against the plain-Python floor in the same run.

Measure with:
  python -m pytest benches/test_bench_objective.py --benchmark-enable --benchmark-only \
      --benchmark-columns=median,min,rounds
FASTGRID_BENCH_ROUNDS sets the rounds (default 40); disabled runs make one call each.
FASTGRID_BENCH_CHATTY_MB sets how much the chatty trial prints (default 20).
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastgrid import CallableObjective, CommandObjective

ROUNDS = int(os.environ.get("FASTGRID_BENCH_ROUNDS", "40"))
CONFIG = {"strategy": {"fast": 10, "slow": 50}, "risk": {"stop": 0.02}, "symbol": "BTC"}
TRIVIAL = """
import json, sys
cfg = json.load(open(sys.argv[1]))
print(json.dumps({"sharpe": cfg["strategy"]["fast"] / 10}))
"""
# Isolated mode, no site: both sides start the same lean interpreter, so the gap is ours.
PY = [sys.executable, "-I", "-S"]


@pytest.fixture
def trivial_script(tmp_path: Path) -> str:
    path = tmp_path / "trivial.py"
    path.write_text(TRIVIAL)
    return str(path)


@pytest.mark.benchmark(group="objective-command")
def test_command_objective_trial(benchmark: Any, tmp_path: Path, trivial_script: str) -> None:
    obj = CommandObjective([*PY, trivial_script, "{config_file}"], metrics=["sharpe"], timeout=60)
    numbers = itertools.count()

    def trial() -> Any:
        n = next(numbers)
        return obj.run(CONFIG, trial_number=n, trial_dir=tmp_path / f"trial_{n}", params={})

    outcome = benchmark.pedantic(trial, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    assert outcome.ok and outcome.value == 1.0


@pytest.mark.benchmark(group="objective-command")
def test_plain_subprocess_run_floor(benchmark: Any, tmp_path: Path, trivial_script: str) -> None:
    config_file = tmp_path / "config.json"

    def trial() -> float:
        config_file.write_text(json.dumps(CONFIG))
        done = subprocess.run([*PY, trivial_script, str(config_file)], capture_output=True, check=True)
        return float(json.loads(done.stdout.splitlines()[-1])["sharpe"])

    assert benchmark.pedantic(trial, rounds=ROUNDS, iterations=1, warmup_rounds=1) == 1.0


CHATTY = """
import sys
line = b"x" * 99 + b"\\n"
block = line * 10_000
for _ in range(int(sys.argv[1])):
    sys.stdout.buffer.write(block)
print('{"sharpe": 1.0}')
"""
# Megabytes a chatty trial prints (its log is capped at the default 10 MiB).
CHATTY_MB = int(os.environ.get("FASTGRID_BENCH_CHATTY_MB", "20"))


@pytest.fixture
def chatty_script(tmp_path: Path) -> str:
    path = tmp_path / "chatty.py"
    path.write_text(CHATTY)
    return str(path)


@pytest.mark.benchmark(group="objective-command-chatty")
def test_command_objective_chatty_trial(benchmark: Any, tmp_path: Path, chatty_script: str) -> None:
    obj = CommandObjective([*PY, chatty_script, str(CHATTY_MB)], metrics=["sharpe"], timeout=120)
    numbers = itertools.count()

    def trial() -> Any:
        n = next(numbers)
        return obj.run(CONFIG, trial_number=n, trial_dir=tmp_path / f"trial_{n}", params={})

    outcome = benchmark.pedantic(trial, rounds=max(ROUNDS // 4, 1), iterations=1, warmup_rounds=1)
    assert outcome.ok and outcome.value == 1.0
    assert (tmp_path / "trial_0" / "stdout.log").stat().st_size < 10 * 1024 * 1024 + 100


@pytest.mark.benchmark(group="objective-command-chatty")
def test_plain_subprocess_chatty_floor(benchmark: Any, tmp_path: Path, chatty_script: str) -> None:
    log = tmp_path / "stdout.log"

    def trial() -> float:
        # The plain way: the child writes its whole output straight into the log file.
        with open(log, "wb") as out:
            subprocess.run([*PY, chatty_script, str(CHATTY_MB)], stdout=out, check=True)
        with open(log, "rb") as f:
            f.seek(-200, os.SEEK_END)
            return float(json.loads(f.read().splitlines()[-1])["sharpe"])

    assert benchmark.pedantic(trial, rounds=max(ROUNDS // 4, 1), iterations=1, warmup_rounds=1) == 1.0


def backtest(config: dict) -> dict:
    return {"sharpe": config["strategy"]["fast"] / 10}


@pytest.mark.benchmark(group="objective-callable")
def test_callable_objective_trial(benchmark: Any, tmp_path: Path) -> None:
    obj = CallableObjective(backtest, metrics=["sharpe"])
    numbers = itertools.count()

    def trial() -> Any:
        n = next(numbers)
        return obj.run(CONFIG, trial_number=n, trial_dir=tmp_path / f"trial_{n}", params={})

    outcome = benchmark.pedantic(trial, rounds=ROUNDS * 25, iterations=1, warmup_rounds=5)
    assert outcome.ok and outcome.value == 1.0


@pytest.mark.benchmark(group="objective-callable")
def test_plain_call_with_config_file_floor(benchmark: Any, tmp_path: Path) -> None:
    numbers = itertools.count()

    def trial() -> float:
        trial_dir = tmp_path / f"trial_{next(numbers)}"
        trial_dir.mkdir()
        (trial_dir / "config.json").write_text(json.dumps(CONFIG, indent=2))
        return float(backtest(CONFIG)["sharpe"])

    assert benchmark.pedantic(trial, rounds=ROUNDS * 25, iterations=1, warmup_rounds=5) == 1.0
