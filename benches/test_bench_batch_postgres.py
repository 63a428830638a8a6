"""Batch sweeps on PostgreSQL (issue 13): ``fastgrid worker`` processes sharing one sweep.

1 worker against 4, each a fresh ``fastgrid worker`` process on the same sweep file, objective: a
sleep per chunk (a chunk-sized backtest that waits on something else, so the machine's two cores
do not cap the comparison). Target: 4 workers >= 3.5x one. ``extra_info`` holds the chunk phase
(first chunk start to last chunk end, from the store: process start-up left out) and its speed-up.
A throwaway server from tests/support/pgserver.py. Measure with:
python -m pytest benches/test_bench_batch_postgres.py --benchmark-enable --benchmark-only \
    --benchmark-columns=median,min,rounds
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import textwrap
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


def _phase(url: str, name: str) -> float:
    chunks = open_batch_store(url).chunks(name)
    return max(c["beat"] for c in chunks) - min(c["beat"] - c["duration"] for c in chunks)


@pytest.mark.benchmark(group="batch on PostgreSQL: fastgrid worker processes, a sleep per chunk")
@pytest.mark.parametrize("workers", [1, 4])
def test_fastgrid_workers_on_postgres(benchmark: Any, postgres_url: str, workers: int) -> None:
    chunks, sleep = SMALL if benchmark.disabled else (CHUNKS, SLEEP)
    folder = Path(tempfile.mkdtemp(prefix="fastgrid-bench-pg-"))
    (folder / "sleepy.py").write_text(textwrap.dedent(OBJECTIVE.format(sleep=sleep)))
    phases: list[float] = []

    def run() -> str:
        name = f"pgb-{uuid.uuid4().hex[:8]}"
        (folder / "s.toml").write_text(SWEEP.format(name=name, url=postgres_url, points=chunks * 10))
        cmd = [sys.executable, "-m", "fastgrid", "worker", "s.toml", "--no-progress"]
        procs = [subprocess.Popen(cmd, cwd=folder, stdout=subprocess.DEVNULL) for _ in range(workers)]
        assert [p.wait(timeout=600) for p in procs] == [0] * workers
        phases.append(_phase(postgres_url, name))
        return name

    name = benchmark.pedantic(run, rounds=1 if benchmark.disabled else 3, iterations=1)
    counts = open_batch_store(postgres_url).counts(name)
    assert counts["done"] == chunks * 10 and counts["chunks_done"] == chunks
    benchmark.extra_info["chunk_phase_s"] = sorted(phases)[len(phases) // 2]
    benchmark.extra_info["ideal_phase_s"] = chunks * sleep / workers
