"""The embedded store's snapshots and in-memory sharing: what is loaded equals what was replayed.

Every check compares a store opened from a snapshot (plus any log after it) with a full replay of the
same file by Optuna's stock ``JournalStorage``, field by field, over trials carrying every kind of
field a trial can have.
"""

from __future__ import annotations

import pickle
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

import optuna
import pytest
from fastgrid.storages import EmbeddedStorage, open_storage
from fastgrid.storages.embedded import _snapshot
from fastgrid.storages.embedded._frozen import EMPTY, SharedValues
from fastgrid.storages.embedded._journal import SQLiteJournalBackend, _decode
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.storages import JournalStorage
from optuna.trial import FrozenTrial, TrialState

optuna.logging.set_verbosity(optuna.logging.WARNING)

FINGERPRINT = "f" * 64
FIELDS = (
    "number",
    "state",
    "values",
    "datetime_start",
    "datetime_complete",
    "params",
    "distributions",
    "user_attrs",
    "system_attrs",
    "intermediate_values",
    "_trial_id",
)


def fields(t: FrozenTrial) -> tuple[Any, ...]:
    return tuple(getattr(t, f) for f in FIELDS)


def stock_view(path: Path, name: str) -> list[FrozenTrial]:
    return optuna.load_study(study_name=name, storage=JournalStorage(SQLiteJournalBackend(path))).get_trials()


def varied_study(storage: optuna.storages.BaseStorage, n: int, name: str = "v") -> optuna.Study:
    """``n`` trials of every state and field: sweep-like attrs, nested JSON, intermediate values,
    system attrs, several distribution kinds, multi-valued lists, a template trial, a waiting one
    and one left running."""
    study = optuna.create_study(storage=storage, study_name=name, sampler=optuna.samplers.RandomSampler(2))
    study.set_user_attr("space", {"a": [1, 2], "b": None})
    for i in range(n):
        trial = study.ask()
        x = trial.suggest_float("x", -1, 1)
        k = trial.suggest_int("k", 1, 9)
        if i % 3:
            trial.suggest_int("kl", 1, 9, log=True)
        c = trial.suggest_categorical("c", ["a", None, 1.5, True])
        trial.set_user_attr("key", f"{i:032x}")
        trial.set_user_attr("fingerprint", FINGERPRINT)
        trial.set_user_attr("metrics", {"sharpe": x / 3, "trades": [k, {"n": k}], "ok": c is None})
        trial.set_user_attr("duration", 0.25 * i)
        trial.storage.set_trial_system_attr(trial._trial_id, "fastgrid:slot", i)
        if i % 4 == 1:
            trial.report(x, 0)
            trial.report(2 * x, 3)
        if i % 5 == 2:
            study.tell(trial, state=TrialState.FAIL)
        elif i % 5 == 3:
            study.tell(trial, state=TrialState.PRUNED)
        else:
            study.tell(trial, x * k)
    study.add_trial(
        optuna.trial.create_trial(
            params={"x": 0.5, "k": 3, "c": "a"},
            distributions={
                "x": FloatDistribution(-1, 1),
                "k": IntDistribution(1, 9),
                "c": CategoricalDistribution(["a", None, 1.5, True]),
            },
            value=1.5,
            user_attrs={"from": "template", "nested": {"deep": [1, {"x": "y"}]}},
            system_attrs={"s": 1},
            intermediate_values={2: 0.5},
        )
    )
    running = study.ask({"x": FloatDistribution(-1, 1)})
    running.set_user_attr("stage", "running")
    study.enqueue_trial({"x": 0.25})
    return study


