"""``run_batch``: a grid sweep whose unit of bookkeeping is a chunk of grid points (issue 13).

Per chunk: the grid engine's columns of the slot range → the objective (once per chunk, or once per
point for a per-point callable) → checks → ``require`` constraints over the metric columns (Rust)
→ one transaction that writes the chunk's columns and marks it done. ``workers = N`` processes
claim chunks from the store; they are forked before any thread starts (or, when threads already
run, started by a forkserver that preloads fastgrid and the objective's module), so a second worker
does not import the world again. At the end the top-K points become ordinary completed trials of the
sweep's Optuna study, so optuna-dashboard and the per-trial commands keep working.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty
from typing import Any

import numpy as np

from fastgrid import attrs
from fastgrid._core import Expression, Grid, trial_key
from fastgrid.batch._codec import encode_codes, encode_positions
from fastgrid.batch._evaluate import (
    SUSPECT_CLAIMS,
    ChunkResult,
    check_metric_name,
    evaluate_batch,
    evaluate_isolated,
    evaluate_points,
    fail_not_finite,
    judge,
)
from fastgrid.batch._pgstore import is_postgres_url
from fastgrid.batch._results import METRIC, PARAM, RESULT_COLUMNS, BatchResults
from fastgrid.batch._store import Chunk, ChunkStore, owner_id
from fastgrid.batch._stores import open_batch_store
from fastgrid.config import ConfigCache
from fastgrid.dotted import nest
from fastgrid.exceptions import (
    BatchFailedError,
    BatchObjectiveError,
    HeartbeatLostError,
    SpecError,
    StoreMismatchError,
    SweepChangedError,
    SweepDeletedError,
    SweepInUseError,
)
from fastgrid.lifeline import follow_parent, stop_signals_deferred
from fastgrid.liveness import describe_run, runs_in_progress
from fastgrid.refs import by_value, from_value, import_object

__all__ = [
    "MODE_ATTR",
    "BatchJob",
    "BatchRun",
    "PointCheck",
    "check_point",
    "check_study_mode",
    "default_chunk",
    "delete_batch_sweep",
    "run_batch",
    "slot_columns",
    "store_path",
    "sweep_view",
]

MODE_ATTR = attrs.STUDY_MODE
DEFAULT_CHUNK = 65_536
# A chunk's columns stay under this many bytes (8 per value, parameters + metrics + bookkeeping).
CHUNK_BYTES = 256 << 20
# An explicit chunk size whose columns would take more than this is refused (a typo of a few zeros
# would otherwise end in MemoryError, or the OOM killer, after the sweep was registered).
CHUNK_LIMIT = 1 << 30
# How often a `fastgrid worker` with nothing left to claim looks whether the others are done.
_WAIT_S = 0.05


def default_chunk(total: int, workers: int, columns: int) -> int:
    """Points per chunk: 65,536, fewer for wide grids (a chunk's columns within 256 MiB) and for
    small ones: 16 chunks per worker, so that the last chunks, when some workers already wait,
    cost at most 1/16 of the run (but chunks of at least 1,024 points, or 4 per worker on a grid
    too small for that, so that a vectorized objective still gets columns to work on)."""
    workers = max(workers, 1)
    by_memory = max(1, CHUNK_BYTES // (8 * max(columns, 1)))
    by_balance = math.ceil(total / (16 * workers))
    by_floor = min(1_024, math.ceil(total / (4 * workers)))
    return max(1, min(DEFAULT_CHUNK, by_memory, max(by_balance, by_floor)))


def store_path(storage: str | os.PathLike[str] | None, directory: Path) -> Path | str:
    """Where a batch sweep's columns live: the SQLite file of the embedded store (default), of a
    ``sqlite:///`` URL, ``<journal>.batch.db`` beside a journal file; or, for a
    ``fastgrid+postgresql://`` or ``postgresql://`` URL, that database (the URL itself)."""
    if storage is None:
        return directory / "fastgrid.db"
    text = os.fspath(storage)
    for prefix in ("fastgrid:///", "sqlite:///"):
        if text.startswith(prefix):
            rest = text[len(prefix) :].split("?", 1)[0]
            path = Path(rest).expanduser()
            return path if path.is_absolute() else directory / path
    if is_postgres_url(text):
        return text
    if "://" in text:
        raise ValueError(
            f"storage {text.split('://', 1)[0]}://…: batch mode keeps its columnar results in an SQLite "
            "file (the embedded store fastgrid.db, a .db path or sqlite:///) or in PostgreSQL "
            "(fastgrid+postgresql://user:pass@host/db)"
        )
    path = Path(text).expanduser()
    path = path if path.is_absolute() else directory / path
    if path.suffix.lower() in (".log", ".jsonl"):
        return path.with_name(path.name + ".batch.db")
    return path


def check_study_mode(study: Any, mode: str) -> None:
    """Refuses a stored study of the other mode, with the reason (per-trial runner: ``"trial"``)."""
    stored = study.user_attrs.get(MODE_ATTR)
    if mode == "trial" and stored == "batch":
        raise StoreMismatchError(
            f"sweep {study.study_name!r} in this storage is a batch sweep (its results are chunks of "
            'columns); run it with [sweep] mode = "batch", or use another sweep name or --fresh'
        )
    if mode == "batch" and stored != "batch":
        n = len(study.get_trials(deepcopy=False))
        if n or "fastgrid.space" in study.user_attrs:
            raise StoreMismatchError(
                f"sweep {study.study_name!r} in this storage was run per trial ({n} trials); a batch "
                "sweep cannot continue it: use another sweep name, or fresh=True (--fresh) to delete it"
            )


@dataclass
class BatchJob:
    """Everything a worker process needs to run a batch sweep (picklable for a forkserver)."""

    name: str
    parameters: Any
    objective: Any  # "module:function" or a callable
    vectorized: bool
    store: Path | str
    chunk: int
    where: tuple[str, ...] = ()
    require: tuple[str, ...] = ()
    order: str = "sequential"
    seed: int | None = None
    metrics: tuple[str, ...] = ("value",)
    # The default config (a ConfigCache): it pickles with what this process loaded, so every
    # worker merges into the same config even if the file is edited meanwhile (as per trial).
    config: Any = None
    retry_failed: int = 1
    heartbeat_interval: float = 10.0
    grace: float = 20.0
    fail_fast: int = 3
    max_chunks: int | None = None
    max_points: int | None = None
    deadline: float | None = None
    import_path: str | None = None
    wait_for_others: bool = False
    objective_timeout: float | None = None
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    # The run's registration in the store (its owner_id): every worker's claim checks it is there.
    run_owner: str | None = None

    def __getstate__(self) -> dict[str, Any]:
        # A callable objective goes to forkserver children by value when it must (a notebook's or
        # a script's __main__ function cannot be imported there), as per-trial workers get theirs.
        state = dict(self.__dict__)
        if not isinstance(self.objective, str):
            state["objective"] = by_value(self.objective)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state["objective"] = from_value(state["objective"])
        self.__dict__.update(state)

    @property
    def objective_name(self) -> str:
        if isinstance(self.objective, str):
            return self.objective
        return f"{getattr(self.objective, '__module__', '?')}:{getattr(self.objective, '__qualname__', '?')}"


def _import(ref: str) -> Any:
    obj = import_object(ref, what="objective", form="module:function")
    if not callable(obj):
        raise ValueError(f"objective {ref!r}: {type(obj).__name__} is not callable")
    return obj


class _Context:
    """A process's view of the job: grid, objective, config, constraints and store, built once."""

    def __init__(self, job: BatchJob, store: ChunkStore | None = None) -> None:
        if job.import_path and job.import_path not in sys.path:
            sys.path.insert(0, job.import_path)
        self.job = job
        grid = Grid(job.parameters, constraints=job.where, flat=True)
        self.grid = grid
        self.view = _view(grid, job.order, job.seed)
        self.axes = {a["path"]: a for a in grid.axes}
        # Metrics share the results table with these columns: a metric may not take their names.
        self.reserved = frozenset([*grid.paths, *RESULT_COLUMNS])
        self.isolate = False  # evaluate every chunk in child processes (see _isolating)
        # One tree: parameter columns are stored as codes of their axis positions (see _codec).
        self.positions = all(a["tree"] == 0 for a in grid.axes)
        self._tables: dict[str, Callable[[int, int], Any]] = {}
        self.fn: Callable[..., Any] = (
            _import(job.objective) if isinstance(job.objective, str) else job.objective
        )
        self.require = [(src, Expression(src)) for src in job.require]
        self.store = store if store is not None else open_batch_store(job.store)
        self.config: Any = job.config
        self.fingerprint = self.config.fingerprint if self.config is not None else "-"

    def table(self, path: str) -> Callable[[int, int], Any]:
        """``table(lo, hi)``: the values at positions ``lo..hi`` of ``path``'s axis."""
        got = self._tables.get(path)
        if got is None:
            axis_values = self.grid.axis_values
            got = self._tables[path] = lambda lo, hi: axis_values(path, lo, hi)
        return got

    def merge(self) -> Callable[[dict[str, Any]], Any]:
        if self.config is None:
            return nest
        cache = self.config
        if cache.model is None:
            template, allow_new = cache.template, cache.allow_new
            return lambda point: template.merged(point, allow_new=allow_new)
        return cache.merged

    def read_only_config(self) -> Any:
        return self.config.snapshot if self.config is not None else {}


@dataclass
class _Outcome:
    chunks: int = 0
    points: int = 0
    failed: int = 0
    lost: int = 0
    interrupted: bool = False
    fail_reason: str | None = None


def _columns(ctx: _Context, chunk: Chunk) -> tuple[dict[str, Any], dict[str, Any]]:
    """The chunk's parameter columns and (one tree) their values' positions on the axes."""
    if ctx.positions:
        return ctx.view.columns(chunk.start, chunk.stop, fixed="scalar", positions=True)
    return ctx.view.columns(chunk.start, chunk.stop, fixed="scalar"), {}


def _call(ctx: _Context, cols: dict[str, Any], n: int, start: int) -> ChunkResult:
    """The objective on ``n`` points' columns (a chunk, or its failed points on a retry)."""
    job = ctx.job
    config = ctx.read_only_config() if job.vectorized else None
    merge = None if job.vectorized else ctx.merge()
    return _score(job, ctx.fn, cols, n, start, config=config, merge=merge, reserved=ctx.reserved)


def _score(
    job: BatchJob,
    fn: Callable[..., Any],
    cols: dict[str, Any],
    n: int,
    start: int,
    *,
    config: Any,
    merge: Callable[[dict[str, Any]], Any] | None,
    reserved: frozenset[str],
) -> ChunkResult:
    """``fn`` on ``n`` points' columns: a batch objective gets ``config`` (read-only), a per-point
    callable each point's config from ``merge``; the result checks of a chunk."""
    if job.vectorized:
        for values in cols.values():
            if isinstance(values, np.ndarray):
                # The recorded parameters are these arrays: an objective that scales a column in
                # place must not rewrite the grid (it gets "assignment destination is read-only").
                values.flags.writeable = False
        return evaluate_batch(
            fn,
            cols,
            config,
            n,
            objective=job.objective_name,
            start=start,
            expected=job.metrics,
            retry_failed=job.retry_failed,
            reserved=reserved,
        )
    assert merge is not None
    result = evaluate_points(
        fn,
        cols,
        n,
        merge=merge,
        retry_failed=job.retry_failed,
        expected=job.metrics,
        objective=job.objective_name,
        start=start,
    )
    for m in sorted(result.metrics):
        check_metric_name(m, objective=job.objective_name, slots=(start, start + n), reserved=reserved)
    missing = [m for m in job.metrics if m not in result.metrics and not result.failed.all()]
    if missing:
        # Every point that returned metrics lacked it: fail them, as a per-trial sweep would.
        reason = f"missing metric {missing[0]!r} (got {', '.join(result.metrics) or 'none'})"
        for i in np.flatnonzero(~result.failed).tolist():
            result.reasons[i] = reason
        result.failed[:] = True
    return result


def _isolating(ctx: _Context, chunk: Chunk) -> bool:
    """Whether to evaluate ``chunk`` in forked child processes: always under an objective timeout
    (a hung call can only be stopped by killing its process), and for a chunk whose earlier
    holders all died in it (else an os._exit or a segfault there kills every resumed run)."""
    return ctx.job.objective_timeout is not None or ctx.isolate or chunk.claims >= SUSPECT_CLAIMS


def _call_guarded(ctx: _Context, chunk: Chunk, cols: dict[str, Any], n: int) -> ChunkResult:
    if not _isolating(ctx, chunk):
        return _call(ctx, cols, n, chunk.start)
    result = evaluate_isolated(
        lambda c, k, at: _call(ctx, dict(c), k, at),
        cols,
        n,
        start=chunk.start,
        timeout=ctx.job.objective_timeout,
    )
    if result.extra.get("deaths"):
        # The objective kills its process: isolate every chunk of this process from now on, so that
        # one run records (or fail-fast stops) instead of each run dying on the next chunk.
        ctx.isolate = True
    return result


def _evaluate(ctx: _Context, chunk: Chunk) -> tuple[dict[str, Any], ChunkResult]:
    cols, positions = _columns(ctx, chunk)
    # Non-finite objective metrics fail their points now, before fail-fast looks at the chunk.
    result = fail_not_finite(_call_guarded(ctx, chunk, cols, len(chunk)), ctx.job.metrics)
    result.extra["positions"] = positions
    return cols, result


def _evaluate_failed(ctx: _Context, chunk: Chunk) -> tuple[dict[str, Any], ChunkResult]:
    """A recorded chunk again, calling the objective on its failed points only (a later run's retry):
    the other points keep their stored metrics."""
    cols, positions = _columns(ctx, chunk)
    n = len(chunk)
    stored = ctx.store.chunk_columns(ctx.job.name, chunk.index)
    failed = stored["failed"].astype(bool) if "failed" in stored else np.zeros(n, dtype=bool)
    at = np.flatnonzero(failed)
    again = _call_guarded(
        ctx, chunk, {k: v[at] if isinstance(v, np.ndarray) else v for k, v in cols.items()}, len(at)
    )
    names = [c[len(METRIC) :] for c in stored if c.startswith(METRIC)]
    names += [m for m in again.metrics if m not in names]
    metrics: dict[str, np.ndarray[Any, Any]] = {}
    for m in names:
        column = np.array(stored.get(METRIC + m, np.full(n, np.nan)), dtype=np.float64)
        column[at] = again.metrics.get(m, np.full(len(at), np.nan))
        metrics[m] = column
    failed[at] = again.failed
    reasons: list[str | None] = [None] * n
    for j, i in enumerate(at.tolist()):
        reasons[i] = again.reasons[j]
    durations = None
    if "duration" in stored and again.durations is not None:
        durations = np.array(stored["duration"], dtype=np.float32)
        durations[at] = again.durations
    result = ChunkResult(
        n=n,
        metrics=metrics,
        failed=failed,
        reasons=reasons,
        calls=again.calls,
        durations=durations,
        seconds=again.seconds,
    )
    result.extra["positions"] = positions
    result.extra["evaluated"] = len(at)
    return cols, fail_not_finite(result, ctx.job.metrics)


def _record(ctx: _Context, owner: str, chunk: Chunk, cols: dict[str, Any], result: ChunkResult) -> bool:
    job = ctx.job
    try:
        verdict = judge(result, cols, metrics=job.metrics, require=ctx.require)
    except SpecError as exc:
        raise _require_error(ctx, chunk, {**cols, **result.metrics}, result, exc) from None
    failed, feasible, codes, vocab = verdict.failed, verdict.feasible, verdict.codes, verdict.vocab
    n_failed, n_infeasible = verdict.n_failed, verdict.n_infeasible
    out: dict[str, Any] = {}
    positions = result.extra.get("positions", {})
    for path, values in cols.items():
        if isinstance(values, np.ndarray):
            at = positions.get(path)
            out[PARAM + path] = encode_positions(values, at, ctx.table(path)) if at is not None else values
    for m, values in result.metrics.items():
        out[METRIC + m] = values
    if n_failed:
        out["failed"] = failed
    if n_failed or n_infeasible:
        out["feasible"] = feasible
        out["reason"] = encode_codes(codes, list(vocab))
    if result.durations is not None:
        out["duration"] = result.durations
    info = {
        "fingerprint": ctx.fingerprint,
        "calls": result.calls,
        "owner": owner,
        "metrics": sorted(result.metrics),
        "run": job.run_id,
    }
    return ctx.store.finish(
        job.name,
        owner,
        chunk,
        out,
        failed=n_failed,
        infeasible=n_infeasible,
        duration=result.seconds,
        info=info,
    )


def _require_error(
    ctx: _Context, chunk: Chunk, scope: Mapping[str, Any], result: ChunkResult, exc: SpecError
) -> BatchObjectiveError:
    """A ``require`` constraint that cannot be judged on this chunk's columns (a name that is
    neither a parameter nor a metric it returned: a typo, or a metric the objective returns for
    some chunks only), named with the objective and the chunk: the engine's message says which
    name (and the closest one)."""
    missing = next((name for _, e in ctx.require for name in e.names if name not in scope), None)
    got = ", ".join(map(repr, result.metrics)) or "none"
    return BatchObjectiveError(
        f"objective {ctx.job.objective_name!r}, chunk slots {chunk.start}..{chunk.stop - 1}: {exc} "
        f"(this chunk returned the metrics {got}; a metric that `require` names must be in every "
        "chunk's result, NaN for a point without one)",
        objective=ctx.job.objective_name,
        metric=missing,
        slots=(chunk.start, chunk.stop),
    )


def _uniform_failure(result: ChunkResult) -> str | None:
    if not result.failed.all():
        return None
    reasons = set(result.reasons)
    if len(reasons) != 1:
        return None
    reason = next(iter(reasons))
    return reason.split(" (not isolated", 1)[0] if reason else None


class _Beat:
    """A heartbeat thread: every ``interval`` seconds it marks ``owner``'s claims alive and, for a
    run (``run``), the run's registration in the store (see ``ChunkStore.register``).

    A beat that fails is retried at the next (a store that hiccups, a PostgreSQL reconnect), but
    not forever: once beats have failed for longer than ``grace``, this worker's claims count as
    stale and others may take its chunks over, so ``check`` (called between chunks) raises
    HeartbeatLostError, and the worker stops after its current chunk (``finish`` records that
    only if the claim is still its own: no point is ever recorded twice). ``check`` also raises
    SweepDeletedError once a beat found the sweep, or the run's registration, gone.
    """

    _clock = staticmethod(time.monotonic)

    def __init__(
        self, store: ChunkStore, name: str, owner: str, *, interval: float, grace: float, run: bool = False
    ) -> None:
        self.store, self.name, self.owner = store, name, owner
        self.interval, self.grace, self.run = interval, grace, run
        self._ok = self._clock()  # the last beat that worked (or the start)
        self._error: str | None = None  # why the beats since then failed
        self._gone = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.start()

    def start(self) -> None:
        if self._thread is None:
            self._stop = threading.Event()
            self._thread = threading.Thread(
                target=self._run, args=(self._stop,), name="fastgrid-batch-beat", daemon=True
            )
            self._thread.start()

    def pause(self) -> None:
        """Stops the thread until ``start`` (worker processes are forked while no thread runs)."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join(timeout=5)

    close = pause

    def _run(self, stop: threading.Event) -> None:
        while not stop.wait(self.interval):
            self.beat()

    def beat(self) -> None:
        try:
            alive = self.store.beat(self.name, self.owner, run=self.run)
        except Exception as exc:  # the store: down, locked, full, gone (judged in check)
            self._error = f"{type(exc).__name__}: {exc}".splitlines()[0]
            return
        self._ok, self._error = self._clock(), None
        if not alive:
            self._gone = True

    def check(self) -> None:
        """Raises when this worker must stop: see the class."""
        if self._gone:
            raise self.store._deleted(self.name, registration=self.store.sweep(self.name) is not None)
        error, lapse = self._error, self._clock() - self._ok
        if error is not None and lapse > self.grace:
            raise HeartbeatLostError(
                f"batch sweep {self.name!r}: this worker could not renew its heartbeat in "
                f"{self.store.label} for {lapse:.0f}s (grace_period {self.grace:g}s; last error: {error}), "
                "so other workers may have taken its chunks over; it stopped after its current chunk, "
                "which is recorded only if its claim was still its own. Run it again once the store "
                "is back to continue"
            )

    def verify(self) -> None:
        """A beat now, then ``check`` (before work that follows the chunks)."""
        self.beat()
        self.check()


def _work(
    ctx: _Context,
    *,
    stop: Any,
    progress: Callable[[dict[str, Any]], None] | None = None,
    index: int = 0,
    lease: _Beat | None = None,
) -> _Outcome:
    """Claims and evaluates chunks until none is left (or ``stop`` is set, or a budget ends).

    ``lease``: the run's heartbeat (the runner's own process claims as the run), else one of its own."""
    job, store = ctx.job, ctx.store
    beat = lease or _Beat(store, job.name, owner_id(), interval=job.heartbeat_interval, grace=job.grace)
    owner = beat.owner
    outcome = _Outcome()
    # Chunks that failed whole, held (claimed, unrecorded) until something succeeds: when the
    # first `fail_fast` of them failed the same way the sweep stops without recording them, so a
    # resumed run with the objective fixed evaluates them again.
    pending: list[tuple[Chunk, dict[str, Any], ChunkResult, str]] = []
    checking = job.fail_fast > 0

    def record(chunk: Chunk, cols: dict[str, Any], result: ChunkResult) -> None:
        if _record(ctx, owner, chunk, cols, result):
            outcome.chunks += 1
            outcome.points += result.extra.get("evaluated", len(chunk))
            outcome.failed += int(result.failed.sum())
        else:
            outcome.lost += 1
        if progress is not None:
            progress({"worker": index, "chunk": chunk.index, "points": len(chunk), "seconds": result.seconds})

    try:
        while not stop.is_set():
            if job.max_chunks is not None and outcome.chunks + len(pending) >= job.max_chunks:
                break
            if job.deadline is not None and time.time() >= job.deadline:
                break
            beat.check()
            chunk = store.claim(job.name, owner, grace=job.grace, limit=job.max_points, run=job.run_owner)
            retry = chunk is None and job.retry_failed > 0 and not pending
            if retry:
                # Every chunk is claimed: retry the failed points an earlier run recorded.
                chunk = store.claim_failed(job.name, owner, run=job.run_id, registered=job.run_owner)
            if chunk is None:
                if job.wait_for_others and not pending and store.counts(job.name)["chunks_in_flight"]:
                    # `fastgrid worker`: others still hold chunks; one whose worker dies goes
                    # stale after the grace period, and this worker takes it over. A short wait (a
                    # sum over the chunk rows): the worker leaves soon after the last chunk.
                    stop.wait(min(_WAIT_S, job.grace / 4))
                    continue
                break
            if retry:
                record(chunk, *_evaluate_failed(ctx, chunk))
                continue
            cols, result = _evaluate(ctx, chunk)
            reason = _uniform_failure(result) if checking else None
            if reason is not None:
                pending.append((chunk, cols, result, reason))
                if len(pending) < job.fail_fast:
                    continue
                if len({r for *_, r in pending}) == 1:
                    outcome.fail_reason = reason
                    pending.clear()
                    stop.set()
                    break
            checking = False
            for held in pending:
                record(*held[:3])
            pending.clear()
            if reason is None:
                record(chunk, cols, result)
        for held in pending:
            # The run ended (grid exhausted, budget) before fail-fast could decide: record them.
            record(*held[:3])
    except KeyboardInterrupt:
        outcome.interrupted = True
    finally:
        if lease is None:
            beat.close()
        with contextlib.suppress(Exception):
            store.release(job.name, owner)
        store.stop_checkpoints()
    return outcome


def _child(job: BatchJob, ctx: _Context | None, index: int, stop: Any, results: Any, runner: int) -> None:
    """A worker process: the forked parent's context, or one built from the job (forkserver).

    It dies with its runner ``runner``, however that dies (a SIGKILL included): its claimed
    chunks are then run again, as after any crash."""
    code = 0
    follow_parent(runner)
    try:
        context = ctx if ctx is not None else _Context(job)
        outcome = _work(context, stop=stop, index=index)
        results.put((index, outcome.chunks, outcome.points, outcome.failed, outcome.fail_reason, None))
        code = 130 if outcome.interrupted else 0
    except BaseException as exc:  # reported to the parent, which raises it
        # These two pickle whole (a message only) and tell the user what happened as they are.
        told = isinstance(exc, SweepDeletedError | HeartbeatLostError)
        results.put((index, 0, 0, 0, None, exc if told else f"{type(exc).__name__}: {exc}"))
        code = 1
    # A Queue's put hands the message to a feeder thread; os._exit would kill that thread before it
    # writes, losing the counts, the fail-fast reason or the error the runner must see.
    with contextlib.suppress(Exception):
        results.close()
        results.join_thread()
    os._exit(code)


@dataclass
class PointCheck:
    """One grid point evaluated as its chunk would evaluate it (:func:`check_point`)."""

    slot: int
    params: dict[str, Any]
    metrics: dict[str, float]
    reason: str | None
    """Why it failed or which requirements it breaks (``infeasible: ...``); None when feasible."""
    failed: bool
    seconds: float


def _listed(values: str | Sequence[str]) -> list[str]:
    """One constraint or metric given as a string, not a list, would be read letter by letter."""
    return [values] if isinstance(values, str) else list(values)


def _view(grid: Any, order: str, seed: int | None) -> Any:
    return grid.shuffled(seed or 0) if order == "shuffled" else grid


def sweep_view(
    parameters: Any, *, where: Sequence[str] = (), order: str = "sequential", seed: int | None = None
) -> Any:
    """The grid as a batch sweep numbers its points: slot ``i`` is ``view[i]``, the constrained
    grid, shuffled by ``seed`` when ``order`` is ``"shuffled"``. Reports, ``fastgrid run --check
    --point`` and ``[validate]`` name points by these slots."""
    return _view(Grid(parameters, constraints=tuple(where), flat=True), order, seed)


def slot_columns(view: Any, slots: Sequence[int]) -> dict[str, Any]:
    """The parameter columns of ``slots`` (of :func:`sweep_view`) as a chunk gets them: the grid
    engine's arrays, with their dtypes (int64, float64, bool, or object for strings, lists and mixed
    values), per varying path; fixed values as scalars."""
    parts = [view.columns(int(s), int(s) + 1, fixed="scalar") for s in slots]
    if not parts:
        return dict(view.columns(0, 0, fixed="scalar"))
    return {
        path: np.concatenate([part[path] for part in parts]) if isinstance(first, np.ndarray) else first
        for path, first in parts[0].items()
    }


def check_point(
    parameters: Any,
    slot: int,
    *,
    batch: Callable[..., Any] | str | None = None,
    callable: Callable[..., Any] | str | None = None,
    metric: str = "value",
    metrics: Sequence[str] | None = None,
    where: Sequence[str] = (),
    order: str = "sequential",
    seed: int | None = None,
    require: Sequence[str] = (),
    config: str | os.PathLike[str] | Mapping[str, Any] | ConfigCache | None = None,
    config_model: str | type | None = None,
    allow_new: bool = False,
    import_path: str | None = None,
    on_error: Callable[[BaseException], None] | None = None,
) -> PointCheck:
    """Evaluates point ``slot`` (numbered as the sweep's reports number it, see :func:`sweep_view`)
    in this process the way a chunk of a batch sweep evaluates it (the same columns, config, result
    checks, non-finite and ``require`` rules), once, without retries, recording nothing.
    ``on_error(exc)`` sees an exception the objective raises (to print its whole traceback) before
    it fails the point. A result of the wrong shape or type raises :class:`BatchObjectiveError`.
    """
    where = _listed(where)
    view = sweep_view(parameters, where=where, order=order, seed=seed)
    size = len(view)
    if not 0 <= slot < size:
        raise IndexError(f"grid point {slot}: the grid has {size} points (0..{size - 1})")
    cache = _config_cache(config, model=config_model, allow_new=allow_new)
    return check_columns(
        slot_columns(view, [slot]),
        1,
        batch=batch,
        callable=callable,
        metric=metric,
        metrics=metrics,
        require=require,
        config=cache.snapshot if cache is not None else None,
        merge=cache.merged if cache is not None else None,
        slots=[slot],
        import_path=import_path,
        on_error=on_error,
    )[0]


def check_columns(
    columns: Mapping[str, Any],
    n: int,
    *,
    batch: Callable[..., Any] | str | None = None,
    callable: Callable[..., Any] | str | None = None,
    metric: str = "value",
    metrics: Sequence[str] | None = None,
    require: Sequence[str] = (),
    config: Mapping[str, Any] | None = None,
    merge: Callable[[dict[str, Any]], Any] | None = None,
    slots: Sequence[int] | None = None,
    import_path: str | None = None,
    on_error: Callable[[BaseException], None] | None = None,
) -> list[PointCheck]:
    """``n`` points given by their parameter ``columns`` (path → array of ``n`` values, or a scalar
    for a fixed path) evaluated once the way a chunk evaluates them — one call of a ``batch``
    objective with ``config`` as its read-only config, or a per-point ``callable`` on ``merge(point)``
    (default: the point as a nested dict) — and judged by the rule of a recorded chunk (result
    checks, non-finite objective metrics, ``require``); nothing is recorded. ``slots`` are the
    points' numbers (their grid slots; default ``0..n-1``). ``on_error(exc)`` sees an exception the
    objective raises before it fails its points. Used by ``[validate]`` and ``--check``.
    A result of the wrong shape or type raises :class:`BatchObjectiveError`, as in a run.
    """
    if (batch is None) == (callable is None):
        raise ValueError("set exactly one objective: batch=fn(columns, config) or callable=fn(config)")
    require = _listed(require)
    metrics = _listed(metrics) if metrics is not None else None
    numbers = list(range(n)) if slots is None else [int(s) for s in slots]
    if len(numbers) != n:
        raise ValueError(f"slots: {len(numbers)} numbers for {n} points")
    job = BatchJob(
        name="check",
        parameters=None,
        objective=batch if batch is not None else callable,
        vectorized=batch is not None,
        store="",
        chunk=max(n, 1),
        require=tuple(require),
        metrics=_metric_list(metric, metrics),
        retry_failed=0,
        import_path=import_path,
    )
    if import_path and import_path not in sys.path:
        sys.path.insert(0, import_path)
    fn = _import(job.objective) if isinstance(job.objective, str) else job.objective
    if on_error is not None:
        fn = _traced(fn, on_error)
    cols = {p: np.array(v) if isinstance(v, np.ndarray) else v for p, v in columns.items()}  # writable copies
    result = _score(
        job,
        fn,
        cols,
        n,
        numbers[0] if numbers else 0,
        config=config if config is not None else {},
        merge=merge if merge is not None else nest,
        reserved=frozenset([*cols, *RESULT_COLUMNS]),
    )
    verdict = judge(result, cols, metrics=job.metrics, require=[(src, Expression(src)) for src in require])
    out = []
    for i, number in enumerate(numbers):
        params = {p: v[i] if isinstance(v, np.ndarray) else v for p, v in cols.items()}
        out.append(
            PointCheck(
                slot=number,
                params={p: v.item() if isinstance(v, np.generic) else v for p, v in params.items()},
                # A point whose call failed has no metrics (NaN placeholders in the columns).
                metrics={
                    m: float(v[i])
                    for m, v in result.metrics.items()
                    if not (result.failed[i] and np.isnan(v[i]))
                },
                reason=verdict.reason(i),
                failed=bool(verdict.failed[i]),
                seconds=result.seconds / max(n, 1),
            )
        )
    return out


def _traced(fn: Callable[..., Any], on_error: Callable[[BaseException], None]) -> Callable[..., Any]:
    def traced(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            on_error(exc)
            raise

    return traced


@dataclass
class BatchRun:
    """What ``run_batch`` leaves: the results reader, counts and the best point(s)."""

    name: str
    results: BatchResults
    counts: dict[str, int]
    best: dict[str, Any] | None
    top: list[dict[str, Any]] = field(default_factory=list)
    interrupted: bool = False
    ran: int = 0
    study: Any = None
    seconds: float = 0.0
    signal: int | None = None
    """A stop signal that arrived during the run's closing bookkeeping (it was deferred)."""

    def to_pandas(self, columns: Sequence[str] | None = None) -> Any:
        return self.results.to_pandas(columns)

    def to_arrow(self, columns: Sequence[str] | None = None) -> Any:
        return self.results.to_arrow(columns)


def _metric_list(metric: str, metrics: Sequence[str] | None) -> tuple[str, ...]:
    return tuple(metrics) if metrics else (metric,)


def run_batch(
    parameters: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    *,
    batch: str | Callable[..., Any] | None = None,
    callable: str | Callable[..., Any] | None = None,
    name: str = "sweep",
    direction: str | Sequence[str] = "minimize",
    metric: str = "value",
    metrics: Sequence[str] | None = None,
    where: Sequence[str] = (),
    require: Sequence[str] = (),
    order: str = "sequential",
    seed: int | None = None,
    chunk: int | None = None,
    workers: int = 1,
    storage: str | os.PathLike[str] | None = None,
    directory: str | os.PathLike[str] | None = None,
    config: str | os.PathLike[str] | Mapping[str, Any] | ConfigCache | None = None,
    config_model: str | type | None = None,
    allow_new: bool = False,
    top_k: int = 100,
    retry_failed: int = 1,
    heartbeat_interval: float = 10.0,
    grace_period: float | None = None,
    fail_fast: int = 3,
    fresh: bool = False,
    allow_changed: bool = False,
    max_chunks: int | None = None,
    max_points: int | None = None,
    timeout: float | None = None,
    wait_for_others: bool = False,
    progress: Callable[[dict[str, Any]], None] | None = None,
    import_path: str | None = None,
    objective_timeout: float | None = None,
    after: Callable[[BatchRun], None] | None = None,
) -> BatchRun:
    """Runs (or resumes) a batch sweep over the grid of ``parameters`` (see docs/batch.md).

    Exactly one objective: ``batch`` (called per chunk as ``fn(columns, config)``, returning metric
    columns) or ``callable`` (called per point with the merged config). Both take a callable or a
    ``"module:function"`` string (the form worker processes started by a forkserver need).
    ``max_chunks`` stops this run after that many chunks per worker (a resumable partial run);
    ``max_points`` caps the sweep (across runs) at the chunks that start below that many points.
    ``wait_for_others`` (``fastgrid worker``): when no chunk is left to claim but other workers
    still hold some, wait, and take over those whose worker stops beating, instead of returning.
    ``objective_timeout`` (``[objective] timeout``): seconds one call of a ``batch`` objective may
    take; every chunk then runs in a forked child process, and a piece that runs past it is split
    until the points that hang are isolated (they fail with ``timeout after ...``).
    ``after(run)``: work on the finished run that must not see the sweep deleted under it (the
    returns series of its best points): done while the run is still registered as live.
    ``allow_changed`` (``--allow-changed``): resume a sweep whose default config changed since
    its stored points ran (refused otherwise, as a per-trial sweep refuses it).
    """
    started = time.perf_counter()
    if (batch is None) == (callable is None):
        raise ValueError("set exactly one objective: batch=fn(columns, config) or callable=fn(config)")
    if order not in ("sequential", "shuffled"):
        raise ValueError(f"order: expected 'sequential' or 'shuffled', got {order!r}")
    _whole("workers", workers, 1)
    _whole("chunk", chunk, 1, optional=True)
    _whole("top_k", top_k, 0)
    _whole("retry_failed", retry_failed, 0)
    _whole("fail_fast", fail_fast, 0)
    _whole("max_chunks", max_chunks, 0, optional=True)
    _whole("max_points", max_points, 0, optional=True)
    _whole("seed", seed, 0, optional=True)
    _seconds("heartbeat_interval", heartbeat_interval)
    _seconds("grace_period", grace_period, optional=True)
    _seconds("timeout", timeout, optional=True, zero=True)
    grace = grace_period if grace_period is not None else 2 * heartbeat_interval
    where, require = _listed(where), _listed(require)
    metrics = _listed(metrics) if metrics is not None else None
    if not isinstance(metric, str):
        raise ValueError(f"metric: expected the name of a metric, got {metric!r}")
    if objective_timeout is not None and batch is None:
        raise ValueError(
            "objective.timeout: in a batch sweep it limits each call of a 'batch' objective on a "
            "chunk; a per-point callable's points are not timed one by one there: use mode = 'trial'"
        )
    _seconds("objective.timeout", objective_timeout, optional=True)
    directions = [direction] if isinstance(direction, str) else list(direction)
    for d in directions:
        if d not in ("minimize", "maximize"):
            raise ValueError(f"direction: expected 'minimize' or 'maximize', got {d!r}")
    objective_metrics = _metric_list(metric, metrics)
    if len(directions) != len(objective_metrics):
        raise ValueError(
            f"{len(directions)} direction(s) for {len(objective_metrics)} metric(s): "
            "give one direction per metric"
        )
    base = Path(directory) if directory is not None else Path.cwd()
    path = store_path(storage, base)
    for src in require:
        Expression(src)  # a syntax error names the constraint before anything runs
    grid = Grid(parameters, constraints=tuple(where), flat=True)  # type: ignore[arg-type]
    if grid.size > sys.maxsize:
        # The store counts slots in 64-bit integers (SQLite and PostgreSQL alike).
        raise ValueError(
            f"parameters: the grid has {grid.size:,} points, more than a batch sweep can number "
            f"({sys.maxsize:,}); narrow it, or split it into several sweeps (a fixed value per sweep)"
        )
    total = len(grid)
    # The paths every chunk gets as a scalar (fixed values, single-valued ranges): as the grid says.
    probe = grid.columns(0, min(total, 1), fixed="scalar")
    constants = {p: v for p, v in probe.items() if not isinstance(v, np.ndarray)}
    paths = list(grid.paths)
    for p in paths:
        if p in RESULT_COLUMNS:
            raise ValueError(
                f"parameters.{p}: a batch sweep's results table has a column {p!r} of its own "
                f"({', '.join(RESULT_COLUMNS)}); rename the parameter (a dotted path such as "
                f"'strategy.{p}' is fine)"
            )
    for m in objective_metrics:
        if m in RESULT_COLUMNS or m in paths:
            raise ValueError(
                f"metric {m!r}: it is the name of a {'parameter' if m in paths else 'result column'}, "
                "and metrics share the results table with both; rename the metric"
            )
    varying = [p for p in paths if p not in constants]

    study = _StudyOpener(
        os.fspath(path) if storage is None else storage, base, name, directions, objective_metrics
    )
    store = open_batch_store(path)
    if fresh:
        study.refuse_live_runs(grace)
        _delete_unless_live(store, name, grace)
        study.delete()
    stored = store.sweep(name)
    size = (
        chunk
        if chunk is not None
        else (
            stored["chunk"]
            if stored is not None
            else _first_chunk(total, workers, len(paths) + 4, max_points)
        )
    )
    width = len(paths) + len(objective_metrics) + 4  # parameters, metrics and bookkeeping columns
    if chunk is not None and min(size, total) * 8 * width > CHUNK_LIMIT:
        raise ValueError(
            f"chunk: {min(size, total):,} points of {width} columns take "
            f"{min(size, total) * 8 * width / 2**30:,.1f} GiB per chunk (8 bytes a value); keep it under "
            f"{CHUNK_LIMIT >> 30} GiB: at most {CHUNK_LIMIT // (8 * width):,} points (or leave chunk unset)"
        )
    space = {
        "parameters": trial_key({"trees": parameters}),
        "where": list(where),
        "order": order,
        "seed": seed if order == "shuffled" else None,
        "total": total,
    }
    meta = {
        "paths": paths,
        "varying": varying,
        "constants": constants,
        "objective_metrics": list(objective_metrics),
        "directions": directions,
        "require": list(require),
        "objective": "batch" if batch is not None else "callable",
    }
    config_cache = _config_cache(config, model=config_model, allow_new=allow_new)  # loaded once, here
    meta["config"] = str(config_cache.fingerprint) if config_cache is not None else "-"  # as _Context
    if stored is not None:
        _refuse_changed_objectives(name, stored.get("meta") or {}, meta, allow_changed=allow_changed)
    if not wait_for_others:
        study.get()  # the study's mode is checked before the sweep is registered
    # This run is live from here to its end (between chunks, and while it writes the top points or
    # the returns series after them): --fresh elsewhere is refused until it leaves, or goes stale.
    run_owner = owner_id()
    registered = store.register(name, total=total, chunk=size, space=space, meta=meta, run=run_owner)
    lease = _Beat(store, name, run_owner, interval=heartbeat_interval, grace=grace, run=True)
    try:
        if wait_for_others and registered["new"]:
            # `fastgrid worker`: the one that registered the sweep creates the study and checks its
            # mode; the others join without any Optuna storage work (a dozen queries and SQLAlchemy's
            # set-up on an RDB storage), and only the worker that writes the top-K points opens it, at
            # the end (checking the mode again, see _write_top).
            try:
                study.get()
            except StoreMismatchError:
                store.delete(name)
                raise
        objective = batch if batch is not None else callable
        job = BatchJob(
            name=name,
            parameters=parameters,
            objective=objective,
            vectorized=batch is not None,
            store=path,
            chunk=size,
            where=tuple(where),
            require=tuple(require),
            order=order,
            seed=seed,
            metrics=objective_metrics,
            config=config_cache,
            retry_failed=retry_failed,
            heartbeat_interval=heartbeat_interval,
            grace=grace,
            fail_fast=fail_fast,
            max_chunks=max_chunks,
            max_points=max_points,
            deadline=time.time() + timeout if timeout is not None else None,
            import_path=import_path,
            wait_for_others=wait_for_others,
            objective_timeout=objective_timeout,
            run_owner=run_owner,
        )
        ctx = _Context(job, store)
        outcome, child_errors, interrupted = _run_workers(ctx, job, workers, progress, lease)
        late: list[int] = []  # a stop signal during the bookkeeping below waits for its end
        with stop_signals_deferred(late):
            run = _finish(ctx, study, outcome, child_errors, interrupted, late, top_k, started, lease)
        if after is not None:
            after(run)
        return run
    finally:
        lease.close()
        with contextlib.suppress(Exception):  # a store gone for good: its registration goes stale
            store.leave(name, run_owner)


def _config_cache(
    config: str | os.PathLike[str] | Mapping[str, Any] | ConfigCache | None,
    *,
    model: str | type | None,
    allow_new: bool,
) -> ConfigCache | None:
    """``config`` (a file's path, the config itself as a mapping, or a cache) as a loaded cache."""
    if config is None or isinstance(config, ConfigCache):
        cache = config
    elif isinstance(config, Mapping):
        cache = ConfigCache.from_mapping(config, model=model, allow_new=allow_new)
    else:
        cache = ConfigCache(Path(config), model=model, allow_new=allow_new)
    if cache is not None:
        cache.fingerprint  # noqa: B018 - loaded (and checked) here, once, before any worker starts
    return cache


def _finish(
    ctx: _Context,
    study: Any,
    outcome: _Outcome,
    child_errors: list[str | BaseException],
    interrupted: bool,
    late: list[int],
    top_k: int,
    started: float,
    lease: _Beat,
) -> BatchRun:
    """After the chunks: the counts, the fail-fast and worker errors, the top-K Optuna trials."""
    job, name, objective_metrics = ctx.job, ctx.job.name, ctx.job.metrics
    lease.verify()  # the sweep is still this run's (not deleted under it), and its store reachable
    results = BatchResults(ctx.store, name)
    counts = results.counts()
    if outcome.fail_reason is not None:
        raise BatchFailedError(
            f"batch sweep {name!r}: the first {job.fail_fast} chunks all failed the same way, so the sweep "
            f"stopped (nothing of them was recorded): {outcome.fail_reason}",
            reason=outcome.fail_reason,
        )
    for error in child_errors:
        if isinstance(error, BaseException):
            raise error
    if child_errors:
        raise RuntimeError(f"batch sweep {name!r}: a worker process failed: {child_errors[0]}")
    leaders = results.leaders(max(top_k, 1)) if counts["done"] - counts["failed"] else []
    _write_top(study, leaders[:top_k], ctx, objective_metrics)
    return BatchRun(
        name=name,
        results=results,
        counts=counts,
        best=leaders[0] if leaders else None,
        top=leaders[:top_k],
        interrupted=interrupted or outcome.interrupted or bool(late),
        ran=outcome.points,
        study=study.study,
        seconds=time.perf_counter() - started,
        signal=late[0] if late else None,
    )


def _whole(name: str, value: Any, minimum: int, *, optional: bool = False) -> None:
    """A count keyword: a whole number of at least ``minimum`` (true/false and 1.5 are refused)."""
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name}: expected a whole number, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name}: expected at least {minimum}, got {value}")


