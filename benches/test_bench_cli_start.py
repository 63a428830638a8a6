"""Process start-up: ``import fastgrid``, ``fastgrid --help``, ``fastgrid grid --count``,
``fastgrid run --check`` and a ``fastgrid worker``'s first chunk, each a fresh interpreter, against
``python -c pass`` (the floor).

Every ``fastgrid worker`` process of a distributed sweep and every CLI call pays this before its
first line of work (issue 13). Each group holds the floor and fastgrid in the same run; with
``FASTGRID_BENCH_BEFORE=DIR`` (a copy of another revision's ``python/`` folder, compiled core
included) each group also times the same command on that code, for a before/after in one run:

    git archive main python | tar -x -C /tmp/before
    cp python/fastgrid/_core*.so /tmp/before/python/fastgrid/
    FASTGRID_BENCH_BEFORE=/tmp/before/python python -m pytest benches/test_bench_cli_start.py \
        --benchmark-enable --benchmark-only --benchmark-columns=median,min,rounds

The worker group times a whole ``fastgrid worker`` process on a small batch sweep on the embedded
store; ``extra_info["first_chunk_s"]`` is launch to the objective's first call (median of rounds).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

BEFORE = os.environ.get("FASTGRID_BENCH_BEFORE")
# The console script is ``fastgrid.cli:main``; ``-m fastgrid`` is the same entry point and honours
# PYTHONPATH, so the "before" copy can be timed the same way.
CLI = [sys.executable, "-m", "fastgrid"]

SWEEP = """
[sweep]
name = "start"
mode = "batch"
chunk = 10
direction = "maximize"
metric = "score"

[objective]
batch = "startobj:chunk"

[parameters]
a = {{ type = "int", low = 1, high = {points} }}
"""

OBJECTIVE = """
import os, time

def chunk(cols, config):
    with open(os.environ["FASTGRID_FIRST_CALL"], "a") as f:
        f.write(f"{time.time()}\\n")
    return {"score": cols["a"] * 1.0}
"""

CHECK_SWEEP = """
[sweep]
name = "check"
direction = "maximize"

[objective]
callable = "startobj:point"

[parameters]
a = { type = "int", low = 1, high = 20 }
"""

POINT = """

def point(config):
    return float(config["a"])
"""

VARIANTS = ["floor", "fastgrid"] + (["before"] if BEFORE else [])


def _env(variant: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if variant == "before" and BEFORE:
        env["PYTHONPATH"] = BEFORE
    return {**env, **extra}


def _time(benchmark: Any, run: Callable[[], object], rounds: int = 10) -> None:
    if benchmark.disabled:  # a correctness run: each command once
        benchmark.pedantic(run, rounds=1, iterations=1)
    else:
        benchmark.pedantic(run, rounds=rounds, warmup_rounds=1, iterations=1)


def _run(argv: list[str], env: dict[str, str], cwd: Path | None = None) -> None:
    out = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.benchmark(group="start: import fastgrid")
def test_import(benchmark: Any, variant: str) -> None:
    code = "pass" if variant == "floor" else "import fastgrid"
    _time(benchmark, lambda: _run([sys.executable, "-c", code], _env(variant)))


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.benchmark(group="start: fastgrid --help")
def test_help(benchmark: Any, variant: str) -> None:
    argv = [sys.executable, "-c", "pass"] if variant == "floor" else [*CLI, "--help"]
    _time(benchmark, lambda: _run(argv, _env(variant)))


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.benchmark(group="start: fastgrid grid --count")
def test_grid_count(benchmark: Any, variant: str) -> None:
    """Reads a sweep file (pydantic) and counts its grid: no Optuna, no numpy needed."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "check.toml").write_text(CHECK_SWEEP)
        argv = (
            [sys.executable, "-c", "pass"] if variant == "floor" else [*CLI, "grid", "check.toml", "--count"]
        )
        _time(benchmark, lambda: _run(argv, _env(variant), cwd=folder))


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.benchmark(group="start: fastgrid run --check")
def test_run_check(benchmark: Any, variant: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "check.toml").write_text(CHECK_SWEEP)
        (folder / "startobj.py").write_text(POINT)
        argv = (
            [sys.executable, "-c", "pass"]
            if variant == "floor"
            else [*CLI, "run", "check.toml", "--check", "--point", "3"]
        )
        env = _env(variant, PYTHONPATH=os.pathsep.join(filter(None, [_env(variant).get("PYTHONPATH"), tmp])))
        _time(benchmark, lambda: _run(argv, env, cwd=folder))


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.benchmark(group="start: fastgrid worker, batch sweep on the embedded store")
def test_worker_first_chunk(benchmark: Any, variant: str) -> None:
    """A fresh sweep each round (a finished one would run nothing): 20 points, 2 chunks."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "startobj.py").write_text(OBJECTIVE)
        firsts: list[float] = []
        rounds = iter(range(1_000))

        def one() -> None:
            run = folder / f"r{next(rounds)}"
            run.mkdir()
            (run / "start.toml").write_text(textwrap.dedent(SWEEP.format(points=20)))
            calls = run / "calls.txt"
            path = os.pathsep.join(filter(None, [_env(variant).get("PYTHONPATH"), tmp]))
            env = _env(variant, PYTHONPATH=path, FASTGRID_FIRST_CALL=str(calls))
            argv = (
                [sys.executable, "-c", "pass"]
                if variant == "floor"
                else [*CLI, "worker", "start.toml", "--no-progress", "-q"]
            )
            started = time.time()
            _run(argv, env, cwd=run)
            if variant != "floor":
                stamps = [float(x) for x in calls.read_text().split()]
                assert len(stamps) == 2  # two chunks of ten points, each called once
                firsts.append(min(stamps) - started)

        _time(benchmark, one)
        if firsts and not benchmark.disabled:
            benchmark.extra_info["first_chunk_s"] = round(statistics.median(firsts), 4)
