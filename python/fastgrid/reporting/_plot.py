"""Pictures of a stored sweep: a metric heatmap over two parameters (matplotlib, PNG) and
Optuna's interactive plots (plotly, HTML).

The heatmap is the backtesting.py-style view of a grid: one cell per pair of values of two
parameters, holding the metric aggregated over every other parameter: by default the best value
per cell (max for a maximized metric, min for a minimized one), or the mean or the other extreme.
"""

from __future__ import annotations

import difflib
import math
import textwrap
from collections import defaultdict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fastgrid.reporting._batch import BatchReport

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from fastgrid.reporting._report import Report

__all__ = [
    "AGGREGATES",
    "OPTUNA_KINDS",
    "heatmap_figure",
    "heatmap_title",
    "optuna_figure",
    "save_heatmap",
    "save_optuna",
]

AGGREGATES = ("max", "mean", "min")
OPTUNA_KINDS = ("history", "importance", "parallel", "contour")


def _metric_of(report: Report | BatchReport, row: Mapping[str, Any], metric: str) -> float | None:
    if metric in row["metrics"]:
        value = row["metrics"][metric]
    elif metric in report.metrics and row["values"]:
        value = row["values"][report.metrics.index(metric)]
    else:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _sort_key(value: Any) -> tuple[int, Any]:
    return (0, value) if isinstance(value, int | float) and not isinstance(value, bool) else (1, str(value))


def heatmap_figure(
    report: Report | BatchReport,
    x: str,
    y: str,
    *,
    metric: str | None = None,
    agg: str | None = None,
    feasible_only: bool = True,
) -> Figure:
    """A heatmap of ``metric`` (default: the first objective) over parameters ``x`` and ``y``;
    each cell holds ``agg`` (``max``, ``mean`` or ``min``) of its points, by default the best one:
    see :func:`default_agg`.

    Raises:
        ValueError: an unknown parameter, metric or aggregate, or no completed trial to plot.
    """
    from matplotlib.figure import Figure

    names = report.param_names
    for axis, name in (("X", x), ("Y", y)):
        if name not in names:
            raise ValueError(_unknown(f"{axis}: no parameter", name, report.name, "parameters", names))
    if x == y:
        raise ValueError("X and Y must be two different parameters")
    metric = metric or report.metrics[0]
    agg = agg or default_agg(report, metric)
    if agg not in AGGREGATES:
        raise ValueError(f"--agg: expected one of {', '.join(AGGREGATES)}, got {agg!r}")
    if isinstance(report, BatchReport):
        xs, ys, grid = _batch_cells(report, x, y, metric, agg, feasible_only)
    else:
        xs, ys, grid = _trial_cells(report, x, y, metric, agg, feasible_only)

    # A cell per value up to about 40 a side; past that (batch sweeps) the figure stops growing and
    # every k-th value is labelled.
    fig = Figure(
        figsize=(min(max(6.0, 0.45 * len(xs) + 2.5), 20.0), min(max(4.5, 0.35 * len(ys) + 2.0), 16.0))
    )
    ax = fig.add_subplot()
    image = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis", interpolation="nearest")
    step_x, step_y = max(1, math.ceil(len(xs) / 40)), max(1, math.ceil(len(ys) / 40))
    ax.set_xticks(
        range(0, len(xs), step_x), [_label(v) for v in xs[::step_x]], rotation=90 if len(xs) > 12 else 0
    )
    ax.set_yticks(range(0, len(ys), step_y), [_label(v) for v in ys[::step_y]])
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.set_title(heatmap_title(report, x, y, metric=metric, agg=agg, width=fig.get_figwidth()))
    fig.colorbar(image, ax=ax, label=f"{metric} ({agg})")
    fig.tight_layout()
    return fig


def _unknown(what: str, name: str, sweep: str, kind: str, known: list[str]) -> str:
    """``what 'name' in sweep 'sweep' (did you mean 'x'? kind: [...])``: the closest known name first."""
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"{what} {name!r} in sweep {sweep!r} ({hint}{kind}: {known})"


def default_agg(report: Report | BatchReport, metric: str) -> str:
    """The best value per cell: ``min`` when ``metric`` is minimized, else ``max``. A metric that
    is not an objective follows the first objective's direction."""
    index = report.metrics.index(metric) if metric in report.metrics else 0
    directions = report.directions
    direction = directions[index] if index < len(directions) else directions[0]
    return "min" if direction == "minimize" else "max"