def test_snapshot_round_trip_keeps_every_field_of_every_trial(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    storage = open_storage(path)
    assert isinstance(storage, EmbeddedStorage)
    varied_study(storage, 120)
    storage.checkpoint()
    found = storage.backend.load_tagged_snapshot()
    assert found is not None and found[1] == _snapshot.TAG and found[0] == storage.backend.log_count()

    reopened = open_storage(path)
    assert isinstance(reopened, EmbeddedStorage)
    assert reopened._replay_result.log_number_read == found[0]  # loaded from the snapshot, nothing replayed
    loaded = reopened.get_all_trials(0)
    expected = stock_view(path, "v")
    assert len(loaded) == 123
    assert [fields(t) for t in loaded] == [fields(t) for t in expected]
    assert {t.state for t in loaded} == set(TrialState)
    assert all(type(t.datetime_start) is datetime for t in loaded if t.state != TrialState.WAITING)
    assert reopened.get_study_user_attrs(0) == {"space": {"a": [1, 2], "b": None}}
    # The indexes came back too: filtered reads and the best trial agree with a scan.
    complete = [t for t in expected if t.state == TrialState.COMPLETE]
    assert [t.number for t in reopened.get_all_trials(0, states=(TrialState.COMPLETE,))] == [
        t.number for t in complete
    ]
    assert reopened.get_best_trial(0).number == min(complete, key=lambda t: (t.value, t.number)).number


def test_a_reopened_store_keeps_running_the_study(tmp_path: Path) -> None:
    path = tmp_path / "go.db"
    storage = open_storage(path)
    assert isinstance(storage, EmbeddedStorage)
    varied_study(storage, 20)
    storage.checkpoint()
    study = optuna.load_study(study_name="v", storage=open_storage(path))
    waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    assert [t.system_attrs["fixed_params"] for t in waiting] == [{"x": 0.25}]
    study.optimize(lambda t: t.suggest_float("x", -1, 1) + t.suggest_int("k", 1, 9), n_trials=3)
    trials = study.get_trials()
    assert trials[waiting[0].number].params["x"] == 0.25
    assert [fields(t) for t in trials] == [fields(t) for t in stock_view(path, "v")]


def test_finished_trials_share_equal_fields_and_running_ones_own_theirs(tmp_path: Path) -> None:
    path = tmp_path / "share.db"
    storage = open_storage(path)
    assert isinstance(storage, EmbeddedStorage)
    varied_study(storage, 12)
    storage.checkpoint()
    for store in (storage, open_storage(path)):  # as replayed, and as loaded from the snapshot
        trials = store.get_all_trials(0, deepcopy=False)
        finished = [t for t in trials if t.state.is_finished() and "fingerprint" in t.user_attrs]
        finished = [t for t in finished if t.distributions.keys() == {"x", "k", "c"}]
        assert len({id(t.distributions) for t in finished}) < len(finished)
        assert len({id(t.user_attrs["fingerprint"]) for t in finished}) == 1
        plain = [t for t in finished if not t.intermediate_values]
        assert len({id(t.intermediate_values) for t in plain}) == 1
        running = next(t for t in trials if t.state == TrialState.RUNNING)
        assert all(running.distributions is not t.distributions for t in finished)
        assert all(running.intermediate_values is not t.intermediate_values for t in finished)
    assert EMPTY == {}


def test_a_running_trial_writing_in_place_leaves_finished_trials_alone(tmp_path: Path) -> None:
    # Optuna's Trial writes each new param, attribute and report into the stored trial in place.
    path = tmp_path / "inplace.db"
    storage = open_storage(path)
    study = optuna.create_study(storage=storage, study_name="i")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    assert isinstance(storage, EmbeddedStorage)
    storage.checkpoint()
    for store in (storage, open_storage(path)):
        study = optuna.load_study(study_name="i", storage=store)
        trial = study.ask()
        trial.suggest_float("x", 0, 1)
        trial.suggest_int("extra", 0, 5)
        trial.report(0.5, 1)
        trial.set_user_attr("u", 1)
        study.tell(trial, 0.0)
        finished = study.get_trials(deepcopy=False)[:3]
        assert all(t.distributions.keys() == {"x"} and t.intermediate_values == {} for t in finished)
        assert all(t.user_attrs == {} and t.system_attrs == {} for t in finished)


def test_a_format_1_snapshot_still_loads_and_is_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    storage = open_storage(path)
    assert isinstance(storage, EmbeddedStorage)
    varied_study(storage, 30)
    storage.checkpoint()
    result = storage._replay_result
    with sqlite3.connect(path) as conn:
        conn.execute(
            "UPDATE snapshot SET tag = ?, data = ? WHERE slot = 0",
            (_snapshot._TAG_V1, _dump_format_1(result, result._by_state)),
        )
    reopened = open_storage(path)
    assert isinstance(reopened, EmbeddedStorage)
    assert reopened._replay_result.log_number_read == storage.backend.log_count()
    assert [fields(t) for t in reopened.get_all_trials(0)] == [fields(t) for t in stock_view(path, "v")]
    reopened.checkpoint()  # nothing new in the log, but the snapshot is of the old format
    found = reopened.backend.load_tagged_snapshot()
    assert found is not None and found[1] == _snapshot.TAG


def _dump_format_1(result: Any, by_state: dict[int, dict[TrialState, dict[int, None]]]) -> bytes:
    """fastgrid's format-1 snapshot writer (a pickle of plain rows), as it shipped."""
    dist_index: dict[int, int] = {}
    dists: list[Any] = []
    trials = []
    for trial_id in range(len(result._trials)):
        t = result._trials[trial_id]
        ids = {}
        for name, d in t._distributions.items():
            if id(d) not in dist_index:
                dist_index[id(d)] = len(dists)
                dists.append(d)
            ids[name] = dist_index[id(d)]
        trials.append(
            (
                result._trial_id_to_study_id[trial_id],
                t._number,
                t.state.value,
                t._values,
                t._datetime_start,
                t.datetime_complete,
                t._params,
                ids,
                t._user_attrs,
                t._system_attrs,
                t.intermediate_values,
            )
        )
    state = {
        "format": 1,
        "log_number_read": result.log_number_read,
        "next_study_id": result._next_study_id,
        "studies": [
            (s._study_id, s.study_name, [d.value for d in s.directions], s.user_attrs, s.system_attrs)
            for s in result._studies.values()
        ],
        "study_trials": result._study_id_to_trial_ids,
        "dists": dists,
        "trials": trials,
        "by_state": {
            study: {state.value: list(ids) for state, ids in buckets.items()}
            for study, buckets in by_state.items()
        },
    }
    return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)