def _seconds(name: str, value: Any, *, optional: bool = False, zero: bool = False) -> None:
    """A duration keyword in seconds: a positive number (``zero``: or 0)."""
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name}: expected a number of seconds, got {value!r}")
    if value < 0 or (value == 0 and not zero):
        raise ValueError(
            f"{name}: expected a {'non-negative' if zero else 'positive'} number of seconds, got {value}"
        )


def _first_chunk(total: int, workers: int, columns: int, cap: int | None) -> int:
    """The chunk size of a new sweep without ``chunk``: a capped sweep's by its cap (1,000 points of
    a 10^12-point grid ran a default chunk of 65,536), but at least 1,024 points, because the size
    stays with the sweep and a trial run's tiny chunks would slow the whole grid later."""
    size = default_chunk(total, workers, columns)
    if cap is None or cap >= total:
        return size
    return max(default_chunk(cap, workers, columns), min(size, 1024))


def delete_batch_sweep(
    storage: str | os.PathLike[str] | None, directory: Path, name: str, *, grace: float
) -> None:
    """What a per-trial run with ``fresh=True`` deletes of a batch sweep of the same name (its
    chunks and columns, in one transaction; the caller then deletes the Optuna study). Raises
    :class:`SweepInUseError`, deleting nothing, while a batch run of it is live."""
    store = open_batch_store(store_path(storage, directory))
    try:
        _delete_unless_live(store, name, grace)
    finally:
        store.close()


