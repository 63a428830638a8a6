"""Compact snapshots of the embedded store's replay state, so reopening a big study is fast.

A snapshot is the replay state as of one log number; opening the store decodes it and replays only
the log written after it. Format 2 (this one) is one ``marshal`` of plain tuples:

- each trial is a tuple of plain values (state as its number, datetimes in ``datetime``'s own reduced
  form), decoded by marshal's C loop, ~3x faster than pickle, which also rebuilds every object
  through a call and memoizes every container;
- each distinct distribution is stored once as Optuna's JSON and each distinct set of a trial's
  distributions once, so finished trials share one distributions dict again after loading;
- the FrozenTrials are rebuilt by plain attribute assignment (``fastgrid._frozen``), without running
  FrozenTrial's validating constructor: the values passed it when first logged.

marshal only encodes plain data and its format may change between Python versions, so the snapshot tag
names the Python version too; any snapshot that is not readable here is ignored and the store replays
its whole log (always correct, just slower). Format 1 (a pickle, written by earlier fastgrid) still loads.
"""

from __future__ import annotations

import gc
import marshal
import pickle
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

import optuna
from optuna.distributions import BaseDistribution, distribution_to_json, json_to_distribution
from optuna.study._frozen import FrozenStudy
from optuna.study._study_direction import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from fastgrid.storages.embedded._frozen import make_trial

if TYPE_CHECKING:
    from optuna.storages.journal._storage import JournalStorageReplayResult

__all__ = ["TAG", "dump_state", "load_state", "no_gc", "readable"]

FORMAT = 2
# Snapshots are tagged with the Optuna version too: the replay state of another version may differ.
TAG = f"fastgrid-replay-{FORMAT}/optuna-{optuna.__version__}/py{sys.version_info[0]}.{sys.version_info[1]}"
_TAG_V1 = f"fastgrid-replay-1/optuna-{optuna.__version__}"
_MARSHAL_VERSION = 4  # the oldest that keeps shared objects shared (fastgrid needs Python ≥ 3.11)

_STATE_BY_VALUE = {s.value: s for s in TrialState}
_DIRECTION_BY_VALUE = {d.value: d for d in StudyDirection}

ByState = dict[int, dict[TrialState, dict[int, None]]]


