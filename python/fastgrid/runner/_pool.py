"""Running a sweep's workers side by side: threads for command objectives, processes for callables."""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing as mp
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import optuna

from fastgrid.runner._plan import SweepPlan
from fastgrid.runner._progress import Reporter, TrialEvent
from fastgrid.runner._state import RunState
from fastgrid.runner._worker import Worker, worker_main

__all__ = ["run_worker_processes", "run_worker_threads"]


def run_worker_threads(plan: SweepPlan, state: RunState, reporter: Reporter, study: optuna.Study) -> None:
    """Command trials: this thread is worker 0, threads 1..N-1 the others, one storage.

    A command trial is a subprocess, so a worker only waits for it: threads give N trials
    at once without starting N Python processes (each importing Optuna and replaying the
    storage, which on 2 cores costs one trial's worth of CPU). Ctrl-C reaches this thread;
    ``cancel`` then kills the other threads' commands and they record them as interrupted.
    """
    lock = threading.Lock()

    def emit(event: TrialEvent) -> None:
        with lock:
            reporter.update(event)

    counter: Any = mp.get_context("spawn").Value("i", 0)
    stop, cancel = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            worker = Worker(
                plan, state, study=study, emit=emit, counter=counter, stop=stop, index=index, cancel=cancel
            )
            worker.loop()
        except KeyboardInterrupt:
            return  # cancelled: its trial was recorded as interrupted
        except BaseException as exc:  # surfaced by the main thread, after the others finish
            errors.append(exc)
            stop.set()

    threads = [
        threading.Thread(target=work, args=(i,), name=f"fastgrid-worker-{i}", daemon=True)
        for i in range(1, plan.spec.sweep.workers)
    ]
    for t in threads:
        t.start()
    try:
        Worker(plan, state, study=study, emit=emit, counter=counter, stop=stop, index=0).loop()
        for t in threads:
            while t.is_alive():
                t.join(0.2)  # a bounded wait, so that Ctrl-C is seen here
    except BaseException:
        stop.set()
        cancel.set()
        for t in threads:
            t.join()
        raise
    finally:
        state.ran = int(counter.value)
    if errors:
        raise errors[0]


def process_context(plan: SweepPlan) -> Any:
    """How worker processes start, so that a second worker does not import the world again (issue 13).

    Forked, where this process runs no other thread: a worker inherits fastgrid, Optuna, the
    objective's module (imported here once, first) and the plan, and starts its first trial at
    once. With other threads running, fork could copy a lock one of them holds; then a forkserver
    that preloads fastgrid, Optuna and the objective's module starts them. Elsewhere (no fork on
    the platform; macOS, where Python does not fork by default) they are spawned.
    """
    methods = mp.get_all_start_methods()
    ref = plan.spec.objective.callable
    module = ref.partition(":")[0] if ref and plan.target is None else None
    if sys.platform.startswith("linux") and "fork" in methods and threading.active_count() == 1:
        if module is not None:
            with contextlib.suppress(Exception):  # a module that fails to import fails every trial
                importlib.import_module(module)
        return mp.get_context("fork")
    if "forkserver" in methods:
        ctx = mp.get_context("forkserver")
        # This module, not the package: the package's re-exports are lazy (fastgrid/lazy.py), and
        # this module holds the workers' entry point with everything it imports.
        ctx.set_forkserver_preload([__name__, "optuna", *([module] if module else [])])
        return ctx
    return mp.get_context("spawn")


def run_worker_processes(
    plan: SweepPlan,
    state: RunState,
    reporter: Reporter,
    study: optuna.Study,
    *,
    started: Callable[[], None] | None = None,
) -> None:
    """This process is worker 0; workers 1..N-1 are processes on the same study, started by
    :func:`process_context` (forked, where it can); ``started`` runs once they are."""
    ctx = process_context(plan)
    events: Any = ctx.Queue()
    counter: Any = ctx.Value("i", 0)
    stop: Any = ctx.Event()
    procs = [
        ctx.Process(
            target=worker_main,
            args=(plan, state, i, events, counter, stop, os.getpid()),
            name=f"fastgrid-worker-{i}",
        )
        for i in range(1, plan.spec.sweep.workers)
    ]
    for p in procs:
        p.start()
    if started is not None:
        started()

    def emit(event: TrialEvent) -> None:
        _drain(events, reporter, timeout=0.0)
        reporter.update(event)

    try:
        Worker(plan, state, study=study, emit=emit, counter=counter, stop=stop, index=0).loop()
        while any(p.is_alive() for p in procs):
            _drain(events, reporter, timeout=0.2)
        _drain(events, reporter, timeout=0.0)
    except KeyboardInterrupt:
        stop.set()
        for p in procs:
            if p.is_alive() and p.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, signal.SIGINT)
        deadline = time.monotonic() + 30
        for p in procs:
            p.join(max(deadline - time.monotonic(), 0.1))
            if p.is_alive():
                p.terminate()
        _drain(events, reporter, timeout=0.0)
        raise
    finally:
        stop.set()
        for p in procs:
            p.join()
        state.ran = int(counter.value)
    failures = [p.exitcode for p in procs if p.exitcode not in (0, 130)]
    if failures:
        raise RuntimeError(
            f"{len(failures)} worker process(es) exited with codes {failures} (their error is printed "
            "above). Worker processes import the main module again: a script that runs a sweep with "
            "workers > 1 must start it under `if __name__ == '__main__':`."
        )
    state.interrupted = any(p.exitcode == 130 for p in procs)


def _drain(events: Any, reporter: Reporter, *, timeout: float) -> None:
    try:
        event = events.get(timeout=timeout) if timeout > 0 else events.get_nowait()
    except queue.Empty:
        return
    reporter.update(event)
    while True:
        try:
            reporter.update(events.get_nowait())
        except queue.Empty:
            return
