"""GridSampler over a lazy Grid, and the search-mode mapping of a parameters tree onto Optuna."""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from typing import Any

import optuna
import pytest
from fastgrid import Grid, GridSampler
from fastgrid.dotted import nest
from fastgrid.samplers import SearchSpace, decode_choice, encode_choice
from optuna.samplers import RandomSampler
from optuna.trial import TrialState

optuna.logging.set_verbosity(optuna.logging.WARNING)

SPEC = {
    "signal": {"fast": {"type": "int", "low": 5, "high": 15, "step": 5}, "kind": "sma"},
    "mode": {"type": "grid", "values": ["long", "short"]},
    "ladder": {"type": "grid", "values": [[0.5, 0.01], {"a": 1}]},
}


def reference_points() -> list[dict[str, Any]]:
    """itertools.product in declaration order, last parameter fastest."""
    out = []
    for fast, mode, ladder in itertools.product([5, 10, 15], ["long", "short"], [[0.5, 0.01], {"a": 1}]):
        out.append({"signal": {"fast": fast, "kind": "sma"}, "mode": mode, "ladder": ladder})
    return out


def test_each_trial_number_evaluates_its_grid_point_and_the_study_stops_by_itself() -> None:
    grid = Grid(SPEC)
    sampler = GridSampler(grid)
    seen: list[dict[str, Any]] = []

    def objective(trial: optuna.Trial) -> float:
        point = sampler.point(trial)
        # The suggest API gives the same values, choices that Optuna cannot store included.
        assert trial.suggest_int("signal.fast", 5, 15, step=5) == point["signal"]["fast"]
        choices = [encode_choice([0.5, 0.01]), encode_choice({"a": 1})]
        assert decode_choice(trial.suggest_categorical("ladder", choices)) == point["ladder"]
        seen.append(point)
        return 0.0

    study = optuna.create_study(sampler=sampler)
    study.optimize(objective)  # no n_trials: the sampler stops the study when the grid is done
    assert seen == reference_points()
    assert len(study.trials) == len(grid) == 12


def test_shuffled_order_is_a_seeded_permutation() -> None:
    grid = Grid(SPEC)

    def order(seed: int) -> list[str]:
        sampler = GridSampler(grid, order="shuffled", seed=seed)
        study = optuna.create_study(sampler=sampler)
        out: list[str] = []
        study.optimize(lambda t: out.append(repr(sampler.point(t))) or 0.0)
        return out

    first, again, other = order(1), order(1), order(2)
    assert first == again
    assert sorted(first) == sorted(repr(p) for p in reference_points())
    assert first != other
    assert first == [repr(grid.shuffled(1)[i]) for i in range(len(grid))]


def test_failed_points_are_retried_after_the_grid_and_then_the_study_ends() -> None:
    grid = Grid({"x": {"type": "int", "low": 0, "high": 5}})
    sampler = GridSampler(grid)
    failures_left = {2: 1, 4: 1}
    calls: Counter[int] = Counter()

    def objective(trial: optuna.Trial) -> float:
        x = sampler.point(trial)["x"]
        calls[x] += 1
        if failures_left.get(x, 0) > 0:
            failures_left[x] -= 1
            raise RuntimeError("transient")
        return float(x)

    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, catch=(RuntimeError,))
    complete = sorted(
        t.params.get("x", sampler.slot_of(t)) for t in study.trials if t.state == TrialState.COMPLETE
    )
    assert sorted(t.value for t in study.trials if t.state == TrialState.COMPLETE) == [0, 1, 2, 3, 4, 5]
    assert len(complete) == 6
    assert calls == Counter({0: 1, 1: 1, 2: 2, 3: 1, 4: 2, 5: 1})


def test_a_point_that_always_fails_is_retried_a_bounded_number_of_times() -> None:
    grid = Grid({"x": {"type": "int", "low": 0, "high": 2}})
    sampler = GridSampler(grid, retry_failed=2)
    calls: Counter[int] = Counter()

    def objective(trial: optuna.Trial) -> float:
        x = sampler.point(trial)["x"]
        calls[x] += 1
        if x == 1:
            raise RuntimeError("always")
        return float(x)

    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, catch=(RuntimeError,), n_trials=50)
    assert calls == Counter({0: 1, 1: 3, 2: 1})


def test_threads_sharing_a_study_evaluate_every_point_exactly_once() -> None:
    grid = Grid({"a": {"type": "int", "low": 0, "high": 19}, "b": {"type": "grid", "values": [1, 2, 3]}})
    sampler = GridSampler(grid)
    lock = threading.Lock()
    seen: Counter[str] = Counter()

    def objective(trial: optuna.Trial) -> float:
        with lock:
            seen[repr(sampler.point(trial))] += 1
        return 0.0

    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_jobs=2)
    assert len(seen) == 60 and set(seen.values()) == {1}


