"""fastgrid.storage: URL forms, redaction, the embedded store (fidelity, snapshots, processes, kills), export.

The embedded store's replay is checked against Optuna's own: every study written through fastgrid's
``EmbeddedStorage`` is re-read by a stock ``optuna.storages.JournalStorage`` over the same file (a full
replay by Optuna's code), and the two views must be equal.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import fastgrid
import optuna
import pytest
from fastgrid.exceptions import StorageConnectionError, StoreError
from fastgrid.storages import (
    DEFAULT_STORE_NAME,
    EmbeddedStorage,
    export_study,
    open_storage,
    redact_url,
)
from fastgrid.storages.embedded._journal import SQLiteJournalBackend
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import JournalStorage, RDBStorage, _CachedStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState

optuna.logging.set_verbosity(optuna.logging.WARNING)


def optuna_view(path: Path, study_name: str) -> list[FrozenTrial]:
    """The trials as Optuna's stock JournalStorage replays them from the file."""
    return optuna.load_study(
        study_name=study_name, storage=JournalStorage(SQLiteJournalBackend(path))
    ).get_trials()


def rich_objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -5, 5)
    n = trial.suggest_int("n", 1, 64, log=True)
    kind = trial.suggest_categorical("kind", ["sma", "ema", None])
    trial.set_user_attr("metrics", {"sharpe": x / 3, "trades": [n, n + 1]})
    trial.set_user_attr("label", f"t{trial.number}")
    trial.storage.set_trial_system_attr(trial._trial_id, "fastgrid:key", f"k{trial.number}")
    for step in range(3):
        trial.report(x * step, step)
    if trial.number % 7 == 3:
        raise optuna.TrialPruned()
    if trial.number % 7 == 5:
        raise RuntimeError("boom")
    return x * x + n + (0 if kind is None else len(kind))


def run_rich_study(storage: optuna.storages.BaseStorage, n_trials: int, name: str = "s") -> optuna.Study:
    study = optuna.create_study(
        storage=storage, study_name=name, sampler=optuna.samplers.RandomSampler(seed=1)
    )
    study.set_user_attr("sweep", {"grid": [1, 2]})
    study.set_metric_names(["loss"])
    study.optimize(rich_objective, n_trials=n_trials, catch=(RuntimeError,))
    return study


# --- URL forms -------------------------------------------------------------------------------------


def test_none_is_the_embedded_store_in_the_directory(tmp_path: Path) -> None:
    storage = open_storage(None, directory=tmp_path)
    assert isinstance(storage, EmbeddedStorage)
    optuna.create_study(storage=storage, study_name="a")
    assert (tmp_path / DEFAULT_STORE_NAME).is_file()


def test_none_defaults_to_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    storage = open_storage(None)
    assert isinstance(storage, EmbeddedStorage)
    assert storage.backend.path == tmp_path / DEFAULT_STORE_NAME


@pytest.mark.parametrize(
    ("url", "relative"),
    [
        ("fastgrid:///sub/store.db", "sub/store.db"),
        ("sub/plain.db", "sub/plain.db"),
        ("sub/UPPER.DB", "sub/UPPER.DB"),
    ],
)
def test_embedded_forms_resolve_against_the_directory(tmp_path: Path, url: str, relative: str) -> None:
    (tmp_path / "sub").mkdir()
    storage = open_storage(url, directory=tmp_path)
    assert isinstance(storage, EmbeddedStorage)
    assert storage.backend.path == tmp_path / relative


def test_fastgrid_url_with_four_slashes_is_absolute(tmp_path: Path) -> None:
    target = tmp_path / "abs" / "x.db"
    target.parent.mkdir()
    storage = open_storage(f"fastgrid:///{target}", directory=tmp_path / "elsewhere")
    assert isinstance(storage, EmbeddedStorage)
    assert storage.backend.path == target


def test_path_objects_are_accepted(tmp_path: Path) -> None:
    storage = open_storage(tmp_path / "p.db")
    assert isinstance(storage, EmbeddedStorage)


