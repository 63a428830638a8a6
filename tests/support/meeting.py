"""Worker processes that meet before either returns a result, for tests that assert each took work.

A sleep in the objective does not make two processes share a sweep: on a loaded CI box one
process can start a second after the other and find every chunk done. Here each process leaves
its pid in a folder and waits (up to ``timeout`` seconds) until ``n`` processes have; after the
timeout it goes on, and the test's own assertion reports that a process never took work.
This file has no import from the tests, so a test can copy it beside an objective that a
``fastgrid`` subprocess imports.
"""

from __future__ import annotations

import os
import time
from pathlib import Path


def meet(folder: str | os.PathLike[str], n: int = 2, timeout: float = 60.0) -> None:
    """Register this process in ``folder`` and wait until ``n`` processes have."""
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    (path / str(os.getpid())).touch()
    deadline = time.monotonic() + timeout
    while len(list(path.iterdir())) < n and time.monotonic() < deadline:
        time.sleep(0.01)
