"""The stored-study contract: what a sweep leaves in its Optuna study and how it is read back.

The runner writes it, reports and plots read it; both go through this module, so the rules that
say which trials count, which one is best and what a row holds live here once:

- a **row** (:class:`Row`) is one trial as fastgrid reports it (flat params, metrics, bookkeeping);
- **counts** split the study's trials into complete / failed / reused / infeasible / running / pruned;
- the **best** trials are the feasible completed ones: the minimum (or maximum) of the single
  objective, ties to the lower number, or the Pareto front of several objectives;
- a trial marked exhausted (it found no grid slot left and ran nothing) is no trial of the sweep.

Reading needs no grid and no config: the study's own attrs (:mod:`fastgrid.attrs`) hold the rest.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypedDict

import optuna
from optuna.trial import FrozenTrial, TrialState

from fastgrid import attrs
from fastgrid.dotted import flatten
from fastgrid.samplers import decode_choice

__all__ = [
    "Row",
    "StoredAxes",
    "best_trials",
    "budget_trials",
    "counts",
    "direction_sign",
    "flat_metrics",
    "is_feasible",
    "pareto",
    "row",
    "rows",
    "same_reason",
    "stored_axes",
    "stored_metrics",
    "to_pandas",
    "top_rows",
]


class Row(TypedDict):
    """One trial of a sweep, as ``SweepResult.rows`` and reports hold it."""

    number: int
    state: str
    """``COMPLETE``, ``FAIL``, ``RUNNING``, ``PRUNED`` or ``WAITING``."""
    values: list[float] | None
    value: float | None
    """The single objective's value (None with several objectives or none recorded)."""
    params: dict[str, Any]
    """Flat dotted parameter paths, fixed ones included."""
    metrics: dict[str, Any]
    key: str | None
    reused: int | None
    """The number of the trial whose result this one reuses (None when it ran)."""
    feasible: bool
    reason: str | None
    duration: float | None
    attempts: int | None
    result_path: str | None


class StoredAxes(TypedDict):
    paths: list[str]
    fixed: dict[str, Any]


_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def same_reason(reason: str) -> str:
    """The part of a failure reason that does not depend on the point: numbers (the point's values,
    a trial number in a path) are blanked, so ``window 15 > 10 bars`` and ``window 20 > 10 bars``
    are one reason. Reports group failures by it and the runner's fail-fast compares with it."""
    return _NUMBER.sub("#", reason.strip())[:300]


def direction_sign(direction: str) -> float:
    """-1 for ``maximize``, 1 for ``minimize``: ``sign * value`` is smaller when better."""
    return -1.0 if direction == "maximize" else 1.0


def is_feasible(t: FrozenTrial) -> bool:
    """A completed trial whose ``require`` constraints held (trials without constraints are)."""
    return t.state == TrialState.COMPLETE and bool(t.user_attrs.get(attrs.FEASIBLE, True))


def _exhausted(t: FrozenTrial) -> bool:
    return bool(t.system_attrs.get(attrs.EXHAUSTED))


def _rejected(t: FrozenTrial) -> bool:
    return bool(t.system_attrs.get(attrs.REJECTED))


def _no_trial(t: FrozenTrial) -> bool:
    """A trial that ran nothing: no grid slot was left, or ``where`` rejected its suggestion."""
    system = t.system_attrs
    return bool(system.get(attrs.EXHAUSTED) or system.get(attrs.REJECTED))


_NOT_COUNTED = ("interrupted", "stale")


def budget_trials(trials: Iterable[FrozenTrial]) -> int:
    """The trials that count toward ``max_trials``: every trial of the sweep that evaluated (or is
    evaluating) its point. Not counted: trials that ran nothing (no slot left, a suggestion that
    ``where`` rejected) and failures of the run rather than of the point (``interrupted``, ``stale``)."""
    n = 0
    for t in trials:
        if _no_trial(t) or t.state == TrialState.WAITING:
            continue
        if t.state == TrialState.FAIL and str(t.user_attrs.get(attrs.REASON, "")).startswith(_NOT_COUNTED):
            continue
        n += 1
    return n