@pytest.mark.parametrize("suffix", [".log", ".jsonl"])
def test_journal_file_paths_open_optuna_journal_storage(tmp_path: Path, suffix: str) -> None:
    storage = open_storage(f"journal{suffix}", directory=tmp_path)
    assert type(storage) is JournalStorage
    assert isinstance(storage._backend, JournalFileBackend)
    study = optuna.create_study(storage=storage, study_name="j")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    reread = JournalStorage(JournalFileBackend(str(tmp_path / f"journal{suffix}")))
    assert len(optuna.load_study(study_name="j", storage=reread).trials) == 3


def test_sqlite_url_opens_cached_rdb_with_heartbeat(tmp_path: Path) -> None:
    storage = open_storage(f"sqlite:///{tmp_path / 'rdb.db'}", heartbeat_interval=5, grace_period=20)
    assert isinstance(storage, _CachedStorage)
    backend = storage._backend
    assert isinstance(backend, RDBStorage)
    assert (backend.heartbeat_interval, backend.grace_period) == (5, 20)


def test_relative_sqlite_urls_resolve_against_the_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sweep").mkdir()
    storage = open_storage("sqlite:///rel.db", directory=tmp_path / "sweep")
    optuna.create_study(storage=storage, study_name="r")
    assert (tmp_path / "sweep" / "rel.db").is_file()
    assert not (tmp_path / "rel.db").exists()


@pytest.mark.parametrize("url", [None, "x.db", "fastgrid:///x.db", "x.log"])
def test_heartbeat_on_file_stores_is_an_error(tmp_path: Path, url: str | None) -> None:
    with pytest.raises(ValueError, match="heartbeat"):
        open_storage(url, directory=tmp_path, heartbeat_interval=10)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("redis://:hunter2@localhost:6379/0", "unknown scheme 'redis'"),
        ("ftp://bob:hunter2@host/x.db", "unknown scheme 'ftp'"),
        ("results.csv", "must end in .db, .log or .jsonl"),
        ("noextension", "no suffix"),
        ("", "empty"),
        ("fastgrid://", "fastgrid:///relative/path.db"),
    ],
)
def test_bad_urls_name_the_url_redacted_and_list_the_forms(url: str, why: str) -> None:
    with pytest.raises(ValueError) as info:
        open_storage(url)
    message = str(info.value)
    assert why in message
    assert "hunter2" not in message
    assert redact_url(url) in message
    assert "postgresql://" in message and ".jsonl" in message and "fastgrid:///" in message


def test_unreachable_database_error_is_redacted() -> None:
    # As for fastgrid+postgresql://: a StorageConnectionError with libpq's reason.
    with pytest.raises(StorageConnectionError) as info:
        open_storage("postgresql+psycopg://bob:hunter2@127.0.0.1:1/nowhere")
    assert "hunter2" not in str(info.value)
    assert "bob:***@127.0.0.1:1/nowhere" in str(info.value) and "Connection refused" in str(info.value)


def test_directory_instead_of_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "d.db").mkdir()
    with pytest.raises(ValueError, match="is a directory"):
        open_storage("d.db", directory=tmp_path)


def test_open_storage_is_exported() -> None:
    assert fastgrid.open_storage is open_storage
    assert "open_storage" in fastgrid.__all__


@pytest.fixture(scope="module")
def postgres_url() -> Any:
    from support.pgserver import PostgresUnavailable, running_server

    try:
        with running_server() as url:
            yield url
    except PostgresUnavailable as exc:
        pytest.skip(f"no PostgreSQL server for this test: {exc}")


