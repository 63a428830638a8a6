"""fastgrid's PostgreSQL journal (``fastgrid+postgresql://``): Optuna's storage contract, log order,
idempotent appends, snapshots, heartbeats and bad input, against the session's real server.

Each test gets its own schema (``options=-csearch_path=...`` in the URL), so tables never leak
between tests. Worker processes, kills and server restarts are in ``test_pg_workers.py``.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import pickle
import queue as queue_module
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import psycopg
import pytest
from fastgrid.exceptions import StorageConnectionError
from fastgrid.storages import STALE_REASON, Heartbeat, open_heartbeat_storage, open_storage
from fastgrid.storages.postgres import (
    SCHEMA_VERSION,
    PostgresJournalBackend,
    PostgresJournalStorage,
    parse_url,
)
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import JournalStorage
from optuna.testing.pytest_storages import StorageTestCase
from optuna.trial import TrialState
from support.pgjournal import fresh_journal_url, journal_url, schema_of
from test_storage import run_rich_study

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture
def url(postgres_url: str) -> str:
    return fresh_journal_url(postgres_url)


def opened(url: str, **options: Any) -> PostgresJournalStorage:
    storage = open_storage(url, **options)
    assert isinstance(storage, PostgresJournalStorage)
    return storage


def bare(url: str) -> PostgresJournalBackend:
    """The backend alone: its log may hold entries that are not Optuna operations."""
    return PostgresJournalBackend(parse_url(url, display=url))


def sql(postgres_url: str, url: str, query: str) -> list[tuple[Any, ...]]:
    """Run ``query`` in the schema of the journal ``url``."""
    with psycopg.connect(postgres_url, autocommit=True, options=f"-csearch_path={schema_of(url)}") as conn:
        cur = conn.execute(query)  # type: ignore[arg-type]
        return cur.fetchall() if cur.description else []


# --- Optuna's own storage test suite ---------------------------------------------------------------


class TestOptunaStorageContract(StorageTestCase):
    """Every expectation Optuna's test suite has of a storage (optuna.testing.pytest_storages)."""

    @pytest.fixture
    def storage(self, postgres_url: str) -> Iterator[PostgresJournalStorage]:
        storage = opened(fresh_journal_url(postgres_url))
        yield storage
        storage.backend.close()


# --- fidelity ----------------------------------------------------------------------------------------


def test_optunas_stock_journal_storage_replays_the_same_study(url: str) -> None:
    storage = opened(url)
    study = run_rich_study(storage, 30)
    written = study.get_trials()
    assert {t.state for t in written} == {TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL}
    stock = optuna.load_study(study_name="s", storage=JournalStorage(storage.backend))
    assert stock.get_trials() == written
    assert stock.user_attrs == {"sweep": {"grid": [1, 2]}}
    reopened = optuna.load_study(study_name="s", storage=opened(url))
    assert reopened.get_trials() == written
    assert reopened.best_trial == stock.best_trial


def test_unicode_and_nul_survive_any_server_encoding(url: str) -> None:
    study = optuna.create_study(storage=opened(url), study_name="text")
    trial = study.ask()
    odd = "Zürich → 東京 \x00 end"
    trial.set_user_attr("label", odd)
    study.tell(trial, 1.0)
    assert optuna.load_study(study_name="text", storage=opened(url)).trials[0].user_attrs == {"label": odd}


def test_a_pickled_storage_reopens_the_same_journal_with_its_heartbeat(url: str) -> None:
    storage = opened(url, heartbeat_interval=3, grace_period=9)
    optuna.create_study(storage=storage, study_name="p").optimize(lambda t: t.suggest_float("x", 0, 1), 4)
    copy = pickle.loads(pickle.dumps(storage))
    assert isinstance(copy, PostgresJournalStorage)
    assert (copy.get_heartbeat_interval(), copy.grace_period) == (3, 9)
    assert optuna.load_study(study_name="p", storage=copy).trials == storage.get_all_trials(0)


