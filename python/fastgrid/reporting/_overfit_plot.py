"""Pictures of selection luck (matplotlib, PNG): the CSCV logit distribution with the in-sample vs
out-of-sample Sharpe ratios of a sweep's winners, and a walk-forward's in- vs out-of-sample scores."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from fastgrid.reporting._report import Report
    from fastgrid.walkforward import WalkForwardResult

__all__ = ["overfitting_figure", "save_overfitting", "walkforward_figure"]


def overfitting_figure(report: Report) -> Figure:
    """Left: the histogram of the CSCV logits (the share at or left of 0 is PBO). Right: each
    combination's in-sample winner, in- against out-of-sample Sharpe ratio, with the fitted line
    (performance degradation).

    Raises:
        ValueError: the study has no PBO (too few returns series were kept).
    """
    from matplotlib.figure import Figure

    selection = report.selection
    if selection is None or selection.pbo is None:
        why = " ".join(
            s for s in (selection.sentences() if selection else []) if "PBO" in s or "returns" in s
        )
        raise ValueError(f"sweep {report.name!r} has no PBO to plot" + (f": {why}" if why else ""))
    pbo = selection.pbo
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    left, right = fig.subplots(1, 2)
    logits = pbo.logits
    bins = min(60, max(10, len(np.unique(logits))))
    left.hist(logits, bins=bins, color="#4c72b0", alpha=0.85)
    left.axvline(0.0, color="#c44e52", linewidth=1.5)
    left.set_title(f"CSCV logits: PBO = {pbo.pbo:.2f} ({pbo.combinations:,} splits, {pbo.strategies} trials)")
    left.set_xlabel("logit of the in-sample winner's out-of-sample rank (< 0: below the median)")
    left.set_ylabel("splits")
    right.scatter(pbo.is_sharpe, pbo.oos_sharpe, s=6, alpha=0.35, color="#4c72b0")
    if np.isfinite(pbo.degradation_slope):
        xs = np.linspace(float(pbo.is_sharpe.min()), float(pbo.is_sharpe.max()), 2)
        right.plot(xs, pbo.degradation_intercept + pbo.degradation_slope * xs, color="#c44e52")
    right.axhline(0.0, color="grey", linewidth=0.8)
    right.set_title(
        f"winners in vs out of sample: slope {pbo.degradation_slope:.2f}, "
        f"P(loss) {pbo.probability_of_loss:.2f}"
    )
    right.set_xlabel("in-sample Sharpe ratio (per period)")
    right.set_ylabel("out-of-sample Sharpe ratio (per period)")
    return fig


def walkforward_figure(result: WalkForwardResult) -> Figure:
    """Each fold's top trials, in-sample against out-of-sample score; the selected trial ringed.

    Raises:
        ValueError: no fold has been scored out of sample yet.
    """
    from matplotlib.figure import Figure

    scored = [f for f in result.folds if any(t.get("out_of_sample") is not None for t in f.top)]
    if not scored:
        raise ValueError(f"walk-forward {result.name!r} has no fold scored out of sample yet")
    fig = Figure(figsize=(6.5, 5), layout="constrained")
    ax = fig.subplots()
    values: list[float] = []
    for f in scored:
        pairs = [(t["in_sample"], t["out_of_sample"]) for t in f.top if t.get("out_of_sample") is not None]
        xs, ys = zip(*pairs, strict=True)
        values.extend(xs + ys)
        points = ax.scatter(xs, ys, s=18, label=f"fold {f.index}")
        if f.in_sample is not None and f.out_of_sample is not None:
            ax.scatter(
                [f.in_sample], [f.out_of_sample], s=110, facecolors="none", edgecolors=points.get_facecolor()
            )
    lo, hi = min(values), max(values)
    ax.plot([lo, hi], [lo, hi], color="grey", linewidth=0.8, linestyle="--")
    efficiency = result.efficiency
    title = f"walk-forward {result.name}: in- vs out-of-sample {result.metric}"
    ax.set_title(title + (f" (efficiency {efficiency:.2f})" if efficiency is not None else ""))
    ax.set_xlabel(f"in-sample {result.metric}")
    ax.set_ylabel(f"out-of-sample {result.metric}")
    ax.legend(fontsize="small")
    return fig


def save_overfitting(figure: Figure, path: str | Path) -> Path:
    target = Path(path)
    figure.savefig(target, dpi=110)
    return target