def test_postgresql_url_with_heartbeat_and_export(tmp_path: Path, postgres_url: str) -> None:
    storage = open_storage(postgres_url, heartbeat_interval=5, grace_period=20)
    assert isinstance(storage, _CachedStorage)
    assert (storage._backend.heartbeat_interval, storage._backend.grace_period) == (5, 20)
    study = optuna.create_study(storage=storage, study_name="pg")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=5)
    source = run_rich_study(open_storage(tmp_path / "src.db"), 6, name="to-pg")
    export_study(open_storage(tmp_path / "src.db"), study_name="to-pg", to_url=postgres_url)
    exported = optuna.load_study(
        study_name="to-pg", storage=postgres_url.replace("postgresql", "postgresql+psycopg")
    )
    assert [(t.params, t.values, t.user_attrs) for t in exported.trials] == [
        (t.params, t.values, t.user_attrs) for t in source.trials
    ]
    # Pooled connections left to the GC warn (ResourceWarning) inside whichever test runs then.
    for rdb in (storage, exported._storage):
        rdb._backend.engine.dispose()


# --- redaction ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://bob:s3cret@db.example:5432/opt", "postgresql://bob:***@db.example:5432/opt"),
        (
            "postgresql+psycopg://bob:s3cret@db/opt?sslmode=require",
            "postgresql+psycopg://bob:***@db/opt?sslmode=require",
        ),
        ("mysql+pymysql://root:p%40ss@10.0.0.1/optuna", "mysql+pymysql://root:***@10.0.0.1/optuna"),
        ("redis://:onlypass@host:6379/0", "redis://:***@host:6379/0"),
        # An unencoded '@' or '/' inside the password must not leak its tail.
        ("postgresql://bob:p@ss/w#rd@host/db", "postgresql://bob:***@host/db"),
        ("postgresql://host/db?user=bob&password=hunter2", "postgresql://host/db?user=bob&password=***"),
        ("postgresql://bob:pw@host/db?email=a@b.c", "postgresql://bob:***@host/db?email=a@b.c"),
        ("mysql://bob@host/db", "mysql://bob@host/db"),
        ("postgresql://host:5432/db", "postgresql://host:5432/db"),
        ("sqlite:///relative.db", "sqlite:///relative.db"),
        ("sqlite:////abs/us@r/x.db", "sqlite:////abs/us@r/x.db"),
        ("runs/store.db", "runs/store.db"),
        ("fastgrid:///x.db", "fastgrid:///x.db"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


# --- the embedded store: fidelity --------------------------------------------------------------------


def test_round_trip_matches_optunas_own_replay(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    study = run_rich_study(open_storage(path), 30)
    written = study.get_trials()
    states = {t.state for t in written}
    assert states == {TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL}

    reopened = optuna.load_study(study_name="s", storage=open_storage(path))
    assert reopened.get_trials() == written
    assert optuna_view(path, "s") == written
    assert reopened.user_attrs == {"sweep": {"grid": [1, 2]}}
    assert reopened.metric_names == ["loss"]
    first_pruned = next(t for t in written if t.state == TrialState.PRUNED)
    assert first_pruned.intermediate_values == {
        0: 0.0,
        1: first_pruned.params["x"],
        2: 2 * first_pruned.params["x"],
    }
    assert first_pruned.system_attrs["fastgrid:key"] == f"k{first_pruned.number}"
    assert written[0].user_attrs["metrics"]["trades"] == [written[0].params["n"], written[0].params["n"] + 1]
    assert (
        reopened.best_trial
        == optuna.load_study(study_name="s", storage=JournalStorage(SQLiteJournalBackend(path))).best_trial
    )


def _pruned_objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -3, 3)
    y = trial.suggest_int("y", 0, 8)
    for step in range(5):
        trial.report((x - 1) ** 2 + y / (step + 1), step)
        if trial.should_prune():
            raise optuna.TrialPruned()
    return (x - 1) ** 2 + y


def test_tpe_with_a_pruner_runs_exactly_as_in_memory(tmp_path: Path) -> None:
    # TPE reads the finished trials before every suggestion and the pruner reads intermediate values
    # right after report(): any lost, reordered or late write changes what gets sampled next.
    def run(storage: optuna.storages.BaseStorage | None) -> list[tuple[Any, ...]]:
        study = optuna.create_study(
            storage=storage,
            sampler=optuna.samplers.TPESampler(seed=7, n_startup_trials=5),
            pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1),
        )
        study.optimize(_pruned_objective, n_trials=40)
        return [(t.number, t.state, t.params, t.values, t.intermediate_values) for t in study.trials]

    expected = run(None)
    assert any(row[1] == TrialState.PRUNED for row in expected)
    assert run(open_storage(tmp_path / "tpe.db")) == expected