def _trial_cells(
    report: Report, x: str, y: str, metric: str, agg: str, feasible_only: bool
) -> tuple[list[Any], list[Any], list[list[float]]]:
    cells: dict[tuple[Any, Any], list[float]] = defaultdict(list)
    for row in report.rows:
        if row["state"] != "COMPLETE" or (feasible_only and not row["feasible"]):
            continue
        if x not in row["params"] or y not in row["params"]:
            continue
        value = _metric_of(report, row, metric)
        if value is not None:
            cells[(_hashable(row["params"][x]), _hashable(row["params"][y]))].append(value)
    if not cells:
        raise ValueError(f"sweep {report.name!r} has no completed trial with a value of {metric!r} to plot")
    xs = sorted({k[0] for k in cells}, key=_sort_key)
    ys = sorted({k[1] for k in cells}, key=_sort_key)
    reducers: dict[str, Callable[[list[float]], float]] = {"max": max, "min": min, "mean": _mean}
    reduce = reducers[agg]
    grid = [[math.nan] * len(xs) for _ in ys]
    for (vx, vy), values in cells.items():
        grid[ys.index(vy)][xs.index(vx)] = reduce(values)
    return xs, ys, grid


def _batch_cells(
    report: BatchReport, x: str, y: str, metric: str, agg: str, feasible_only: bool
) -> tuple[list[Any], list[Any], Any]:
    """A batch sweep's cells, aggregated in numpy over every stored point (issue 13)."""
    known = report.results.metric_names
    if metric not in known:
        raise ValueError(_unknown("--metric: no metric", metric, report.name, "metrics", known))
    xs, ys, grid = report.results.aggregate(x, y, metric, agg=agg, feasible_only=feasible_only)
    if not np.isfinite(grid).any():
        raise ValueError(f"sweep {report.name!r} has no feasible point with a value of {metric!r} to plot")
    keep_x = np.isfinite(grid).any(axis=0)
    keep_y = np.isfinite(grid).any(axis=1)
    order_x = sorted(np.flatnonzero(keep_x).tolist(), key=lambda i: _sort_key(_hashable(xs[i])))
    order_y = sorted(np.flatnonzero(keep_y).tolist(), key=lambda j: _sort_key(_hashable(ys[j])))
    return (
        [_hashable(xs[i]) for i in order_x],
        [_hashable(ys[j]) for j in order_y],
        grid[np.ix_(order_y, order_x)],
    )


def heatmap_title(
    report: Report | BatchReport, x: str, y: str, *, metric: str, agg: str, width: float = 6.0
) -> str:
    """``name: metric, max over a, b`` naming only the parameters that vary (a fixed one is not
    aggregated over), at most three of them, wrapped to the figure's width (issue 11: a long list
    was clipped at both ends)."""
    if isinstance(report, BatchReport):
        varying = [n for n in report.results.varying if n not in (x, y)]
    else:
        distinct: dict[str, set[str]] = defaultdict(set)
        for row in report.rows:
            for name, value in row["params"].items():
                distinct[name].add(repr(value))
        varying = [n for n in report.param_names if n not in (x, y) and len(distinct[n]) > 1]
    if len(varying) > 3:
        over = f", {agg} over {len(varying)} parameters ({', '.join(varying[:3])}, ...)"
    elif varying:
        over = f", {agg} over {', '.join(varying)}"
    else:
        over = ""
    # About 11 characters per inch at matplotlib's default title size.
    return textwrap.fill(f"{report.name}: {metric}{over}", width=max(30, int(width * 11)))


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _hashable(value: Any) -> Any:
    return repr(value) if isinstance(value, list | dict) else value


def _label(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def save_heatmap(report: Report | BatchReport, x: str, y: str, path: str | Path, **options: Any) -> Figure:
    """Draw the heatmap and write it as a PNG (matplotlib's Agg backend, no display needed)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = heatmap_figure(report, x, y, **options)
    FigureCanvasAgg(fig)
    fig.savefig(path, format="png", dpi=100)
    return fig


def optuna_figure(report: Report | BatchReport, kind: str) -> Any:
    """One of Optuna's plotly figures of the study: history, importance, parallel or contour."""
    import warnings

    import optuna.visualization as vis

    if report.study is None:
        raise ValueError("this report has no study to plot")
    if kind not in OPTUNA_KINDS:
        raise ValueError(f"KIND: expected heatmap or one of {', '.join(OPTUNA_KINDS)}, got {kind!r}")
    complete = [r for r in report.rows if r["state"] == "COMPLETE"]
    if not complete:
        raise ValueError(f"sweep {report.name!r} has no completed trial to plot")
    study = report.study
    options: dict[str, Any] = {}
    if len(study.directions) > 1:
        options = {"target": lambda t: t.values[0], "target_name": report.metrics[0]}
    else:
        options = {"target_name": report.metrics[0]}
    draw: Any = {
        "history": vis.plot_optimization_history,
        "importance": vis.plot_param_importances,
        "parallel": vis.plot_parallel_coordinate,
        "contour": vis.plot_contour,
    }[kind]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return draw(study, **options)


def save_optuna(report: Report | BatchReport, kind: str, path: str | Path) -> Any:
    """Write an Optuna plot as a self-contained HTML file (opens offline in any browser)."""
    fig = optuna_figure(report, kind)
    fig.write_html(str(path), include_plotlyjs=True)
    return fig
