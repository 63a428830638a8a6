"""Inputs a new user writes that used to fail obscurely (issue 11): nested and Series results, metric
names with spaces, every sweep-file problem at once, storage URLs, the dashboard, ``fastgrid results``
on a sweep file."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import fastgrid
import numpy as np
import optuna
import pandas as pd
import pytest
from click.testing import CliRunner
from fastgrid import Expression, SweepFileError
from fastgrid.cli import main
from fastgrid.storages import EmbeddedStorage, open_storage
from fastgrid.sweepfile import load_sweep_file


def sweep(tmp_path: Path, **kw: Any) -> fastgrid.Sweep:
    args: dict[str, Any] = {
        "name": "u",
        "parameters": {"x": {"type": "int", "low": 1, "high": 4}},
        "direction": "maximize",
        "directory": tmp_path,
        "progress": False,
    }
    args.update(kw)
    return fastgrid.Sweep(**args)


# -- 10. nested results, Series results, names with spaces -------------------------------------------
def test_a_dotted_metric_reads_a_nested_command_result_also_in_require(tmp_path: Path) -> None:
    script = tmp_path / "bt.py"
    script.write_text(
        "import json, sys\n"
        "cfg = json.load(open(sys.argv[1]))\n"
        "print(json.dumps({'config': cfg, 'metrics': {'sharpe': cfg['x'] / 2, 'trades': cfg['x']}}))\n"
    )
    result = sweep(
        tmp_path,
        objective=[sys.executable, str(script), "{config_file}"],
        metric="metrics.sharpe",
        require=["metrics.trades >= 2"],
    ).run()
    assert result.counts == {**result.counts, "complete": 4, "failed": 0, "infeasible": 1}
    assert result.best is not None and result.best["values"] == [2.0]


def backtesting_stats(config: dict[str, Any]) -> pd.Series:
    """What backtesting.py's ``Backtest.run()`` returns: a Series of numbers, timestamps and frames."""
    x = config["x"]
    return pd.Series(
        {
            "Start": pd.Timestamp("2024-01-01"),
            "Duration": pd.Timedelta(days=30),
            "Return [%]": np.float64(x * 1.5),
            "Sharpe Ratio": np.float64(x / 4),
            "# Trades": np.int64(x),
            "Win Rate [%]": np.nan,
            "_equity_curve": pd.DataFrame({"Equity": [1.0, 2.0]}),
            "_trades": pd.DataFrame(),
            "_strategy": "SmaCross",
        },
        dtype=object,
    )


def test_a_series_result_gives_its_scalar_numbers_as_metrics_and_quoted_names_work_in_require(
    tmp_path: Path,
) -> None:
    result = sweep(
        tmp_path, objective=backtesting_stats, metric="Sharpe Ratio", require=["`# Trades` >= 2"]
    ).run()
    assert result.counts["complete"] == 4 and result.counts["infeasible"] == 1
    best = result.best
    assert best is not None and best["values"] == [1.0]
    assert best["metrics"] == {"Return [%]": 6.0, "Sharpe Ratio": 1.0, "# Trades": 4, "Win Rate [%]": None}
    assert "metrics.# Trades" in result.to_pandas().columns


def test_backticks_quote_a_metric_name_and_suggestions_show_them() -> None:
    expr = Expression("`Return [%]` >= 0 and `# Trades` > 5")
    assert expr.names == ("Return [%]", "# Trades")
    assert expr.evaluate({"Return [%]": 1.5, "# Trades": 7})
    with pytest.raises(ValueError, match=r"unknown name 'Return' \(did you mean `Return \[%\]`\?\)"):
        Expression("Return >= 0").evaluate({"Return [%]": 1.5})


# -- 15. every problem of a sweep file at once ----------------------------------------------------------
def test_every_parameter_problem_is_listed_with_the_sweep_problems_and_did_you_mean(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(
        "[sweep]\n"
        'direction = "maximize"\n'
        "workerz = 2\n"
        "[objective]\n"
        'callable = "m:f"\n'
        "[parameters]\n"
        'fast = { type = "int", lo = 5, high = 50 }\n'
        'slow = { type = "int", lo = 20, high = 200, stepp = 10 }\n'
        'mode = { type = "categorical", values = ["long", "short"] }\n'
        'stop = { type = "integer", low = 1, high = 3 }\n'
        "risk.size = 0.5\n"
    )
    with pytest.raises(SweepFileError) as info:
        load_sweep_file(path)
    assert info.value.problems == [
        "sweep.workerz: unknown key (did you mean 'workers'?); allowed keys: "
        + ", ".join(sorted(fastgrid.sweepfile.SweepSection.model_fields)),
        'parameters.fast: unknown field "lo" (did you mean "low"?) for type "int" '
        "(allowed: low, high, step, log)",
        'parameters.slow: unknown fields "lo" (did you mean "low"?), "stepp" (did you mean "step"?) '
        'for type "int" (allowed: low, high, step, log)',
        'parameters.mode: unknown type "categorical" (did you mean "grid"?) '
        "(expected one of grid, fixed, int, float, loguniform)",
        'parameters.stop: unknown type "integer" (did you mean "int"?) '
        "(expected one of grid, fixed, int, float, loguniform)",
    ]
    assert str(info.value).count(str(path)) == 1


def test_every_parameter_problem_is_listed_once_the_rest_is_valid(tmp_path: Path) -> None:
    with pytest.raises(SweepFileError) as info:
        sweep(
            tmp_path,
            objective=lambda c: 1.0,
            parameters={
                "a": {"type": "float", "low": 0, "high": 1},
                "b": {"type": "grid", "values": []},
                "ns": {"c": {"type": "int", "low": 3, "high": 1}},
            },
            where=["a < zz"],
        )
    assert info.value.problems == [
        "parameters.a: a float range without `step` or `num` is continuous; a grid needs `step = ...` "
        "(values low, low+step, ...) or `num = ...` (evenly spaced, both ends included)",
        "parameters.b: `values` is empty; a grid axis needs at least one choice",
        "parameters.ns.c: `low` (3) is greater than `high` (1)",
    ]


# -- 16. storage URLs and the dashboard -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("sqlite://study.db", "three slashes before a relative path (sqlite:///study.db)"),
        ("sqlite:///missing/study.db", "the folder"),
        ("missing/store.db", "the folder"),
        ("fastgrid:///missing/store.db", "the folder"),
        ("missing/trials.log", "the folder"),
    ],
)
def test_storage_urls_that_cannot_work_say_why(tmp_path: Path, url: str, needle: str) -> None:
    with pytest.raises(ValueError, match="storage ") as info:
        open_storage(url, directory=tmp_path)
    assert needle in str(info.value)
    if "folder" in needle:
        assert f"{tmp_path / 'missing'}' does not exist; create it first" in str(info.value)
    assert not (tmp_path / "missing").exists()


