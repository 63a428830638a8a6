"""A walk-forward's results, as its fold studies store them and reports read them back.

A ``[walkforward]`` sweep runs one ordinary sweep per training window (the study
``NAME.foldI``); its in-sample best trial is then run on the test window that follows, with the
fold's top trials, and the study user attr ``fastgrid.walkforward`` records that evaluation. This
module holds what those records mean (:class:`FoldResult`, :class:`WalkForwardResult`) and reads
them; running the folds is :class:`fastgrid.runner.WalkForward`. ``docs/stats.md`` explains the
numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna

from fastgrid import attrs, stats

__all__ = ["FoldResult", "WalkForwardResult", "fold_study_name", "load_walkforward"]


def fold_study_name(name: str, index: int) -> str:
    """The study (and runs/ folder) of fold ``index`` of the walk-forward sweep ``name``."""
    return f"{name}.fold{index}"


@dataclass
class FoldResult:
    """One fold: its windows, the trial its sweep selected in sample and how that did out of sample.

    ``top``: the fold's best trials (distinct, feasible) with their ``in_sample`` and
    ``out_of_sample`` scores (None where the test run failed or broke a ``require`` constraint);
    ``rank_correlation``: Spearman's rho between the two over those with both (None below 3);
    ``returns``: the selected trial's test-window returns, packed, when its objective returns them.
    """

    index: int
    train: tuple[Any, Any]
    test: tuple[Any, Any]
    study: str
    selected: int | None = None
    params: dict[str, Any] = field(default_factory=dict)
    in_sample: float | None = None
    out_of_sample: float | None = None
    reason: str | None = None
    top: list[dict[str, Any]] = field(default_factory=list)
    rank_correlation: float | None = None
    returns: str | None = None

    @property
    def efficiency(self) -> float | None:
        """Out-of-sample over in-sample score (None without both, or with a zero in-sample score)."""
        if self.in_sample is None or self.out_of_sample is None or self.in_sample == 0:
            return None
        return self.out_of_sample / self.in_sample

    def record(self) -> dict[str, Any]:
        """The JSON the fold's study stores (``fastgrid.walkforward``)."""
        return {
            "fold": self.index,
            "train": [_json(v) for v in self.train],
            "test": [_json(v) for v in self.test],
            "selected": self.selected,
            "params": self.params,
            "in_sample": self.in_sample,
            "out_of_sample": self.out_of_sample,
            "reason": self.reason,
            "top": self.top,
            "rank_correlation": self.rank_correlation,
            "returns": self.returns,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any], study: str) -> FoldResult:
        return cls(
            index=int(record["fold"]),
            train=(record["train"][0], record["train"][1]),
            test=(record["test"][0], record["test"][1]),
            study=study,
            selected=record.get("selected"),
            params=dict(record.get("params") or {}),
            in_sample=record.get("in_sample"),
            out_of_sample=record.get("out_of_sample"),
            reason=record.get("reason"),
            top=list(record.get("top") or []),
            rank_correlation=record.get("rank_correlation"),
            returns=record.get("returns"),
        )