def test_multi_objective_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "mo.db"
    study = optuna.create_study(
        storage=open_storage(path),
        study_name="mo",
        directions=["maximize", "minimize"],
        sampler=optuna.samplers.RandomSampler(seed=3),
    )
    study.optimize(lambda t: (t.suggest_float("a", 0, 1), t.suggest_float("b", 0, 1) ** 2), n_trials=12)
    reopened = optuna.load_study(study_name="mo", storage=open_storage(path))
    assert reopened.directions == study.directions
    assert reopened.get_trials() == study.get_trials() == optuna_view(path, "mo")
    assert {t.number for t in reopened.best_trials} == {t.number for t in study.best_trials}
    assert all(len(t.values) == 2 for t in reopened.trials)


def test_enqueued_and_added_trials_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    study = optuna.create_study(storage=open_storage(path), study_name="q")
    study.enqueue_trial({"x": 0.25})
    study.add_trial(
        optuna.trial.create_trial(
            params={"x": 0.5, "c": "b"},
            distributions={"x": FloatDistribution(0, 1), "c": CategoricalDistribution(["a", "b"])},
            value=0.5,
            user_attrs={"from": "template"},
            intermediate_values={1: 0.1},
        )
    )
    assert study.get_trials(deepcopy=False, states=(TrialState.WAITING,))[0].number == 0
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    trials = study.get_trials()
    assert trials[0].params == {"x": 0.25} and trials[0].state == TrialState.COMPLETE
    assert trials[1].user_attrs == {"from": "template"} and trials[1].intermediate_values == {1: 0.1}
    assert not study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    assert optuna_view(path, "q") == trials
    assert optuna.load_study(study_name="q", storage=open_storage(path)).get_trials() == trials


def test_state_filters_and_best_trial_agree_with_a_scan(tmp_path: Path) -> None:
    storage = open_storage(tmp_path / "f.db")
    study = run_rich_study(storage, 40)
    everything = study.get_trials(deepcopy=False)
    for states in [
        (TrialState.COMPLETE,),
        (TrialState.PRUNED, TrialState.FAIL),
        (TrialState.RUNNING,),
        [TrialState.COMPLETE, TrialState.PRUNED],
    ]:
        assert study.get_trials(deepcopy=False, states=states) == [t for t in everything if t.state in states]
    complete = [t for t in everything if t.state == TrialState.COMPLETE]
    assert study.best_trial.number == min(complete, key=lambda t: t.value).number  # type: ignore[arg-type,return-value]


def test_best_trial_ties_go_to_the_lowest_number(tmp_path: Path) -> None:
    for direction in ("minimize", "maximize"):
        study = optuna.create_study(storage=open_storage(tmp_path / f"{direction}.db"), direction=direction)
        values = [3.0, 1.0, 1.0, 5.0, 5.0, 1.0]
        for v in values:
            study.add_trial(optuna.trial.create_trial(value=v))
        target = min(values) if direction == "minimize" else max(values)
        assert study.best_trial.number == values.index(target)
        assert study.best_value == target


def test_deep_copies_share_nothing_mutable(tmp_path: Path) -> None:
    study = run_rich_study(open_storage(tmp_path / "c.db"), 3)
    copy = study.get_trials()[0]
    copy.user_attrs["metrics"]["trades"].append(99)
    copy.params["x"] = 1e9
    copy.distributions["x"].low = -1e9  # type: ignore[attr-defined]
    copy.intermediate_values[0] = 42.0
    fresh = study.get_trials()[0]
    assert 99 not in fresh.user_attrs["metrics"]["trades"]
    assert fresh.params["x"] != 1e9
    assert fresh.distributions["x"] == FloatDistribution(-5, 5)
    assert fresh.intermediate_values[0] == 0.0


