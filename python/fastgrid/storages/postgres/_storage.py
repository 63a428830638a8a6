"""fastgrid's distributed store: the embedded store's journal storage over a PostgreSQL log.

``PostgresJournalStorage`` is ``EmbeddedStorage`` (Optuna's JournalStorage with fastgrid's O(1)
per-trial paths, deferred writes and compact snapshots) on ``PostgresJournalBackend`` instead of a
SQLite file, plus Optuna's heartbeat interface, so workers on any number of hosts share one study:

- a trial costs a few round trips (create it, record its point, finish it, and Optuna's reads
  between them); each write is one function call that appends and returns what others wrote since;
- a late worker loads the latest snapshot and replays only the log after it;
- heartbeats live in their own table, timed by the server's clock; stale RUNNING trials are found by
  ``_get_stale_trial_ids`` as with Optuna's RDBStorage, so fastgrid's workers (and Optuna's own
  ``fail_stale_trials``) fail them and their grid points are run again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.storages.journal._storage import NOT_FOUND_MSG, UNUPDATABLE_MSG
from optuna.trial import FrozenTrial, TrialState

from fastgrid.storages.embedded import SMALL_TAIL, SNAPSHOT_TAG, EmbeddedStorage
from fastgrid.storages.postgres._journal import PostgresJournalBackend, parse_url

__all__ = ["PostgresJournalStorage", "open_postgres_storage"]

StaleCallback = Callable[[optuna.Study, FrozenTrial], None]
_STARTED_KEPT = 4096  # a worker runs far fewer trials at once than this
_RECHECK_AFTER = 0.01  # seconds a read stays current for a write, as in the embedded store


def open_postgres_storage(
    url: str,
    *,
    display: str,
    heartbeat_interval: int | None = None,
    grace_period: int | None = None,
    readonly: bool = False,
) -> PostgresJournalStorage:
    """Open the ``fastgrid+postgresql://`` URL ``url``; ``display`` is it with the password masked.

    ``readonly`` (reports): no table is created, nothing is written, snapshots included.

    Raises:
        ValueError: a malformed URL, no driver, a wrong password, a missing database, or tables of
            another schema version (one line, password masked; nothing written).
        ConnectionError: the server cannot be reached.
    """
    backend = PostgresJournalBackend(parse_url(url, display=display), readonly=readonly)
    return PostgresJournalStorage(backend, heartbeat_interval=heartbeat_interval, grace_period=grace_period)


class PostgresJournalStorage(EmbeddedStorage, BaseHeartbeat):
    """The embedded store's journal storage with its log, snapshots and heartbeats in PostgreSQL.

    Args:
        backend: the PostgreSQL journal.
        heartbeat_interval: seconds between heartbeats of a running trial; None disables Optuna's
            heartbeat (as with ``RDBStorage``).
        grace_period: seconds without a heartbeat after which a RUNNING trial is stale (default:
            twice the interval, as with ``RDBStorage``).
        snapshot_every: see ``EmbeddedStorage`` (None: its default).
    """

    def __init__(
        self,
        backend: PostgresJournalBackend,
        *,
        heartbeat_interval: int | None = None,
        grace_period: int | None = None,
        snapshot_every: int | None = None,
    ) -> None:
        for name, value in (("heartbeat_interval", heartbeat_interval), ("grace_period", grace_period)):
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be a positive number of seconds, got {value}")
        self.heartbeat_interval = heartbeat_interval
        self.grace_period = grace_period
        # What Optuna's own optimize loop calls for each trial it fails as stale (as on RDBStorage).
        self.heartbeat_stale_trial_callback: StaleCallback | None = None
        self._started: dict[int, None] = {}  # trials whose first beat was skipped, oldest first
        self._fresh_trial: tuple[int, int] | None = None  # (thread, trial) just created, see get_trial
        if snapshot_every is None:
            super().__init__(backend)
        else:
            super().__init__(backend, snapshot_every=snapshot_every)

    @property
    def backend(self) -> PostgresJournalBackend:
        return self._backend  # type: ignore[return-value]

    def __getstate__(self) -> dict[Any, Any]:
        return {
            "_backend": self._backend,
            "_snapshot_every": self._snapshot_every,
            "heartbeat_interval": self.heartbeat_interval,
            "grace_period": self.grace_period,
        }

    def __setstate__(self, state: dict[Any, Any]) -> None:
        self.__init__(  # type: ignore[misc]
            state["_backend"],
            snapshot_every=state["_snapshot_every"],
            heartbeat_interval=state["heartbeat_interval"],
            grace_period=state["grace_period"],
        )

    def checkpoint(self, *, min_new: int = 1) -> None:
        """As ``EmbeddedStorage.checkpoint``; with ``min_new > 1`` (the optional checkpoints at
        exit, on drop and at the end of a run) it does not wait for a server that is down."""
        if min_new <= 1:
            super().checkpoint(min_new=min_new)
            return
        with self.backend.without_waiting():
            super().checkpoint(min_new=min_new)

    # Study.ask creates a trial and at once reads it back (Trial.__init__ -> get_trial): the create
    # has just replayed everything up to its own entry, so that read is skipped when no other storage
    # call came in between and nothing is pending, as if it had run in the same round trip.
    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
        trial_id = super().create_new_trial(study_id, template_trial)
        with self._thread_lock:
            self._fresh_trial = (threading.get_ident(), trial_id)
        return trial_id

    def get_trial(self, trial_id: int) -> FrozenTrial:
        with self._thread_lock:
            fresh, self._fresh_trial = self._fresh_trial, None
            if fresh == (threading.get_ident(), trial_id) and not self._pending:
                return self._replay_result.get_trial(trial_id)
        return super().get_trial(trial_id)

    def _sync_with_backend(self) -> None:
        self._fresh_trial = None  # called (under the thread lock) by every other storage call
        super()._sync_with_backend()
        self._seen_at = time.monotonic()

    def _write_log(self, op_code: int, extra_fields: dict[str, Any]) -> None:
        super()._write_log(op_code, extra_fields)
        self._seen_at = time.monotonic()  # the append read everything before it

    # Before a deferred write, EmbeddedStorage asks SQLite's PRAGMA data_version (no table read)
    # whether another process wrote since this one last read, and re-reads if so, so that a write
    # to a trial another worker finished raises at the call. Here that question is a round trip of
    # its own, and with other workers running the answer is nearly always yes, then a second round
    # trip reads: reading at once answers both. As there, a read less than _RECHECK_AFTER ago
    # counts (a trial's writes come in bursts right after the create or the objective).
    def _current_trial(self, trial_id: int) -> FrozenTrial:
        self._forked_check()
        result = self._replay_result
        trial = result._trials.get(trial_id)
        if trial is None or time.monotonic() - self._seen_at >= _RECHECK_AFTER:
            self._sync_with_backend()
            trial = result._trials.get(trial_id)
            if trial is None:
                raise KeyError(NOT_FOUND_MSG)
        if trial.state.is_finished():
            raise UpdateFinishedTrialError(UNUPDATABLE_MSG.format(trial_number=trial.number))
        return trial

    def _dump_snapshot(self) -> None:
        # Every worker counts the log it has read and would snapshot at about the same point: the
        # first one writes it, and the others take its position instead of writing their own.
        position = self.backend.snapshot_position()
        read = self._replay_result.log_number_read
        if position is not None and position[1] == SNAPSHOT_TAG and position[0] >= read - SMALL_TAIL:
            self._snapshot_at = position[0]
            self._snapshot_outdated = False
            return
        super()._dump_snapshot()

    # -- Optuna's heartbeat interface ---------------------------------------------------------------
    def record_heartbeat(self, trial_id: int) -> None:
        # A trial's first beat, sent as it starts, is not written: a RUNNING trial with no beat is
        # timed from the first time a worker looks for stale trials (PostgresJournalBackend.stale),
        # which is never earlier than the trial's start, and its owner beats again within one
        # interval (< grace). It saves a round trip on every trial shorter than the interval.
        if trial_id not in self._started:
            self._started[trial_id] = None
            if len(self._started) > _STARTED_KEPT:
                del self._started[next(iter(self._started))]
            return
        self.backend.beat(trial_id)

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        if self.heartbeat_interval is None:
            return []
        grace = self.grace_period if self.grace_period is not None else 2 * self.heartbeat_interval
        running = self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,))
        return self.backend.stale([t._trial_id for t in running], float(grace))

    def get_heartbeat_interval(self) -> int | None:
        return self.heartbeat_interval

    def get_heartbeat_stale_trial_callback(self) -> StaleCallback | None:
        return self.heartbeat_stale_trial_callback

    # The abstract name before Optuna 4.9 (which deprecates it in favour of the one above).
    def get_failed_trial_callback(self) -> StaleCallback | None:
        return self.heartbeat_stale_trial_callback
