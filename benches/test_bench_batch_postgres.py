"""Batch sweeps on PostgreSQL (issue 13): ``fastgrid worker`` processes sharing one sweep.

1 worker against 4, each a fresh ``fastgrid worker`` process on the same sweep file, objective: a
sleep per chunk (a chunk-sized backtest that waits on something else, so the machine's two cores
do not cap the comparison). Target: 4 workers >= 3.5x one, whole processes. Storage:
``fastgrid+postgresql://`` (the recommended URL: the study in fastgrid's journal) and
``postgresql://`` (Optuna's RDBStorage for the study). ``extra_info`` holds, per run, the median
whole-process time (launch to the last exit) and chunk phase (first chunk start to last chunk end,
from the store), and on the 4-worker run both ratios against the 1-worker run of the same storage
in the same session, with the load average. Worker processes get a bytecode cache (as an installed
package has; this machine's environment sets PYTHONDONTWRITEBYTECODE) warmed by one small run.
A throwaway server from tests/support/pgserver.py. Measure with:
python -m pytest benches/test_bench_batch_postgres.py --benchmark-enable --benchmark-only \
    --benchmark-columns=median,min,rounds
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastgrid.batch import open_batch_store

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

CHUNKS, SLEEP = 80, 0.25
SMALL = (8, 0.01)

SWEEP = """
[sweep]
name = "{name}"
mode = "batch"
chunk = 10
direction = "maximize"
metric = "score"
storage = "{url}"
top_k = 5

[objective]
batch = "sleepy:chunk"

[parameters]
a = {{ type = "int", low = 1, high = {points} }}
"""

OBJECTIVE = """
import time

def chunk(cols, config):
    time.sleep({sleep})
    return {{"score": cols["a"] * 1.0}}
"""


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    from support.pgserver import PostgresUnavailable, running_server

    try:
        server = running_server()
        url = server.__enter__()
    except PostgresUnavailable as exc:
        pytest.skip(f"no PostgreSQL server: {exc}")
    try:
        yield url
    finally:
        server.__exit__(None, None, None)


@pytest.fixture(scope="module")
def worker_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(prefix="fastgrid-bench-pycache-")
    return env


def _phase(url: str, name: str) -> float:
    chunks = open_batch_store(url).chunks(name)
    return max(c["beat"] for c in chunks) - min(c["beat"] - c["duration"] for c in chunks)


# (scheme, workers) -> (median whole seconds, median chunk phase seconds), filled as the runs go.
MEDIANS: dict[tuple[str, int], tuple[float, float]] = {}


def _run_workers(folder: Path, url: str, workers: int, chunks: int, env: dict[str, str]) -> tuple[str, float]:
    name = f"pgb-{uuid.uuid4().hex[:8]}"
    (folder / "s.toml").write_text(SWEEP.format(name=name, url=url, points=chunks * 10))
    cmd = [sys.executable, "-m", "fastgrid", "worker", "s.toml", "--no-progress"]
    start = time.perf_counter()
    procs = [subprocess.Popen(cmd, cwd=folder, stdout=subprocess.DEVNULL, env=env) for _ in range(workers)]
    assert [p.wait(timeout=600) for p in procs] == [0] * workers
    return name, time.perf_counter() - start


@pytest.mark.benchmark(group="batch on PostgreSQL: fastgrid worker processes, a sleep per chunk")
@pytest.mark.parametrize("scheme", ["fastgrid+postgresql", "postgresql"])
@pytest.mark.parametrize("workers", [1, 4])
def test_fastgrid_workers_on_postgres(
    benchmark: Any, postgres_url: str, worker_env: dict[str, str], scheme: str, workers: int
) -> None:
    chunks, sleep = SMALL if benchmark.disabled else (CHUNKS, SLEEP)
    folder = Path(tempfile.mkdtemp(prefix="fastgrid-bench-pg-"))
    (folder / "sleepy.py").write_text(textwrap.dedent(OBJECTIVE.format(sleep=sleep)))
    url = postgres_url if scheme == "postgresql" else "fastgrid+" + postgres_url
    _run_workers(folder, url, 1, 2, worker_env)  # warms the bytecode cache, the server and the tables
    phases: list[float] = []
    wholes: list[float] = []

    def run() -> str:
        name, whole = _run_workers(folder, url, workers, chunks, worker_env)
        wholes.append(whole)
        phases.append(_phase(postgres_url, name))
        return name

    name = benchmark.pedantic(run, rounds=1 if benchmark.disabled else 3, iterations=1)
    counts = open_batch_store(postgres_url).counts(name)
    assert counts["done"] == chunks * 10 and counts["chunks_done"] == chunks
    whole, phase = statistics.median(wholes), statistics.median(phases)
    MEDIANS[scheme, workers] = (whole, phase)
    info = benchmark.extra_info
    info.update(
        whole_s=round(whole, 3), chunk_phase_s=round(phase, 3), ideal_phase_s=chunks * sleep / workers
    )
    info["load_average"] = [round(x, 2) for x in os.getloadavg()]
    anchor = MEDIANS.get((scheme, 1))
    if workers > 1 and anchor is not None:
        info["whole_speedup"] = round(anchor[0] / whole, 2)
        info["chunk_phase_speedup"] = round(anchor[1] / phase, 2)
