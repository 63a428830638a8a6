"""Results index benchmarks: fastgrid against the pure-Python ways, same group, same run.

Measure with
    python -m pytest benches/test_bench_index.py --benchmark-enable --benchmark-only \
        --benchmark-columns=median,min,rounds
By default (benchmarks disabled) only the small sizes run, as quick correctness tests.
"""

from __future__ import annotations

import os
import re
import statistics
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest
from fastgrid import ResultIndex

SYMBOLS = 100
SIZES = [1_000, 10_000, 100_000]
PATTERN = re.compile(r"(.+?)_(.+?)_(.+)\.json")


def stamp(i: int) -> str:
    return f"20261129_{i:06d}"


def fill(directory: Path, files: int) -> None:
    for i in range(files):
        (directory / f"S{i % SYMBOLS:03d}_1h_{stamp(i // SYMBOLS)}.json").touch()


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Callable[[int], Path]:
    made: dict[int, Path] = {}

    def get(files: int) -> Path:
        if files not in made:
            made[files] = tmp_path_factory.mktemp(f"results{files}")
            fill(made[files], files)
        return made[files]

    return get


def big_only(benchmark, files: int, small: int = 1_000) -> None:
    if benchmark.disabled and files > small:
        pytest.skip("large sizes run only with --benchmark-enable")


def python_index(directory: Path) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """The pure-Python index build: os.scandir, a regex per name, one sorted list per key."""
    index: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    with os.scandir(directory) as entries:
        for entry in entries:
            m = PATTERN.fullmatch(entry.name)
            if m and entry.is_file():
                index[(m[1], m[2])].append((m[3], entry.path))
    for files in index.values():
        files.sort()
    return index


# --- lookup: the newest result for one key ---------------------------------------------------

WAYS = ["fastgrid", "sorted_glob", "scandir_max", "python_dict"]


@pytest.mark.parametrize("files", SIZES)
@pytest.mark.parametrize("way", WAYS)
def test_lookup(benchmark, filled, files: int, way: str) -> None:
    big_only(benchmark, files)
    directory = filled(files)
    expected = directory / f"S042_1h_{stamp(files // SYMBOLS - 1)}.json"
    benchmark.group = f"lookup {files // 1000}k files"
    if way == "fastgrid":
        with ResultIndex(directory, watch=False) as idx:
            latest = idx.latest
            got = benchmark(lambda: latest(symbol="S042", timeframe="1h"))
    elif way == "sorted_glob":
        got = benchmark(lambda: sorted(directory.glob("S042_1h_*.json"))[-1])
    elif way == "scandir_max":

        def scandir_max() -> Path:
            with os.scandir(directory) as it:
                return Path(
                    max(e.path for e in it if e.name.startswith("S042_1h_") and e.name.endswith(".json"))
                )

        got = benchmark(scandir_max)
    else:
        floor = {key: Path(files[-1][1]) for key, files in python_index(directory).items()}
        got = benchmark(lambda: floor.get(("S042", "1h")))
    assert got == expected


# --- a sweep: each trial writes its result, the runner then finds the newest ------------------


