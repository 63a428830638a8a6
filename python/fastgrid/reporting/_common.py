"""What the per-trial and the batch reports share: the lazily loaded default config and cell formats."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fastgrid.config import ConfigCache
from fastgrid.sweepfile import SweepFile

__all__ = ["FailureGroup", "_LazyConfig", "_config_of", "_duration", "_fmt", "_short_names"]


@dataclass
class FailureGroup:
    """Failed trials that share a reason: ``reason`` (the first one's, in full), ``count``,
    ``first`` (trial number; a batch sweep's: grid slot), ``trials`` (none listed for a batch sweep) and
    ``evidence`` (a log or trial folder, when there is one)."""

    reason: str
    count: int
    first: int
    trials: list[int]
    evidence: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"reason": self.reason, "count": self.count, "first": self.first, "evidence": self.evidence}


class _LazyConfig:
    """The sweep's default config, read on first ``merged`` (only ``best_config`` asks for it)."""

    def __init__(self, spec: SweepFile) -> None:
        self._section = spec.config
        self._cache: ConfigCache | None = None

    def merged(self, point: dict[str, Any]) -> dict[str, Any]:
        if self._cache is None:
            cfg = self._section
            assert cfg is not None
            self._cache = ConfigCache(cfg.path, model=cfg.model, allow_new=cfg.allow_new, reload=cfg.reload)
        return self._cache.merged(point)


def _config_of(spec: SweepFile) -> _LazyConfig | None:
    return _LazyConfig(spec) if spec.config is not None else None


def _short_names(paths: Sequence[str]) -> dict[str, str]:
    """Column titles: the last segment of each dotted path, unless two paths share it."""
    last = [p.rsplit(".", 1)[-1] for p in paths]
    return {p: (s if last.count(s) == 1 else p) for p, s in zip(paths, last, strict=True)}


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def _duration(seconds: Any) -> str:
    if not isinstance(seconds, int | float):
        return "-"
    return f"{seconds * 1000:.1f}ms" if seconds < 1 else f"{seconds:.2f}s"