def test_deferred_writes_still_fail_at_the_call(tmp_path: Path) -> None:
    storage = open_storage(tmp_path / "e.db")
    study = optuna.create_study(storage=storage, study_name="e")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    finished = study.trials[0]._trial_id
    with pytest.raises(UpdateFinishedTrialError):
        storage.set_trial_user_attr(finished, "k", 1)
    with pytest.raises(UpdateFinishedTrialError):
        storage.set_trial_param(finished, "y", 0.5, FloatDistribution(0, 1))
    with pytest.raises(KeyError):
        storage.set_trial_intermediate_value(10_000, 0, 1.0)
    trial = study.ask()
    with pytest.raises(ValueError):
        trial.suggest_int("x", 0, 3)  # "x" was a float distribution in trial 0
    with pytest.raises(TypeError):
        trial.set_user_attr("bad", object())


def test_a_finished_trial_refuses_a_param_of_another_distribution_as_finished(tmp_path: Path) -> None:
    # Issue 12, item 17: the state is checked first, as Optuna's storages do.
    storage = open_storage(tmp_path / "e.db")
    study = optuna.create_study(storage=storage, study_name="e")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    finished = study.trials[0]._trial_id
    with pytest.raises(UpdateFinishedTrialError):
        storage.set_trial_param(finished, "x", 1, CategoricalDistribution([1, 2]))


@pytest.mark.parametrize(
    "write",
    [
        lambda s, tid: s.set_trial_user_attr(tid, "k", 1),
        lambda s, tid: s.set_trial_system_attr(tid, "k", 1),
        lambda s, tid: s.set_trial_intermediate_value(tid, 0, 1.0),
        lambda s, tid: s.set_trial_param(tid, "x", 0.5, FloatDistribution(0, 1)),
        lambda s, tid: s.set_trial_state_values(tid, TrialState.COMPLETE, [1.0]),
    ],
)
def test_a_write_to_a_trial_another_process_finished_raises(tmp_path: Path, write: Any) -> None:
    # Issue 12, item 18: the second store's view is older than the file; the deferred write used
    # to return and be dropped at the next commit with a log line.
    path = tmp_path / "two.db"
    first, second = open_storage(path), open_storage(path)
    study_id = first.create_new_study([optuna.study.StudyDirection.MINIMIZE], "two")
    trial_id = first.create_new_trial(study_id)
    assert second.get_trial(trial_id).state == TrialState.RUNNING  # the second has seen it running
    first.set_trial_state_values(trial_id, TrialState.FAIL)
    with pytest.raises(UpdateFinishedTrialError):
        write(second, trial_id)
    assert second.get_trial(trial_id).state == TrialState.FAIL


def test_deferred_writes_become_visible_to_another_reader(tmp_path: Path) -> None:
    path = tmp_path / "v.db"
    storage = open_storage(path)
    study = optuna.create_study(storage=storage, study_name="v")
    trial = study.ask()
    trial.suggest_float("x", 0, 1)
    trial.set_user_attr("stage", "running")
    storage.flush()
    seen = optuna_view(path, "v")[0]
    assert seen.state == TrialState.RUNNING
    assert seen.params == trial.params and seen.user_attrs == {"stage": "running"}


def test_snapshot_plus_tail_equals_full_replay(tmp_path: Path) -> None:
    path = tmp_path / "snap.db"
    storage = EmbeddedStorage(SQLiteJournalBackend(path), snapshot_every=37)
    run_rich_study(storage, 25)
    snapshot = storage.backend.load_tagged_snapshot()
    assert snapshot is not None
    covered, total = snapshot[0], storage.backend.log_count()
    assert 0 < covered < total  # some of the log lies after the snapshot: both paths are exercised
    from_snapshot = optuna.load_study(study_name="s", storage=EmbeddedStorage(SQLiteJournalBackend(path)))
    full = optuna_view(path, "s")
    assert from_snapshot.get_trials() == full
    assert (
        from_snapshot.best_trial
        == optuna.load_study(study_name="s", storage=JournalStorage(SQLiteJournalBackend(path))).best_trial
    )
    # The resumed store keeps working from the snapshot state: trial numbers continue.
    from_snapshot.optimize(lambda t: t.suggest_float("x", -5, 5), n_trials=2)
    assert [t.number for t in optuna_view(path, "s")] == list(range(27))


