"""The embedded default store: Optuna's JournalStorage on a SQLite journal, with cheaper hot paths.

Optuna's ``JournalStorage`` is correct but does O(number of trials) work on paths that every trial
takes: ``Study.ask`` looks for WAITING trials by scanning all trials, the INFO log line computes the
best trial by scanning all COMPLETE trials, the snapshot pickles the whole replay state every 100
trials, and ``get_trials()`` deep-copies every trial with ``copy.deepcopy``. This subclass keeps the
journal format and the replay logic (so any Optuna ``JournalStorage`` over the same backend reads the
same file) and replaces only those paths:

- each write and the read-back Optuna does after it share one SQLite transaction, and writes that
  touch only a running trial (params, attributes, intermediate values) are deferred to the next
  storage call, so a trial costs about three short transactions whatever it records;
- per-study, per-state indexes of trial ids, maintained as the log is replayed;
- an incremental best trial (finished trials never change, so each one is compared once);
- a compact snapshot every ``snapshot_every`` log entries or half as many as there are trials,
  whichever is more (a bounded replay on resume at amortised O(1) cost per trial), instead of
  pickling everything every 100 trials, plus one at normal interpreter exit;
- deep copies built field by field (scalars shared, equal distributions copied once per call).
"""

from __future__ import annotations

import atexit
import copy
import os
import threading
import uuid
import weakref
from collections.abc import Container, Iterable
from datetime import UTC, datetime
from sys import intern
from typing import Any

import optuna
from optuna._typing import JSONSerializable
from optuna.distributions import (
    BaseDistribution,
    check_distribution_compatibility,
    distribution_to_json,
    json_to_distribution,
)
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages.journal._storage import (
    NOT_FOUND_MSG,
    UNUPDATABLE_MSG,
    JournalOperation,
    JournalStorage,
    JournalStorageReplayResult,
)
from optuna.study._study_direction import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from fastgrid._snapshot import FORMAT as SNAPSHOT_FORMAT
from fastgrid._snapshot import dump_state, load_state, no_gc
from fastgrid._sqlite_journal import SQLiteJournalBackend

__all__ = ["EmbeddedStorage"]

_logger = optuna.logging.get_logger(__name__)

# Snapshots are tagged with the Optuna version: a pickled replay state from another version may not
# unpickle into the same classes, and then a full replay (always correct) is used instead.
_SNAPSHOT_TAG = f"fastgrid-replay-{SNAPSHOT_FORMAT}/optuna-{optuna.__version__}"
_DEFAULT_SNAPSHOT_EVERY = 2_000

_STATES = tuple(TrialState)
_KEYED_FIELDS = ("params", "user_attr", "system_attr", "user_attrs", "system_attrs", "distributions")