def test_a_missing_postgresql_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in ("psycopg", "psycopg2"):
        monkeypatch.setitem(sys.modules, module, None)
    for url in ("postgresql://bob:hunter2@127.0.0.1:1/x", "postgres://bob:hunter2@127.0.0.1:1/x"):
        with pytest.raises(ValueError) as info:
            open_storage(url)
        assert "pip install 'fastgrid[postgres]'" in str(info.value) and "hunter2" not in str(info.value)


def test_a_postgres_url_is_a_postgresql_url(postgres_url: str) -> None:
    url = postgres_url.replace("postgresql://", "postgres://", 1)
    study = optuna.create_study(study_name="heroku-style", storage=open_storage(url))
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    assert len(optuna.load_study(study_name="heroku-style", storage=postgres_url).trials) == 2


def test_the_dashboard_command_serves_the_embedded_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    optuna_dashboard = pytest.importorskip("optuna_dashboard")
    (tmp_path / "dashboard_strategy.py").write_text("def run(config):\n    return config['x'] * 1.0\n")
    path = tmp_path / "s.toml"
    path.write_text(
        '[sweep]\ndirection = "maximize"\n[objective]\ncallable = "dashboard_strategy:run"\n'
        '[parameters]\nx = { type = "int", low = 0, high = 4 }\n'
    )
    monkeypatch.chdir(tmp_path)
    fastgrid.Sweep.from_file(path, progress=False).run()
    served: list[Any] = []
    monkeypatch.setattr(optuna_dashboard, "run_server", lambda storage, **kw: served.append((storage, kw)))
    out = CliRunner().invoke(main, ["dashboard", str(path), "--port", "8123"])
    assert out.exit_code == 0, out.output
    ((storage, options),) = served
    assert isinstance(storage, EmbeddedStorage) and options == {"host": "127.0.0.1", "port": 8123}
    from wsgiref.util import setup_testing_defaults

    environ: dict[str, Any] = {
        "PATH_INFO": "/api/studies",
        "REQUEST_METHOD": "GET",
        "wsgi.input": io.BytesIO(),
    }
    setup_testing_defaults(environ)
    body = b"".join(optuna_dashboard.wsgi(storage)(environ, lambda *a: None))
    (summary,) = json.loads(body)["study_summaries"]
    assert summary["study_name"] == "s"


# -- 17. fastgrid results on a sweep file -------------------------------------------------------------------
def test_results_reads_a_sweep_files_results_section_and_warns_of_unmatched_files(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    for stamp in ("20240101", "20240102"):
        (folder / f"BTC-1h-{stamp}.json").write_text("{}")
    (folder / "ETH_4h_20240101.json").write_text("{}")
    path = tmp_path / "s.toml"
    path.write_text(
        '[sweep]\ndirection = "maximize"\n'
        '[objective]\ncommand = ["python", "bt.py"]\n'
        'results = { dir = "out", pattern = "{symbol}-{timeframe}-{stamp}.json", '
        'key = { symbol = "BTC", timeframe = "1h" } }\n'
        "[parameters]\nx = 1\n"
    )
    out = CliRunner().invoke(main, ["results", str(path), "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout) == [
        {"symbol": "BTC", "timeframe": "1h", "path": str(folder / "BTC-1h-20240102.json")}
    ]
    plain = CliRunner().invoke(main, ["results", str(folder), "--json"])
    assert plain.exit_code == 0
    assert "warning: 2 of 3 files" in plain.stderr and "'BTC-1h-2024010" in plain.stderr
    assert "warning" not in out.stderr
    (tmp_path / "bare.toml").write_text(path.read_text().split("results =")[0] + "[parameters]\nx = 1\n")
    missing = CliRunner().invoke(main, ["results", str(tmp_path / "bare.toml")])
    assert missing.exit_code == 2 and "no [objective.results] section" in missing.output
