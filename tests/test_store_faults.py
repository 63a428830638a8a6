"""The embedded store when its file is not what it should be (issue 12, items 6 and 7).

Not a database, truncated, another program's (an Optuna RDB file above all), read-only, or on a full
disk: ``fastgrid run`` and ``fastgrid report`` print one line naming the file and exit 2, and nothing
is written to a file that is not a fastgrid store.
"""

from __future__ import annotations

import gc
import os
import sqlite3
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import optuna
import pytest
from click.testing import CliRunner
from fastgrid.cli import main
from fastgrid.exceptions import StoreError
from fastgrid.storages import open_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)

SWEEP = textwrap.dedent(
    """
    [sweep]
    name = "s"
    direction = "minimize"
    storage = "{storage}"

    [objective]
    callable = "objective:run"

    [parameters]
    x = {{ type = "int", low = 0, high = 3 }}
    """
)


def make_sweep(folder: Path, storage: str = "store.db") -> Path:
    (folder / "objective.py").write_text("def run(cfg):\n    return cfg['x'] * 1.0\n")
    path = folder / "sweep.toml"
    path.write_text(SWEEP.format(storage=storage))
    return path


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str


def fastgrid(*args: str, cwd: Path) -> Done:
    """The CLI in this process (an interpreter start per call would triple the file's time)."""
    before = Path.cwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(main, list(args))
    finally:
        os.chdir(before)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Done(result.exit_code, result.stdout, result.stderr)


