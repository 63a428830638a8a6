"""Heartbeats of running trials, so that a dead worker's trial is failed and retried by the others.

With an RDB storage (PostgreSQL, MySQL, SQLite) this is Optuna's own heartbeat: the storage is
opened with ``heartbeat_interval`` / ``grace_period`` and a stale-trial callback that records why,
and the database's clock decides what is stale. Storages without one (the embedded store, journal
files) get the equivalent here: the beat stores the time in the trial's system attr
``fastgrid:heartbeat`` every interval (the first one after one interval, so quick trials write
nothing), and a RUNNING trial whose last beat (or start) is older than the grace period is failed.
Either way the failed trial's grid slot is retried by the grid sampler like any failed slot.
"""

from __future__ import annotations

import contextlib
import random
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import BaseStorage
from optuna.storages._heartbeat import is_heartbeat_enabled
from optuna.trial import FrozenTrial, TrialState

from fastgrid import attrs
from fastgrid.storages._urls import is_rdb_url, open_storage
from fastgrid.storages.postgres import is_journal_url

__all__ = ["HEARTBEAT_ATTR", "STALE_REASON", "Heartbeat", "open_heartbeat_storage"]

HEARTBEAT_ATTR = attrs.HEARTBEAT
STALE_REASON = "stale: its worker stopped sending heartbeats (killed or lost)"
_OPEN_ATTEMPTS = 5


def open_heartbeat_storage(url: str | None, *, directory: Path, interval: int, grace: int) -> BaseStorage:
    """Open ``url`` like ``open_storage``, with Optuna's heartbeat when the storage has one."""
    if url is not None and is_journal_url(url):
        # fastgrid's PostgreSQL journal has Optuna's heartbeat interface (timed by the server's clock).
        journal = open_storage(url, directory=directory, heartbeat_interval=interval, grace_period=grace)
        setattr(journal, "heartbeat_stale_trial_callback", _on_stale)  # noqa: B010 - not on BaseStorage
        return journal
    if not is_rdb_url(url):
        return open_storage(url, directory=directory)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        for attempt in range(_OPEN_ATTEMPTS):
            try:
                storage = open_storage(
                    url, directory=directory, heartbeat_interval=interval, grace_period=grace
                )
                break
            except Exception:
                # Workers starting together on a new database race to create Optuna's tables
                # (PostgreSQL then reports a duplicate key); the loser finds them on a retry.
                if attempt == _OPEN_ATTEMPTS - 1:
                    raise
                time.sleep(0.2 + random.random() * 0.5 * (attempt + 1))
    backend = getattr(storage, "_backend", storage)
    if isinstance(backend, optuna.storages.RDBStorage):
        # Set after construction (open_storage takes no callback): Optuna's own optimize loop
        # then reports stale trials the way fastgrid's workers do.
        backend.heartbeat_stale_trial_callback = _on_stale
        backend.failed_trial_callback = _on_stale
    return storage


def _on_stale(study: optuna.Study, trial: FrozenTrial) -> None:
    """The stale-trial callback: say which trial was given up (its slot is retried)."""
    print(
        f"fastgrid: trial {trial.number} failed: {STALE_REASON}; its point will be retried",
        file=sys.stderr,
        flush=True,
    )