def _delete_unless_live(store: ChunkStore, name: str, grace: float) -> None:
    """``--fresh`` deletes the sweep: never under a live run of it (a run is registered in the store
    from its start to its end, between chunks too; one that stopped beating for ``grace`` seconds,
    or died on this host, is not live: the rule that lets other workers take a chunk over). Raises
    SweepInUseError naming who runs it, as the per-trial runner refuses."""
    live = store.delete_unless_live(name, grace=grace)
    if live:
        who = "; ".join(
            describe_run(h, age=h["age"]) + (f", chunk {h['chunk']}" if "chunk" in h else "") for h in live
        )
        raise SweepInUseError(
            f"batch sweep {name!r} is being run by another process ({who}); fresh=True (--fresh) "
            "would delete its results under it. Stop that run first, or run without --fresh to join it"
        )


def _refuse_changed_objectives(
    name: str, stored: Mapping[str, Any], now: Mapping[str, Any], *, allow_changed: bool = False
) -> None:
    """The stored rows were ranked and judged feasible by the stored metrics, directions and
    ``require``: a run that changed them would mix two rankings in one table and one Optuna study.
    And they were scored with the stored default config: another one is refused as a per-trial
    sweep refuses it, unless ``allow_changed``. (Stores older than that check have no ``config``.)"""
    if not allow_changed and "config" in stored and stored["config"] != now["config"]:
        raise SweepChangedError(
            f"batch sweep {name!r} was started with a different default config (fingerprint "
            f"{stored['config']}, now {now['config']}): its stored points were scored with the other "
            "one. Pass fresh=True (--fresh) to delete them and start over, or allow_changed=True "
            "(--allow-changed) to continue with them"
        )
    problems = []
    for key, label in (
        ("objective_metrics", "metrics"),
        ("directions", "directions"),
        ("require", "require"),
    ):
        if key in stored and list(stored[key]) != list(now[key]):
            problems.append(f"{label} {list(stored[key])}, this run asks for {list(now[key])}")
    if problems:
        raise StoreMismatchError(
            f"batch sweep {name!r} was started with {'; '.join(problems)}: its stored points were ranked "
            "and judged by those; use another sweep name, or fresh=True (--fresh) to start over"
        )