def row(t: FrozenTrial, axes: StoredAxes | None = None) -> Row | None:
    """The row of one trial; None for a trial that ran nothing (exhausted grid, rejected by where)."""
    if _no_trial(t):
        return None
    ua = t.user_attrs
    if attrs.PARAMS in ua:
        params = dict(ua[attrs.PARAMS])
    elif axes is not None:
        fixed = axes["fixed"]
        params = {
            p: fixed[p] if p in fixed else decode_choice(t.params[p])
            for p in axes["paths"]
            if p in fixed or p in t.params
        }
    else:
        params = {p: decode_choice(v) for p, v in t.params.items()}
    values = list(t.values) if t.values is not None else None
    return {
        "number": t.number,
        "state": t.state.name,
        "values": values,
        "value": values[0] if values is not None and len(values) == 1 else None,
        "params": params,
        "metrics": ua.get(attrs.METRICS, {}),
        "key": ua.get(attrs.KEY),
        "reused": ua.get(attrs.REUSED),
        "feasible": bool(ua.get(attrs.FEASIBLE, t.state == TrialState.COMPLETE)),
        "reason": ua.get(attrs.REASON),
        "duration": ua.get(attrs.DURATION),
        "attempts": ua.get(attrs.ATTEMPTS),
        "result_path": ua.get(attrs.RESULT_PATH),
    }


def rows(trials: Iterable[FrozenTrial], axes: StoredAxes | None = None) -> list[Row]:
    """The rows of ``trials`` (exhausted ones left out), in the given order."""
    out = []
    for t in trials:
        r = row(t, axes)
        if r is not None:
            out.append(r)
    return out


def counts(trials: Iterable[FrozenTrial]) -> dict[str, int]:
    """Complete / failed / reused / infeasible / running / pruned trials, in one pass; ``rejected``
    counts the search suggestions that ``where`` refused (recorded, never run)."""
    complete = failed = reused = infeasible = running = pruned = rejected = 0
    COMPLETE, FAIL, RUNNING, PRUNED = (
        TrialState.COMPLETE,
        TrialState.FAIL,
        TrialState.RUNNING,
        TrialState.PRUNED,
    )
    for t in trials:
        state = t.state
        if state == COMPLETE:
            ua = t.user_attrs
            complete += 1
            reused += ua.get(attrs.REUSED) is not None  # a trial number, and 0 is one
            infeasible += not ua.get(attrs.FEASIBLE, True)
        elif state == FAIL:
            failed += not _exhausted(t)
        elif state == RUNNING:
            running += 1
        elif state == PRUNED:
            if _rejected(t):
                rejected += 1
            else:
                pruned += 1
    return {
        "complete": complete,
        "failed": failed,
        "reused": reused,
        "infeasible": infeasible,
        "running": running,
        "pruned": pruned,
        "rejected": rejected,
    }


def pareto(items: Sequence[Any], directions: Sequence[str], *, values: Any = None) -> list[Any]:
    """The items no other item dominates (better or equal in every objective, better in one).

    ``values(item)`` gives an item's objective values (default: ``item["values"]``, a row's).
    """
    get = values if values is not None else (lambda item: item["values"])
    signs = [direction_sign(d) for d in directions]
    keyed = [[s * v for s, v in zip(signs, get(item), strict=True)] for item in items]

    def dominated(a: list[float]) -> bool:
        return any(
            all(x <= y for x, y in zip(b, a, strict=True)) and any(x < y for x, y in zip(b, a, strict=True))
            for b in keyed
        )

    return [item for item, k in zip(items, keyed, strict=True) if not dominated(k)]


def best_trials(trials: Iterable[FrozenTrial], directions: Sequence[str]) -> list[FrozenTrial]:
    """The best feasible completed trials: one for a single objective, the Pareto front for several."""
    feasible = [t for t in trials if t.values and is_feasible(t) and not _exhausted(t)]
    if not feasible:
        return []
    if len(directions) == 1:
        sign = direction_sign(directions[0])
        return [min(feasible, key=lambda t: (sign * t.values[0], t.number))]
    return pareto(feasible, directions, values=lambda t: t.values)


