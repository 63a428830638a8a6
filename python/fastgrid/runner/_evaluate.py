"""The one trial evaluation that a sweep's workers and its ``[validate]`` step both use.

Which objective a sweep runs, which values an outcome gives the study, whether a value is usable
and whether the ``require`` constraints hold: each rule is written here once.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from fastgrid._core import Expression
from fastgrid.exceptions import SweepFileError
from fastgrid.objective import CallableObjective, CommandObjective, Objective, ResultsSpec, lookup_metric
from fastgrid.refs import import_object
from fastgrid.runner._plan import SweepPlan

__all__ = [
    "Constraints",
    "UnknownMetricError",
    "build_objective",
    "has_name",
    "holds",
    "jsonable",
    "objective_values",
]


def build_objective(plan: SweepPlan, metrics: list[str]) -> Objective:
    """The sweep's objective: its command, or its callable (given in Python or as ``module:name``)."""
    spec = plan.spec.objective
    if spec.command is not None:
        results = None
        if spec.results is not None:
            results = ResultsSpec(
                dir=spec.results.dir,
                **{
                    k: v
                    for k, v in spec.results.model_dump(exclude={"dir"}).items()
                    if v is not None and v != {}
                },
            )
        return CommandObjective(
            spec.command,
            metrics=metrics,
            timeout=spec.timeout,
            retries=spec.retries,
            backoff=spec.backoff,
            env=dict(spec.env),
            cwd=spec.cwd,
            results=results,
            log_limit=spec.log_limit,
        )
    target: Any = plan.target if plan.target is not None else _import(str(spec.callable))
    # A callable gets its config in memory; writing it to a file per trial would be pure overhead
    # (the best trial's config is written at the end of the run).
    return CallableObjective(
        target,
        metrics=metrics,
        timeout=spec.timeout,
        retries=spec.retries,
        backoff=spec.backoff,
        write_config=False,
    )


def _import(ref: str) -> Any:
    try:
        return import_object(ref, what="callable")
    except ValueError as exc:
        raise SweepFileError("objective.callable", [f"objective.callable: {exc}"]) from None


def objective_values(names: Sequence[str], metrics: Mapping[str, Any], value: Any) -> list[float] | str:
    """The study values of an outcome, one per objective metric; a reason string when unusable.

    A value is usable when it is a finite number: a missing metric, a non-number, NaN or an
    infinity is a failed trial with that reason, never a recorded value.
    """
    if all(has_name(metrics, m) for m in names):
        raw: list[Any] = [lookup_metric(metrics, m)[1] for m in names]
    elif value is not None and len(names) == 1 and not isinstance(value, list | tuple):
        raw = [value]
    elif isinstance(value, list | tuple) and len(value) == len(names):
        raw = list(value)
    else:
        missing = [m for m in names if not has_name(metrics, m)]
        return f"missing metric {', '.join(missing)} (got {', '.join(map(str, metrics)) or 'none'})"
    out = []
    for name, v in zip(names, raw, strict=True):
        try:
            f = float(v)
        except OverflowError:
            return f"metric {name} is too large for a float"
        except Exception:  # TypeError, ValueError, or a hostile __float__
            return f"metric {name} is not a number: {_short(v)}"
        if not math.isfinite(f):
            return f"metric {name} is {f}"
        out.append(f)
    return out


def _short(value: Any, limit: int = 60) -> str:
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def holds(expr: Any, values: Mapping[str, Any]) -> bool:
    """A parameter constraint (``where``) that cannot be evaluated on these values does not hold."""
    try:
        return bool(expr.evaluate(values))
    except ValueError:
        return False


class UnknownMetricError(ValueError):
    """A ``require`` constraint names a metric the objective did not return.

    Not a property of one point: every trial would be "infeasible" for a typo, so the runner fails
    the sweep at the first trial with this message (the expression engine's, with its "did you
    mean") instead (issue 11).
    """


def has_name(metrics: Mapping[str, Any], name: str) -> bool:
    """Whether ``name`` is a flat key of ``metrics`` or a dotted path into nested mappings, the two
    ways :meth:`fastgrid.Expression.evaluate` looks a name up."""
    if name in metrics:
        return True
    node: Any = metrics
    for part in name.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True


class Constraints:
    """The ``require`` constraints of a sweep, checked on a trial's metrics."""

    def __init__(self, sources: Sequence[str]) -> None:
        self.exprs = [(src, Expression(src)) for src in sources]

    def __bool__(self) -> bool:
        return bool(self.exprs)

    @property
    def sources(self) -> list[str]:
        return [src for src, _ in self.exprs]

    def check(self, metrics: Mapping[str, Any]) -> tuple[bool, list[float], list[str]]:
        """(feasible, one value per constraint (0 held, 1 broken), the broken constraints' sources).

        Raises:
            UnknownMetricError: a constraint names a metric that ``metrics`` lacks.
        """
        values, failed = [], []
        for i, (src, expr) in enumerate(self.exprs):
            missing = [name for name in expr.names if not has_name(metrics, name)]
            if missing:
                raise UnknownMetricError(f"constraints.require[{i}]: {_unknown(expr, metrics, missing[0])}")
            try:
                ok = bool(expr.evaluate(metrics))
            except (ValueError, TypeError):
                ok = False  # a value its operator cannot take (a None, a string): this point fails it
            values.append(0.0 if ok else 1.0)
            if not ok:
                failed.append(src)
        return not failed, values, failed


def _unknown(expr: Any, metrics: Mapping[str, Any], name: str) -> str:
    try:
        expr.evaluate(metrics)
    except ValueError as exc:  # the engine's own message: column and "did you mean"
        message = str(exc)
    else:  # pragma: no cover - evaluate finds every name has_name does not
        message = f"unknown name {name!r}"
    shown = ", ".join(sorted(map(str, metrics))[:20]) or "none"
    return f"{message}; the objective returned the metrics: {shown}"


def jsonable(value: Any) -> Any:
    """``value`` as JSON can store it: as is when it can, else a copy with NaN and infinities as
    null, keys as strings, other objects as their ``str`` and a container inside itself as
    ``"<cycle>"`` (an objective's metrics may be any of these; issue 12, item 10)."""
    try:
        json.dumps(value, allow_nan=False)
        return value
    except (TypeError, ValueError, RecursionError):
        return _plain(value, set(), 0)


_MAX_DEPTH = 100


def _plain(value: Any, open_ids: set[int], depth: int) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping | list | tuple):
        if id(value) in open_ids or depth >= _MAX_DEPTH:
            return "<cycle>" if id(value) in open_ids else "<too deep>"
        open_ids.add(id(value))
        try:
            if isinstance(value, Mapping):
                return {_key(k): _plain(v, open_ids, depth + 1) for k, v in value.items()}
            return [_plain(v, open_ids, depth + 1) for v in value]
        finally:
            open_ids.discard(id(value))
    try:
        return str(value)
    except Exception:
        return f"<{type(value).__name__}>"


def _key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, bool | int | float) or key is None:
        return json.dumps(key)
    try:
        return str(key)
    except Exception:
        return f"<{type(key).__name__}>"
