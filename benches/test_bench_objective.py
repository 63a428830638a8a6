"""Per-trial overhead of the objectives, against the plain-Python floor in the same run.

Measure with:
  python -m pytest benches/test_bench_objective.py --benchmark-enable --benchmark-only \
      --benchmark-columns=median,min,rounds
FASTGRID_BENCH_ROUNDS sets the rounds (default 40); disabled runs make one call each.
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