def top_rows(
    all_rows: Iterable[Row], direction: str, n: int, *, feasible_only: bool = False, distinct: bool = False
) -> list[Row]:
    """The ``n`` best completed rows by the first objective: feasible first, then by value and number.

    ``feasible_only`` drops infeasible rows; ``distinct`` keeps one row per point (a reused trial
    repeats its point).
    """
    sign = direction_sign(direction)
    done = [
        r
        for r in all_rows
        if r["state"] == "COMPLETE" and r["values"] and (r["feasible"] or not feasible_only)
    ]
    done.sort(key=lambda r: (not r["feasible"], sign * r["values"][0], r["number"]))  # type: ignore[index]
    if not distinct:
        return done[:n]
    out: list[Row] = []
    seen: set[Any] = set()
    for r in done:
        key = r["key"] if r["key"] is not None else repr(sorted(r["params"].items()))
        if key in seen:
            continue
        seen.add(key)
        out.append(r)
        if len(out) == n:
            break
    return out


def stored_metrics(study: optuna.Study) -> list[str]:
    """The metric names the sweep stored on its study (or Optuna's own ``set_metric_names``);
    generic names for a study without them (an older fastgrid's, or plain Optuna's)."""
    n = len(study.directions)
    for stored in (study.user_attrs.get(attrs.STUDY_METRICS), study.metric_names):
        if isinstance(stored, list) and len(stored) == n and all(isinstance(m, str) for m in stored):
            return list(stored)
    return ["value"] if n == 1 else [f"objective_{i}" for i in range(n)]


def stored_axes(study_attrs: Mapping[str, Any]) -> StoredAxes | None:
    """The parameter paths and fixed values a run stored (None for a study without them)."""
    value = study_attrs.get(attrs.STUDY_AXES)
    if (
        isinstance(value, dict)
        and isinstance(value.get("paths"), list)
        and isinstance(value.get("fixed"), dict)
    ):
        return {"paths": list(value["paths"]), "fixed": dict(value["fixed"])}
    return None


def flat_metrics(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested metrics (a command's ``{"metrics": {"sharpe": ...}}``) as dotted names, the way a
    dotted ``metric`` or ``require`` name reads them; other values as they are."""
    return flatten(values, prefix)


def to_pandas(all_rows: Sequence[Row], metrics: Sequence[str]) -> Any:
    """One ``pandas.DataFrame`` row per trial, flat columns: ``number``, ``state``, the objective
    value (``value``, or ``value.<metric>`` per objective), ``params.<path>``, ``metrics.<name>``
    (nested metrics flattened with dots), ``feasible``, ``reason``, ``duration``.

    Raises:
        ImportError: pandas is not installed (it is optional: ``pip install pandas``).
    """
    try:
        import pandas as pd
    except ImportError:
        raise ImportError(
            "to_pandas() needs pandas, which fastgrid does not install: pip install pandas"
        ) from None
    value_columns = ["value"] if len(metrics) == 1 else [f"value.{m}" for m in metrics]
    params: dict[str, None] = {}
    metric_columns: dict[str, None] = {}
    records = []
    for r in all_rows:
        flat_params = flat_metrics(r["params"], "params.")
        flat = flat_metrics(r["metrics"] or {}, "metrics.")
        params.update(dict.fromkeys(flat_params))
        metric_columns.update(dict.fromkeys(flat))
        values: list[Any] = list(r["values"]) if r["values"] else [None] * len(value_columns)
        records.append(
            {
                "number": r["number"],
                "state": r["state"],
                **dict(zip(value_columns, values, strict=False)),
                **flat_params,
                **flat,
                "feasible": r["feasible"],
                "reason": r["reason"],
                "duration": r["duration"],
            }
        )
    columns = ["number", "state", *value_columns, *params, *metric_columns, "feasible", "reason", "duration"]
    return pd.DataFrame.from_records(records, columns=columns)
