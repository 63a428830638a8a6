"""Batch sweeps on PostgreSQL (issue 13): ``fastgrid worker`` processes sharing one sweep.

1 worker against 4, each a fresh ``fastgrid worker`` process on the same sweep file, objective: a
sleep per chunk (a chunk-sized backtest that waits on something else, so the machine's two cores
do not cap the comparison). Target: 4 workers >= 3.5x one, whole processes. Storage:
``fastgrid+postgresql://`` (the recommended URL: the study in fastgrid's journal) and
``postgresql://`` (Optuna's RDBStorage for the study). ``extra_info`` holds, per run, medians of
the timeline: whole process (launch to the last exit), chunk phase (first chunk start to last chunk
end, from the store), first chunk (launch to the last worker's first chunk start) and tail (last
chunk end to the last exit); on the 4-worker run, both ratios against the 1-worker run of the same
storage in the same session; and the load average. Worker processes get a bytecode cache (as an installed
package has; this machine's environment sets PYTHONDONTWRITEBYTECODE) warmed by one small run.
A throwaway server from tests/support/pgserver.py. Measure with:
python -m pytest benches/test_bench_batch_postgres.py --benchmark-enable --benchmark-only \
    --benchmark-columns=median,min,rounds
"""

from __future__ import annotations

import math
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import pytest
from fastgrid.batch import open_batch_store

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

CHUNKS = 80
# A chunk of a quarter second (a 20 s sweep: four start-ups on two cores weigh) and of a second.
SLEEPS = (0.25, 1.0)
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


@dataclass
class Round:
    """One run's timeline, in seconds from the launch of the worker processes."""

    whole: float  # the last process's exit
    phase: float  # first chunk start to last chunk end
    first_chunk: float  # the last worker to start its first chunk
    tail: float  # last chunk end to the last process's exit


def _timeline(url: str, name: str, launched: float, exits: list[float]) -> Round:
    chunks = open_batch_store(url).chunks(name)
    starts: dict[str, float] = {}
    for c in chunks:
        pid = c["info"]["owner"].split("/")[1]
        starts[pid] = min(starts.get(pid, math.inf), c["beat"] - c["duration"])
    end = max(c["beat"] for c in chunks)
    return Round(
        whole=max(exits) - launched,
        phase=end - min(starts.values()),
        first_chunk=max(starts.values()) - launched,
        tail=max(exits) - end,
    )


# (scheme, sleep, workers) -> the median Round, filled as the runs go (1 worker first: the anchor).
MEDIANS: dict[tuple[str, float, int], Round] = {}


def _run_workers(folder: Path, url: str, workers: int, chunks: int, env: dict[str, str]) -> Round:
    name = f"pgb-{uuid.uuid4().hex[:8]}"
    (folder / "s.toml").write_text(SWEEP.format(name=name, url=url, points=chunks * 10))
    cmd = [sys.executable, "-m", "fastgrid", "worker", "s.toml", "--no-progress"]
    launched = time.time()  # the store's beats are epoch seconds (the server's clock, this host)
    procs = [subprocess.Popen(cmd, cwd=folder, stdout=subprocess.DEVNULL, env=env) for _ in range(workers)]
    exits: dict[int, float] = {}
    deadline = launched + 600
    while len(exits) < workers and time.time() < deadline:
        for i, proc in enumerate(procs):
            if i not in exits and proc.poll() is not None:
                exits[i] = time.time()
        time.sleep(0.002)
    assert [p.wait(timeout=1) for p in procs] == [0] * workers
    counts = open_batch_store(url).counts(name)
    assert counts["done"] == chunks * 10 and counts["chunks_done"] == chunks
    return _timeline(url, name, launched, list(exits.values()))


@pytest.mark.benchmark(group="batch on PostgreSQL: fastgrid worker processes, a sleep per chunk")
@pytest.mark.parametrize("scheme", ["fastgrid+postgresql", "postgresql"])
@pytest.mark.parametrize("chunk_seconds", SLEEPS)
@pytest.mark.parametrize("workers", [1, 4])
def test_fastgrid_workers_on_postgres(
    benchmark: Any,
    postgres_url: str,
    worker_env: dict[str, str],
    scheme: str,
    chunk_seconds: float,
    workers: int,
) -> None:
    if chunk_seconds != SLEEPS[0] and (scheme != "fastgrid+postgresql" or benchmark.disabled):
        pytest.skip("1 s chunks: the recommended URL only, timed runs only")
    chunks, sleep = SMALL if benchmark.disabled else (CHUNKS, chunk_seconds)
    folder = Path(tempfile.mkdtemp(prefix="fastgrid-bench-pg-"))
    (folder / "sleepy.py").write_text(textwrap.dedent(OBJECTIVE.format(sleep=sleep)))
    url = postgres_url if scheme == "postgresql" else "fastgrid+" + postgres_url
    _run_workers(folder, url, 1, 2, worker_env)  # warms the bytecode cache, the server and the tables
    rounds: list[Round] = []

    def run() -> None:
        rounds.append(_run_workers(folder, url, workers, chunks, worker_env))

    benchmark.pedantic(run, rounds=1 if benchmark.disabled else 3, iterations=1)
    median = Round(*(statistics.median(getattr(r, f.name) for r in rounds) for f in fields(Round)))
    MEDIANS[scheme, chunk_seconds, workers] = median
    info = benchmark.extra_info
    info.update({f"{k}_s": round(v, 3) for k, v in asdict(median).items()})
    info["ideal_phase_s"] = chunks * sleep / workers
    info["load_average"] = [round(x, 2) for x in os.getloadavg()]
    anchor = MEDIANS.get((scheme, chunk_seconds, 1))
    if workers > 1 and anchor is not None:
        info["whole_speedup"] = round(anchor.whole / median.whole, 2)
        info["chunk_phase_speedup"] = round(anchor.phase / median.phase, 2)
