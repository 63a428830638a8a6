"""``SweepResult``: what a run leaves, read from the stored study."""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # Imported where used: a batch sweep's result (a subclass) never loads Optuna's trial machinery.
    import optuna
    from optuna.trial import FrozenTrial

    from fastgrid.selection import Selection
    from fastgrid.study import Row, StoredAxes

__all__ = ["SweepResult"]


@dataclass
class SweepResult:
    """What a run leaves: rows of every trial, the best feasible one and its merged config.

    ``rows`` holds one :class:`fastgrid.study.Row` per trial of the study (all runs): number,
    state, value(s), params (flat dotted paths), metrics, key, reused, feasible, reason, duration,
    attempts, result_path. It is built on first access (a resumed sweep of 10,000 trials need not
    pay for it). For several objectives ``best_trials`` is the feasible Pareto front and ``best``
    its first row. With a ``[validate]`` step, ``validation`` holds its rows (best validated first)
    and ``best`` is the trial that validated best.
    """

    name: str
    study: optuna.Study
    best: Row | None
    best_trials: list[Row]
    best_config: dict[str, Any] | None
    best_config_path: Path | None
    interrupted: bool = False
    ran: int = 0
    validation: list[dict[str, Any]] = field(default_factory=list)
    trials: list[FrozenTrial] = field(default_factory=list, repr=False)
    axes: StoredAxes | None = field(default=None, repr=False)
    counts: dict[str, int] = field(default_factory=dict)
    """Complete / failed / reused / infeasible / running / pruned trials of the study."""
    signal: int | None = None
    """The signal that stopped the run (SIGINT for Ctrl-C, SIGTERM, SIGHUP); None when it ended
    by itself. The CLI exits with 128 + its number."""
    stray_threads: list[str] = field(default_factory=list)
    """Names of non-daemon threads that the objective started and left running."""

    @functools.cached_property
    def rows(self) -> list[Row]:
        from fastgrid.study import rows

        return rows(self.trials, self.axes)

    def failures(self) -> dict[str, int]:
        """Failed trials grouped by reason, most frequent first (a point retried after a failure
        counts once per failed attempt); a batch sweep's result has the same, per point."""
        counted = Counter(row["reason"] or "failed" for row in self.rows if row["state"] == "FAIL")
        return dict(counted.most_common())

    def to_pandas(self) -> Any:
        """The rows as a ``pandas.DataFrame`` with flat columns (see :func:`fastgrid.study.to_pandas`);
        pandas is optional (``pip install pandas``)."""
        from fastgrid.study import stored_metrics, to_pandas

        return to_pandas(self.rows, stored_metrics(self.study))

    @functools.cached_property
    def selection(self) -> Selection:
        """Trials run, the winner's deflated Sharpe ratio and PBO, with a plain summary in ``note``
        (see :func:`fastgrid.selection.assess_selection`)."""
        from fastgrid.selection import assess_selection

        return assess_selection(self.trials, self.best["number"] if self.best is not None else None)
