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
The run and worker groups add ``deps``: a fresh interpreter importing only the third-party modules
a run cannot start without (Optuna, numpy, pydantic, sqlite3), the floor of fastgrid's own part.
"""

from __future__ import annotations

import json
import os
import resource
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
# What a run cannot start without: Optuna (the study), numpy (columns), pydantic (the sweep file).
DEPS = [sys.executable, "-c", "import optuna, numpy, pydantic, sqlite3"]


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


@pytest.mark.parametrize("variant", [*VARIANTS, "deps"])
@pytest.mark.benchmark(group="start: fastgrid run --check")
def test_run_check(benchmark: Any, variant: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "check.toml").write_text(CHECK_SWEEP)
        (folder / "startobj.py").write_text(POINT)
        argv = {"floor": [sys.executable, "-c", "pass"], "deps": DEPS}.get(
            variant, [*CLI, "run", "check.toml", "--check", "--point", "3"]
        )
        env = _env(variant, PYTHONPATH=os.pathsep.join(filter(None, [_env(variant).get("PYTHONPATH"), tmp])))
        _time(benchmark, lambda: _run(argv, env, cwd=folder))


@pytest.mark.parametrize("variant", [*VARIANTS, "deps"])
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
            argv = {"floor": [sys.executable, "-c", "pass"], "deps": DEPS}.get(
                variant, [*CLI, "worker", "start.toml", "--no-progress", "-q"]
            )
            started = time.time()
            _run(argv, env, cwd=run)
            if variant not in ("floor", "deps"):
                stamps = [float(x) for x in calls.read_text().split()]
                assert len(stamps) == 2  # two chunks of ten points, each called once
                firsts.append(min(stamps) - started)

        _time(benchmark, one)
        if firsts and not benchmark.disabled:
            benchmark.extra_info["first_chunk_s"] = round(statistics.median(firsts), 4)


def _commands(folder: Path, variant: str, run: Path) -> dict[str, tuple[list[str], dict[str, str], Path]]:
    """Each start-up command of the groups above for ``variant``; the worker's sweep lives in ``run``."""
    path = os.pathsep.join(filter(None, [_env(variant).get("PYTHONPATH"), str(folder)]))
    env = _env(variant, PYTHONPATH=path, FASTGRID_FIRST_CALL=str(run / "calls.txt"))
    return {
        "import fastgrid": ([sys.executable, "-c", "import fastgrid"], env, folder),
        "fastgrid --help": ([*CLI, "--help"], env, folder),
        "fastgrid grid --count": ([*CLI, "grid", "check.toml", "--count"], env, folder),
        "fastgrid run --check": ([*CLI, "run", "check.toml", "--check"], env, folder),
        "fastgrid worker (whole)": ([*CLI, "worker", "start.toml", "--no-progress", "-q"], env, run),
    }


@pytest.mark.benchmark(group="start: paired, every command and its anchors alternating")
def test_paired_start(benchmark: Any) -> None:
    """The groups above run one variant after the other, so a drifting machine skews their ratios;
    here each round runs the anchors (floor, deps) and every command as fastgrid and before (if
    given, in alternating order) back to back. ``extra_info`` holds the medians in seconds and
    before/fastgrid per command, by wall time and by the child's CPU time. Rounds:
    ``FASTGRID_BENCH_ROUNDS`` (default 15)."""
    rounds = 1 if benchmark.disabled else int(os.environ.get("FASTGRID_BENCH_ROUNDS", "15"))
    variants = ["fastgrid"] + (["before"] if BEFORE else [])
    anchors = {"floor": [sys.executable, "-c", "pass"], "deps": DEPS}
    times: dict[str, dict[str, list[float]]] = {}
    cpu: dict[str, dict[str, list[float]]] = {}

    def timed(key: str, variant: str, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        # Wall time, and the child's CPU time (user + system), which other sessions' load on a
        # shared machine disturbs far less than wall time.
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        _run(argv, env, cwd)
        times.setdefault(key, {}).setdefault(variant, []).append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        used = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        cpu.setdefault(key, {}).setdefault(variant, []).append(used)

    def run_all() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            (folder / "check.toml").write_text(CHECK_SWEEP)
            (folder / "startobj.py").write_text(OBJECTIVE + POINT)
            for r in range(rounds):
                for name, argv in anchors.items():
                    timed("anchors", name, argv, _env(name), folder)
                for variant in variants if r % 2 == 0 else variants[::-1]:
                    run = folder / f"{variant}{r}"  # a fresh sweep for each worker
                    run.mkdir()
                    (run / "start.toml").write_text(SWEEP.format(points=20))
                    for command, (argv, env, cwd) in _commands(folder, variant, run).items():
                        timed(command, variant, argv, env, cwd)

    benchmark.pedantic(run_all, rounds=1, iterations=1)
    info: dict[str, Any] = {"rounds": rounds}
    for key, by in times.items():
        info[key] = {v: round(statistics.median(t), 4) for v, t in by.items()}
        info[key].update({f"{v} cpu": round(statistics.median(t), 4) for v, t in cpu[key].items()})
        if "before" in by:
            info[key]["before/fastgrid"] = round(info[key]["before"] / info[key]["fastgrid"], 2)
            info[key]["cpu before/fastgrid"] = round(info[key]["before cpu"] / info[key]["fastgrid cpu"], 2)
    benchmark.extra_info.update(info)
    print(json.dumps(info, indent=1))
