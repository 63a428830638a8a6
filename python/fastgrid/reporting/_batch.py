"""Reports of a batch sweep (``[sweep] mode = "batch"``), read from its columnar results.

A batch sweep's Optuna study holds only its top-K points; everything else (counts, the top N,
failures by reason, heatmaps, exports) is read column by column from the chunk store and reduced in
numpy, so a report of ten million points takes about a second (issue 13). :class:`BatchReport`
has :class:`Report`'s interface where it applies; a row's ``number`` is its grid slot.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from fastgrid import attrs
from fastgrid.batch import BatchResults, as_row, open_batch_store
from fastgrid.dotted import nest
from fastgrid.files import open_text
from fastgrid.reporting._common import (
    FailureGroup,
    json_text,
    make_console,
    print_best,
    print_failures,
    print_header,
    print_selection,
    print_top,
    print_validation,
    selection_json,
)
from fastgrid.selection import Selection, assess_batch_selection
from fastgrid.study import Row, same_reason

__all__ = ["BatchReport", "load_batch_report", "render_batch_report"]

# The rows a report holds in memory (``rows``, the JSON file); exports write every point.
KEPT_ROWS = 100


@dataclass
class BatchReport:
    """The stored results of a batch sweep: counts, failures by reason, the best points.

    ``results`` reads every point (:class:`fastgrid.batch.BatchResults`); ``rows`` holds the best
    ``KEPT_ROWS`` (with several objectives: the Pareto front, then the best by the first);
    ``to_csv`` / ``to_parquet`` write every point, ``to_json`` the summary and ``rows``.
    """

    name: str
    directions: list[str]
    metrics: list[str]
    results: BatchResults = field(repr=False)
    counts: dict[str, int] = field(default_factory=dict)
    study: Any = field(default=None, repr=False)
    config: Any = field(default=None, repr=False)
    validation: list[dict[str, Any]] = field(default_factory=list)
    importance: dict[str, float] | None = None

    @functools.cached_property
    def rows(self) -> list[Row]:
        return [as_row(r, self.metrics) for r in self.results.leaders(KEPT_ROWS)]

    @functools.cached_property
    def best(self) -> Row | None:
        """The best feasible point; with a ``[validate]`` step, the one with the best held-out score."""
        if self.validation and self.validation[0].get("validated") is not None:
            slot = int(self.validation[0]["number"])
            for row in self.rows:
                if row["number"] == slot:
                    return row
            at = np.flatnonzero(self.results.slots() == slot)[:1]
            if len(at):
                return as_row(self.results.rows_at(at)[0], self.metrics)
        return self.rows[0] if self.rows else None

    @functools.cached_property
    def failures(self) -> list[FailureGroup]:
        """Failed points grouped by reason as the per-trial report groups them (numbers blanked,
        :func:`fastgrid.study.same_reason`), most frequent first: reason (the first point's),
        count, first slot."""
        groups: dict[str, FailureGroup] = {}
        for g in sorted(self.results.failure_groups(), key=lambda g: g["first"]):
            key = same_reason(g["reason"])
            if key in groups:
                groups[key].count += g["count"]
            else:
                groups[key] = FailureGroup(reason=g["reason"], count=g["count"], first=g["first"], trials=[])
        return sorted(groups.values(), key=lambda g: (-g.count, g.first))

    @functools.cached_property
    def best_config(self) -> dict[str, Any] | None:
        """The best point's merged config (its params as a nested dict without a default config)."""
        if self.best is None:
            return None
        point = nest(self.best["params"])
        return self.config.merged(point) if self.config is not None else point

    @property
    def param_names(self) -> list[str]:
        return list(self.results.paths)

    def top(self, n: int) -> list[Row]:
        """The ``n`` best feasible points by the first objective (ties to the lower slot)."""
        return [as_row(r, self.metrics) for r in self.results.top(n, metric=self.metrics[0])]

    @functools.cached_property
    def selection(self) -> Selection | None:
        """The winner's deflated Sharpe ratio and PBO, when the sweep kept returns series (a batch
        objective that takes ``returns=``; see docs/batch.md); None otherwise."""
        kept = self.study.user_attrs.get(attrs.STUDY_BATCH_RETURNS) if self.study is not None else None
        if not isinstance(kept, dict) or self.best is None:
            return None
        return assess_batch_selection(
            kept,
            self.best["number"],
            points_run=self.counts.get("done", 0),
            n_objectives=len(self.directions),
        )

    def to_pandas(self, columns: list[str] | None = None) -> Any:
        """Every point as a pandas DataFrame (``columns`` picks some)."""
        return self.results.to_pandas(columns)

    def to_csv(self, path: str | Path | IO[str]) -> None:
        """Every point, a line each: slot, parameters, metrics, failed, feasible, reason, duration."""
        self.results.write_csv(path)

    def to_parquet(self, path: str | Path) -> None:
        """Every point to a Parquet file (needs pyarrow)."""
        self.results.write_parquet(path)

    def to_json(self, path: str | Path | IO[str]) -> None:
        """The summary (counts, best, failures by reason) and the kept ``rows``, not every point."""
        data = {
            "sweep": self.name,
            "mode": "batch",
            "directions": self.directions,
            "metrics": self.metrics,
            "counts": self.counts,
            "best": self.best,
            "best_config": self.best_config,
            "failures": [g.to_dict() for g in self.failures],
            "selection": selection_json(self.selection),
            "validation": self.validation,
            "top": self.rows,
        }
        with open_text(path) as fh:
            fh.write(json_text(data) + "\n")

    def write_best_config(self, path: str | Path | IO[str]) -> None:
        if self.best_config is None:
            raise ValueError(f"sweep {self.name!r} has no feasible point: no best config")
        with open_text(path) as fh:
            # The config as the objective got it (a NaN stays NaN: it is the user's value).
            fh.write(json.dumps(self.best_config, indent=2, default=str) + "\n")


def load_batch_report(
    study: Any, store: Path | str, *, name: str, metrics: list[str], config: Any
) -> BatchReport:
    """The report of the batch sweep ``name`` whose columns live in ``store`` (an SQLite file, or
    a PostgreSQL URL)."""
    if isinstance(store, Path) and not store.is_file():
        raise ValueError(
            f"sweep {name!r} is a batch sweep, but its results file {store} does not exist "
            "(run it, or pass the storage it used with --storage)"
        )
    results = BatchResults(open_batch_store(store, readonly=True), name)
    counts = results.counts()
    counts.update(reused=0, pruned=0, running=counts.get("points_in_flight", 0))
    validation = study.user_attrs.get(attrs.STUDY_VALIDATION)
    return BatchReport(
        name=name,
        directions=[d.name.lower() for d in study.directions],
        metrics=metrics,
        results=results,
        counts=counts,
        study=study,
        config=config,
        validation=list(validation) if isinstance(validation, list) else [],
    )


def render_batch_report(report: BatchReport, *, top: int = 10, console: Any = None) -> None:
    """Print a batch report with rich: counts, failures by reason, the top points, the best."""
    console = make_console(console)
    c = report.counts
    print_header(
        console,
        name=report.name,
        directions=report.directions,
        metrics=report.metrics,
        kind="batch",
        counts=f"{c['done']:,} of {c['total']:,} points done: {c['feasible']:,} feasible, "
        f"{c['infeasible']:,} infeasible, {c['failed']:,} failed"
        + (f", {c['running']:,} in flight" if c.get("running") else ""),
    )
    print_failures(
        console,
        report.failures,
        title=f"{c['failed']:,} failed points by reason",
        unit="points",
        first=lambda g: f"slot {g.first}",
        evidence=False,
        count=lambda n: f"{n:,}",
    )
    rows = report.top(top)
    print_top(
        console,
        rows,
        title=f"top {len(rows)} points",
        number="slot",
        metrics=report.metrics,
        params=report.param_names,
        tag=lambda row: str(row["number"]),
        feasible=False,
    )
    print_validation(
        console,
        report.validation,
        title="validation (held-out re-run of the top points)",
        number="slot",
        params=report.param_names,
    )
    best = report.best
    label = "best validated point" if report.validation else "best point"
    print_best(
        console,
        best,
        label=f"{label}: slot {best['number']}" if best is not None else "",
        metrics=report.metrics,
        none="no feasible point yet",
    )
    print_selection(console, report.selection)
