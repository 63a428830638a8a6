"""``fastgrid report --storage URL --study NAME`` names the objective columns after the sweep's metrics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import fastgrid
import optuna


def fastgrid_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    out = subprocess.run(
        [sys.executable, "-m", "fastgrid", *args], cwd=cwd, capture_output=True, text=True, env=env
    )
    assert out.returncode == 0, out.stderr
    return out


def backtest(config: dict[str, Any]) -> dict[str, float]:
    return {"sharpe": config["fast"] / 10, "drawdown": config["fast"] / 100, "trades": 12.0}


def header(stdout: str) -> list[str]:
    line = next(s for s in stdout.splitlines() if s.lstrip().startswith(("#", "┃")) and "#" in s)
    return line.replace("┃", " ").replace("|", " ").split()


def one_metric_study(tmp_path: Path) -> str:
    """A finished study "one" of three trials maximizing "sharpe"; returns its storage URL."""
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    fastgrid.Sweep(
        name="one",
        parameters={"fast": {"type": "grid", "values": [1, 2, 3]}},
        objective=backtest,
        metric="sharpe",
        direction="maximize",
        storage=url,
        directory=tmp_path,
        progress=False,
    ).run()
    return url


def test_a_single_metric_study_is_reported_under_its_metric_name(tmp_path: Path) -> None:
    url = one_metric_study(tmp_path)
    out = fastgrid_cli("report", "--storage", url, "--study", "one", "--json", "r.json", cwd=tmp_path)
    assert header(out.stdout)[:2] == ["#", "sharpe"]
    assert "(maximize sharpe)" in out.stdout
    assert "best trial: #2 sharpe=0.3" in out.stdout
    assert json.loads((tmp_path / "r.json").read_text())["metrics"] == ["sharpe"]


def test_report_dash_writes_json_or_csv_to_stdout_and_the_summary_to_stderr(tmp_path: Path) -> None:
    url = one_metric_study(tmp_path)
    out = fastgrid_cli("report", "--storage", url, "--study", "one", "--json", "-", cwd=tmp_path)
    assert json.loads(out.stdout)["best"]["params"] == {"fast": 3}
    assert "best trial: #2 sharpe=0.3" in out.stderr
    assert not (tmp_path / "-").exists()
    out = fastgrid_cli("report", "--storage", url, "--study", "one", "--csv", "-", cwd=tmp_path)
    lines = out.stdout.splitlines()
    assert lines[0].startswith("number,state,value,params.fast") and len(lines) == 4
    assert "best trial: #2" in out.stderr and not (tmp_path / "-").exists()
    args = ["report", "--storage", url, "--study", "one", "--json", "-", "--csv", "-"]
    both = subprocess.run(
        [sys.executable, "-m", "fastgrid", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert both.returncode == 2 and "only one of --json, --csv" in both.stderr, both.stderr


def test_a_multi_objective_study_names_every_objective(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    fastgrid.Sweep(
        name="two",
        parameters={"fast": {"type": "grid", "values": [1, 2]}},
        objective=backtest,
        metrics=["sharpe", "drawdown"],
        direction=["maximize", "minimize"],
        storage=url,
        directory=tmp_path,
        progress=False,
    ).run()
    out = fastgrid_cli("report", "--storage", url, "--study", "two", cwd=tmp_path)
    assert header(out.stdout)[:3] == ["#", "sharpe", "drawdown"]
    # The metric that is not an objective stays an extra column.
    assert "trades" in header(out.stdout)


def test_a_study_without_fastgrid_metadata_keeps_generic_names(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'plain.db'}"
    study = optuna.create_study(study_name="plain", storage=url)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    out = fastgrid_cli("report", "--storage", url, "--study", "plain", cwd=tmp_path)
    assert header(out.stdout)[:2] == ["#", "value"]


def test_a_plain_optuna_study_with_metric_names_uses_them(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'named.db'}"
    study = optuna.create_study(study_name="named", storage=url)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(["loss"])
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    out = fastgrid_cli("report", "--storage", url, "--study", "named", cwd=tmp_path)
    assert header(out.stdout)[:2] == ["#", "loss"]
