"""What a new user gets wrong, caught before (or at the first trial of) a run, never a silent wrong answer.

Issue 11: a ``require`` naming a metric the objective does not return, a missing ``direction``, a
bare list meant as an axis, a systematic error burning the whole grid, budgets that restart with
every resume, and what a run prints.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from click.testing import CliRunner
from fastgrid import Sweep, SweepFileError, open_storage
from fastgrid.cli import main
from fastgrid.exceptions import SweepAbortedError
from fastgrid.runner import BARE_LIST_HINT
from fastgrid.study import budget_trials

CALLS: list[dict[str, Any]] = []


@pytest.fixture(autouse=True)
def _reset() -> None:
    CALLS.clear()


def backtest(config: dict[str, Any]) -> dict[str, Any]:
    CALLS.append(json.loads(json.dumps(config)))
    return {"sharpe": config["fast"] / config["slow"], "trades": config["fast"]}


def broken(config: dict[str, Any]) -> float:
    CALLS.append(config)
    return config["fast"] + "bars"  # type: ignore[no-any-return]  # the TypeError of issue 11


def grid(n: int = 10) -> dict[str, Any]:
    return {"fast": {"type": "int", "low": 1, "high": n}, "slow": {"type": "grid", "values": [20, 40]}}


def make(tmp_path: Path, **kw: Any) -> Sweep:
    args: dict[str, Any] = {
        "name": "g",
        "parameters": grid(),
        "objective": backtest,
        "metric": "sharpe",
        "direction": "maximize",
        "directory": tmp_path,
        "progress": False,
    }
    args.update(kw)
    return Sweep(**args)


def load(tmp_path: Path, name: str = "g") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=open_storage(None, directory=tmp_path))


# -- 1. require naming a metric the objective did not return -----------------------------------------
def test_a_require_naming_no_returned_metric_fails_the_sweep_at_its_first_trial(tmp_path: Path) -> None:
    with pytest.raises(SweepFileError) as info:
        make(tmp_path, require=["num_trades >= 15"]).run()
    (problem,) = info.value.problems
    assert problem.startswith("constraints.require[0]: ")
    assert "unknown name 'num_trades' (did you mean 'trades'?)" in problem
    assert "sharpe, trades" in problem and "(trial 0)" in problem
    assert len(CALLS) == 1  # not a grid of "ok infeasible" trials
    (trial,) = load(tmp_path).trials
    assert trial.state.name == "FAIL" and "num_trades" in trial.user_attrs["reason"]


def test_a_broken_require_is_infeasible_with_its_reason_and_a_dotted_name_reads_nested_metrics(
    tmp_path: Path,
) -> None:
    def nested(config: dict[str, Any]) -> dict[str, Any]:
        return {"sharpe": float(config["fast"]), "stats": {"trades": config["fast"]}}

    result = make(tmp_path, objective=nested, require=["stats.trades >= 5"]).run()
    infeasible = [r for r in result.rows if not r["feasible"]]
    assert {r["params"]["fast"] for r in infeasible} == {1, 2, 3, 4}
    assert all(r["reason"] == "infeasible: stats.trades >= 5" for r in infeasible)


# -- 2. direction -----------------------------------------------------------------------------------
def test_a_sweep_without_direction_is_refused_naming_both_choices(tmp_path: Path) -> None:
    with pytest.raises(SweepFileError) as info:
        Sweep(parameters=grid(), objective=backtest, metric="sharpe", directory=tmp_path)
    (problem,) = info.value.problems
    assert problem.startswith("sweep.direction: required") and '"maximize" or "minimize"' in problem
    path = tmp_path / "s.toml"
    path.write_text('[sweep]\nmetric = "sharpe"\n[objective]\ncallable = "m:f"\n[parameters]\nx = [1]\n')
    out = CliRunner().invoke(main, ["run", str(path)])
    assert out.exit_code == 2 and "sweep.direction: required" in out.output


def test_the_first_line_and_the_summary_name_the_direction_and_metric(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make(tmp_path).run()
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "sweep g: maximize sharpe over a grid of 20 points"
    assert "best: trial 18, 0.5 (maximize sharpe)" in err


# -- 3. a bare list meant as an axis, and the start block -----------------------------------------------
def test_a_bare_list_replacing_a_number_of_the_default_config_is_refused_with_the_fix(tmp_path: Path) -> None:
    config = {"fast": 5, "slow": 20, "stop_loss": 0.05, "levels": [1, 2]}
    with pytest.raises(SweepFileError) as info:
        make(tmp_path, config=config, parameters={**grid(), "stop_loss": [0.03, 0.05]}).run()
    (problem,) = info.value.problems
    assert problem.startswith("parameters.stop_loss: a bare list is ONE fixed value")
    assert "the default config's stop_loss is a number (0.05)" in problem
    assert 'stop_loss = { type = "grid", values = [0.03, 0.05] }' in problem
    assert CALLS == []
    # A list replacing a list, and a list written as an explicit fixed value, are what they say.
    make(tmp_path, config=config, parameters={**grid(2), "levels": [3]}).run()
    assert CALLS[0]["levels"] == [3]
    fixed = {"type": "fixed", "value": [0.03]}
    make(tmp_path, name="h", config=config, parameters={**grid(2), "stop_loss": fixed}).run()
    assert CALLS[-1]["stop_loss"] == [0.03]


def test_the_start_block_shows_varying_and_fixed_parameters_constraints_and_the_total(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    params = {**grid(), "costs": {"fee": 0.001}, "windows": [5, 10]}
    make(tmp_path, parameters=params, where=["fast < 8"], require=["trades >= 2"], max_trials=3).run()
    err = capsys.readouterr().err.splitlines()
    block = err[
        : err.index("  budget   max_trials = 3 counts the study's trials: 0 held, up to 3 this run") + 1
    ]
    assert block == [
        "sweep g: maximize sharpe over a grid of 14 points (20 before where)",
        "  varying  fast: 10 values 1..10",
        "           slow: 2 values 20, 40",
        "  fixed    costs.fee = 0.001",
        "           windows = [5, 10]  (" + BARE_LIST_HINT + ")",
        "  where    fast < 8",
        "  require  trades >= 2",
        "  budget   max_trials = 3 counts the study's trials: 0 held, up to 3 this run",
    ]


# -- 4. fail fast and --check -------------------------------------------------------------------------
def test_the_first_trials_failing_the_same_way_stop_the_sweep_with_the_reason_and_a_log(
    tmp_path: Path,
) -> None:
    with pytest.raises(SweepAbortedError) as info:
        make(tmp_path, objective=broken, parameters=grid(50)).run()
    err = info.value
    assert len(CALLS) == 5 and err.trials == [0, 1, 2, 3, 4]
    assert err.reason == "TypeError: unsupported operand type(s) for +: 'int' and 'str'"
    assert err.evidence == str(tmp_path / "runs" / "g" / "trial_0" / "error.log")
    assert "Traceback" in Path(err.evidence).read_text()
    assert "--check" in str(err) and "fail_fast = 0" in str(err)
    # The trials are recorded: a fixed objective runs those points again.
    assert [t.state.name for t in load(tmp_path).trials] == ["FAIL"] * 5


def test_fail_fast_is_configurable_and_different_reasons_do_not_trip_it(tmp_path: Path) -> None:
    make(tmp_path, objective=broken, parameters=grid(4), fail_fast=0, retry_failed=0).run()
    assert len(CALLS) == 8
    CALLS.clear()

    def odd(config: dict[str, Any]) -> float:
        CALLS.append(config)
        raise (KeyError if config["fast"] % 2 else ValueError)(f"window {config['fast']}")

    result = make(tmp_path, name="odd", objective=odd, parameters=grid(4), retry_failed=0).run()
    assert len(CALLS) == 8 and result.counts["failed"] == 8
    CALLS.clear()

    def numbers_differ(config: dict[str, Any]) -> float:
        CALLS.append(config)
        raise ValueError(f"window {config['fast']} is longer than the {config['slow']} bars")

    with pytest.raises(SweepAbortedError):
        make(tmp_path, name="nd", objective=numbers_differ, parameters=grid(9), fail_fast=3).run()
    assert len(CALLS) == 3


def test_run_check_runs_one_point_with_its_full_traceback_and_records_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "checked_strategy.py").write_text(
        "def run(config):\n    return helper(config)\n\n"
        "def helper(config):\n    return config['fast'] + 'bars'\n"
    )
    path = tmp_path / "s.toml"
    path.write_text(
        '[sweep]\ndirection = "maximize"\n[objective]\ncallable = "checked_strategy:run"\n'
        '[parameters]\nfast = { type = "int", low = 5, high = 9 }\n'
    )
    runner = CliRunner()
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    out = runner.invoke(main, ["run", str(path), "--check", "--point", "2"])
    assert out.exit_code == 1, out.output
    assert 'checking point 2 of sweep s: {"fast": 7}' in out.output
    assert "Traceback (most recent call last)" in out.output and "in helper" in out.output
    assert "FAIL: TypeError: unsupported operand" in out.output
    assert list(work.iterdir()) == []  # no store, no runs/ folder
    path.write_text(path.read_text().replace("checked_strategy:run", "fixed_strategy:run"))
    (tmp_path / "fixed_strategy.py").write_text(
        "def run(config):\n    return {'value': config['fast'], 'n': 3}\n"
    )
    out = runner.invoke(main, ["run", str(path), "--check"])
    assert out.exit_code == 0, out.output
    assert 'metrics: {"value": 5, "n": 3}' in out.output


# -- 5. budgets per study ------------------------------------------------------------------------------
def test_max_trials_counts_the_studys_trials_and_more_extends_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    search = {"sampler": {"name": "random", "seed": 1}, "max_trials": 4, "parameters": grid(1000)}
    first = make(tmp_path, **search).run()
    assert first.ran == 4
    again = make(tmp_path, **search).run()  # issue 11: a resume ran max_trials more
    assert again.ran == 0 and len(load(tmp_path).trials) == 4
    assert "run again with --more N (Sweep(more=N)) to run N more" in capsys.readouterr().err
    more = make(tmp_path, more=3, **search).run()
    assert more.ran == 3 and len(load(tmp_path).trials) == 7


def test_interrupted_stale_and_exhausted_trials_do_not_count_toward_max_trials() -> None:
    def trial(state: str, reason: str | None = None, **system: Any) -> optuna.trial.FrozenTrial:
        values = {"value": 1.0} if state == "COMPLETE" else {}
        return optuna.trial.create_trial(
            state=optuna.trial.TrialState[state],
            user_attrs={"reason": reason} if reason else {},
            system_attrs=system,
            **values,
        )

    trials = [
        trial("COMPLETE"),
        trial("FAIL", "TypeError: x"),
        trial("PRUNED"),
        trial("FAIL", "interrupted"),
        trial("FAIL", "stale: left running by an earlier run"),
        trial("FAIL", "nothing left to run", **{"fastgrid:exhausted": True}),
        trial("PRUNED", **{"fastgrid:rejected": "violates sweep.where: x < y"}),
    ]
    assert budget_trials(trials) == 3


# -- 7. output ---------------------------------------------------------------------------------------
def test_without_a_terminal_a_run_prints_no_line_per_trial(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def sometimes(config: dict[str, Any]) -> float:
        if config["fast"] == 3:
            raise RuntimeError("no data")
        return float(config["fast"])

    make(tmp_path, objective=sometimes, metric="value", parameters=grid(40), retry_failed=0).run()
    err = capsys.readouterr().err
    assert " ok " not in err and "trial 1 " not in err
    assert err.count("FAIL: RuntimeError: no data") == 1  # each new reason once
    assert "ran 80 trial(s) this run" in err


def test_periodic_mode_prints_a_status_line_every_interval() -> None:
    import io

    from fastgrid.runner import Reporter, TrialEvent

    now = [0.0]
    stream = io.StringIO()
    reporter = Reporter(
        name="p", total=1000, done=0, directions=["minimize"], stream=stream, clock=lambda: now[0]
    )
    for i in range(30):
        now[0] = i * 1.0
        reporter.update(TrialEvent(i, "COMPLETE", [float(-i)], None, 1.0, False, True))
    lines = stream.getvalue().splitlines()
    assert lines == [
        "[p] 11/1000 done (1%), 0 failed, best -10; 0:00:10 elapsed, ~0:14:59 left",
        "[p] 21/1000 done (2%), 0 failed, best -20; 0:00:20 elapsed, ~0:15:32 left",
    ]
    quiet = io.StringIO()
    reporter = Reporter(name="q", total=10, done=0, directions=["minimize"], stream=quiet, mode="quiet")
    reporter.update(TrialEvent(0, "FAIL", None, "boom 1", 1.0, False, False))
    reporter.update(TrialEvent(1, "FAIL", None, "boom 2", 1.0, False, False))
    reporter.update(TrialEvent(2, "COMPLETE", [1.0], None, 1.0, False, True))
    assert quiet.getvalue() == "[q] trial 0 FAIL: boom 1\n"


# -- 11. notebooks: a config mapping, workers with a function of __main__ -----------------------------
def test_a_config_given_as_a_mapping_is_the_default_config(tmp_path: Path) -> None:
    config = {"fast": 0, "slow": 0, "costs": {"fee": 0.001}}
    result = make(tmp_path, config=config, parameters=grid(2)).run()
    assert CALLS[0] == {"fast": 1, "slow": 20, "costs": {"fee": 0.001}}
    assert result.best_config == {"fast": 2, "slow": 20, "costs": {"fee": 0.001}}
    with pytest.raises(SweepFileError, match="config: "):
        make(tmp_path, name="typo", config={"fastt": 0, "slow": 0}, parameters=grid(2)).run()


def test_workers_run_a_function_defined_in_main_as_a_notebook_defines_it(tmp_path: Path) -> None:
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec("def nb_backtest(config):\n    return {'sharpe': config['fast'] * 1.0}\n", namespace)
    function = namespace["nb_backtest"]
    assert function.__module__ == "__main__" and not hasattr(sys.modules["__main__"], "nb_backtest")
    result = make(tmp_path, objective=function, parameters=grid(6), workers=2).run()
    assert result.counts["complete"] == 12 and result.best is not None
    assert result.best["values"] == [6.0]


# -- 13. numpy values -----------------------------------------------------------------------------------
def test_numpy_arrays_and_scalars_are_grid_values_as_exact_python_values(tmp_path: Path) -> None:
    import fastgrid

    params = {
        "fast": {"type": "grid", "values": np.arange(5, 50, 5)},
        "slow": {"type": "grid", "values": np.array([20.0, 40.0])},
        "stop": np.float64(0.1),
        "size": {"type": "int", "low": np.int64(1), "high": np.int32(2)},
    }
    result = make(tmp_path, parameters=params).run()
    assert result.counts["complete"] == 9 * 2 * 2
    assert [type(CALLS[0][k]) for k in ("fast", "slow", "stop", "size")] == [int, float, float, int]
    assert {c["fast"] for c in CALLS} == set(range(5, 50, 5)) and CALLS[0]["stop"] == 0.1
    g = fastgrid.Grid({"x": {"type": "grid", "values": np.linspace(0, 1, 3)}})
    assert list(g) == [{"x": 0.0}, {"x": 0.5}, {"x": 1.0}]
    assert isinstance(g, fastgrid.Grid) and isinstance(g[1:], fastgrid.Grid)
