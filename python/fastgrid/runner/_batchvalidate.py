"""``[validate]`` for a batch sweep: the top points scored once more with the override.

The rule is the per-trial one (``fastgrid.runner._validate``): after the run, the top ``top``
completed feasible distinct points by the search score are evaluated again with ``override``
applied to their config; a point whose re-run fails, lacks the metric, scores a non-finite value or
breaks ``require`` gets no held-out score; the rows, best validated first, are the study attr
``fastgrid.validation``. What differs is how the points are scored: as a chunk scores them
(:func:`fastgrid.batch.check_columns`), a vectorized objective in one call with their parameter
columns and the overridden default config, a per-point callable on each point's merged and
overridden config.

Workers that finish together (``fastgrid worker``) validate once: the writer is elected through
the chunk store (:meth:`ChunkStore.claim_leaders` on a slot no point has), and the others wait for
its rows (``fastgrid.validation_of`` says what they validated and when) instead of running them.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from fastgrid import attrs
from fastgrid.batch import as_row, check_columns, owner_id, slot_columns, sweep_view
from fastgrid.config import ConfigCache
from fastgrid.dotted import apply_override, nest
from fastgrid.runner._plan import SweepPlan

if TYPE_CHECKING:
    from fastgrid.study import Row

__all__ = ["validate_batch"]

# The leaders-table row (a slot no grid point has) whose holder runs the sweep's [validate].
VALIDATION_SLOT = -1
# How often a worker waiting for another one's validation looks for its rows.
WAIT_S = 0.05
# How often the validating worker renews its claim (well within the store's leader lease).
RENEW_S = 30.0


def candidates(results: Any, direction: str, metric: str, top: int) -> list[Row]:
    """The top ``top`` feasible distinct points by ``metric`` (ties to the lower slot), as rows."""
    from fastgrid.study import top_rows

    n = top
    while True:
        got = results.top(n, metric=metric)
        rows = top_rows([as_row(r, [metric]) for r in got], direction, top, feasible_only=True, distinct=True)
        if len(rows) == top or len(got) < n:
            return rows
        n *= 2  # a union of trees may repeat a point: look further down


def validate_batch(
    plan: SweepPlan,
    run: Any,
    objective: Any,
    cache: ConfigCache | None,
    *,
    started: float,
    open_study: Callable[[], Any],
) -> list[dict[str, Any]]:
    """The ``[validate]`` rows of the finished batch run ``run`` (best validated first), written
    to the study (or, when another worker just wrote them for the same points, read from it).
    ``objective``: the batch objective (imported) or the per-point callable (a callable or its
    ``"module:function"``); ``started``: when this run started (a Unix time)."""
    section = plan.spec.validate_
    results = run.results
    if section is None or results is None:
        return []
    sweep = plan.spec.sweep
    direction, metric = sweep.all_directions[0], sweep.objective_metrics[0]
    chosen = candidates(results, direction, metric, section.top)
    if not chosen:
        return []
    done = int(results.counts()["done"])
    key = json.dumps(
        {
            "points": [[r["number"], r["value"]] for r in chosen],
            "override": section.override,
            "fingerprint": cache.fingerprint if cache is not None else "-",
        },
        sort_keys=True,
        default=str,
    )
    store, owner = results.store, owner_id()
    study = run.study if run.study is not None else open_study()
    while True:
        if store.claim_leaders(results.name, owner, [VALIDATION_SLOT]):
            renew = _Renew(store, results.name, owner)
            try:
                stored = _stored(study, key, done, started)
                if stored is not None:
                    return stored
                with renew:
                    rows = _evaluate(plan, results, chosen, objective, cache, metric, direction)
                # The rows first: a reader that finds the key finds its rows.
                study.set_user_attr(attrs.STUDY_VALIDATION, json.loads(json.dumps(rows, default=str)))
                study.set_user_attr(attrs.STUDY_VALIDATION_OF, {"key": key, "done": done, "at": time.time()})
                return rows
            finally:
                store.release_leaders(results.name, owner, [VALIDATION_SLOT])
        # Another worker is validating: its rows are ours when it validated these points.
        stored = _stored(study, key, done, started)
        if stored is not None:
            return stored
        time.sleep(WAIT_S)


class _Renew:
    """Claims the validation again every ``RENEW_S`` while it runs: a claim older than the store's
    leader lease (two minutes) goes to the next worker that asks, which would validate again."""

    def __init__(self, store: Any, name: str, owner: str) -> None:
        self._store, self._name, self._owner = store, name, owner
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fastgrid-validate-lease", daemon=True)

    def __enter__(self) -> _Renew:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(RENEW_S):
            with contextlib.suppress(Exception):  # a store that does not answer now may later
                self._store.claim_leaders(self._name, self._owner, [VALIDATION_SLOT])


def _stored(study: Any, key: str, done: int, started: float) -> list[dict[str, Any]] | None:
    """The stored rows when they stand for this run's: the same points validated since this run
    started, or a validation of more recorded points than this run saw (a worker that stopped
    claiming before the last chunks were recorded must not overwrite it with an older top)."""
    user_attrs = study.user_attrs
    of = user_attrs.get(attrs.STUDY_VALIDATION_OF)
    rows = user_attrs.get(attrs.STUDY_VALIDATION)
    if not isinstance(of, Mapping) or not isinstance(rows, list):
        return None
    if (of.get("key") == key and float(of.get("at", 0)) >= started) or int(of.get("done", 0)) > done:
        return rows
    return None


def _filled(value: Any, n: int) -> np.ndarray[Any, Any]:
    """A column of ``n`` times ``value`` with the grid engine's dtype rule: numbers and booleans as
    numpy numbers, anything else (strings, lists, tables, None) as objects."""
    if isinstance(value, bool | int | float):
        return np.full(n, value)
    column = np.empty(n, dtype=object)
    for i in range(n):
        column[i] = value
    return column


def _evaluate(
    plan: SweepPlan,
    results: Any,
    chosen: list[Row],
    objective: Any,
    cache: ConfigCache | None,
    metric: str,
    direction: str,
) -> list[dict[str, Any]]:
    """The chosen points scored with the override, as validation rows (best validated first)."""
    # (Imported here: the batch runner imports this module, and a joining worker loads no Optuna.)
    from fastgrid.runner._validate import best_validated_first

    spec = plan.spec
    section = spec.validate_
    assert section is not None
    override, strict = section.override, plan.has_config
    vectorized = spec.objective.batch is not None
    options: dict[str, Any] = {
        "metric": metric,
        "metrics": spec.sweep.objective_metrics,
        "require": spec.constraints.require,
        "slots": [r["number"] for r in chosen],
        "import_path": plan.import_path,
    }
    sweep = spec.sweep
    view = sweep_view(spec.parameters, where=sweep.where, order=sweep.order, seed=sweep.seed)
    # The columns a chunk gave these points (the grid engine's dtypes; stored params would turn a
    # column of mixed values into strings).
    columns = slot_columns(view, options["slots"])
    if vectorized:
        default = cache.to_dict() if cache is not None else {}
        # The read-only view the chunks got, with the override (ConfigCache builds the view).
        config = ConfigCache.from_mapping(apply_override(default, override, strict=strict), allow_new=True)
        for path, value in override.items():
            if path in columns:
                # An overridden parameter: its column too, as in each point's config (same shape).
                varying = isinstance(columns[path], np.ndarray)
                columns[path] = _filled(value, len(chosen)) if varying else value
        checked = check_columns(columns, len(chosen), batch=objective, config=config.snapshot, **options)
    else:
        merged: Callable[[dict[str, Any]], Any] = cache.merged if cache is not None else nest
        checked = check_columns(
            columns,
            len(chosen),
            callable=objective,
            merge=lambda point: apply_override(merged(point), override, strict=strict),
            **options,
        )
    out = []
    for row, point in zip(chosen, checked, strict=True):
        feasible = point.reason is None and not point.failed
        out.append(
            {
                "number": row["number"],
                "params": row["params"],
                "value": row["value"],
                "validated": point.metrics[metric] if feasible else None,
                "metrics": point.metrics,
                "feasible": feasible,
                "reason": point.reason if not feasible else None,
                "returns": None,
            }
        )
    return best_validated_first(out, direction)