# --- order and idempotence -------------------------------------------------------------------------


def _appender(url: str, worker: int, batches: int, queue: Any) -> None:
    """Appends ``batches`` batches of 1-4 entries, half through append_and_read; reports what it saw."""
    backend = bare(url)
    seen: list[dict[str, Any]] = []
    for b in range(batches):
        logs = [{"w": worker, "b": b, "k": k} for k in range(1 + (worker + b) % 4)]
        if b % 2:
            backend.append_logs(logs)
        else:
            seen.extend(backend.append_and_read([backend.encode(x) for x in logs], len(seen)))
            seen.extend(backend.read_logs(len(seen)))
    queue.put((worker, seen))


def test_concurrent_appenders_never_let_a_reader_skip_an_entry(url: str) -> None:
    """Five processes append at once while this one reads incrementally, as a worker replays.

    Any reader that ever moved past an entry committed later (what an identity column allows)
    would end up with a log that differs from the full one read at the end.
    """
    backend = bare(url)
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_appender, args=(url, w, 80, queue)) for w in range(5)]
    for p in procs:
        p.start()
    incremental: list[dict[str, Any]] = []
    # The queue is drained while reading: an appender cannot exit before what it put there is
    # read (its feeder thread blocks on a full pipe), so waiting for the processes first can hang.
    views: dict[Any, Any] = {}
    deadline = time.monotonic() + 240
    while len(views) < len(procs):
        assert time.monotonic() < deadline, "the appenders did not finish"
        incremental.extend(backend.read_logs(len(incremental)))
        with contextlib.suppress(queue_module.Empty):
            key, seen = queue.get(timeout=0.01)
            views[key] = seen
    for p in procs:
        p.join(timeout=60)
    assert [p.exitcode for p in procs] == [0] * 5
    incremental.extend(backend.read_logs(len(incremental)))
    full = backend.read_logs(0)
    assert incremental == full
    assert len(full) == sum(1 + (w + b) % 4 for w in range(5) for b in range(80))
    # Each batch exactly once and contiguous, in the order its worker appended them.
    batches = [(x["w"], x["b"]) for x in full]
    starts = [i for i, key in enumerate(batches) if i == 0 or batches[i - 1] != key]
    assert len(starts) == 5 * 80
    for w in range(5):
        assert [b for (ww, b) in (batches[i] for i in starts) if ww == w] == list(range(80))
    # What each appender read back is a prefix of the one log.
    for seen in views.values():
        assert full[: len(seen)] == seen


class _LosesReplyAfterCommit:
    """A connection whose first statement runs and commits, then the reply is "lost"."""

    def __init__(self, real: psycopg.Connection[Any]) -> None:
        self.real, self.closed = real, False

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        self.real.execute(*args, **kwargs).fetchall()
        self.real.close()
        self.closed = True
        raise psycopg.OperationalError("server closed the connection unexpectedly")

    def close(self) -> None:
        self.real.close()


def test_an_append_whose_reply_is_lost_is_retried_and_written_once(url: str, postgres_url: str) -> None:
    storage = opened(url)
    study = optuna.create_study(storage=storage, study_name="once")
    count = "SELECT count(*) FROM fastgrid_journal_batch"
    entries, batches = storage.backend.log_count(), sql(postgres_url, url, count)[0][0]
    backend = storage.backend
    assert backend._conn is not None
    backend._conn = _LosesReplyAfterCommit(backend._conn)  # type: ignore[assignment]
    trial = study.ask()  # the create-trial append commits, loses its reply, reconnects, retries
    assert isinstance(backend._conn, psycopg.Connection)  # it did reconnect
    assert backend.log_count() == entries + 1
    assert sql(postgres_url, url, count)[0][0] == batches + 1
    study.tell(trial, 2.0)
    trials = optuna.load_study(study_name="once", storage=opened(url)).trials
    assert [(t.number, t.state, t.value) for t in trials] == [(0, TrialState.COMPLETE, 2.0)]