@pytest.mark.parametrize("tag", ["fastgrid-replay-2/optuna-0.0.1/py3.11", "fastgrid-replay-9/x", "optuna"])
def test_a_snapshot_of_another_version_is_ignored_for_a_full_replay(tmp_path: Path, tag: str) -> None:
    path = tmp_path / "tag.db"
    storage = open_storage(path)
    assert isinstance(storage, EmbeddedStorage)
    varied_study(storage, 10)
    storage.checkpoint()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE snapshot SET tag = ?, data = x'00' WHERE slot = 0", (tag,))
    reopened = open_storage(path)
    assert [fields(t) for t in reopened.get_all_trials(0)] == [fields(t) for t in stock_view(path, "v")]


def test_an_aware_datetime_survives_the_snapshot(tmp_path: Path) -> None:
    # The replay only makes naive datetimes; any other still round-trips (as ISO text).
    from datetime import timedelta, timezone

    storage = open_storage(tmp_path / "tz.db")
    assert isinstance(storage, EmbeddedStorage)
    study = optuna.create_study(storage=storage, study_name="tz")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    result = storage._replay_result
    aware = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    result._trials[0].datetime_complete = aware
    loaded = type(result)("w")
    _snapshot.load_state(_snapshot.dump_state(result, result._by_state), _snapshot.TAG, loaded)
    assert loaded._trials[0].datetime_complete == aware
    assert loaded._trials[0].datetime_complete.utcoffset() == aware.utcoffset()
    assert loaded._trials[1].datetime_complete == result._trials[1].datetime_complete


