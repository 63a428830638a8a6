"""A fixed workload on the million-point grid, for comparing two builds by instruction count.

Issue 14 asked whether one stable-ABI (abi3) wheel costs the grid's hot paths more than 5% against
the per-interpreter build. Wall time on a shared 2-core machine is too noisy to tell (rounds of the
same pair ranged 0.6x-2.5x), so count instructions, which are repeatable: install each wheel into
its own virtualenv, then for each mode (``base`` is setup only, and is subtracted) run::

    PYTHONHASHSEED=0 OPENBLAS_NUM_THREADS=1 valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        VENV/bin/python benches/abi3_workload.py MODE examples/million.json

``Collected :`` at the end is the count. Modes: ``iterate`` (all 1,000,000 points), ``getitem``
(100,000 ``grid[i]``), ``columns`` (``columns()`` ten times), ``index`` (20,000 ``grid.index``).
The extension is loaded straight from the venv's site-packages, without importing the fastgrid
package (Optuna, pydantic, ...), so the baseline stays small. Results: docs/install.md.
"""

from __future__ import annotations

import importlib.util
import json
import random
import sys
import sysconfig
from pathlib import Path

import numpy  # noqa: F401  (columns() imports it; imported in every mode so the baseline has it)

MODES = ("base", "iterate", "getitem", "columns", "index")


def load_core() -> object:
    so = next((Path(sysconfig.get_path("platlib")) / "fastgrid").glob("_core*.so"))
    spec = importlib.util.spec_from_file_location("fastgrid._core", so)
    assert spec is not None and spec.loader is not None
    core = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(core)
    return core


def main() -> None:
    mode, spec_file = sys.argv[1], Path(sys.argv[2])
    if mode not in MODES:
        sys.exit(f"mode {mode!r}: expected one of {', '.join(MODES)}")
    grid = load_core().Grid(json.loads(spec_file.read_text())["parameters"])  # type: ignore[attr-defined]
    n = len(grid)
    rng = random.Random(0)
    indexes = [rng.randrange(n) for _ in range(100_000)]
    points = [grid[i] for i in indexes[:20_000]]
    if mode == "iterate":
        for _ in grid:
            pass
    elif mode == "getitem":
        getitem = grid.__getitem__
        for i in indexes:
            getitem(i)
    elif mode == "columns":
        for _ in range(10):
            grid.columns()
    elif mode == "index":
        index = grid.index
        for point in points:
            index(point)


if __name__ == "__main__":
    main()