def test_an_append_cut_before_commit_is_retried(url: str, postgres_url: str) -> None:
    storage = opened(url)
    study = optuna.create_study(storage=storage, study_name="cut")
    backend = storage.backend
    assert backend._conn is not None
    pid = backend._conn.info.backend_pid
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    assert [t.state for t in opened(url).get_all_trials(0)] == [TrialState.COMPLETE] * 3


# --- snapshots ---------------------------------------------------------------------------------------


def test_a_late_worker_loads_the_snapshot_and_replays_only_the_tail(url: str, monkeypatch: Any) -> None:
    first = PostgresJournalStorage(opened(url).backend, snapshot_every=300)
    study = optuna.create_study(storage=first, study_name="late")
    study.optimize(lambda t: t.suggest_int("a", 0, 10**6), n_trials=200)  # about 1,000 log entries
    position = first.backend.snapshot_position()
    assert position is not None and position[0] > 0
    total = first.backend.log_count()
    read: list[int] = []
    original = PostgresJournalBackend._read

    def counting(self: PostgresJournalBackend, after: int, upto: int | None) -> list[dict[str, Any]]:
        logs = original(self, after, upto)
        read.append(len(logs))
        return logs

    monkeypatch.setattr(PostgresJournalBackend, "_read", counting)
    late = opened(url)
    assert sum(read) == total - position[0] < 300
    assert late.get_all_trials(0) == first.get_all_trials(0)
    assert len(late.get_all_trials(0)) == 200


def test_workers_take_each_others_snapshot_instead_of_writing_their_own(url: str, monkeypatch: Any) -> None:
    a = PostgresJournalStorage(opened(url).backend, snapshot_every=100)
    b = PostgresJournalStorage(opened(url).backend, snapshot_every=100)
    study_a = optuna.create_study(storage=a, study_name="two")
    study_b = optuna.load_study(study_name="two", storage=b)
    written: list[int] = []
    original = PostgresJournalBackend.save_tagged_snapshot

    def saving(self: PostgresJournalBackend, data: bytes, **kwargs: Any) -> None:
        written.append(kwargs["log_number"])
        original(self, data, **kwargs)

    monkeypatch.setattr(PostgresJournalBackend, "save_tagged_snapshot", saving)
    study_a.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=30)  # a snapshot past 100 entries
    assert len(written) == 1
    study_b.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)  # b has read past 100 too
    assert len(written) == 1 and b._snapshot_at == written[0]


def test_optunas_own_snapshot_slot_round_trips(url: str) -> None:
    backend = opened(url).backend
    assert backend.load_snapshot() is None
    backend.save_snapshot(b"\x00optuna\xff" * 1000)
    assert backend.load_snapshot() == b"\x00optuna\xff" * 1000
    assert backend.load_tagged_snapshot() is None  # fastgrid's slot is separate


def test_a_write_to_a_trial_another_worker_finished_raises_at_the_call(url: str) -> None:
    owner, other = opened(url), opened(url)
    study = optuna.create_study(storage=owner, study_name="gone-trial")
    trial = study.ask()
    other.set_trial_state_values(trial._trial_id, TrialState.FAIL)  # e.g. reaped as stale
    time.sleep(0.02)  # past the moment a read stays current
    with pytest.raises(UpdateFinishedTrialError):
        owner.set_trial_user_attr(trial._trial_id, "metrics", {"sharpe": 1.0})


def test_data_version_moves_only_when_another_process_appends(url: str) -> None:
    mine, other = opened(url), opened(url)
    study = optuna.create_study(storage=mine, study_name="dv")
    before = mine.backend.data_version()
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)  # our own appends
    assert mine.backend.data_version() == before
    optuna.load_study(study_name="dv", storage=other).optimize(lambda t: 1.0, n_trials=1)
    assert mine.backend.data_version() > before


