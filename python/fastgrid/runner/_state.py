"""One run's state: what the workers of a run share, and what the stored study must match."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from fastgrid._core import parse_parameters, trial_key
from fastgrid.runner._plan import SweepPlan
from fastgrid.samplers import single_value

__all__ = ["NO_CONFIG", "IdentityConfig", "RunState", "space_changes"]

NO_CONFIG = "-"
"""The fingerprint stored for a sweep without a default config."""


@dataclass
class RunState:
    """Per-run values shared with worker processes (picklable)."""

    sweep_name: str
    space: dict[str, Any]
    fingerprint: str
    fixed: dict[str, Any]
    paths: list[str]
    total: int | None
    deadline: float | None
    max_trials: int | None
    first_trial: int = 0
    interrupted: bool = False
    ran: int = 0
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    _config: Any = field(default=None, repr=False)

    @classmethod
    def create(cls, plan: SweepPlan) -> RunState:
        spec = plan.spec
        config = plan.config_cache()
        fingerprint = str(config.fingerprint) if config is not None else NO_CONFIG
        if plan.grid_mode:
            grid = plan.grid()
            axes = list(grid.axes)
            total: int | None = len(grid)
        else:
            assert isinstance(spec.parameters, dict)  # check() refused a list of trees in search mode
            axes = list(parse_parameters(spec.parameters))
            total = spec.sweep.max_trials
        space = {
            # trial_key takes a mapping: a union of trees is keyed as one.
            "parameters": trial_key({"trees": spec.parameters}),
            "where": list(spec.sweep.where),
            "sampler": spec.sweep.sampler.name,
            "order": spec.sweep.order,
            "seed": spec.sweep.seed if spec.sweep.order == "shuffled" else None,
        }
        deadlines = []
        if spec.sweep.timeout is not None:
            deadlines.append(time.time() + spec.sweep.timeout)
        if spec.sweep.end_at is not None:
            deadlines.append(spec.sweep.end_at.timestamp())
        state = cls(
            sweep_name=plan.name,
            space=space,
            fingerprint=fingerprint,
            # Every parameter of one value: the grid sampler registers none of them on trials.
            fixed={a["path"]: value for a in axes for one, value in (single_value(a),) if one},
            paths=[a["path"] for a in axes],
            total=total,
            deadline=min(deadlines) if deadlines else None,
            max_trials=spec.sweep.max_trials,
        )
        state._config = config
        return state

    def config(self) -> Any:
        """The config cache; it pickles as its path and options, so each worker loads it once."""
        if self._config is None:
            self._config = IdentityConfig()
        return self._config


class IdentityConfig:
    """No ``[config]``: the merged config is the point itself."""

    fingerprint = NO_CONFIG

    def merged(self, params: dict[str, Any]) -> dict[str, Any]:
        return json.loads(json.dumps(params))  # type: ignore[no-any-return,unused-ignore]


def space_changes(old_space: Any, space: dict[str, Any], old_fp: Any, fp: str) -> list[str]:
    """What differs between the stored sweep and this run's, in words (empty when nothing)."""
    out = []
    if isinstance(old_space, dict):
        labels = {
            "parameters": "parameters tree",
            "where": "parameter constraints (sweep.where)",
            "sampler": "sampler",
            "order": "grid order",
            "seed": "shuffle seed",
        }
        for key, label in labels.items():
            if old_space.get(key) != space.get(key):
                if key == "parameters":
                    out.append(label)
                else:
                    out.append(f"{label} ({old_space.get(key)!r}, now {space.get(key)!r})")
    if old_fp != fp:
        out.append(f"default config (fingerprint {old_fp}, now {fp})")
    return out