def one_line_error(proc: Done | subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def optuna_sqlite(path: Path) -> None:
    study = optuna.create_study(storage=f"sqlite:///{path}", study_name="s")
    study.optimize(lambda t: t.suggest_int("x", 0, 3), n_trials=2)
    study._storage._backend.engine.dispose()  # type: ignore[attr-defined]


# -- item 7: another program's SQLite database --------------------------------------------------
def test_an_optuna_sqlite_database_given_as_a_path_is_refused_and_left_untouched(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    optuna_sqlite(db)
    before = db.read_bytes()
    make_sweep(tmp_path)
    run = subprocess.run(  # once through the real entry point
        [sys.executable, "-m", "fastgrid", "run", "sweep.toml", "--no-progress"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    one_line_error(run, str(db), "Optuna", f"sqlite:///{db}")
    one_line_error(fastgrid("report", "sweep.toml", cwd=tmp_path), str(db), "Optuna", f"sqlite:///{db}")
    assert db.read_bytes() == before
    assert not Path(f"{db}-wal").exists()
    # And the URL it points at opens it.
    assert len(optuna.load_study(study_name="s", storage=f"sqlite:///{db}").trials) == 2


def test_a_database_of_another_program_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "other.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE accounts (id INTEGER)")
    conn.close()
    with pytest.raises(StoreError, match=r"another program \(tables: accounts"):
        open_storage(db)


# -- item 6: damaged, read-only, full -----------------------------------------------------------
def stored_sweep(folder: Path) -> Path:
    make_sweep(folder)
    proc = fastgrid("run", "sweep.toml", "--no-progress", cwd=folder)
    assert proc.returncode == 0, proc.stderr
    # The run's connections close with their storage: SQLite shares a file's locks and WAL index
    # among the connections of one process, so a live one would mask what is done to the file.
    gc.collect()
    return folder / "store.db"


@pytest.mark.parametrize(
    ("damage", "needle"),
    [
        (lambda p: p.write_bytes(b"this is not a database at all\n" * 100), "not an SQLite database"),
        (lambda p: p.write_bytes(p.read_bytes()[:1500]), "damaged"),
        (lambda p: p.write_bytes(b"SQLite format 3\x00" + os.urandom(4096)), "not a fastgrid store"),
    ],
    ids=["not-a-database", "truncated", "garbage-after-header"],
)
def test_a_damaged_store_is_one_line_naming_it_from_run_and_report(
    tmp_path: Path, damage: object, needle: str
) -> None:
    db = stored_sweep(tmp_path)
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    damage(db)  # type: ignore[operator]
    for command in (("run", "sweep.toml", "--no-progress"), ("report", "sweep.toml")):
        one_line_error(fastgrid(*command, cwd=tmp_path), str(db))
    with pytest.raises(StoreError) as info:
        open_storage(db)
    assert str(info.value).startswith(str(db)) and "\n" not in str(info.value)


def read_only(paths: list[Path], *, on: bool) -> None:
    """chmod for a user; root writes whatever the mode says, so it gets the immutable flag."""
    if os.geteuid() != 0:
        for path in paths:
            path.chmod((0o555 if path.is_dir() else 0o444) if on else (0o755 if path.is_dir() else 0o644))
        return
    done = subprocess.run(["chattr", "+i" if on else "-i", *map(str, paths)], capture_output=True)
    if on and done.returncode != 0:
        pytest.skip(f"running as root and cannot set the immutable flag: {done.stderr!r}")


@pytest.mark.parametrize("mode", ["trial", "batch"])
@pytest.mark.parametrize("checkpointed", [True, False], ids=["checkpointed", "with-wal"])
def test_a_read_only_store_reports_and_refuses_to_run_in_one_line(
    tmp_path: Path, checkpointed: bool, mode: str
) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    # A batch sweep's report read its chunk store opened for writing: it failed here.
    db = stored_sweep(folder) if mode == "trial" else stored_batch_sweep(folder)
    file, reported = (
        ("sweep.toml", "complete") if mode == "trial" else ("b.toml", "best point: slot 25 score=11")
    )
    if checkpointed:
        with sqlite3.connect(db) as conn:  # the last connection to close removes -wal and -shm
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
    paths = [*sorted(folder.glob("store.db*")), folder]
    before = {p: p.read_bytes() for p in paths if p.is_file()}
    read_only(paths, on=True)
    try:
        report = fastgrid("report", file, cwd=folder)
        assert report.returncode == 0, report.stderr
        assert reported in report.stdout, report.stdout
        one_line_error(fastgrid("run", file, "--no-progress", "--fresh", cwd=folder), str(db))
    finally:
        read_only(paths, on=False)
    assert {p: p.read_bytes() for p in paths if p.is_file()} == before


def test_report_creates_no_store_where_there_is_none(tmp_path: Path) -> None:
    make_sweep(tmp_path)
    proc = fastgrid("report", "sweep.toml", cwd=tmp_path)
    assert proc.returncode == 2 and "no sweep named 's'" in proc.stderr, proc.stderr
    assert not (tmp_path / "store.db").exists()


def test_a_full_disk_is_one_line_and_the_store_resumes_afterwards(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = stored_sweep(tmp_path)
    # A store that may not grow past its current pages stands in for a full disk.
    from fastgrid.storages.embedded import _journal

    real = _journal.SQLiteJournalBackend._prepare

    def full(self: _journal.SQLiteJournalBackend, conn: sqlite3.Connection) -> None:
        real(self, conn)
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")

    with monkeypatch.context() as patch:
        patch.setattr(_journal.SQLiteJournalBackend, "_prepare", full)
        one_line_error(
            fastgrid("run", "sweep.toml", "--no-progress", "--fresh", cwd=tmp_path), str(db), "disk is full"
        )
    resumed = fastgrid("run", "sweep.toml", "--no-progress", "--fresh", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr


# -- the same faults for a batch sweep's chunk store (the same fastgrid.db; fastgrid.sqlitefile) --

BATCH_SWEEP = textwrap.dedent(
    """
    [sweep]
    name = "b"
    direction = "maximize"
    metric = "score"
    mode = "batch"
    chunk = 8
    storage = "store.db"

    [objective]
    batch = "storefaults_batch:score"

    [parameters]
    a = { type = "grid", values = [1, 2, 3, 4, 5, 6] }
    b = { type = "grid", values = [1, 2, 3, 4, 5] }
    """
)


def stored_batch_sweep(folder: Path) -> Path:
    # A module name of this file's own: the CLI runs in this process, where other test files
    # leave their `batchobj` imported.
    sys.modules.pop("storefaults_batch", None)
    (folder / "storefaults_batch.py").write_text(
        "def score(cols, config):\n    return {'score': cols['a'] * 2.0 - cols['b']}\n"
    )
    (folder / "b.toml").write_text(BATCH_SWEEP)
    proc = fastgrid("run", "b.toml", "--no-progress", cwd=folder)
    assert proc.returncode == 0, proc.stderr
    gc.collect()
    return folder / "store.db"


def test_a_full_disk_under_a_batch_sweep_is_one_line_and_it_resumes_afterwards(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = stored_batch_sweep(tmp_path)
    from fastgrid.batch import BatchStore

    real = BatchStore._prepare

    def full(self: BatchStore, conn: sqlite3.Connection) -> None:
        real(self, conn)
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")

    # A second, bigger sweep in the same store needs pages the first one did not free.
    bigger = BATCH_SWEEP.replace('name = "b"', 'name = "c"').replace(
        'b = { type = "grid", values = [1, 2, 3, 4, 5] }', 'b = { type = "int", low = 0, high = 1999 }'
    )
    (tmp_path / "c.toml").write_text(bigger)
    with monkeypatch.context() as patch:
        patch.setattr(BatchStore, "_prepare", full)
        one_line_error(fastgrid("run", "c.toml", "--no-progress", cwd=tmp_path), str(db), "disk is full")
    resumed = fastgrid("run", "c.toml", "--no-progress", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "sweep c: 12,000 of 12,000 points done (0 failed" in resumed.stdout, resumed.stdout


def test_a_batch_store_deleted_while_in_use_is_not_silently_made_again(tmp_path: Path) -> None:
    from fastgrid.batch import BatchStore

    db = stored_batch_sweep(tmp_path)
    store = BatchStore(db)
    assert store.sweep("b") is not None
    store.close()
    for path in tmp_path.glob("store.db*"):
        path.unlink()
    with pytest.raises(StoreError, match="deleted or moved while in use"):
        store.sweep("b")
    assert not db.exists()
