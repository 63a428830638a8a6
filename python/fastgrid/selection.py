"""How much of a sweep's winner is selection luck: the numbers a report shows beside the best trial.

Read from a stored study (nothing runs): how many trials were run; the deflated Sharpe ratio of
the winner, from the ``returns_stats`` every trial that returned a returns series has (its Sharpe
ratio, skew, kurtosis and length, and the variance of all trials' Sharpe ratios); and PBO by CSCV
over the returns series the sweep kept (``keep_returns``, the best trials'). ``docs/stats.md``
explains each number.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from optuna.trial import FrozenTrial, TrialState

from fastgrid import attrs, stats

__all__ = ["MIN_PBO_TRIALS", "Selection", "assess_batch_selection", "assess_selection"]

MIN_PBO_TRIALS = 4
"""Fewest kept series PBO is computed over (its ranks mean little below that)."""


@dataclass(frozen=True)
class Selection:
    """The selection statistics of one study (None where they cannot be computed; ``note`` says why).

    ``trials_run``: distinct trials the sweep evaluated (completed, failed and pruned; reuses of a
    point are not trials). ``n_trials``: the completed distinct points with a returns series, the N
    of the deflated Sharpe ratio. ``sharpe`` and ``expected_max_sharpe``: the winner's per-period
    Sharpe ratio and the one the best of ``n_trials`` skill-less trials would reach.
    ``pbo_trials``: how many kept series PBO ranked.
    """

    trials_run: int
    n_trials: int
    winner: int | None
    sharpe: float | None
    expected_max_sharpe: float | None
    deflated_sharpe: float | None
    pbo: stats.PBOResult | None
    pbo_trials: int
    note: str

    def sentences(self) -> list[str]:
        return [s for s in self.note.split("\n") if s]


def _distinct_completed(trials: Iterable[FrozenTrial]) -> list[FrozenTrial]:
    """Completed trials that ran (not reuses), one per point (the first)."""
    seen: set[str] = set()
    out = []
    for t in trials:
        if t.state != TrialState.COMPLETE or t.user_attrs.get(attrs.REUSED) is not None:
            continue
        key = t.user_attrs.get(attrs.KEY)
        if key is not None:
            if key in seen:
                continue
            seen.add(key)
        out.append(t)
    return out


def _trials_run(trials: Sequence[FrozenTrial]) -> int:
    c = Counter(t.state for t in trials if not t.system_attrs.get(attrs.EXHAUSTED))
    reused = sum(
        1 for t in trials if t.state == TrialState.COMPLETE and t.user_attrs.get(attrs.REUSED) is not None
    )
    return c[TrialState.COMPLETE] - reused + c[TrialState.FAIL] + c[TrialState.PRUNED]


def _winner_trial(trials: Sequence[FrozenTrial], number: int) -> FrozenTrial | None:
    """The trial ``number``, or for a reuse the trial whose result it reuses."""
    by_number = {t.number: t for t in trials}
    t = by_number.get(number)
    reused = t.user_attrs.get(attrs.REUSED) if t is not None else None
    return by_number.get(reused, t) if reused is not None else t


def _pbo(distinct: list[FrozenTrial]) -> tuple[stats.PBOResult | None, int, str]:
    series = [
        stats.unpack_returns(t.user_attrs[attrs.RETURNS]) for t in distinct if attrs.RETURNS in t.user_attrs
    ]
    if not series:
        return None, 0, ""
    length, _ = Counter(len(s) for s in series).most_common(1)[0]
    # A riskless (constant, non-zero) series has no Sharpe ratio to rank.
    same = [s for s in series if len(s) == length and not (s.max() == s.min() and s[0] != 0)]
    if len(same) < MIN_PBO_TRIALS:
        return (
            None,
            len(same),
            (
                f"PBO needs the returns series of at least {MIN_PBO_TRIALS} trials over the same periods; "
                f"{len(same)} were kept."
            ),
        )
    splits = min(16, length // 2 - (length // 2) % 2)
    if splits < 2:
        return None, len(same), f"PBO needs at least 4 periods per series; the kept ones have {length}."
    result = stats.pbo(np.column_stack(same), splits=splits)
    return result, len(same), ""


def _verdict_dsr(dsr: float) -> str:
    if dsr >= 0.95:
        return "likely a real edge"
    if dsr >= 0.5:
        return "not conclusive: 0.95 is the usual bar"
    return "no better than luck"


def _verdict_pbo(value: float) -> str:
    if value <= 0.1:
        return "little sign of overfitting"
    if value < 0.5:
        return "some of the winner's score is overfit"
    return "the in-sample choice does no better than a random one out of sample"


def assess_selection(
    trials: Sequence[FrozenTrial],
    winner: int | None,
    *,
    population: tuple[int, int, float] | None = None,
    unit: str = "trial",
    winner_name: str | None = None,
) -> Selection:
    """The selection statistics of ``trials`` (one study) for the trial numbered ``winner``.

    ``population`` (a batch sweep, whose trials are only its best points): ``(points run, points
    with a returns series, variance of their Sharpe ratios)`` measured elsewhere (a sample); then
    ``unit`` names what was run (``"point"``) and ``winner_name`` the winner (``"slot 87100"``).
    """
    trials_run = _trials_run(trials) if population is None else population[0]
    distinct = _distinct_completed(trials)
    with_stats = [t for t in distinct if isinstance(t.user_attrs.get(attrs.RETURNS_STATS), dict)]
    n = len(with_stats) if population is None else population[1]
    count = "{:,}".format if population is not None else str  # per-trial notes as they were
    notes = [f"{count(trials_run)} {unit}(s) run."]
    sharpe = sr0 = dsr = None
    best = _winner_trial(trials, winner) if winner is not None else None
    best_stats = best.user_attrs.get(attrs.RETURNS_STATS) if best is not None else None
    if not isinstance(best_stats, dict):
        if winner is not None:
            notes.append(
                "No deflated Sharpe ratio or PBO: the objective returned no per-period 'returns' series "
                "for the winner (return one beside the metrics to get them)."
            )
    elif n >= 1:
        if population is None:
            sharpes = np.array([t.user_attrs[attrs.RETURNS_STATS]["sharpe"] for t in with_stats])
            variance = float(np.var(sharpes, ddof=1)) if n > 1 else 0.0
        else:
            variance = population[2]
        if n > 1 and variance == 0.0:
            notes.append(f"No deflated Sharpe ratio: every {unit}'s Sharpe ratio is the same.")
        else:
            sharpe = float(best_stats["sharpe"])
            sr0 = stats.expected_maximum_sharpe(n_trials=n, trials_sharpe_variance=variance)
            dsr = stats.deflated_sharpe_ratio(
                sharpe,
                n_trials=n,
                trials_sharpe_variance=variance,
                skew=float(best_stats["skew"]),
                kurtosis=max(float(best_stats["kurtosis"]), 1.0 + float(best_stats["skew"]) ** 2),
                periods=int(best_stats["periods"]),
            )
            name = winner_name or f"trial {best.number if best else winner}"
            notes.append(
                f"Deflated Sharpe ratio of the winner ({name}): {dsr:.2f}, "
                f"the probability that its true Sharpe ratio (measured: {sharpe:.3g} per period) beats "
                f"{sr0:.3g} per period, the best that {count(n)} {unit}(s) without skill would show by luck: "
                f"{_verdict_dsr(dsr)}."
            )
    pbo_result, pbo_trials, why = _pbo(distinct)
    if pbo_result is not None:
        notes.append(
            f"PBO {pbo_result.pbo:.2f} over the {pbo_trials} {unit}s whose returns were kept (the best): in "
            f"{pbo_result.pbo:.0%} of {pbo_result.combinations:,} in-/out-of-sample splits the best "
            f"in-sample {unit} was at or below the median out of sample: {_verdict_pbo(pbo_result.pbo)}."
        )
    elif why and isinstance(best_stats, dict):
        notes.append(why)
    return Selection(
        trials_run=trials_run,
        n_trials=n,
        winner=winner,
        sharpe=sharpe,
        expected_max_sharpe=None if sr0 is None else float(sr0),
        deflated_sharpe=None if dsr is None or math.isnan(dsr) else float(dsr),
        pbo=pbo_result,
        pbo_trials=pbo_trials,
        note="\n".join(notes),
    )


def assess_batch_selection(
    kept: object, winner: int | None, *, points_run: int, n_objectives: int = 1
) -> Selection:
    """The selection statistics of a batch sweep: ``kept`` is its study attr
    ``attrs.STUDY_BATCH_RETURNS`` (the returns series of its best points and the statistics of a
    sample, or None when it kept none), ``winner`` the best point's grid slot and ``points_run``
    every point it ran. Its study's trials are only its top points, numbered from 0: the report
    and a run's result both judge a batch sweep here, from the kept points and the point counts."""
    name = f"slot {winner}" if winner is not None else None
    if not isinstance(kept, dict) or winner is None:
        return assess_selection([], winner, population=(points_run, 0, 0.0), unit="point", winner_name=name)
    # The kept points as completed trials (what PBO and the winner's statistics read).
    from optuna.trial import create_trial

    trials = [
        create_trial(
            state=TrialState.COMPLETE,
            values=[0.0] * n_objectives,
            user_attrs={attrs.RETURNS_STATS: p["stats"], attrs.RETURNS: p["returns"]},
        )
        for p in kept["points"]
    ]
    for i, t in enumerate(trials):
        t.number = i
    slots = [p["slot"] for p in kept["points"]]
    return assess_selection(
        trials,
        slots.index(winner) if winner in slots else None,
        population=(points_run, int(kept["n_trials"]), float(kept["sharpe_variance"])),
        unit="point",
        winner_name=name,
    )
