"""The ``[validate]`` step: the top trials re-run on held-out data, best = best validated."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fastgrid import Sweep, SweepFileError, examples
from fastgrid.examples.sma import run as backtest_run
from fastgrid.reporting import load_report
from fastgrid.runner import apply_override
from fastgrid.stats import unpack_returns
from fastgrid.study import top_rows


def tpe_copy(tmp_path: Path, *, max_trials: int = 80, top: int = 5) -> Path:
    examples.copy_to(tmp_path)
    path = tmp_path / examples.TPE
    text = path.read_text().replace("max_trials = 80", f"max_trials = {max_trials}")
    path.write_text(text.replace("top = 5", f"top = {top}"))
    return path


def test_validation_reruns_the_top_trials_on_the_held_out_window(tmp_path: Path) -> None:
    path = tpe_copy(tmp_path)
    result = Sweep.from_file(path, directory=tmp_path, progress=False).run()
    config = json.loads((tmp_path / "sma_config.json").read_text())
    expected_top = top_rows(result.rows, "maximize", 5, feasible_only=True, distinct=True)
    assert len(result.validation) == 5
    assert {v["number"] for v in result.validation} == {r["number"] for r in expected_top}
    for v in result.validation:
        p = v["params"]
        signal = {"fast": p["signal.fast"], "slow": p["signal.slow"], "mode": p["signal.mode"]}
        held_out = backtest_run(
            {**config, "data": {**config["data"], "start": 3000, "end": 5000}, "signal": signal}
        )
        in_sample = backtest_run({**config, "signal": signal})
        assert v["value"] == pytest.approx(in_sample["sharpe"])
        # The held-out returns are kept apart from the metrics, packed.
        np.testing.assert_array_equal(unpack_returns(v["returns"]), held_out.pop("returns"))
        assert v["metrics"] == held_out
        assert (v["validated"] is not None) == (held_out["trades"] >= 6)
        if v["validated"] is not None:
            assert v["validated"] == pytest.approx(held_out["sharpe"])
    scored = [v for v in result.validation if v["validated"] is not None]
    assert scored, "the example's held-out window should validate at least one of the top trials"
    winner = max(scored, key=lambda v: v["validated"])
    assert result.validation[0] is winner
    assert result.best is not None and result.best["number"] == winner["number"]
    best_config = json.loads(result.best_config_path.read_text())
    # The best config is the in-sample one (the override only applies to the validation re-run).
    assert best_config["data"]["end"] == 3000
    assert best_config["signal"]["fast"] == winner["params"]["signal.fast"]
    # The report reads the validation back from the study.
    report = load_report(path, directory=tmp_path, importance=False)
    assert [v["number"] for v in report.validation] == [v["number"] for v in result.validation]
    assert report.best is not None and report.best["number"] == winner["number"]


def test_override_of_a_path_the_config_lacks_is_refused(tmp_path: Path) -> None:
    path = tpe_copy(tmp_path, max_trials=3, top=1)
    path.write_text(path.read_text().replace('"data.end" = 5000', '"data.ends" = 5000'))
    with pytest.raises(SweepFileError, match=r"validate.override\['data.ends'\]: the config has no key"):
        Sweep.from_file(path, directory=tmp_path, progress=False).run()


def test_validate_section_is_checked(tmp_path: Path) -> None:
    path = tpe_copy(tmp_path)
    path.write_text(path.read_text().replace("top = 5", "top = 0"))
    with pytest.raises(SweepFileError, match=r"validate.top"):
        Sweep.from_file(path, directory=tmp_path)
    path.write_text(path.read_text().replace("top = 0", "tops = 2"))
    with pytest.raises(SweepFileError, match=r"validate.tops: unknown key \(did you mean 'top'\?\)"):
        Sweep.from_file(path, directory=tmp_path)


def test_apply_override() -> None:
    config = {"data": {"start": 0, "end": 10}, "x": 1}
    assert apply_override(config, {"data.start": 5}, strict=True) == {"data": {"start": 5, "end": 10}, "x": 1}
    assert config["data"]["start"] == 0
    assert apply_override({}, {"a.b": 1}, strict=False) == {"a": {"b": 1}}
    with pytest.raises(ValueError, match="has no table 'x'"):
        apply_override(config, {"x.y": 1}, strict=True)
    with pytest.raises(ValueError, match="has no table 'x'"):
        apply_override(config, {"x.y": 1}, strict=False)


def test_top_rows_skips_failed_infeasible_and_repeated_points() -> None:
    def row(n: int, v: float, *, key: str, state: str = "COMPLETE", feasible: bool = True) -> dict:
        return {"number": n, "values": [v], "state": state, "feasible": feasible, "key": key, "params": {}}

    rows = [
        row(0, 5.0, key="a"),
        row(1, 9.0, key="b", feasible=False),
        row(2, 7.0, key="c", state="FAIL"),
        row(3, 5.0, key="a"),
        row(4, 6.0, key="d"),
        row(5, 1.0, key="e"),
    ]
    assert [r["number"] for r in top_rows(rows, "maximize", 2, feasible_only=True, distinct=True)] == [4, 0]
    assert [r["number"] for r in top_rows(rows, "minimize", 5, feasible_only=True, distinct=True)] == [
        5,
        0,
        4,
    ]


def test_run_command_prints_the_validation(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tpe_copy(tmp_path, max_trials=12, top=2)
    out = subprocess.run(
        [sys.executable, "-m", "fastgrid", "run", str(path), "--no-progress"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    lines = [line for line in out.stdout.splitlines() if line.strip().startswith("validated trial")]
    assert len(lines) == 2
    assert all(", held-out " in line and "search " in line for line in lines)


def score(config: dict) -> float:
    # In sample (w absent) x is best at 3; on the "held-out" override (w = 1) x = 1 is best.
    return -abs(config["x"] - (1 if config.get("w") == 1 else 3)) - 0.1 * config["x"]


def test_sweep_keyword_validate_without_a_config(tmp_path: Path) -> None:
    sweep = Sweep(
        parameters={"x": {"type": "int", "low": 0, "high": 4}},
        objective=score,
        direction="maximize",
        validate={"top": 3, "override": {"w": 1}},
        directory=tmp_path,
        progress=False,
    )
    result = sweep.run()
    # The top 3 in sample are x = 3, 2, 4; held out they score -0.2 - ..., x = 2 wins among them.
    assert sorted(v["number"] for v in result.validation) == [2, 3, 4]
    assert [v["params"]["x"] for v in result.validation] == [2, 3, 4]
    assert [v["validated"] for v in result.validation] == pytest.approx(
        [score({"x": x, "w": 1}) for x in (2, 3, 4)]
    )
    assert result.best is not None and result.best["params"] == {"x": 2}
    assert result.best_config == {"x": 2}


def test_the_run_summary_names_the_best_validated_trial_as_such(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # "best: trial 2, -1.2 (maximize value)" read as the search's best, which is trial 3 (-0.3).
    Sweep(
        parameters={"x": {"type": "int", "low": 0, "high": 4}},
        objective=score,
        direction="maximize",
        validate={"top": 3, "override": {"w": 1}},
        directory=tmp_path,
        progress=False,
    ).run()
    err = capsys.readouterr().err.splitlines()
    assert "best validated: trial 2, -1.2 in the search, -1.2 held out (maximize value)" in err
    assert not [line for line in err if line.startswith("best: trial")]