@contextmanager
def no_gc() -> Iterator[None]:
    """Pause the cyclic GC while building many objects that form no cycles.

    Each generation-2 pass walks every live object, so creating 10k+ trials with GC on costs several
    times the work itself; the objects built here are acyclic, so nothing is missed.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def readable(tag: str) -> bool:
    """Whether ``load_state`` reads snapshots carrying ``tag``."""
    return tag in (TAG, _TAG_V1)


def _encode_datetime(d: datetime | None) -> bytes | str | None:
    if d is None:
        return None
    # datetime's own pickled state (10 bytes) rebuilds faster than fromisoformat; the replay only
    # makes naive datetimes, and ISO text keeps any other exactly.
    return d.__reduce__()[1][0] if d.tzinfo is None else d.isoformat()


def dump_state(result: JournalStorageReplayResult, by_state: ByState) -> bytes:
    """Serialize the replay state (studies, trials, per-state indexes) of ``result``.

    Raises:
        ValueError: a value marshal cannot encode (the caller then skips this snapshot).
    """
    dist_index: dict[int, int] = {}
    dists: list[str] = []
    set_index: dict[tuple[tuple[str, int], ...], int] = {}
    dist_sets: list[tuple[tuple[str, int], ...]] = []
    by_dict: dict[int, int] = {}  # finished trials share their distributions dict: look it up once

    def dist_set(mapping: dict[str, BaseDistribution]) -> int:
        known = by_dict.get(id(mapping))
        if known is not None:
            return known
        pairs = []
        for name, d in mapping.items():
            found = dist_index.get(id(d))
            if found is None:
                found = dist_index[id(d)] = len(dists)
                dists.append(distribution_to_json(d))
            pairs.append((name, found))
        key = tuple(pairs)
        index = set_index.get(key)
        if index is None:
            index = set_index[key] = len(dist_sets)
            dist_sets.append(key)
        by_dict[id(mapping)] = index  # every trial's dict stays alive (and its id unique) meanwhile
        return index

    encode = _encode_datetime
    empty: dict[Any, Any] = {}  # written once, referenced by every finished trial with nothing there
    study_of = result._trial_id_to_study_id
    trials = []
    for trial_id in range(len(result._trials)):
        t = result._trials[trial_id]
        finished = t.state.is_finished()
        trials.append(
            (
                study_of[trial_id],
                t._number,
                t.state.value,
                t._values,
                encode(t._datetime_start),
                encode(t.datetime_complete),
                t._params,
                dist_set(t._distributions),
                t._user_attrs,
                (t._system_attrs or empty) if finished else dict(t._system_attrs),
                (t.intermediate_values or empty) if finished else dict(t.intermediate_values),
            )
        )
    studies = [
        (s._study_id, s.study_name, [d.value for d in s.directions], s.user_attrs, s.system_attrs)
        for s in result._studies.values()
    ]
    state = (
        FORMAT,
        result.log_number_read,
        result._next_study_id,
        studies,
        result._study_id_to_trial_ids,
        dists,
        dist_sets,
        trials,
        {study: {s.value: list(ids) for s, ids in buckets.items()} for study, buckets in by_state.items()},
    )
    return marshal.dumps(state, _MARSHAL_VERSION)


def load_state(
    data: bytes, tag: str, result: JournalStorageReplayResult
) -> tuple[ByState, dict[str, BaseDistribution]]:
    """Fill the empty replay state ``result`` from ``data``.

    Returns the per-state indexes and the distributions by their JSON text (to share with trials
    replayed later). Raises ValueError (or another error, for damaged data) if ``data`` is not a
    readable snapshot; the caller then replays the whole log.
    """
    if tag == _TAG_V1:
        return _load_v1(data, result), {}
    if tag != TAG:
        raise ValueError(f"not a fastgrid snapshot of a readable format: {tag!r}")
    with no_gc():
        state = marshal.loads(data)
        if type(state) is not tuple or len(state) != 9 or state[0] != FORMAT:
            raise ValueError("not a fastgrid snapshot of this format")
        _, log_number, next_study_id, studies, study_trials, texts, set_rows, rows, by_state = state
        # Equal distributions may have been distinct objects when dumped: decode each text once.
        by_text: dict[str, BaseDistribution] = {}
        decoded = [
            by_text.get(text) or by_text.setdefault(text, json_to_distribution(text)) for text in texts
        ]
        # One dict per distinct set, shared by the finished trials holding it; a running or waiting
        # trial gets its own, since Optuna's Trial writes its new params into it in place.
        sets = [{name: decoded[i] for name, i in pairs} for pairs in set_rows]
        trials: dict[int, FrozenTrial] = {}
        study_of: dict[int, int] = {}
        states = _STATE_BY_VALUE
        rebuild: Any = datetime  # datetime(state) is how pickle rebuilds one from its reduced form
        fromiso = datetime.fromisoformat
        running, waiting = TrialState.RUNNING, TrialState.WAITING
        # Inlined make_trial (keep its attribute order): a call per trial costs ~10% of the load.
        new = object.__new__
        for trial_id, row in enumerate(rows):
            study_id, number, st, values, start, complete, params, set_id, user, system, inter = row
            trial_state = states[st]
            dists = sets[set_id]
            if trial_state is running or trial_state is waiting:
                dists = dict(dists)
            if type(start) is bytes:
                start = rebuild(start)
            elif start is not None:
                start = fromiso(start)
            if type(complete) is bytes:
                complete = rebuild(complete)
            elif complete is not None:
                complete = fromiso(complete)
            t = new(FrozenTrial)
            t._number = number
            t.state = trial_state
            t._values = values
            t._datetime_start = start
            t.datetime_complete = complete
            t._params = params
            t._user_attrs = user
            t._system_attrs = system
            t.intermediate_values = inter
            t._distributions = dists
            t._trial_id = trial_id
            trials[trial_id] = t
            study_of[trial_id] = study_id
        result._studies = _studies(studies)
        result.log_number_read = log_number
        result._next_study_id = next_study_id
        result._trials = trials
        result._trial_id_to_study_id = study_of
        result._study_id_to_trial_ids = study_trials
        indexes = {
            study: {states[v]: dict.fromkeys(ids) for v, ids in buckets.items()}
            for study, buckets in by_state.items()
        }
        # Freed before the GC is back on, so its first pass walks only what is kept.
        del state, rows
    return indexes, by_text


def _studies(rows: list[tuple[Any, ...]]) -> dict[int, FrozenStudy]:
    return {
        study_id: FrozenStudy(
            study_name=name,
            direction=None,
            user_attrs=user_attrs,
            system_attrs=system_attrs,
            study_id=study_id,
            directions=[_DIRECTION_BY_VALUE[d] for d in directions],
        )
        for study_id, name, directions, user_attrs, system_attrs in rows
    }


def _load_v1(data: bytes, result: JournalStorageReplayResult) -> ByState:
    """Format 1: a pickle of a dict of plain rows (fastgrid before the marshal format)."""
    with no_gc():
        state: dict[str, Any] = pickle.loads(data)
        if not isinstance(state, dict) or state.get("format") != 1:
            raise ValueError("not a fastgrid snapshot of format 1")
        dists: list[BaseDistribution] = state["dists"]
        trials: dict[int, FrozenTrial] = {}
        study_of: dict[int, int] = {}
        states = _STATE_BY_VALUE
        for trial_id, row in enumerate(state["trials"]):
            study_id, number, st, values, start, complete, params, dist_ids, user, system, inter = row
            distributions = {name: dists[i] for name, i in dist_ids.items()}
            trials[trial_id] = make_trial(
                number,
                states[st],
                values,
                start,
                complete,
                params,
                user,
                system,
                inter,
                distributions,
                trial_id,
            )
            study_of[trial_id] = study_id
        result._studies = _studies(state["studies"])
        result.log_number_read = state["log_number_read"]
        result._next_study_id = state["next_study_id"]
        result._trials = trials
        result._trial_id_to_study_id = study_of
        result._study_id_to_trial_ids = state["study_trials"]
        return {
            study: {states[v]: dict.fromkeys(ids) for v, ids in buckets.items()}
            for study, buckets in state["by_state"].items()
        }