def test_damaged_snapshot_falls_back_to_full_replay(tmp_path: Path) -> None:
    path = tmp_path / "bad.db"
    storage = open_storage(path)
    study = run_rich_study(storage, 10)
    assert isinstance(storage, EmbeddedStorage)
    storage.checkpoint()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE snapshot SET data = x'00ff00' WHERE slot = 0")
    assert optuna.load_study(study_name="s", storage=open_storage(path)).get_trials() == study.get_trials()


def test_stock_journal_storage_can_use_the_file_and_its_snapshots(tmp_path: Path) -> None:
    path = tmp_path / "stock.db"
    stock = JournalStorage(SQLiteJournalBackend(path))
    study = run_rich_study(stock, 8)
    stock._backend.save_snapshot(b"not a pickle")  # Optuna's slot never disturbs fastgrid's
    assert optuna.load_study(study_name="s", storage=open_storage(path)).get_trials() == study.get_trials()


def test_copy_study_between_embedded_stores(tmp_path: Path) -> None:
    study = run_rich_study(open_storage(tmp_path / "a.db"), 12)
    optuna.copy_study(
        from_study_name="s",
        from_storage=open_storage(tmp_path / "a.db"),
        to_storage=open_storage(tmp_path / "b.db"),
        to_study_name="copy",
    )
    copied = optuna.load_study(study_name="copy", storage=open_storage(tmp_path / "b.db")).get_trials()
    assert [(t.params, t.values, t.state, t.user_attrs) for t in copied] == [
        (t.params, t.values, t.state, t.user_attrs) for t in study.get_trials()
    ]


def test_a_pickled_storage_reopens_the_same_file(tmp_path: Path) -> None:
    import pickle

    storage = open_storage(tmp_path / "p.db")
    study = optuna.create_study(storage=storage, study_name="p")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    clone = pickle.loads(pickle.dumps(storage))
    assert optuna.load_study(study_name="p", storage=clone).get_trials() == study.get_trials()


def test_a_deleted_store_is_not_silently_recreated_on_reconnect(tmp_path: Path) -> None:
    path = tmp_path / "gone.db"
    storage = open_storage(path)
    assert isinstance(storage, EmbeddedStorage)
    storage.backend.close()
    for leftover in tmp_path.glob("gone.db*"):
        leftover.unlink()
    with pytest.raises(StoreError, match="deleted or moved while in use"):
        storage.get_all_studies()
    assert not path.exists()


_CLEAN_EXIT = textwrap.dedent(
    """
    import sys, optuna
    from fastgrid.storages import open_storage
    study = optuna.create_study(storage=open_storage(sys.argv[1]), study_name="x")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=int(sys.argv[2]))
    """
)


@pytest.mark.parametrize("trials", [30, 200])
def test_a_normal_exit_leaves_at_most_a_short_tail_to_replay(tmp_path: Path, trials: int) -> None:
    from fastgrid.storages import SMALL_TAIL

    path = tmp_path / "exit.db"
    subprocess.run([sys.executable, "-c", _CLEAN_EXIT, str(path), str(trials)], check=True, timeout=120)
    backend = SQLiteJournalBackend(path)
    snapshot = backend.load_tagged_snapshot()
    covered = snapshot[0] if snapshot is not None else 0
    if backend.log_count() >= SMALL_TAIL:
        assert covered == backend.log_count()
    else:  # a tail this short replays faster than a snapshot is written
        assert covered == 0
    assert len(optuna.load_study(study_name="x", storage=open_storage(path)).trials) == trials


def test_schema_version_mismatch_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "v.db"
    open_storage(path)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE fastgrid_meta SET value = '99' WHERE key = 'schema'")
    with pytest.raises(ValueError, match="schema version 99"):
        open_storage(path)


# --- several processes and real kills ----------------------------------------------------------------