@pytest.mark.parametrize("way", ["fastgrid", "sorted_glob"])
def test_sweep_1000_trials(benchmark, filled, tmp_path_factory, way: str) -> None:
    files, trials = (1_000, 50) if benchmark.disabled else (10_000, 1_000)
    directory = tmp_path_factory.mktemp(f"sweep-{way}")
    fill(directory, files)
    benchmark.group = f"sweep {trials} trials, {files // 1000}k files"
    per_trial: list[float] = []

    def clean() -> None:
        for p in directory.glob("S042_1h_29991231_*.json"):
            p.unlink()

    # The directory's newest S042 file before the sweep: each trial's result is newer than it.
    baseline = directory / f"S042_1h_{stamp(files // SYMBOLS - 1)}.json"

    def sweep(find: Callable[[Path], Path]) -> None:
        previous = baseline
        for t in range(trials):
            start = time.perf_counter()
            path = directory / f"S042_1h_29991231_{t:06d}.json"
            tmp = directory / f".{path.name}.tmp"
            tmp.write_text("{}")
            os.replace(tmp, path)
            found = find(previous)
            per_trial.append(time.perf_counter() - start)
            assert found == path
            previous = found

    if way == "fastgrid":
        with ResultIndex(directory) as idx:

            def newest(previous: Path) -> Path:
                found = idx.wait_for(symbol="S042", timeframe="1h", newer_than=previous, timeout=10)
                assert found is not None
                return found

            def clean_and_settle() -> None:
                # The previous round's files must be gone from the index too, not only from disk.
                clean()
                deadline = time.monotonic() + 30
                while idx.latest(symbol="S042", timeframe="1h") != baseline:
                    assert time.monotonic() < deadline, "index never caught up with the cleanup"
                    idx.wait_changed(idx.generation, timeout=0.1)

            benchmark.pedantic(sweep, args=(newest,), setup=clean_and_settle, rounds=3, iterations=1)
    else:
        benchmark.pedantic(
            sweep,
            args=(lambda _: sorted(directory.glob("S042_1h_*.json"))[-1],),
            setup=clean,
            rounds=1,
            iterations=1,
        )
    tenth = max(1, trials // 10)
    benchmark.extra_info["first_tenth_ms_per_trial"] = statistics.median(per_trial[:tenth]) * 1e3
    benchmark.extra_info["last_tenth_ms_per_trial"] = statistics.median(per_trial[-tenth:]) * 1e3


# --- write → visible latency ------------------------------------------------------------------


@pytest.mark.parametrize("way", ["fastgrid", "watchfiles"])
def test_write_to_visible_latency(benchmark, tmp_path: Path, way: str) -> None:
    samples = 20 if benchmark.disabled else 300
    benchmark.group = "write -> visible latency"
    counter = iter(range(10**9))
    latencies: list[float] = []

    def write_one() -> tuple[Path, float]:
        n = next(counter)
        path = tmp_path / f"A_1h_{n:08d}.json"
        tmp = tmp_path / f".{path.name}.tmp"
        start = time.perf_counter()
        tmp.write_text("{}")
        os.replace(tmp, path)
        return path, start

    if way == "fastgrid":
        with ResultIndex(tmp_path) as idx:
            previous: list[Path | None] = [None]

            def one() -> None:
                path, start = write_one()
                found = idx.wait_for(symbol="A", timeframe="1h", newer_than=previous[0], timeout=10)
                latencies.append(time.perf_counter() - start)
                assert found == path
                previous[0] = found

            benchmark.pedantic(one, rounds=samples, iterations=1, warmup_rounds=3)
    else:
        watchfiles = pytest.importorskip("watchfiles")
        stop = threading.Event()
        changes = watchfiles.watch(
            tmp_path, step=1, debounce=1_600, stop_event=stop, rust_timeout=200, yield_on_timeout=True
        )
        next(changes)  # the generator starts watching on its first step

        def one() -> None:
            path, start = write_one()
            while True:
                seen = {Path(p) for _, p in next(changes)}
                if path in seen:
                    break
            latencies.append(time.perf_counter() - start)

        benchmark.pedantic(one, rounds=samples, iterations=1, warmup_rounds=3)
        stop.set()
    latencies.sort()
    benchmark.extra_info["median_ms"] = statistics.median(latencies) * 1e3
    benchmark.extra_info["p99_ms"] = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1e3


# --- the initial scan -------------------------------------------------------------------------


@pytest.mark.parametrize("files", [1_000, 100_000])
@pytest.mark.parametrize("way", ["fastgrid", "python_scandir"])
def test_initial_scan(benchmark, filled, files: int, way: str) -> None:
    big_only(benchmark, files)
    directory = filled(files)
    benchmark.group = f"initial scan {files // 1000}k files"
    if way == "fastgrid":

        def build() -> int:
            with ResultIndex(directory, watch=False) as idx:
                return idx.file_count

        assert benchmark(build) == files
    else:
        index = benchmark(python_index, directory)
        assert sum(len(v) for v in index.values()) == files
