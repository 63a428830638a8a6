"""``fastgrid export``: the CLI face of fastgrid.storage.export_study."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import optuna
from fastgrid.storages import open_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _fastgrid(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fastgrid", *args], cwd=cwd, capture_output=True, text=True, check=False
    )


def test_export_from_the_default_store(tmp_path: Path) -> None:
    study = optuna.create_study(storage=open_storage(None, directory=tmp_path), study_name="sweep")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=4)
    out = _fastgrid("export", "sweep", "--to", "sqlite:///export.db", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "exported study 'sweep' to sqlite:///export.db" in out.stdout
    exported = optuna.load_study(study_name="sweep", storage=f"sqlite:///{tmp_path / 'export.db'}")
    assert [t.params for t in exported.trials] == [t.params for t in study.trials]


def test_export_errors_are_one_line_and_redacted(tmp_path: Path) -> None:
    optuna.create_study(storage=open_storage(tmp_path / "src.db"), study_name="sweep")
    missing = _fastgrid("export", "nope", "--storage", "src.db", "--to", "sqlite:///x.db", cwd=tmp_path)
    assert missing.returncode == 2
    assert "no study named 'nope'" in missing.stderr and "Traceback" not in missing.stderr
    bad = _fastgrid("export", "sweep", "--storage", "src.db", "--to", "ftp://u:hunter2@h/x", cwd=tmp_path)
    assert bad.returncode == 2
    assert "unknown scheme 'ftp'" in bad.stderr and "hunter2" not in bad.stderr


def test_a_to_that_is_neither_a_storage_nor_a_table_names_both(tmp_path: Path) -> None:
    optuna.create_study(storage=open_storage(tmp_path / "src.db"), study_name="sweep")
    done = _fastgrid("export", "sweep", "--storage", "src.db", "--to", "points.json", cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith("error: --to storage 'points.json': a plain path must end in .db")
    assert done.stderr.rstrip().endswith("- a file ending .csv or .parquet → the results as a table")
    assert not (tmp_path / "points.json").exists()