def _worker(path: str, n_trials: int, seed: int) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(
        study_name="shared", storage=open_storage(path), sampler=optuna.samplers.RandomSampler(seed=seed)
    )

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0, 1)
        trial.set_user_attr("pid", os.getpid())
        return x

    study.optimize(objective, n_trials=n_trials)


def test_four_processes_share_one_file(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    optuna.create_study(storage=open_storage(path), study_name="shared")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(str(path), 60, seed)) for seed in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    trials = optuna_view(path, "shared")
    assert len(trials) == 240
    assert sorted(t.number for t in trials) == list(range(240))
    assert all(t.state == TrialState.COMPLETE and "x" in t.params for t in trials)
    assert len({t.user_attrs["pid"] for t in trials}) == 4
    assert optuna.load_study(study_name="shared", storage=open_storage(path)).get_trials() == trials
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def _forked_worker(study: optuna.Study) -> None:
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=25)


def test_forked_children_inheriting_the_storage_act_as_new_workers(tmp_path: Path) -> None:
    path = tmp_path / "fork.db"
    storage = open_storage(path)
    study = optuna.create_study(storage=storage, study_name="fork")
    parent_trial = study.ask()
    parent_trial.suggest_float("x", 0, 1)  # a deferred write the children must not commit again
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_forked_worker, args=(study,)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0]
    study.tell(parent_trial, 0.5)
    trials = optuna_view(path, "fork")
    assert sorted(t.number for t in trials) == list(range(51))
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert trials[0].params == parent_trial.params


def test_threads_share_one_storage(tmp_path: Path) -> None:
    path = tmp_path / "threads.db"
    study = optuna.create_study(storage=open_storage(path), study_name="t")
    study.optimize(rich_objective, n_trials=60, n_jobs=4, catch=(RuntimeError,))
    trials = optuna_view(path, "t")
    assert sorted(t.number for t in trials) == list(range(60))
    assert all(t.state.is_finished() for t in trials)
    assert trials == study.get_trials()


_KILLED_WRITER = textwrap.dedent(
    """
    import sys, optuna
    from fastgrid.storages import open_storage
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    path, done_file = sys.argv[1], sys.argv[2]
    study = optuna.create_study(storage=open_storage(path), study_name="k", load_if_exists=True)
    log = open(done_file, "a", buffering=1)

    def objective(trial):
        trial.set_user_attr("payload", "x" * 200)
        return trial.suggest_float("x", 0, 1)

    # Callbacks run after the trial's final state is stored: a number in done_file is committed.
    study.optimize(objective, n_trials=100_000, callbacks=[lambda s, t: log.write(f"{t.number}\\n")])
    """
)


def test_sigkill_mid_run_loses_nothing_committed(tmp_path: Path) -> None:
    path, done = tmp_path / "kill.db", tmp_path / "done.txt"
    script = tmp_path / "writer.py"
    script.write_text(_KILLED_WRITER)
    for round_number, wait_for in enumerate((30, 80, 150)):
        proc = subprocess.Popen([sys.executable, str(script), str(path), str(done)])
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if done.exists() and len(done.read_text().split()) >= wait_for:
                    break
                time.sleep(0.005)
            else:
                pytest.fail(f"round {round_number}: the writer never reached {wait_for} trials")
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        assert proc.returncode == -signal.SIGKILL
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        committed = {int(n) for n in done.read_text().split()}
        trials = optuna.load_study(study_name="k", storage=open_storage(path)).get_trials()
        by_number = {t.number: t for t in trials}
        assert committed <= set(by_number)
        assert all(by_number[n].state == TrialState.COMPLETE for n in committed)
        assert all(by_number[n].user_attrs == {"payload": "x" * 200} for n in committed)
        # At most the in-flight trial is not finished.
        assert sum(1 for t in trials if not t.state.is_finished()) <= round_number + 1
        assert trials == optuna_view(path, "k")


# --- export ------------------------------------------------------------------------------------------