def test_a_read_only_open_creates_and_writes_nothing(url: str, postgres_url: str) -> None:
    tables = "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()"
    with pytest.raises(ValueError) as info:
        open_storage(url, readonly=True)  # an empty schema: a report finds no journal
    assert "holds no fastgrid journal" in str(info.value) and "\n" not in str(info.value)
    assert sql(postgres_url, url, tables) == [(0,)]
    writer = PostgresJournalStorage(opened(url).backend, snapshot_every=50)
    optuna.create_study(storage=writer, study_name="ro").optimize(lambda t: 1.0, n_trials=30)
    snapshot = sql(postgres_url, url, "SELECT log_number FROM fastgrid_snapshot")
    reader = opened(url, readonly=True)
    assert len(reader.get_all_trials(0)) == 30
    reader.checkpoint()
    with pytest.raises(ValueError, match="read-only"):
        optuna.load_study(study_name="ro", storage=reader).ask()
    assert sql(postgres_url, url, "SELECT log_number FROM fastgrid_snapshot") == snapshot


# --- heartbeats --------------------------------------------------------------------------------------


def test_a_silent_trial_is_failed_by_the_servers_clock_and_a_beating_one_kept(url: str) -> None:
    storage = open_heartbeat_storage(url, directory=Path("."), interval=1, grace=2)
    assert isinstance(storage, PostgresJournalStorage)
    assert storage.get_heartbeat_stale_trial_callback() is not None
    study = optuna.create_study(study_name="hb", storage=storage)
    beat = Heartbeat(storage, interval=1, grace=2)
    assert beat.native
    alive, silent = study.ask(), study.ask()
    with beat.beating(silent._trial_id):
        pass  # its first beat is implied; then silence
    with beat.beating(alive._trial_id):
        assert beat.fail_stale(study) == []  # first sight of both: the grace period starts
        time.sleep(3.2)
        assert beat.fail_stale(study) == [silent.number]
    assert storage.get_trial(alive._trial_id).state == TrialState.RUNNING
    assert storage.get_trial(silent._trial_id).user_attrs["reason"] == STALE_REASON
    assert storage.get_trial(silent._trial_id).state == TrialState.FAIL


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used")
def test_a_trial_whose_worker_died_before_any_beat_is_still_failed(url: str, postgres_url: str) -> None:
    dead = opened(url, heartbeat_interval=1, grace_period=2)
    study = optuna.create_study(study_name="orphan", storage=dead)
    orphan = study.ask()
    dead.record_heartbeat(orphan._trial_id)  # the implied first beat: nothing is written
    assert sql(postgres_url, url, "SELECT count(*) FROM fastgrid_heartbeat")[0][0] == 0
    reaper = opened(url, heartbeat_interval=1, grace_period=2)
    assert reaper._get_stale_trial_ids(0) == []
    sql(postgres_url, url, "UPDATE fastgrid_heartbeat SET beat = beat - interval '3 seconds'")
    # Nothing is stale within the grace period of the server's start (it may have just started).
    age = "SELECT extract(epoch FROM now() - pg_postmaster_start_time())::float8"
    time.sleep(max(0.0, 2.1 - sql(postgres_url, url, age)[0][0]))
    assert reaper._get_stale_trial_ids(0) == [orphan._trial_id]


# --- bad input ---------------------------------------------------------------------------------------


def assert_one_clear_line(message: str, *needles: str) -> None:
    assert "\n" not in message and "hunter2" not in message, message
    for needle in needles:
        assert needle in message, message


