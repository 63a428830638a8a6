"""GridSampler vs Optuna's GridSampler: the cost of one trial once the study holds ~2,000 trials.

Both studies live in memory and are pre-filled with completed trials (Optuna's with the grid ids
its sampler expects), then each timed round asks, suggests every parameter and tells one trial.
Measure with:
python -m pytest benches/test_bench_sampler.py --benchmark-enable --benchmark-only \
    --benchmark-columns=median,min,rounds
"""

from __future__ import annotations

import itertools
from typing import Any

import optuna
import pytest
from fastgrid import Grid, GridSampler
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState, create_trial

optuna.logging.set_verbosity(optuna.logging.WARNING)

VALUES = {"a": list(range(20)), "b": list(range(10)), "c": [0.1, 0.2, 0.3, 0.4, 0.5], "d": ["x", "y", "z"]}
SPEC = {k: {"type": "grid", "values": v} for k, v in VALUES.items()}  # 20 * 10 * 5 * 3 = 3,000 points
ROUNDS = 30


def prefilled(sampler: optuna.samplers.BaseSampler, n: int, *, optuna_grid: bool) -> optuna.Study:
    study = optuna.create_study(sampler=sampler)
    dists = {k: CategoricalDistribution(v) for k, v in VALUES.items()}
    points = itertools.islice(itertools.product(*VALUES.values()), n)
    trials = []
    for i, combo in enumerate(points):
        params = dict(zip(VALUES, combo, strict=True))
        attrs: dict[str, Any] = {"search_space": VALUES, "grid_id": i} if optuna_grid else {}
        trials.append(
            create_trial(
                state=TrialState.COMPLETE, value=0.0, params=params, distributions=dists, system_attrs=attrs
            )
        )
    study.add_trials(trials)
    return study


def trials_before(benchmark: Any) -> int:
    return 200 if benchmark.disabled else 2_000


@pytest.mark.benchmark(group="sampler: one trial at trial ~2,000 (in memory)")
def test_fastgrid_grid_sampler(benchmark: Any) -> None:
    grid = Grid(SPEC)
    assert len(grid) == 3_000
    n = trials_before(benchmark)
    sampler = GridSampler(grid)
    study = prefilled(sampler, n, optuna_grid=False)
    dists = sampler.distributions
    seen: list[tuple[int, dict[str, Any]]] = []

    def one_trial() -> None:
        trial = study.ask(fixed_distributions=dists)
        seen.append((trial.number, trial.params))
        study.tell(trial, 0.0)

    benchmark.pedantic(one_trial, rounds=ROUNDS if not benchmark.disabled else 3, iterations=1)
    assert [params for _, params in seen] == [grid[number] for number, _ in seen]


@pytest.mark.benchmark(group="sampler: one trial at trial ~2,000 (in memory)")
def test_optuna_grid_sampler(benchmark: Any) -> None:
    n = trials_before(benchmark)
    sampler = optuna.samplers.GridSampler(VALUES, seed=0)
    study = prefilled(sampler, n, optuna_grid=True)
    seen: list[tuple[Any, ...]] = []

    def one_trial() -> None:
        trial = study.ask()
        seen.append(tuple(trial.suggest_categorical(k, v) for k, v in VALUES.items()))
        study.tell(trial, 0.0)

    benchmark.pedantic(one_trial, rounds=ROUNDS if not benchmark.disabled else 3, iterations=1)
    assert len(set(seen)) == len(seen)
    assert all(t.system_attrs["grid_id"] >= n for t in study.trials[n:])