def _run_workers(
    ctx: _Context,
    job: BatchJob,
    workers: int,
    progress: Callable[[dict[str, Any]], None] | None,
    lease: _Beat,
) -> tuple[_Outcome, list[str | BaseException], bool]:
    """This process is worker 0 (claiming as the run ``lease`` beats for); workers 1..N-1 are
    forked (or forkserver) processes."""
    if workers == 1:
        return _work(ctx, stop=threading.Event(), progress=progress, lease=lease), [], False
    lease.pause()  # no thread of ours while forking (a fork copies the locks a thread holds)
    # fork copies the parent's imports, grid and objective for free, but is unsafe once threads run
    # (a lock held by another thread stays locked in the child forever); then a forkserver that has
    # preloaded fastgrid and the objective's module starts them almost as fast.
    forking = threading.active_count() == 1 and "fork" in mp.get_all_start_methods()
    mpctx: Any = mp.get_context("fork" if forking else "forkserver")
    if not forking:
        lease.start()
    if not forking:
        if not isinstance(job.objective, str):
            try:
                by_value(job.objective)
            except Exception as exc:  # a lock, an open file or connection: it cannot cross processes
                raise ValueError(
                    f"objective {job.objective_name!r}: threads run in this process, so its worker "
                    "processes are started by a forkserver and the objective is sent to them, but it "
                    f"cannot be pickled ({type(exc).__name__}); pass it as 'module:function', open such "
                    "resources inside the function, or use workers = 1"
                ) from None
        preload = [__name__]  # this module (the children's entry): the package re-exports lazily
        if isinstance(job.objective, str):
            preload.append(job.objective.split(":", 1)[0])
        mpctx.set_forkserver_preload(preload)
    stop = mpctx.Event()
    queue = mpctx.Queue()
    procs = [
        mpctx.Process(
            target=_child,
            args=(job, ctx if forking else None, i, stop, queue, os.getpid()),
            name=f"fastgrid-batch-{i}",
            daemon=False,
        )
        for i in range(1, workers)
    ]
    try:
        for p in procs:
            p.start()
    finally:
        lease.start()
    interrupted = False
    errors: list[str | BaseException] = []
    outcome = _Outcome()
    try:
        outcome = _work(ctx, stop=stop, progress=progress, lease=lease)
        if outcome.interrupted:
            # _work stopped this process's share on Ctrl-C (or SIGTERM): stop the others too, or
            # they would run the rest of the grid before the run returns.
            raise KeyboardInterrupt
        for p in procs:
            p.join()
    except KeyboardInterrupt:
        interrupted = True
        stop.set()
        for p in procs:
            if p.is_alive() and p.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, signal.SIGINT)
        for p in procs:
            p.join(30)
            if p.is_alive():
                p.terminate()
    finally:
        stop.set()
        for p in procs:
            p.join()
    while True:
        # Every child flushed its report before it exited (or died without one): nothing to wait for.
        try:
            _, chunks, points, failed, fail_reason, error = queue.get_nowait()
        except Empty:
            break
        outcome.chunks += chunks
        outcome.points += points
        outcome.failed += failed
        if fail_reason is not None and outcome.fail_reason is None:
            outcome.fail_reason = fail_reason
        if error is not None:
            errors.append(error)
    if not interrupted and not outcome.interrupted and outcome.fail_reason is None and not errors:
        # A worker that died (kill -9) left its chunk claimed: its pid is gone, so claim it now.
        rest = _work(ctx, stop=threading.Event(), progress=progress, lease=lease)
        outcome.chunks += rest.chunks
        outcome.points += rest.points
    interrupted = interrupted or any(p.exitcode == 130 for p in procs)
    return outcome, errors, interrupted


