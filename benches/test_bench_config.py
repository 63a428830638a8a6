"""Config merge and trial keys against the pure-Python ways, in the same run.

Measure with:
    python -m pytest benches/test_bench_config.py --benchmark-enable --benchmark-only \
        --benchmark-columns=median,min,rounds
Targets (issue 4): ``merged()`` >= 15x faster than ``copy.deepcopy`` of the cached dict;
``trial_key`` >= 10x faster than ``sha256(json.dumps(params, sort_keys=True))``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from fastgrid import ConfigCache, ConfigTemplate, trial_key

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
DEFAULT_FILE = DATA / "strategy_default.json"

# Five sampled values, as a sweep writes them into the ~150-leaf default config.
OVERRIDES: dict[str, Any] = {
    "thresholds.entry_z": 2.25,
    "thresholds.exit_z": 0.75,
    "exit.trailing.distance_pct": 0.012,
    "risk.max_positions": 3,
    "signals.hedge_ratio.window": 144,
}

# A realistic trial's parameters (15 entries, flat dotted keys as a sampler reports them).
PARAMS: dict[str, Any] = {
    "thresholds.entry_z": 1.75,
    "thresholds.exit_z": 0.25,
    "exit.take_profit_pct": 0.04,
    "exit.stop_loss_pct": 0.02,
    "exit.trailing.enabled": True,
    "risk.max_positions": 5,
    "risk.max_leverage": 2.0,
    "data.timeframe": "15m",
    "data.lookback_bars": 500,
    "execution.slippage_bps": 2.5,
    "entry.order_type": "limit",
    "signals.fast_window": 12,
    "signals.slow_window": 48,
    "filters.session.hours": [8, 20],
    "sizing.kelly_fraction": 0.25,
}


def _apply(tree: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    for dotted, value in overrides.items():
        *parents, leaf = dotted.split(".")
        node = tree
        for key in parents:
            node = node[key]
        node[leaf] = value
    return tree


@pytest.fixture(scope="module")
def default() -> dict[str, Any]:
    return json.loads(DEFAULT_FILE.read_text())


@pytest.fixture(scope="module")
def expected(default: dict[str, Any]) -> dict[str, Any]:
    return _apply(copy.deepcopy(default), OVERRIDES)


@pytest.fixture(scope="module")
def strategy_model() -> type:
    sys.path.insert(0, str(DATA))
    try:
        from strategy_model import StrategyConfig
    finally:
        sys.path.remove(str(DATA))
    return StrategyConfig


# --- merge: one trial's config --------------------------------------------------------------


@pytest.mark.benchmark(group="config-merge")
def test_template_merged(benchmark: Any, default: dict[str, Any], expected: dict[str, Any]) -> None:
    template = ConfigTemplate(default)
    result = benchmark(template.merged, OVERRIDES)
    assert result == expected


@pytest.mark.benchmark(group="config-merge")
def test_cache_merged(benchmark: Any, expected: dict[str, Any]) -> None:
    cache = ConfigCache(DEFAULT_FILE)
    result = benchmark(cache.merged, OVERRIDES)
    assert result == expected


@pytest.mark.benchmark(group="config-merge")
def test_python_deepcopy_cached_dict(
    benchmark: Any, default: dict[str, Any], expected: dict[str, Any]
) -> None:
    result = benchmark(lambda: _apply(copy.deepcopy(default), OVERRIDES))
    assert result == expected


# --- merge with a pydantic model: cached and validated vs re-read per trial -------------------


@pytest.mark.benchmark(group="config-merge-validated")
def test_cache_merged_with_model(benchmark: Any, strategy_model: type, expected: dict[str, Any]) -> None:
    cache = ConfigCache(DEFAULT_FILE, model=strategy_model)
    result = benchmark(cache.merged, OVERRIDES)
    assert result == expected


@pytest.mark.benchmark(group="config-merge-validated")
def test_python_load_validate_dump_per_trial(
    benchmark: Any, strategy_model: type, expected: dict[str, Any]
) -> None:
    def uncached() -> dict[str, Any]:
        raw = json.loads(DEFAULT_FILE.read_text())
        tree = strategy_model.model_validate(raw).model_dump(by_alias=True)  # type: ignore[attr-defined]
        merged = _apply(tree, OVERRIDES)
        strategy_model.model_validate(merged)  # type: ignore[attr-defined]
        return merged

    result = benchmark(uncached)
    assert result == expected


# --- trial keys -------------------------------------------------------------------------------


# A key takes about a microsecond: time batches of calls, so that the timer's own ~0.1 us per
# round does not weigh on one side more than the other. Both sides run the same batches.
KEY_BATCH = {"iterations": 100, "rounds": 1000, "warmup_rounds": 10}


@pytest.mark.benchmark(group="trial-key")
def test_trial_key(benchmark: Any) -> None:
    key = benchmark.pedantic(trial_key, args=(PARAMS,), **KEY_BATCH)
    reordered = dict(reversed(list(PARAMS.items())))
    assert key == trial_key(reordered) != trial_key({**PARAMS, "risk.max_positions": 5.0})
    assert len(key) == 32


@pytest.mark.benchmark(group="trial-key")
def test_python_sha256_json(benchmark: Any) -> None:
    def sha(params: dict[str, Any]) -> str:
        return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()

    key = benchmark.pedantic(sha, args=(PARAMS,), **KEY_BATCH)
    assert key == sha(dict(reversed(list(PARAMS.items())))) != sha({**PARAMS, "risk.max_positions": 5.0})