def test_a_parameter_outside_the_grid_is_named() -> None:
    sampler = GridSampler(Grid({"a": {"type": "grid", "values": [1, 2]}}))
    study = optuna.create_study(sampler=sampler)
    with pytest.raises(ValueError, match="'b' is not in the grid"):
        study.optimize(lambda t: t.suggest_int("b", 0, 1), n_trials=1)


def test_distributions_register_varying_parameters_only() -> None:
    sampler = GridSampler(Grid({"a": {"type": "float", "low": 0.18, "high": 0.36, "step": 0.04}, "b": 3}))
    dists = sampler.distributions
    assert list(dists) == ["a"]
    assert dists["a"].high == pytest.approx(0.34)  # the last on-step value, never above high


@pytest.mark.parametrize("value", [None, True, 1, 1.5, "s", [1, [2]], {"k": [1]}, "\x00json:[1]"])
def test_choice_encoding_round_trips(value: Any) -> None:
    encoded = encode_choice(value)
    assert isinstance(encoded, type(None) | bool | int | float | str)
    assert decode_choice(encoded) == value


def test_search_space_stays_on_step_inside_bounds_and_decodes_choices() -> None:
    space = SearchSpace(
        [
            {"path": "stop", "kind": "float", "low": 0.18, "high": 0.36, "step": 0.04},
            {"path": "n", "kind": "int", "low": 2, "high": 11, "step": 3},
            {"path": "lr", "kind": "float", "low": 1e-4, "high": 1e-1, "log": True},
            {"path": "ladder", "kind": "grid", "values": [[1, 2], {"x": None}, "plain"]},
            {"path": "risk.cap", "kind": "fixed", "value": 0.5},
        ]
    )
    study = optuna.create_study(sampler=RandomSampler(seed=3))
    points = []
    for _ in range(150):
        trial = study.ask()
        points.append(space.suggest(trial))
        assert "risk.cap" not in trial.params
        study.tell(trial, 0.0)
    assert {p["stop"] for p in points} == {0.18, 0.22, 0.26, 0.30, 0.34}
    assert {p["n"] for p in points} == {2, 5, 8, 11}
    assert all(1e-4 <= p["lr"] <= 1e-1 for p in points)
    assert {repr(p["ladder"]) for p in points} == {"[1, 2]", "{'x': None}", "'plain'"}
    assert all(p["risk.cap"] == 0.5 for p in points)


def test_nest_expands_dotted_paths_in_order() -> None:
    assert nest({"a.b": 1, "c": 2, "a.d": 3}) == {"a": {"b": 1, "d": 3}, "c": 2}
    assert list(nest({"a.b": 1, "c": 2, "a.d": 3})) == ["a", "c"]


# -- trials whose params someone else fixed (issue 12, item 19) ------------------------------------
def _a_grid(values: list[int]) -> GridSampler:
    return GridSampler(Grid({"a": {"type": "grid", "values": values}}))


@pytest.mark.parametrize(("values", "before"), [([0], 0), ([0, 50], 0), ([0, 50], 1)])
def test_an_enqueued_trial_takes_no_slot(values: list[int], before: int) -> None:
    study = optuna.create_study(sampler=_a_grid(values))
    study.optimize(lambda t: t.suggest_int("a", 0, 100), n_trials=before)
    study.enqueue_trial({"a": 100})
    study.optimize(lambda t: t.suggest_int("a", 0, 100))
    evaluated = [t.params["a"] for t in study.trials]
    assert evaluated[before] == 100
    assert sorted(evaluated[:before] + evaluated[before + 1 :]) == values


def test_an_enqueued_trial_without_a_grid_parameter_is_a_value_error() -> None:
    study = optuna.create_study(sampler=_a_grid([0, 50]))
    study.enqueue_trial({})
    with pytest.raises(ValueError, match="enqueued without parameter 'a'"):
        study.optimize(lambda t: t.suggest_int("a", 0, 100))


def test_a_trial_retried_by_optunas_stale_callback_reruns_its_own_slot() -> None:
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    sampler = _a_grid([0, 50])
    study = optuna.create_study(sampler=sampler)
    trial = study.ask()
    trial.suggest_int("a", 0, 100)
    RetryHeartbeatStaleTrialCallback()(study, study.trials[0])
    study.optimize(lambda t: t.suggest_int("a", 0, 100))
    assert [t.params["a"] for t in study.trials] == [0, 0, 50]
    assert sampler.slot_of(study.trials[1]) == 0


def test_is_exhausted_as_optunas_grid_sampler_says_it() -> None:
    sampler = _a_grid([0, 50])
    study = optuna.create_study(sampler=sampler)
    assert not sampler.is_exhausted(study)
    study.optimize(lambda t: t.suggest_int("a", 0, 100))
    assert sampler.is_exhausted(study)