class _StudyOpener:
    """The sweep's Optuna study, opened (created, its mode checked) on first use."""

    def __init__(
        self,
        storage: str | os.PathLike[str],
        directory: Path,
        name: str,
        directions: list[str],
        metrics: Sequence[str],
    ) -> None:
        self.storage, self.directory, self.name = storage, directory, name
        self.directions, self.metrics = directions, list(metrics)
        self.study: Any = None
        self._storage: Any = None

    def _open_storage(self) -> Any:
        if self._storage is None:
            import optuna

            from fastgrid.storages import open_storage

            optuna.logging.set_verbosity(optuna.logging.WARNING)
            self._storage = open_storage(self.storage, directory=self.directory)
        return self._storage

    def refuse_live_runs(self, grace: float) -> None:
        """Raises :class:`SweepInUseError` while a per-trial run of a stored study of this name is
        alive (``--fresh`` would delete its trials under it, as the per-trial runner refuses)."""
        import optuna

        try:
            study = optuna.load_study(study_name=self.name, storage=self._open_storage())
        except KeyError:
            return
        live = runs_in_progress(study, grace=grace)
        if live:
            who = "; ".join(describe_run(info) for info in live.values())
            raise SweepInUseError(
                f"sweep {self.name!r} is being run by another process ({who}); fresh=True (--fresh) "
                "would delete its trials under it. Stop that run first, or use another sweep name"
            )

    def delete(self) -> None:
        import optuna

        with contextlib.suppress(KeyError):
            optuna.delete_study(study_name=self.name, storage=self._open_storage())

    def get(self) -> Any:
        if self.study is None:
            import optuna

            study = optuna.create_study(
                study_name=self.name,
                storage=self._open_storage(),
                directions=self.directions,  # type: ignore[arg-type]
                load_if_exists=True,
            )
            check_study_mode(study, "batch")
            if study.user_attrs.get(MODE_ATTR) != "batch":
                study.set_user_attr(MODE_ATTR, "batch")
                study.set_user_attr("fastgrid.metrics", self.metrics)
            self.study = study
        return self.study


