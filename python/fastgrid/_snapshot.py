"""Compact snapshots of the embedded store's replay state, so reopening a big study is fast.

Optuna's own journal snapshot pickles the replay state object by object: 10,000 FrozenTrials, each
with its own distribution objects and enum members, took ~160 ms to unpickle here. This format stores
each trial as one tuple of plain values and each distinct distribution once, and rebuilds the
FrozenTrials without running their validating constructor; loading 10,000 trials takes a few tens of ms.
"""

from __future__ import annotations

import gc
import pickle
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from optuna.distributions import BaseDistribution
from optuna.study._frozen import FrozenStudy
from optuna.study._study_direction import StudyDirection
from optuna.trial import FrozenTrial, TrialState

if TYPE_CHECKING:
    from optuna.storages.journal._storage import JournalStorageReplayResult

__all__ = ["FORMAT", "dump_state", "load_state", "no_gc"]

FORMAT = 1

_STATE_BY_VALUE = {s.value: s for s in TrialState}
_DIRECTION_BY_VALUE = {d.value: d for d in StudyDirection}
_new = object.__new__


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


def dump_state(
    result: JournalStorageReplayResult, by_state: dict[int, dict[TrialState, dict[int, None]]]
) -> bytes:
    """Serialize the replay state (studies, trials, per-state indexes) of ``result``."""
    dist_index: dict[int, int] = {}
    dists: list[BaseDistribution] = []

    def dist_id(d: BaseDistribution) -> int:
        key = id(d)
        found = dist_index.get(key)
        if found is None:
            found = dist_index[key] = len(dists)
            dists.append(d)
        return found

    study_of = result._trial_id_to_study_id
    trials = []
    for trial_id in range(len(result._trials)):
        t = result._trials[trial_id]
        trials.append(
            (
                study_of[trial_id],
                t._number,
                t.state.value,
                t._values,
                t._datetime_start,
                t.datetime_complete,
                t._params,
                {name: dist_id(d) for name, d in t._distributions.items()},
                t._user_attrs,
                t._system_attrs,
                t.intermediate_values,
            )
        )
    studies = [
        (s._study_id, s.study_name, [d.value for d in s.directions], s.user_attrs, s.system_attrs)
        for s in result._studies.values()
    ]
    state = {
        "format": FORMAT,
        "log_number_read": result.log_number_read,
        "next_study_id": result._next_study_id,
        "studies": studies,
        "study_trials": result._study_id_to_trial_ids,
        "dists": dists,
        "trials": trials,
        "by_state": {
            study: {state.value: list(ids) for state, ids in buckets.items()}
            for study, buckets in by_state.items()
        },
    }
    return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)


def load_state(
    data: bytes, result: JournalStorageReplayResult
) -> dict[int, dict[TrialState, dict[int, None]]]:
    """Fill the empty replay state ``result`` from ``data``; returns the per-state indexes.

    Raises ValueError for data of another format (the caller then replays the whole log).
    """
    with no_gc():
        state: dict[str, Any] = pickle.loads(data)
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            raise ValueError("not a fastgrid snapshot of this format")
        dists: list[BaseDistribution] = state["dists"]
        trials: dict[int, FrozenTrial] = {}
        study_of: dict[int, int] = {}
        states = _STATE_BY_VALUE
        for trial_id, row in enumerate(state["trials"]):
            study_id, number, st, values, start, complete, params, dist_ids, user, system, inter = row
            t = _new(FrozenTrial)
            # Same attributes FrozenTrial.__init__ sets; the values were validated when first logged.
            t.__dict__.update(
                _number=number,
                state=states[st],
                _values=values,
                _datetime_start=start,
                datetime_complete=complete,
                _params=params,
                _user_attrs=user,
                _system_attrs=system,
                intermediate_values=inter,
                _distributions={name: dists[i] for name, i in dist_ids.items()},
                _trial_id=trial_id,
            )
            trials[trial_id] = t
            study_of[trial_id] = study_id
        studies: dict[int, FrozenStudy] = {}
        for study_id, name, directions, user_attrs, system_attrs in state["studies"]:
            studies[study_id] = FrozenStudy(
                study_name=name,
                direction=None,
                user_attrs=user_attrs,
                system_attrs=system_attrs,
                study_id=study_id,
                directions=[_DIRECTION_BY_VALUE[d] for d in directions],
            )
        result.log_number_read = state["log_number_read"]
        result._next_study_id = state["next_study_id"]
        result._studies = studies
        result._trials = trials
        result._trial_id_to_study_id = study_of
        result._study_id_to_trial_ids = state["study_trials"]
        return {
            study: {states[v]: dict.fromkeys(ids) for v, ids in buckets.items()}
            for study, buckets in state["by_state"].items()
        }