def test_a_value_marshal_cannot_write_skips_the_snapshot_not_the_call(tmp_path: Path) -> None:
    path = tmp_path / "odd.db"
    storage = open_storage(path)
    assert isinstance(storage, EmbeddedStorage)
    study = optuna.create_study(storage=storage, study_name="o")
    trial = study.ask()
    # What Optuna's Trial does with the caller's value after the storage accepted it.
    storage._replay_result._trials[trial._trial_id]._user_attrs["odd"] = object()
    storage.checkpoint()  # must not raise
    found = storage.backend.load_tagged_snapshot()
    assert found is None or found[0] < storage.backend.log_count()
    study.tell(trial, 1.0)
    storage.checkpoint()
    assert [t.value for t in optuna.load_study(study_name="o", storage=open_storage(path)).trials] == [1.0]


@pytest.mark.parametrize("trials", [5, 150])
def test_a_dropped_store_snapshots_its_log_unless_the_tail_is_short(tmp_path: Path, trials: int) -> None:
    from fastgrid.storages import SMALL_TAIL

    path = tmp_path / "drop.db"
    storage = open_storage(path)
    study = optuna.create_study(storage=storage, study_name="d")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=trials)
    del study, storage
    import gc

    gc.collect()
    backend = SQLiteJournalBackend(path)
    found = backend.load_tagged_snapshot()
    if backend.log_count() >= SMALL_TAIL:
        assert found is not None and found[0] == backend.log_count()
    else:
        assert found is None
    assert len(optuna.load_study(study_name="d", storage=open_storage(path)).trials) == trials


def test_batched_json_decoding_matches_one_by_one() -> None:
    bodies = ['{"a":1}', '{"b":[1,{"c":"]"}],"d":"x,y"}', '{"e":null}']
    assert _decode(bodies) == [{"a": 1}, {"b": [1, {"c": "]"}], "d": "x,y"}, {"e": None}]
    assert _decode(bodies[:1]) == [{"a": 1}]
    assert _decode([]) == []
    with pytest.raises(ValueError):
        _decode(['{"a":1}', '{"b":2},{"c":3}'])  # two values in one body is not a log entry


def test_shared_values_intern_names_and_reuse_repeated_strings() -> None:
    shared = SharedValues()
    first = shared.attrs({"fp": "".join(["ab"] * 3), "m": {"".join(["k"] * 2): [{"".join(["z"] * 2): 1}]}})
    second = shared.attrs({"fp": "".join(["ab"] * 3), "m": {"".join(["k"] * 2): [{"".join(["z"] * 2): 2}]}})
    assert first == {"fp": "ababab", "m": {"kk": [{"zz": 1}]}}
    assert second == {"fp": "ababab", "m": {"kk": [{"zz": 2}]}}
    assert first["fp"] is second["fp"]
    key1, key2 = next(iter(first["m"])), next(iter(second["m"]))
    assert key1 is key2
    assert shared.attrs({"fp": "other"})["fp"] == "other"


def test_reopening_reads_without_writing_a_snapshot_and_the_next_write_does(tmp_path: Path) -> None:
    path = tmp_path / "tail.db"
    storage = EmbeddedStorage(SQLiteJournalBackend(path), snapshot_every=10)
    study = optuna.create_study(storage=storage, study_name="t")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    storage.checkpoint()
    covered = storage.backend.load_tagged_snapshot()
    assert covered is not None
    writer = EmbeddedStorage(SQLiteJournalBackend(path), snapshot_every=10**6)
    optuna.load_study(study_name="t", storage=writer).optimize(
        lambda t: t.suggest_float("x", 0, 1), n_trials=5
    )
    writer._snapshot_at = 1 << 60  # leave the tail unsnapshotted, as a crash would
    del writer

    reader = EmbeddedStorage(SQLiteJournalBackend(path), snapshot_every=10)
    resumed = optuna.load_study(study_name="t", storage=reader)
    assert len(resumed.get_trials(deepcopy=False)) == 8
    found = reader.backend.load_tagged_snapshot()
    assert found is not None and found[0] == covered[0]  # reading paid for no snapshot
    resumed.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    found = reader.backend.load_tagged_snapshot()
    assert found is not None and found[0] > covered[0]
