"""Smoke test of an installed fastgrid: what a user gets from ``pip install fastgrid``.

Run it with the interpreter of the environment under test, from outside the source tree
(``scripts/wheels`` and the release workflow do)::

    python scripts/smoke_test.py [--no-rust] [--work DIR]

It uses only the public API (``fastgrid.Grid``, ``fastgrid.ResultIndex``, the ``fastgrid``
command), so it stays valid while modules move inside the package. Exits 0 with one ``ok:`` line
per check, or 1 with one ``FAILED:`` line naming the check.
"""

from __future__ import annotations

import argparse
import functools
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path


class SmokeFailure(Exception):
    """One failed check: the message names it."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise SmokeFailure(message)


def installed_package() -> str:
    import fastgrid

    where = Path(fastgrid.__file__).resolve().parent
    site = {Path(sysconfig.get_path(k)).resolve() for k in ("purelib", "platlib")}
    check(where.parent in site, f"fastgrid imported from {where}, not from this environment's {site}")
    version = importlib.metadata.version("fastgrid")
    check(fastgrid.__version__ == version, f"fastgrid.__version__ {fastgrid.__version__} != {version}")
    core = Path(sys.modules["fastgrid._core"].__file__ or "?").name  # the compiled extension loaded
    gil = "free-threaded" if sysconfig.get_config_var("Py_GIL_DISABLED") else "GIL"
    return f"fastgrid {version} from {where} ({core}, CPython {sys.version.split()[0]}, {gil})"


def grid_round_trip() -> str:
    from fastgrid import Grid

    spec = {
        "fast": {"type": "int", "low": 5, "high": 20, "step": 5},
        "mode": {"type": "grid", "values": ["long", "short", None]},
        "stop": {"type": "float", "low": 0.5, "high": 1.0, "step": 0.25},
    }
    grid = Grid(spec)
    points = list(grid)
    check(len(grid) == len(points) == 4 * 3 * 3, f"Grid size {len(grid)}, iterated {len(points)}, want 36")
    check(points[0] == {"fast": 5, "mode": "long", "stop": 0.5}, f"first point {points[0]}")
    check(points[-1] == {"fast": 20, "mode": None, "stop": 1.0}, f"last point {points[-1]}")
    for i, point in enumerate(points):
        check(grid[i] == point and grid.index(point) == i, f"grid[{i}] / grid.index round trip at {point}")
    check(grid[-1] == points[-1] and list(grid[::7]) == points[::7], "negative index / slice")
    columns = grid.columns()
    check(columns["fast"].tolist() == [p["fast"] for p in points], "columns()['fast']")
    check(columns["stop"].dtype.kind == "f", f"columns()['stop'] dtype {columns['stop'].dtype}")
    # Larger than sys.maxsize: the size is exact and indexing stays lazy.
    huge = Grid({f"p{k}": {"type": "int", "low": 0, "high": 999} for k in range(8)})
    check(huge.size == 1000**8, f"huge grid size {huge.size}")
    check(huge[1000**8 - 1] == {f"p{k}": 999 for k in range(8)}, "last point of a 10^24-point grid")
    return "Grid: 36 points iterated, indexed and found again; columns(); a 10^24-point grid indexed"


def result_index_lookup(work: Path) -> str:
    from fastgrid import ResultIndex

    results = work / "results"
    results.mkdir()
    for name in ("BTCUSD_1h_20260101_000000.json", "BTCUSD_1h_20260102_000000.json", "ETH_1d_20260101.json"):
        (results / name).write_text("{}")
    newest = results / "BTCUSD_1h_20260102_000000.json"
    with ResultIndex(results, watch=False) as idx:
        check(idx.latest(symbol="BTCUSD", timeframe="1h") == newest, "latest() after the initial scan")
        check(sorted(idx.keys()) == [("BTCUSD", "1h"), ("ETH", "1d")], f"keys() {idx.keys()}")
    # The watcher thread (native filesystem events): a file renamed into place is seen.
    with ResultIndex(results) as idx:
        later = results / "BTCUSD_1h_20260103_000000.json"

        def write_later() -> None:
            time.sleep(0.2)
            tmp = results / ".partial.tmp"
            tmp.write_text("{}")
            tmp.rename(later)

        writer = threading.Thread(target=write_later)
        writer.start()
        found = idx.wait_for(newer_than=newest, timeout=20, symbol="BTCUSD", timeframe="1h")
        writer.join()
        check(found == later, f"wait_for() returned {found}, want {later}")
    return "ResultIndex: latest() after a scan, wait_for() a file renamed into place while watching"


def demo(work: Path) -> str:
    scripts = Path(sysconfig.get_path("scripts"))
    exe = shutil.which("fastgrid", path=str(scripts))
    check(exe is not None, f"no fastgrid command in {scripts}")
    assert exe is not None
    out = work / "demo"
    run = subprocess.run(
        [exe, "demo", "--dir", str(out), "--no-progress"],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=600,
    )
    tail = (run.stdout + run.stderr)[-2000:]
    check(run.returncode == 0, f"fastgrid demo exited {run.returncode}:\n{tail}")
    check("best trial: #" in run.stdout, f"fastgrid demo printed no best trial:\n{tail}")
    heatmap = out / "heatmap.png"
    check(heatmap.is_file() and heatmap.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{heatmap} is not a PNG")
    best = json.loads((out / "best_config.json").read_text())
    check(isinstance(best, dict) and bool(best), f"best_config.json: {best!r}")
    return f"fastgrid demo: heatmap.png ({heatmap.stat().st_size} bytes) and best_config.json"


def no_rust() -> str:
    found = {tool: shutil.which(tool) for tool in ("cargo", "rustc", "rustup")}
    check(not any(found.values()), f"a Rust toolchain is on PATH: {found}")
    return "no cargo, rustc or rustup on PATH"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-rust", action="store_true", help="also check that no Rust toolchain is on PATH")
    parser.add_argument("--work", type=Path, help="scratch folder (default: a new temporary one)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="fastgrid-smoke-"))
    work.mkdir(parents=True, exist_ok=True)
    os.chdir(work)  # never import a checkout's python/ by accident
    checks: list[Callable[[], str]] = [
        installed_package,
        grid_round_trip,
        functools.partial(result_index_lookup, work),
        functools.partial(demo, work),
    ]
    if args.no_rust:
        checks.insert(0, no_rust)
    try:
        for step in checks:
            print(f"ok: {step()}", flush=True)
    except SmokeFailure as exc:
        print(f"FAILED: {exc}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
