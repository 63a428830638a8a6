"""Batch sweeps tried as a demanding new user would: odd values, odd objectives, odd exceptions.
Each test is a place where fastgrid was silently wrong or stopped with a traceback (issue 13)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import fastgrid
import numpy as np
import optuna
import pytest
from fastgrid.batch import BatchFailedError, BatchObjectiveError, run_batch
from fastgrid.samplers import decode_choice

# Values a Python `==` (and so Optuna's categorical index lookup) takes for one another.
ALIKE = {
    "flag": {"type": "grid", "values": [True, 1, 1.0, False, 0, 0.0, -0.0]},
    "n": {"type": "int", "low": 0, "high": 1},
}


def _exact(value: Any) -> str:
    return f"{type(value).__name__}:{value!r}"


def _alike(cols: dict[str, Any], config: Any) -> dict[str, Any]:
    # The score tells the points apart by type and sign, as the stored params must.
    codes = {_exact(v): i for i, v in enumerate(ALIKE["flag"]["values"])}
    flag = np.array([codes[_exact(v)] for v in cols["flag"].tolist()], dtype=float)
    return {"score": flag * 10 + np.asarray(cols["n"], dtype=float)}


def test_values_that_compare_equal_keep_their_identity_in_the_optuna_study(tmp_path: Path) -> None:
    grid = fastgrid.Grid(ALIKE, flat=True)
    run = run_batch(
        ALIKE, batch=_alike, directory=tmp_path, name="alike", metric="score", direction="maximize", top_k=14
    )
    assert len(run.top) == 14
    storage = fastgrid.open_storage(str(tmp_path / "fastgrid.db"))
    study = optuna.load_study(study_name="alike", storage=storage)
    for t in study.trials:
        flag = decode_choice(t.params["flag"])
        assert _exact(flag) == _exact(grid[t.user_attrs["slot"]]["flag"]), t.user_attrs["slot"]


def _per_trial_alike(config: dict[str, Any]) -> dict[str, float]:
    codes = {_exact(v): i for i, v in enumerate(ALIKE["flag"]["values"])}
    return {"score": codes[_exact(config["flag"])] * 10.0 + config["n"]}


def test_a_per_trial_sweep_records_the_value_it_ran_not_an_equal_one(tmp_path: Path) -> None:
    result = fastgrid.Sweep(
        name="alike-trials",
        parameters=ALIKE,
        objective=_per_trial_alike,
        metric="score",
        direction="maximize",
        directory=tmp_path,
    ).run()
    # the best point is -0.0 with n = 1: its params and best config say so, not False or 0
    assert _exact(result.best["params"]["flag"]) == _exact(-0.0)
    assert _exact(json.loads(Path(result.best_config_path).read_text())["flag"]) == _exact(-0.0)
    for row in result.rows:
        assert row["metrics"]["score"] == _per_trial_alike({**row["params"]})["score"], row


def _raises_unreadable(cols: dict[str, Any], config: Any) -> dict[str, Any]:
    if (np.asarray(cols["a"]) == 3).any():
        raise _Unreadable()
    return {"score": np.asarray(cols["a"], dtype=float)}


class _Unreadable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("__str__ failed")


def _point_raises_unreadable(config: dict[str, Any]) -> float:
    if config["a"] == 3:
        raise _Unreadable()
    return float(config["a"])


@pytest.mark.parametrize("kind", ["batch", "callable"])
def test_an_exception_whose_message_cannot_be_read_fails_only_its_points(tmp_path: Path, kind: str) -> None:
    fn = _raises_unreadable if kind == "batch" else _point_raises_unreadable
    run = run_batch(
        {"a": {"type": "int", "low": 0, "high": 9}},
        **{kind: fn},
        directory=tmp_path,
        name=kind,
        metric="score",
        chunk=4,
        retry_failed=0,
    )
    assert run.counts["done"] == 10
    assert run.results.failures() == {"_Unreadable: (its message could not be read)": 1}


def _some_chunks_lack_trades(cols: dict[str, Any], config: Any) -> dict[str, Any]:
    a = np.asarray(cols["a"], dtype=float)
    out = {"score": a}
    if a[0] < 5:  # a metric the objective forgets on some chunks
        out["trades"] = a * 2
    return out


def test_require_naming_a_metric_that_a_chunk_did_not_return_names_the_chunk(tmp_path: Path) -> None:
    with pytest.raises(BatchObjectiveError) as info:
        run_batch(
            {"a": {"type": "int", "low": 0, "high": 9}},
            batch=_some_chunks_lack_trades,
            directory=tmp_path,
            name="req",
            metric="score",
            chunk=5,
            require=["trades >= 2"],
        )
    message = str(info.value)
    assert "chunk slots 5..9" in message and "'trades'" in message and "trades >= 2" in message
    assert info.value.metric == "trades"


def test_a_misspelt_require_name_is_named_with_a_suggestion(tmp_path: Path) -> None:
    with pytest.raises(BatchObjectiveError, match=r"'trade'.*did you mean 'trades'"):
        run_batch(
            {"a": {"type": "int", "low": 0, "high": 9}},
            batch=_some_chunks_lack_trades,
            directory=tmp_path,
            name="typo",
            metric="score",
            chunk=5,
            require=["trade >= 2"],
        )


def test_a_search_sweep_records_the_value_it_ran_not_an_equal_one(tmp_path: Path) -> None:
    ran: list[str] = []

    def objective(config: dict[str, Any]) -> dict[str, float]:
        ran.append(_exact(config["flag"]))
        return {"score": 1.0}

    result = fastgrid.Sweep(
        name="alike-search",
        parameters={"flag": ALIKE["flag"]},
        objective=objective,
        sampler="random",
        seed=1,
        max_trials=40,
        metric="score",
        direction="maximize",
        directory=tmp_path,
    ).run()
    recorded = [_exact(row["params"]["flag"]) for row in result.rows]
    # every value was suggested; each trial records the one it suggested (repeats are reused)
    assert sorted(set(recorded)) == sorted(set(ran)) == sorted(_exact(v) for v in ALIKE["flag"]["values"])


def _too_large(config: dict[str, Any]) -> dict[str, Any]:
    huge = 10**400  # a Python int no float holds (an exact count, a product of many terms)
    score = huge if config["a"] == 2 else float(config["a"])
    return {"score": score, "side": huge if config["a"] == 4 else 1}


def test_a_per_point_metric_too_large_for_a_float_fails_its_point_not_the_run(tmp_path: Path) -> None:
    run = run_batch(
        {"a": {"type": "int", "low": 0, "high": 5}},
        callable=_too_large,
        directory=tmp_path,
        name="huge",
        metric="score",
        chunk=3,
        retry_failed=0,
    )
    table = run.to_pandas()
    # A side metric no float holds fails its point too: dropping it would lose the value unseen.
    assert table.loc[table["failed"], "slot"].tolist() == [2, 4]
    reason = table.loc[table["slot"] == 2, "reason"].item()
    assert reason.startswith("metric 'score' is too large for a float")
    assert table.loc[table["slot"] == 4, "reason"].item().startswith("metric 'side' is too large for a float")
    assert table.loc[table["slot"] == 5, "side"].item() == 1.0


def _ids_past_2_53(config: dict[str, Any]) -> dict[str, Any]:
    return {"score": float(config["a"]), "id": 2**53 + 1 if config["a"] == 1 else 2**60}


def _id_columns_past_2_53(cols: dict[str, Any], config: Any) -> dict[str, Any]:
    a = cols["a"]
    return {"score": a * 1.0, "id": np.where(a == 1, 2**53 + 1, 2**60).astype(np.int64)}


def test_integers_a_float64_column_would_round_are_never_stored_rounded(tmp_path: Path) -> None:
    # 2**53 + 1 became 2**53 without a word; 2**60 is exact in a float64 and is kept.
    run = run_batch(
        {"a": {"type": "int", "low": 0, "high": 3}},
        callable=_ids_past_2_53,
        directory=tmp_path,
        name="ids",
        metric="score",
        retry_failed=0,
        fail_fast=0,
    )
    table = run.to_pandas()
    assert table.loc[table["failed"], "slot"].tolist() == [1]
    assert table.loc[table["slot"] == 1, "reason"].item() == (
        "metric 'id': integers past 2**53 that a float64 column cannot hold exactly (9007199254740993 "
        "would be stored as 9007199254740992); return floats if rounding is fine, or smaller units"
    )
    assert table.loc[table["slot"] == 2, "id"].item() == 2**60
    with pytest.raises(BatchObjectiveError, match=r"metric 'id': integers past 2\*\*53 .*9007199254740993"):
        run_batch(
            {"a": {"type": "int", "low": 0, "high": 3}},
            batch=_id_columns_past_2_53,
            directory=tmp_path,
            name="ids2",
            metric="score",
        )


def _every_point_on_the_front(cols: dict[str, Any], config: Any) -> dict[str, Any]:
    a = np.asarray(cols["a"], dtype=float)
    return {"gain": a, "risk": a}  # more gain costs as much more risk: no point dominates another


def test_best_trials_is_the_whole_pareto_front(tmp_path: Path) -> None:
    result = fastgrid.Sweep(
        name="front",
        parameters={"a": {"type": "int", "low": 0, "high": 299}},
        mode="batch",
        batch=_every_point_on_the_front,
        metrics=["gain", "risk"],
        direction=["maximize", "minimize"],
        top_k=50,
        directory=tmp_path,
    ).run()
    assert [row["number"] for row in result.best_trials] == list(range(299, -1, -1))
    assert len(result.rows) == 50  # the study holds top_k of them


def test_a_grid_too_large_to_number_is_one_clear_line(tmp_path: Path) -> None:
    huge = {f"p{i}": {"type": "int", "low": 0, "high": 999} for i in range(8)}  # 10**24 points
    with pytest.raises(ValueError, match=r"the grid has 1,000,000,000,000,000,000,000,000 points.*narrow it"):
        run_batch(huge, batch=_alike, directory=tmp_path, name="huge", metric="score", max_points=2000)


def _late_failures(cols: dict[str, Any], config: Any) -> dict[str, Any]:
    i = np.asarray(cols["i"], dtype=float)
    return {"score": np.where(i >= 18, np.nan, i)}  # the last chunks' points fail


@pytest.mark.parametrize("values", [[0], [None, "x"], [1, "a"], [1, 2.5], [True, 2]])
def test_a_parquet_export_holds_every_row_whatever_the_first_chunks_hold(
    tmp_path: Path, values: list[Any]
) -> None:
    """Parquet was written a few chunks at a time with the types of the first few: a reason (or a
    parameter of mixed values) that first appeared later broke the export halfway (a traceback and
    a file with the first 16 chunks only)."""
    import pyarrow.parquet as pq

    run = run_batch(
        {"s": {"type": "grid", "values": values}, "i": {"type": "int", "low": 0, "high": 19}},
        batch=_late_failures,
        directory=tmp_path,
        name="pq",
        metric="score",
        chunk=1,
        retry_failed=0,
    )
    path = tmp_path / "points.parquet"
    assert run.results.write_parquet(path) == 20 * len(values)
    table = pq.read_table(path)
    assert table.schema == run.to_arrow().schema
    assert table.to_pandas().equals(run.to_arrow().to_pandas())  # (NaN scores equal too)
    reasons = table.column("reason").to_pylist()
    assert reasons.count("metric 'score' is NaN") == 2 * len(values)


def test_an_objective_whose_metric_is_nan_everywhere_stops_early_like_one_that_raises(
    tmp_path: Path,
) -> None:
    """A NaN objective metric fails its point, but it was judged only when the chunk was recorded,
    after fail-fast had looked: a bug that makes every point NaN ran the whole grid."""
    calls: list[int] = []

    def all_nan(cols: dict[str, Any], config: Any) -> dict[str, Any]:
        calls.append(len(cols["a"]))
        return {"score": np.full(len(cols["a"]), np.nan)}

    def all_inf(config: dict[str, Any]) -> float:
        return float("inf")

    big = {"a": {"type": "int", "low": 0, "high": 9999}}
    with pytest.raises(
        BatchFailedError, match=r"first 3 chunks all failed the same way.*metric 'score' is NaN"
    ):
        run_batch(big, batch=all_nan, directory=tmp_path, name="nan", metric="score", chunk=100)
    assert len(calls) == 3
    with pytest.raises(BatchFailedError, match=r"metric 'score' is inf"):
        run_batch(big, callable=all_inf, directory=tmp_path, name="inf", metric="score", chunk=100)
    # NaN on some points only still fails just those points
    run = run_batch(
        {"a": {"type": "int", "low": 0, "high": 9}},
        batch=_some_nan,
        directory=tmp_path,
        name="some",
        metric="score",
        chunk=4,
    )
    assert run.results.failures() == {"metric 'score' is NaN": 5}


def _some_nan(cols: dict[str, Any], config: Any) -> dict[str, Any]:
    a = np.asarray(cols["a"], dtype=float)
    return {"score": np.where(a % 2 == 0, np.nan, a)}


@pytest.mark.parametrize(
    ("keyword", "value", "message"),
    [
        (
            "objective",
            42,
            r"objective: expected a callable, .* or a command argv list, got int",
        ),
        (
            "batch",
            42,
            r"batch: expected a callable fn\(columns, config\) or .*, got int",
        ),
        ("batch", {"m": 1}, r"batch: expected a callable .*, got dict"),
    ],
)
def test_an_objective_of_the_wrong_kind_is_one_line_before_anything_runs(
    tmp_path: Path, keyword: str, value: Any, message: str
) -> None:
    """objective=42 raised TypeError from list(42); batch=42 ran three chunks to say it."""
    from fastgrid.exceptions import SweepFileError

    mode = {"mode": "batch"} if keyword == "batch" else {}
    with pytest.raises(SweepFileError, match=message):
        fastgrid.Sweep(
            name="kind",
            parameters={"a": {"type": "int", "low": 0, "high": 9}},
            metric="score",
            direction="maximize",
            directory=tmp_path,
            **mode,
            **{keyword: value},
        )
    assert not (tmp_path / "fastgrid.db").exists()


def _past_2_53(cols: dict[str, Any], config: Any) -> dict[str, Any]:
    return {"score": (np.asarray(cols["x"]) - 2**60).astype(float)}


def test_integers_past_2_53_reach_the_optuna_study_exactly(tmp_path: Path) -> None:
    """Optuna keeps an int parameter as a float: writing the top points of an int range past 2**53
    failed after the whole grid ran ('isn't contained in the distribution'), with a traceback."""
    params = {
        "x": {"type": "int", "low": 2**60 + 1, "high": 2**60 + 5},
        "y": {"type": "grid", "values": [1, 2]},
    }
    run = run_batch(
        params, batch=_past_2_53, directory=tmp_path, name="big", metric="score", direction="maximize"
    )
    assert run.best["params"] == {"x": 2**60 + 5, "y": 1}
    study = optuna.load_study(study_name="big", storage=fastgrid.open_storage(str(tmp_path / "fastgrid.db")))
    assert len(study.trials) == 10
    assert "x" not in study.best_trial.params  # recorded exactly beside them instead, as per trial
    report = fastgrid.reporting.load_report(
        storage=str(tmp_path / "fastgrid.db"), study="big", directory=tmp_path
    )
    assert report.best is not None and report.best["params"]["x"] == 2**60 + 5


def _x_score(cols: dict[str, Any], config: Any) -> dict[str, Any]:
    return {"score": np.asarray(cols["x"], dtype=float)}


def test_a_union_whose_trees_share_a_path_writes_its_top_points_to_the_study(tmp_path: Path) -> None:
    """The top points' params took the distribution of the union's last tree: a point of the
    first tree failed to be written after the whole grid ran."""
    union = [{"x": {"type": "grid", "values": [10, 20]}}, {"x": {"type": "grid", "values": [1, 2, 3]}}]
    run = run_batch(
        union, batch=_x_score, directory=tmp_path, name="union", metric="score", direction="maximize"
    )
    assert [row["params"]["x"] for row in run.top] == [20, 10, 3, 2, 1]
    study = optuna.load_study(
        study_name="union", storage=fastgrid.open_storage(str(tmp_path / "fastgrid.db"))
    )
    assert sorted(t.user_attrs["params"]["x"] for t in study.trials) == [1, 2, 3, 10, 20]


def _scalar_math(cols: dict[str, Any], config: Any) -> dict[str, Any]:
    return {"score": cols["a"] * 2.0 + cols["b"]}  # numpy math on the columns as they come


def test_a_grid_of_one_point_runs_a_vectorized_objective(tmp_path: Path) -> None:
    """Every parameter of a one-point grid is fixed and comes as a scalar, so numpy math on the
    columns gives a scalar: it was refused ('has a scalar, expected 1 values') with no way out."""
    one = {"a": 3, "b": {"type": "grid", "values": [0.5]}}
    run = run_batch(one, batch=_scalar_math, directory=tmp_path, name="one", metric="score")
    assert run.best["metrics"] == {"score": 6.5} and run.counts["done"] == 1
    with pytest.raises(BatchObjectiveError, match=r"has a scalar, expected 2 values"):
        run_batch(
            {"a": 3, "b": {"type": "grid", "values": [0.5, 1.5]}},
            batch=_mean_only,
            directory=tmp_path,
            name="two",
            metric="score",
            chunk=2,
        )


def _mean_only(cols: dict[str, Any], config: Any) -> dict[str, Any]:
    return {"score": np.mean(cols["b"])}  # one number for the chunk: a bug past one point


def test_fastgrid_run_says_why_a_batch_grid_has_no_point(tmp_path: Path, monkeypatch: Any) -> None:
    from click.testing import CliRunner
    from fastgrid.cli import main

    (tmp_path / "s.toml").write_text(
        '[sweep]\nname = "none"\nmode = "batch"\nmetric = "score"\ndirection = "maximize"\n'
        'where = ["a > 100"]\n[objective]\nbatch = "test_batch_newuser:_x_score"\n'
        '[parameters]\na = { type = "int", low = 0, high = 9 }\nx = 1\n'
    )
    monkeypatch.chdir(tmp_path)
    out = CliRunner().invoke(main, ["run", "s.toml", "--no-progress"], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    assert "0 of 0 points done" in out.output
    assert "the grid has no point: its `where` constraints exclude every one" in out.output


def _scaled(cols: dict[str, Any], config: Any) -> dict[str, Any]:
    return {"score": np.asarray(cols["a"], dtype=float) * config["k"]}


def test_a_resumed_batch_sweep_with_another_default_config_is_refused_as_per_trial(tmp_path: Path) -> None:
    """The first half ran with k = 1, the rest with k = 100, and the two were ranked as one."""
    from fastgrid.exceptions import SweepChangedError

    def sweep(k: int, **kw: Any) -> Any:
        return fastgrid.Sweep(
            name="cfg",
            parameters={"a": {"type": "int", "low": 0, "high": 99}},
            mode="batch",
            batch=_scaled,
            chunk=10,
            metric="score",
            direction="maximize",
            config={"k": k, "a": 0},
            directory=tmp_path,
            **kw,
        )

    assert sweep(1, max_trials=50).run().counts["done"] == 50
    with pytest.raises(SweepChangedError, match=r"default config \(fingerprint .*, now .*\).*allow-changed"):
        sweep(100).run()
    assert sweep(1).run().counts["done"] == 100  # the same config resumes
    again = sweep(100, allow_changed=True, fresh=False).run()  # asked for: continues, and is the new one
    assert again.ran == 0
    assert sweep(100).run().ran == 0


def test_top_with_a_misspelt_direction_is_refused_not_read_as_minimize(tmp_path: Path) -> None:
    run = run_batch(
        {"a": {"type": "int", "low": 0, "high": 9}},
        batch=_a_score,
        directory=tmp_path,
        name="dir",
        metric="score",
    )
    assert [r["slot"] for r in run.results.top(2, direction="maximize")] == [9, 8]
    with pytest.raises(ValueError, match=r"direction: expected 'minimize' or 'maximize', got 'max'"):
        run.results.top(2, direction="max")


def _a_score(cols: dict[str, Any], config: Any) -> dict[str, Any]:
    return {"score": np.asarray(cols["a"], dtype=float)}


def test_a_bool_objective_from_a_callable_fails_its_point_in_both_modes(tmp_path: Path) -> None:
    # The same callable: per trial each point failed "is not a number: True (bool)", in batch mode
    # numpy read True as 1.0 and ranked it.
    def verdict(config: dict[str, Any]) -> dict[str, Any]:
        return {"score": config["a"] > 1 if config["a"] % 2 else float(config["a"]), "side": True}

    failures = {}
    for mode in ("trial", "batch"):
        result = fastgrid.Sweep(
            name=f"b{mode}",
            mode=mode,
            objective=verdict,
            parameters={"a": {"type": "int", "low": 0, "high": 3}},
            direction="maximize",
            metric="score",
            retry_failed=0,
            fail_fast=0,
            directory=tmp_path,
            progress=False,
        ).run()
        assert result.best is not None and result.best["params"] == {"a": 2}
        failures[mode] = result.failures()
    assert failures["batch"] == {
        "metric 'score' is not a number: False (bool)": 1,
        "metric 'score' is not a number: True (bool)": 1,
    }
    assert failures["trial"] == failures["batch"]