@pytest.mark.parametrize("scheme", ["fastgrid+postgresql", "fastgrid+postgres"])
def test_an_unreachable_server_is_one_line_with_the_password_masked(scheme: str) -> None:
    start = time.monotonic()
    with pytest.raises(StorageConnectionError) as info:
        open_storage(f"{scheme}://bob:hunter2@127.0.0.1:1/sweeps")
    assert time.monotonic() - start < 10  # reported, not retried for the reconnect window
    assert isinstance(info.value, ConnectionError)
    assert_one_clear_line(
        str(info.value), f"{scheme}://bob:***@127.0.0.1:1/sweeps", "Connection refused", "running"
    )


def test_a_missing_database_is_named(postgres_url: str) -> None:
    url = "fastgrid+" + postgres_url.rsplit("/", 1)[0] + "/no_such_db"
    with pytest.raises(ValueError) as info:
        open_storage(url)
    assert_one_clear_line(str(info.value), 'database "no_such_db" does not exist', "createdb")


def test_a_schema_that_does_not_exist_is_named_and_nothing_is_created(postgres_url: str) -> None:
    with pytest.raises(ValueError) as info:
        open_storage(journal_url(postgres_url, "no_such_schema"))
    assert_one_clear_line(str(info.value), "no schema has been selected to create in")


def test_tables_of_another_schema_version_are_refused_and_left_alone(url: str, postgres_url: str) -> None:
    optuna.create_study(storage=opened(url), study_name="v").optimize(lambda t: 1.0, n_trials=2)
    sql(postgres_url, url, "UPDATE fastgrid_meta SET value = '99' WHERE key = 'schema'")
    before = sql(postgres_url, url, "SELECT count(*), max(log_number) FROM fastgrid_journal")
    with pytest.raises(ValueError) as info:
        open_storage(url)
    assert_one_clear_line(str(info.value), f"schema version 99, this fastgrid reads version {SCHEMA_VERSION}")
    assert sql(postgres_url, url, "SELECT count(*), max(log_number) FROM fastgrid_journal") == before


def test_tables_dropped_under_a_worker_are_one_line(url: str, postgres_url: str) -> None:
    storage = opened(url)
    sql(postgres_url, url, "DROP TABLE fastgrid_journal CASCADE")
    with pytest.raises(ValueError) as info:
        optuna.create_study(storage=storage, study_name="gone")
    assert_one_clear_line(str(info.value), 'relation "fastgrid_journal" does not exist')


def test_a_missing_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg -> ImportError
    with pytest.raises(ValueError) as info:
        open_storage("fastgrid+postgresql://bob:hunter2@db.example/sweeps")
    assert_one_clear_line(str(info.value), "psycopg is not installed", "pip install 'fastgrid[postgres]'")


@pytest.mark.parametrize(
    ("url", "fix"),
    [
        ("fastgrid+postgresql://bob:hunter2@h/db?bogus=1", 'invalid URI query parameter: "bogus"'),
        ("fastgrid+postgresql://bob:hunter2@h/db?reconnect_timeout=soon", "reconnect_timeout must be"),
    ],
)
def test_malformed_urls_are_one_line_naming_the_fix(url: str, fix: str) -> None:
    with pytest.raises(ValueError) as info:
        open_storage(url)
    assert_one_clear_line(str(info.value), fix, "bob:***@")


def test_the_cli_reports_an_unreachable_server_in_one_line_and_exits_2(tmp_path: Path) -> None:
    (tmp_path / "objective.py").write_text("def run(cfg):\n    return cfg['x']\n")
    sweep = tmp_path / "s.toml"
    sweep.write_text(
        textwrap.dedent(
            """
            [sweep]
            name = "s"
            direction = "minimize"
            [objective]
            callable = "objective:run"
            [parameters]
            x = [1, 2]
            """
        )
    )
    url = "fastgrid+postgresql://bob:hunter2@127.0.0.1:1/sweeps"
    out = subprocess.run(
        [sys.executable, "-m", "fastgrid", "worker", str(sweep), "--storage", url],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2, out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, out.stderr
    assert_one_clear_line(lines[0], "bob:***@127.0.0.1:1", "Connection refused")