def _write_top(
    opener: _StudyOpener, top: list[dict[str, Any]], ctx: _Context, objective_metrics: Sequence[str]
) -> None:
    """The rows ``top`` as completed trials of the study (a slot already written is skipped).

    Workers finishing together must not both write a point: each writes the slots it claimed in
    the store, and a worker that claims none never opens the study."""
    if not top:
        return
    owner = owner_id()
    mine = set(ctx.store.claim_leaders(ctx.job.name, owner, [int(row["slot"]) for row in top]))
    if not mine:
        return
    import optuna
    from optuna.distributions import CategoricalDistribution
    from optuna.trial import TrialState, create_trial

    from fastgrid.samplers import encode_choice, recorded_distributions

    study = opener.get()
    written = {
        t.user_attrs.get("slot")
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.user_attrs.get("batch")
    }
    distributions = recorded_distributions(ctx.grid.axes)
    choices = {p: d.choices for p, d in distributions.items() if isinstance(d, CategoricalDistribution)}
    trials = []
    for row in top:
        if row["slot"] not in mine or row["slot"] in written:
            continue
        params = row["params"]
        try:
            values = [row["metrics"][m] for m in objective_metrics]
        except KeyError:
            continue
        trials.append(
            create_trial(
                state=TrialState.COMPLETE,
                values=values,
                params={p: encode_choice(params[p], choices.get(p)) for p in distributions},
                distributions=distributions,
                user_attrs={
                    "params": params,
                    "metrics": row["metrics"],
                    "feasible": True,
                    "key": trial_key(params),
                    "slot": row["slot"],
                    "batch": True,
                    "duration": row["duration"],
                    "fingerprint": ctx.fingerprint,
                },
            )
        )
    if trials:
        with warnings.catch_warnings():
            # An ExperimentalWarning is not a reason to skip the writes: contextlib.suppress here
            # would have dropped every top-K trial where warnings are errors (pytest's filterwarnings).
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.add_trials(trials)
    # Written: workers that finish within the lease skip these slots without opening the study.
    ctx.store.mark_leaders(ctx.job.name, owner, sorted(mine))