class _IndexedReplayResult(JournalStorageReplayResult):
    """Optuna's replay state plus indexes that make the per-trial queries O(1)."""

    def __init__(self, worker_id_prefix: str) -> None:
        super().__init__(worker_id_prefix)
        self._by_state: dict[int, dict[TrialState, dict[int, None]]] = {}
        self._unranked: dict[int, list[int]] = {}
        self._best: dict[int, int] = {}
        self._dist_cache: dict[str, BaseDistribution] = {}

    def apply_logs(self, logs: Iterable[dict[str, Any]]) -> None:
        # Every trial repeats the same param and attribute names; decoded from JSON, each would be its
        # own string object. Interned, they are shared in memory and pickled once per snapshot.
        for log in logs:
            for field in _KEYED_FIELDS:
                mapping = log.get(field)
                if mapping:
                    log[field] = {intern(k): v for k, v in mapping.items()}
            name = log.get("param_name")
            if name is not None:
                log["param_name"] = intern(name)
            super().apply_logs((log,))

    def _index(self, trial_id: int, old: TrialState | None, new: TrialState) -> None:
        study_id = self._trial_id_to_study_id[trial_id]
        buckets = self._by_state.setdefault(study_id, {})
        if old is not None:
            buckets[old].pop(trial_id, None)
        buckets.setdefault(new, {})[trial_id] = None
        if new == TrialState.COMPLETE:
            self._unranked.setdefault(study_id, []).append(trial_id)

    def _apply_create_trial(self, log: dict[str, Any]) -> None:
        trial_id = len(self._trials)
        super()._apply_create_trial(log)
        trial = self._trials.get(trial_id)
        if trial is None:
            return
        texts = log.get("distributions")
        if texts:
            # Trials created from a template (add_trial, copy_study) carry their distributions;
            # share equal ones, as _apply_set_trial_param does. The trial is new: nobody holds it yet.
            cache, own = self._dist_cache, trial._distributions
            trial._distributions = {name: cache.setdefault(text, own[name]) for name, text in texts.items()}
        self._index(trial_id, None, trial.state)

    # Optuna 5.0's _apply_set_trial_param, except that equal distributions (same JSON) share one
    # object: decoding each log's distribution anew dominated replay time, and the shared objects
    # let snapshots store each distribution once. Trials never mutate their distributions.
    def _apply_set_trial_param(self, log: dict[str, Any]) -> None:
        trial_id = log["trial_id"]
        if not self._trial_exists_and_updatable(trial_id, log):
            return
        param_name = log["param_name"]
        text = log["distribution"]
        distribution = self._dist_cache.get(text)
        if distribution is None:
            distribution = self._dist_cache[text] = json_to_distribution(text)
        study_id = self._trial_id_to_study_id[trial_id]
        for prev_trial_id in self._study_id_to_trial_ids[study_id]:
            prev_trial = self._trials[prev_trial_id]
            if param_name in prev_trial.params:
                try:
                    check_distribution_compatibility(prev_trial.distributions[param_name], distribution)
                except Exception:
                    if self._is_issued_by_this_worker(log):
                        raise
                    return
                break
        trial = copy.copy(self._trials[trial_id])
        trial.params = {
            **trial.params,
            param_name: distribution.to_external_repr(log["param_value_internal"]),
        }
        trial.distributions = {**trial.distributions, param_name: distribution}
        self._trials[trial_id] = trial

    def _apply_set_trial_state_values(self, log: dict[str, Any]) -> None:
        before = self._trials.get(log["trial_id"])
        super()._apply_set_trial_state_values(log)
        after = self._trials.get(log["trial_id"])
        if before is not None and after is not None and after is not before:
            self._index(after._trial_id, before.state, after.state)

    def get_all_trials(self, study_id: int, states: Container[TrialState] | None) -> list[FrozenTrial]:
        if study_id not in self._studies:
            raise KeyError(NOT_FOUND_MSG)
        trials = self._trials
        if states is None:
            return [trials[i] for i in self._study_id_to_trial_ids[study_id]]
        buckets = self._by_state.get(study_id, {})
        chosen = [buckets[s] for s in _STATES if s in states and buckets.get(s)]
        if not chosen:
            return []
        # Buckets hold ids in the order trials reached that state; callers expect trial-number order,
        # and ids grow with numbers inside a study.
        ids = sorted(chosen[0]) if len(chosen) == 1 else sorted(i for b in chosen for i in b)
        return [trials[i] for i in ids]

    def best_trial(self, study_id: int, direction: StudyDirection) -> FrozenTrial:
        trials = self._trials
        best_id = self._best.get(study_id)
        maximize = direction == StudyDirection.MAXIMIZE
        for trial_id in self._unranked.pop(study_id, ()):
            if best_id is None:
                best_id = trial_id
                continue
            value, best = trials[trial_id].value, trials[best_id].value
            assert value is not None and best is not None
            # Ties go to the lower trial number, as Optuna's max()/min() over number order does.
            if (value > best if maximize else value < best) or (value == best and trial_id < best_id):
                best_id = trial_id
        if best_id is None:
            raise ValueError("No trials are completed yet.")
        self._best[study_id] = best_id
        return trials[best_id]