def test_export_to_sqlite_keeps_everything(tmp_path: Path) -> None:
    source = open_storage(tmp_path / "src.db")
    study = run_rich_study(source, 20)
    url = f"sqlite:///{tmp_path / 'export.db'}"
    export_study(source, study_name="s", to_url=url)
    exported = optuna.load_study(study_name="s", storage=url)
    pairs = list(zip(exported.get_trials(), study.get_trials(), strict=True))
    for got, want in pairs:
        assert (got.number, got.state, got.values, got.params) == (
            want.number,
            want.state,
            want.values,
            want.params,
        )
        assert got.user_attrs == want.user_attrs
        assert got.intermediate_values == want.intermediate_values
        assert got.system_attrs["fastgrid:key"] == want.system_attrs["fastgrid:key"]
    assert exported.user_attrs == study.user_attrs
    assert exported.best_trial.number == study.best_trial.number


def test_export_accepts_a_source_url_and_refuses_to_overwrite(tmp_path: Path) -> None:
    run_rich_study(open_storage(tmp_path / "src.db"), 4)
    url = f"sqlite:///{tmp_path / 'out.db'}"
    export_study(str(tmp_path / "src.db"), study_name="s", to_url=url)
    with pytest.raises(ValueError, match="already holds a study named 's'"):
        export_study(str(tmp_path / "src.db"), study_name="s", to_url=url)
    with pytest.raises(KeyError, match=r"no study named 'nope'.*'s'"):
        export_study(str(tmp_path / "src.db"), study_name="nope", to_url=f"sqlite:///{tmp_path / 'o2.db'}")


def _wsgi_get(app: Any, path: str) -> Any:
    from wsgiref.util import setup_testing_defaults

    environ: dict[str, Any] = {"PATH_INFO": path, "REQUEST_METHOD": "GET", "wsgi.input": io.BytesIO()}
    setup_testing_defaults(environ)
    status: list[str] = []
    body = b"".join(app(environ, lambda s, h, exc_info=None: status.append(s)))
    assert status[0].startswith("200"), (path, status, body[:300])
    return json.loads(body)


@pytest.mark.parametrize("via", ["exported sqlite", "embedded store directly"])
def test_optuna_dashboard_serves_the_study(tmp_path: Path, via: str) -> None:
    optuna_dashboard = pytest.importorskip("optuna_dashboard")
    source = open_storage(tmp_path / "src.db")
    run_rich_study(source, 9)
    if via == "exported sqlite":
        url = f"sqlite:///{tmp_path / 'dash.db'}"
        export_study(source, study_name="s", to_url=url)
        app = optuna_dashboard.wsgi(url)
    else:
        app = optuna_dashboard.wsgi(open_storage(tmp_path / "src.db"))
    studies = _wsgi_get(app, "/api/studies")["study_summaries"]
    assert [s["study_name"] for s in studies] == ["s"]
    detail = _wsgi_get(app, f"/api/studies/{studies[0]['study_id']}")
    assert len(detail["trials"]) == 9
    assert {p["name"] for p in detail["trials"][0]["params"]} == {"x", "n", "kind"}


def test_a_run_of_writes_to_one_trial_copies_it_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Issue 12, item 8: one copy of the trial per param made a trial of n params cost O(n**2).
    from fastgrid.storages.embedded import _storage

    copies = 0
    real = _storage.clone_trial

    def counting(trial: FrozenTrial) -> FrozenTrial:
        nonlocal copies
        copies += 1
        return real(trial)

    storage = open_storage(tmp_path / "wide.db")
    study = optuna.create_study(storage=storage, study_name="wide")
    monkeypatch.setattr(_storage, "clone_trial", counting)
    n = 2_000
    trial = study.ask({f"p{i}": FloatDistribution(0, 1) for i in range(n)})
    for i in range(10):
        trial.set_user_attr(f"a{i}", i)
    study.tell(trial, 1.0)
    assert copies <= 4
    stored = optuna_view(tmp_path / "wide.db", "wide")[0]
    assert len(stored.params) == n and stored.user_attrs == {f"a{i}": i for i in range(10)}
    assert storage.get_all_trials(0)[0].params == stored.params