class Heartbeat:
    """One worker's heartbeat: :meth:`beating` around a running trial, :meth:`fail_stale` to reap.

    One beat thread per heartbeat, started on first use and stopped by :meth:`close`, serves
    every trial the worker runs: starting a thread per trial cost a quarter of a millisecond of
    each trial's bookkeeping. With Optuna's heartbeat the first beat is recorded before the trial
    runs (Optuna only judges trials that have one); otherwise it comes after one interval, so
    quick trials write nothing, and a trial without a beat is judged by its start time.
    """

    def __init__(self, storage: BaseStorage, *, interval: float, grace: float) -> None:
        self.storage = storage
        self.interval = float(interval)
        self.grace = float(grace)
        self.native = is_heartbeat_enabled(storage)
        if self.native:
            # fastgrid runs its own ask/tell loop with the heartbeat around each trial, which is
            # what Optuna's warning (asked without Study.optimize) is about.
            warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")
        self._lock = threading.Lock()
        self._beats: dict[int, float] = {}  # trial id -> monotonic time of its last beat
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @contextlib.contextmanager
    def beating(self, trial_id: int) -> Iterator[None]:
        """Keep ``trial_id`` alive while the block runs."""
        if self.native:
            self._record(trial_id)
        with self._lock:
            self._beats[trial_id] = time.monotonic()
            if self._thread is None or not self._thread.is_alive():
                # Each beat thread has its own stop event: a close() racing this start stops
                # the old thread and cannot be undone by clearing a shared one.
                self._stop = threading.Event()
                self._thread = threading.Thread(
                    target=self._beat, args=(self._stop,), name="fastgrid-heartbeat", daemon=True
                )
                self._thread.start()
        try:
            yield
        finally:
            with self._lock:
                self._beats.pop(trial_id, None)

    def close(self) -> None:
        """Stop the beat thread (a later :meth:`beating` starts a new one)."""
        with self._lock:
            thread, self._thread = self._thread, None
            self._stop.set()
        if thread is not None:
            thread.join()

    def _beat(self, stop: threading.Event) -> None:
        tick = min(self.interval, 1.0)
        while not stop.wait(tick):
            now = time.monotonic()
            with self._lock:
                due = [tid for tid, last in self._beats.items() if now - last >= self.interval]
                for tid in due:
                    self._beats[tid] = now
            for tid in due:
                self._record(tid)

    def _record(self, trial_id: int) -> None:
        try:
            if self.native:
                self.storage.record_heartbeat(trial_id)  # type: ignore[attr-defined]
            else:
                self.storage.set_trial_system_attr(trial_id, HEARTBEAT_ATTR, time.time())
                # The embedded store defers a trial's writes to this process's next storage call,
                # and a long objective makes none: a beat that other processes never see would let
                # them fail a live trial as stale.
                flush = getattr(self.storage, "flush", None)
                if flush is not None:
                    flush()
        except UpdateFinishedTrialError:
            with self._lock:
                self._beats.pop(trial_id, None)
        except Exception:  # a storage hiccup must not kill the trial; the next beat retries
            return

    def fail_stale(self, study: optuna.Study) -> list[int]:
        """Fail the RUNNING trials whose worker stopped beating; returns their numbers.

        The reason is recorded before the state changes (a finished trial takes no more attrs),
        then the storage's stale-trial callback runs, as in Optuna's ``fail_stale_trials``.
        """
        if self.native:
            stale_ids = set(self.storage._get_stale_trial_ids(study._study_id))  # type: ignore[attr-defined]
            stale = [t for t in self._running(study) if t._trial_id in stale_ids]
        else:
            now = time.time()
            stale = []
            for t in self._running(study):
                last = t.system_attrs.get(HEARTBEAT_ATTR)
                if last is None:
                    last = t.datetime_start.timestamp() if t.datetime_start is not None else now
                if now - float(last) > self.grace:
                    stale.append(t)
        failed = []
        for t in stale:
            try:
                self.storage.set_trial_user_attr(t._trial_id, "reason", STALE_REASON)
                if not self.storage.set_trial_state_values(t._trial_id, TrialState.FAIL):
                    continue
            except (UpdateFinishedTrialError, RuntimeError, ValueError):
                continue  # its worker (or another worker reaping it) finished it first
            failed.append(t.number)
            _on_stale(study, t)
        return failed

    def running(self, study: optuna.Study) -> int:
        """How many trials of the study are RUNNING (in any worker)."""
        return len(self._running(study))

    def _running(self, study: optuna.Study) -> list[FrozenTrial]:
        running = (TrialState.RUNNING,)
        return list(self.storage.get_all_trials(study._study_id, deepcopy=False, states=running))