def _json(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def fold_rank_correlation(top: Sequence[Mapping[str, Any]]) -> float | None:
    """Spearman's rho of in- and out-of-sample scores of the top trials that have both (≥ 3)."""
    pairs = [(t["in_sample"], t["out_of_sample"]) for t in top if t.get("out_of_sample") is not None]
    if len(pairs) < 3:
        return None
    rho = stats.rank_correlation([p[0] for p in pairs], [p[1] for p in pairs])
    return None if math.isnan(rho) else rho


@dataclass
class WalkForwardResult:
    """Every fold of a walk-forward and what they add up to.

    ``folds`` holds the folds evaluated so far (a fold whose sweep has not finished is left out,
    and ``complete`` is False). The summaries: ``efficiency`` (walk-forward efficiency: the sum of
    the selected trials' out-of-sample scores over the sum of their in-sample ones),
    ``mean_rank_correlation``, ``stitched_returns`` (the selected trials' test-window returns one
    after the other, when every fold has them) and ``parameter_stability`` (each parameter's
    selected value per fold).
    """

    name: str
    metric: str
    direction: str
    folds: list[FoldResult]
    planned: int
    interrupted: bool = False
    signal: int | None = None
    """The signal that stopped the interrupted fold (SIGINT for Ctrl-C, SIGTERM, SIGHUP)."""

    @property
    def complete(self) -> bool:
        return len(self.folds) == self.planned and not self.interrupted

    @property
    def efficiency(self) -> float | None:
        both = [f for f in self.folds if f.in_sample is not None and f.out_of_sample is not None]
        total_in = sum(f.in_sample for f in both)  # type: ignore[misc]
        if not both or total_in == 0:
            return None
        return sum(f.out_of_sample for f in both) / total_in  # type: ignore[misc]

    @property
    def mean_rank_correlation(self) -> float | None:
        values = [f.rank_correlation for f in self.folds if f.rank_correlation is not None]
        return float(np.mean(values)) if values else None

    @property
    def stitched_returns(self) -> np.ndarray | None:
        if not self.folds or any(f.returns is None for f in self.folds):
            return None
        return np.concatenate([stats.unpack_returns(f.returns) for f in self.folds if f.returns is not None])

    @property
    def stitched_sharpe(self) -> float | None:
        """The per-period Sharpe ratio of the stitched out-of-sample returns."""
        series = self.stitched_returns
        if series is None or len(series) < 2:
            return None
        try:
            return float(stats.sharpe_ratio(series))
        except ValueError:
            return None

    @property
    def parameter_stability(self) -> dict[str, list[Any]]:
        """Each parameter's selected value in every fold (None where a fold selected nothing)."""
        names: dict[str, None] = {}
        for f in self.folds:
            names.update(dict.fromkeys(f.params))
        return {p: [f.params.get(p) if f.selected is not None else None for f in self.folds] for p in names}

    def sentences(self) -> list[str]:
        out = [f"{len(self.folds)} of {self.planned} fold(s) evaluated."]
        if self.efficiency is not None:
            out.append(
                f"Walk-forward efficiency {self.efficiency:.2f}: the selected trials kept "
                f"{self.efficiency:.0%} of their in-sample {self.metric} out of sample (1 keeps all of "
                "it; near 0 or below, the in-sample choice does not carry over)."
            )
        if self.mean_rank_correlation is not None:
            out.append(
                f"Mean rank correlation of in- and out-of-sample scores of each fold's top trials: "
                f"{self.mean_rank_correlation:.2f} (1: the in-sample order held; 0: it said nothing)."
            )
        sharpe = self.stitched_sharpe
        if sharpe is not None:
            out.append(f"Stitched out-of-sample returns: Sharpe ratio {sharpe:.3g} per period.")
        changing = [p for p, values in self.parameter_stability.items() if len({repr(v) for v in values}) > 1]
        if self.folds:
            out.append(
                "Selected parameters changed across folds: " + ", ".join(changing) + "."
                if changing
                else "The same parameters were selected in every fold."
            )
        return out


def load_walkforward(
    storage: Any, name: str, *, folds: int, metric: str, direction: str
) -> WalkForwardResult:
    """The walk-forward ``name`` as its fold studies in ``storage`` record it (nothing runs)."""
    names = set(optuna.get_all_study_names(storage=storage))
    found = []
    for i in range(folds):
        study_name = fold_study_name(name, i)
        if study_name not in names:
            continue
        study = optuna.load_study(study_name=study_name, storage=storage)
        record = study.user_attrs.get(attrs.STUDY_WALKFORWARD)
        if isinstance(record, dict):
            found.append(FoldResult.from_record(record, study_name))
    return WalkForwardResult(name=name, metric=metric, direction=direction, folds=found, planned=folds)