class EmbeddedStorage(JournalStorage):
    """fastgrid's default Optuna storage: a crash-safe SQLite journal with O(1) per-trial paths.

    Args:
        backend: the SQLite journal (one file, shared safely by several processes).
        snapshot_every: write a snapshot of the replayed state after this many new log entries (or
            half the number of trials, if more), so reopening after a crash replays at most that
            many entries after loading the snapshot.
    """

    def __init__(
        self, backend: SQLiteJournalBackend, *, snapshot_every: int = _DEFAULT_SNAPSHOT_EVERY
    ) -> None:
        if snapshot_every < 1:
            raise ValueError(f"snapshot_every must be ≥ 1, got {snapshot_every}")
        self._worker_id_prefix = str(uuid.uuid4()) + "-"
        self._backend = backend
        self._thread_lock = threading.Lock()
        self._snapshot_every = snapshot_every
        self._replay_result = _IndexedReplayResult(self._worker_id_prefix)
        self._just_synced = False
        self._pending: list[str] = []
        self._pid = os.getpid()
        with self._thread_lock:
            self._restore_snapshot()
            self._snapshot_at = self._replay_result.log_number_read
            self._sync_with_backend()
        _at_exit.add(self)

    @property
    def backend(self) -> SQLiteJournalBackend:
        return self._backend  # type: ignore[return-value]

    def __getstate__(self) -> dict[Any, Any]:
        return {"_backend": self._backend, "_snapshot_every": self._snapshot_every}

    def __setstate__(self, state: dict[Any, Any]) -> None:
        self.__init__(state["_backend"], snapshot_every=state["_snapshot_every"])  # type: ignore[misc]

    def _restore_snapshot(self) -> None:
        found = self.backend.load_tagged_snapshot()
        if found is None or found[1] != _SNAPSHOT_TAG:
            return
        result = _IndexedReplayResult(self._worker_id_prefix)
        try:
            result._by_state = load_state(found[2], result)
        except Exception as exc:  # a damaged or foreign snapshot only costs a full replay
            _logger.warning(f"{self.backend.path}: ignoring unreadable snapshot ({exc!r}); replaying the log")
            return
        for study_id, buckets in result._by_state.items():
            result._unranked[study_id] = sorted(buckets.get(TrialState.COMPLETE, ()))
        self._replay_result = result

    def _dump_snapshot(self) -> None:
        result = self._replay_result
        assert isinstance(result, _IndexedReplayResult)
        self.backend.save_tagged_snapshot(
            dump_state(result, result._by_state), log_number=result.log_number_read, tag=_SNAPSHOT_TAG
        )
        self._snapshot_at = result.log_number_read

    # Every JournalStorage operation is `_write_log` then `_sync_with_backend`, under the thread lock.
    # Writing and reading in one transaction makes that following sync redundant, so it is skipped once.
    def _write_log(self, op_code: int, extra_fields: dict[str, Any]) -> None:
        self._forked_check()
        self._just_synced = False
        result = self._replay_result
        body = self.backend.encode({"op_code": op_code, "worker_id": result.worker_id, **extra_fields})
        self._commit([*self._pending, body], strict_last=True)
        self._just_synced = True

    def _sync_with_backend(self) -> None:
        if self._just_synced:
            self._just_synced = False
        else:
            self._forked_check()
            if self._pending:
                self._commit(list(self._pending), strict_last=False)
            else:
                super()._sync_with_backend()
        result = self._replay_result
        # A snapshot costs O(trials); spacing them by half the trial count keeps its amortised cost
        # per log entry bounded as the study grows (and a normal exit snapshots anyway).
        if result.log_number_read - self._snapshot_at >= max(self._snapshot_every, len(result._trials) // 2):
            self._dump_snapshot()

    def _forked_check(self) -> None:
        """After fork(), become a new worker: a child must not commit the parent's deferred writes
        nor pass for the parent's worker (Optuna keys trial ownership on the worker id)."""
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._pending = []
            self._worker_id_prefix = str(uuid.uuid4()) + "-"
            self._replay_result._worker_id_prefix = self._worker_id_prefix
            self._replay_result._worker_id_to_owned_trial_id = {}

    def _commit(self, bodies: list[str], *, strict_last: bool) -> None:
        """Append ``bodies`` in one transaction and replay everything new, in the file's order."""
        result = self._replay_result
        logs = self.backend.append_and_read(bodies, result.log_number_read)
        self._pending.clear()
        deferred = len(bodies) - (1 if strict_last else 0)
        first_deferred = len(logs) - len(bodies)
        if deferred == 0:
            result.apply_logs(logs)
            return
        result.apply_logs(logs[:first_deferred])
        for log in logs[first_deferred : first_deferred + deferred]:
            try:
                result.apply_logs([log])
            except (KeyError, ValueError, UpdateFinishedTrialError) as exc:
                # Validated when deferred; only a race with another process (which finished or
                # deleted this trial meanwhile) lands here, and the write is moot for a finished trial.
                _logger.warning(f"dropped a deferred write to trial {log.get('trial_id')}: {exc}")
        if strict_last:
            result.apply_logs(logs[-1:])

    # Writes that touch only one unfinished trial are deferred and committed with the next storage call
    # of this process (any read or other write), so a trial's params and attributes share one
    # transaction with its state change instead of one each. They are validated now, as Optuna would
    # (unknown or finished trial, incompatible distribution), so errors still surface at the call.
    def _defer(self, op_code: int, trial_id: int, extra_fields: dict[str, Any]) -> None:
        self._forked_check()
        result = self._replay_result
        trial = result._trials.get(trial_id)
        if trial is None:
            self._sync_with_backend()
            trial = result._trials.get(trial_id)
            if trial is None:
                raise KeyError(NOT_FOUND_MSG)
        if trial.state.is_finished():
            raise UpdateFinishedTrialError(UNUPDATABLE_MSG.format(trial_number=trial.number))
        log = {"op_code": op_code, "worker_id": result.worker_id, "trial_id": trial_id, **extra_fields}
        self._pending.append(self.backend.encode(log))

    def flush(self) -> None:
        """Commit deferred writes now (e.g. before a long objective, so other processes see params)."""
        with self._thread_lock:
            if self._pending:
                self._commit(list(self._pending), strict_last=False)

    def set_trial_param(
        self, trial_id: int, param_name: str, param_value_internal: float, distribution: BaseDistribution
    ) -> None:
        with self._thread_lock:
            result = self._replay_result
            study_id = result._trial_id_to_study_id.get(trial_id)
            if study_id is not None:
                for prev_id in result._study_id_to_trial_ids[study_id]:
                    prev = result._trials[prev_id]
                    if param_name in prev.distributions:
                        check_distribution_compatibility(prev.distributions[param_name], distribution)
                        break
            self._defer(
                JournalOperation.SET_TRIAL_PARAM,
                trial_id,
                {
                    "param_name": param_name,
                    "param_value_internal": param_value_internal,
                    "distribution": distribution_to_json(distribution),
                },
            )

    def set_trial_intermediate_value(self, trial_id: int, step: int, intermediate_value: float) -> None:
        with self._thread_lock:
            self._defer(
                JournalOperation.SET_TRIAL_INTERMEDIATE_VALUE,
                trial_id,
                {"step": step, "intermediate_value": intermediate_value},
            )

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        with self._thread_lock:
            self._defer(JournalOperation.SET_TRIAL_USER_ATTR, trial_id, {"user_attr": {key: value}})

    def set_trial_system_attr(self, trial_id: int, key: str, value: JSONSerializable) -> None:
        with self._thread_lock:
            self._defer(JournalOperation.SET_TRIAL_SYSTEM_ATTR, trial_id, {"system_attr": {key: value}})

    def checkpoint(self) -> None:
        """Commit deferred writes and snapshot now, so the next open replays nothing.

        Runs by itself when the interpreter exits normally; after a crash, reopening replays at most
        ``snapshot_every`` log entries (or half the number of trials, if more).
        """
        with self._thread_lock:
            self._forked_check()
            self._sync_with_backend()
            if self._replay_result.log_number_read > self._snapshot_at:
                self._dump_snapshot()

    # Copied from Optuna 5.0's JournalStorage.create_new_trial minus its every-100-trials snapshot,
    # which pickles the whole state (O(trials)) and would make per-trial cost grow with the study.
    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
        if template_trial is not None:
            return self._create_from_template(study_id, template_trial)
        log: dict[str, Any] = {
            "study_id": study_id,
            "datetime_start": datetime.now(tz=UTC).isoformat(timespec="microseconds"),
        }
        with self._thread_lock:
            self._write_log(JournalOperation.CREATE_TRIAL, log)
            self._sync_with_backend()
            return self._replay_result._last_created_trial_id_by_this_process

    def _create_from_template(self, study_id: int, template_trial: FrozenTrial) -> int:
        log: dict[str, Any] = {"study_id": study_id, "state": template_trial.state}
        if template_trial.values is not None and len(template_trial.values) > 1:
            log["value"] = None
            log["values"] = template_trial.values
        else:
            log["value"] = template_trial.value
            log["values"] = None
        if template_trial.datetime_start:
            start = template_trial.datetime_start.astimezone(UTC)
            log["datetime_start"] = start.isoformat(timespec="microseconds")
        else:
            log["datetime_start"] = None
        if template_trial.datetime_complete:
            complete = template_trial.datetime_complete.astimezone(UTC)
            log["datetime_complete"] = complete.isoformat(timespec="microseconds")
        log["distributions"] = {k: distribution_to_json(d) for k, d in template_trial.distributions.items()}
        log["params"] = {
            k: template_trial.distributions[k].to_internal_repr(v) for k, v in template_trial.params.items()
        }
        log["user_attrs"] = template_trial.user_attrs
        log["system_attrs"] = template_trial.system_attrs
        log["intermediate_values"] = template_trial.intermediate_values
        with self._thread_lock:
            self._write_log(JournalOperation.CREATE_TRIAL, log)
            self._sync_with_backend()
            return self._replay_result._last_created_trial_id_by_this_process

    def get_all_trials(
        self,
        study_id: int,
        deepcopy: bool = True,
        states: Container[TrialState] | None = None,
    ) -> list[FrozenTrial]:
        with self._thread_lock:
            self._sync_with_backend()
            trials = self._replay_result.get_all_trials(study_id, states)
            if not deepcopy:
                return trials
            # Copied under the lock, as Optuna does: a running trial's dicts can still change.
            with no_gc():
                return _deep_copy(trials)

    def get_best_trial(self, study_id: int) -> FrozenTrial:
        with self._thread_lock:
            self._sync_with_backend()
            result = self._replay_result
            assert isinstance(result, _IndexedReplayResult)
            directions = result.get_study(study_id).directions
            if len(directions) > 1:
                raise RuntimeError("Best trial can be obtained only for single-objective optimization.")
            return result.best_trial(study_id, directions[0])

    def close(self) -> None:
        """Checkpoint and release the file (the storage reopens it if used again)."""
        self.checkpoint()
        self.backend.close()


_SCALARS = frozenset({str, int, float, bool, type(None)})
_new = object.__new__


def _copy_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    # Attribute values are nearly always scalars: then a shallow copy is a deep one.
    for value in attrs.values():
        if type(value) not in _SCALARS:
            return copy.deepcopy(attrs)
    return attrs.copy()


def _copy_plain(obj: Any) -> Any:
    # Distributions hold only scalars and tuples of scalars, so copying their __dict__ copies them
    # fully; this is what copy.copy does, minus its generic dispatch (4x slower per object).
    new = _new(type(obj))
    new.__dict__.update(obj.__dict__)
    return new


def _copy_trial(trial: FrozenTrial, memo: dict[int, BaseDistribution]) -> FrozenTrial:
    """A copy of ``trial`` sharing nothing mutable with it, built field by field.

    Equivalent to ``copy.deepcopy`` for what a replayed trial holds (scalars, JSON containers, datetimes,
    distributions) at a fraction of its cost: only non-scalar attribute values go through deepcopy.
    Like ``copy.deepcopy`` of a whole list, a distribution shared by several trials (the replay
    shares equal ones) is copied once per call, through ``memo``.
    """
    new = _new(FrozenTrial)
    fields = new.__dict__
    fields.update(trial.__dict__)
    fields["_params"] = trial._params.copy()
    dists = {}
    for name, dist in trial._distributions.items():
        copied = memo.get(id(dist))
        if copied is None:
            copied = memo[id(dist)] = _copy_plain(dist)
        dists[name] = copied
    fields["_distributions"] = dists
    fields["_user_attrs"] = _copy_attrs(trial._user_attrs)
    fields["_system_attrs"] = _copy_attrs(trial._system_attrs)
    fields["intermediate_values"] = trial.intermediate_values.copy()
    if trial._values is not None:
        fields["_values"] = trial._values.copy()
    return new


def _deep_copy(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    memo: dict[int, BaseDistribution] = {}
    return [_copy_trial(t, memo) for t in trials]


class _ExitCheckpoints:
    """Checkpoints every live EmbeddedStorage of this process at normal interpreter exit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: weakref.WeakSet[EmbeddedStorage] = weakref.WeakSet()
        atexit.register(self.run)

    def add(self, storage: EmbeddedStorage) -> None:
        with self._lock:
            self._live.add(storage)

    def run(self) -> None:
        with self._lock:
            live = list(self._live)
        for storage in live:
            try:
                storage.checkpoint()
            except Exception as exc:  # the file may be gone (a temporary directory); the log is intact
                _logger.debug(f"exit checkpoint of {storage.backend.path} skipped: {exc!r}")


_at_exit = _ExitCheckpoints()
