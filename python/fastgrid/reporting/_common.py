"""What the per-trial and the batch reports share: the lazily loaded default config, cell formats
and the rendering (header, failures by reason, the top rows, the best), one home for each rule."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fastgrid.config import ConfigCache
from fastgrid.selection import Selection
from fastgrid.study import Row, flat_metrics
from fastgrid.sweepfile import SweepFile

__all__ = [
    "FailureGroup",
    "json_text",
    "make_console",
    "print_best",
    "print_failures",
    "print_header",
    "print_selection",
    "print_top",
    "print_validation",
    "selection_json",
]


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


def json_text(data: Any) -> str:
    """``data`` as strict JSON (RFC 8259), for ``--json`` and ``to_json``: a non-finite number (a NaN
    or infinite metric) is ``null`` — ``json.dumps`` wrote the bare words ``NaN``/``Infinity``, which
    jq, JavaScript and most parsers reject or misread; numpy scalars are numbers; other objects
    their ``str()``."""
    return json.dumps(_strict(data), indent=2, default=str, allow_nan=False)


def _strict(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_strict(v) for v in value]
    item = getattr(value, "item", None)  # a numpy scalar: its Python number
    if item is not None and getattr(value, "shape", None) == ():
        return _strict(item())
    return value


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
    if 0 < seconds < 1e-4:  # a batch point's share of its chunk: microseconds, not "0.0ms"
        return f"{max(1, round(seconds * 1e6))}µs"
    return f"{seconds * 1000:.1f}ms" if seconds < 1 else f"{seconds:.2f}s"


# -- rendering shared by the per-trial and the batch report (rich is imported on first use) ---------
def make_console(console: Any = None, *, stderr: bool = False) -> Any:
    """``console``, or a rich Console (on standard error with ``stderr``): a pipe or file gets the
    whole table rather than rich's 80-column default."""
    if console is not None:
        return console
    from rich.console import Console

    console = Console(stderr=stderr)
    return console if console.is_terminal else Console(stderr=stderr, width=200)


def print_header(
    console: Any, *, name: str, directions: Sequence[str], metrics: Sequence[str], counts: str, kind: str = ""
) -> None:
    """``sweep NAME (maximize sharpe): <counts>``; ``kind`` (``"batch"``) goes inside the brackets."""
    what = f"{', '.join(directions)} {', '.join(metrics)}"
    console.print(f"[bold]sweep {name}[/bold] ({f'{kind}; ' if kind else ''}{what}): {counts}")


def print_failures(
    console: Any,
    groups: Sequence[FailureGroup],
    *,
    title: str,
    unit: str,
    first: Callable[[FailureGroup], str],
    evidence: bool,
    count: Callable[[int], str] = str,
    shown: int = 10,
) -> None:
    """The failures by reason: a line per group (``unit`` counted, the first one, the reason and,
    with ``evidence``, the log or folder to look at), then how many reasons and ``unit`` are left."""
    if not groups:
        return
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column(unit, justify="right")
    table.add_column("first", justify="right")
    table.add_column("reason", overflow="fold")
    if evidence:
        table.add_column("look at", overflow="fold")
    for group in groups[:shown]:
        cells = [count(group.count), first(group), group.reason]
        table.add_row(*cells, *([group.evidence or "-"] if evidence else []))
    console.print(table)
    if len(groups) > shown:
        rest = sum(g.count for g in groups[shown:])
        console.print(f"... and {len(groups) - shown} more reasons ({count(rest)} {unit})")


def print_top(
    console: Any,
    rows: Sequence[Row],
    *,
    title: str,
    number: str,
    metrics: Sequence[str],
    params: Sequence[str],
    tag: Callable[[Row], str],
    feasible: bool,
) -> None:
    """The top rows: their number (``tag``), the objective metrics, the parameters (short names),
    the other metrics, with ``feasible`` a yes/no column, and the time each took."""
    from rich.table import Table

    names = _short_names(params)
    extra: dict[str, None] = {}
    for row in rows:
        extra.update(dict.fromkeys(m for m in flat_metrics(row["metrics"]) if m not in metrics))
    table = Table(title=title, title_justify="left")
    table.add_column(number, justify="right")
    for m in metrics:
        table.add_column(m, justify="right", style="bold")
    for p in params:
        table.add_column(names[p], justify="right")
    for m in extra:
        table.add_column(m, justify="right")
    if feasible:
        table.add_column("feasible")
    table.add_column("time", justify="right")
    for row in rows:
        values = list(row["values"] or [])
        flat = flat_metrics(row["metrics"])
        table.add_row(
            tag(row),
            *[_fmt(v) for v in values],
            *[_fmt(row["params"].get(p)) for p in params],
            *[_fmt(flat.get(m)) for m in extra],
            *(["yes" if row["feasible"] else "[red]no[/red]"] if feasible else []),
            _duration(row["duration"]),
        )
    console.print(table)


def print_validation(
    console: Any, validation: Sequence[dict[str, Any]], *, title: str, number: str, params: Sequence[str]
) -> None:
    """The ``[validate]`` rows (best validated first): number, search score, held-out score, the
    parameters (short names) and why a re-run has no held-out score."""
    if not validation:
        return
    from rich.table import Table

    names = _short_names(params)
    table = Table(title=title, title_justify="left")
    table.add_column(number, justify="right")
    table.add_column("search score", justify="right")
    table.add_column("validated", justify="right", style="bold")
    for p in params:
        table.add_column(names[p], justify="right")
    table.add_column("note")
    for v in validation:
        table.add_row(
            str(v["number"]),
            _fmt(v["value"]),
            _fmt(v["validated"]),
            *[_fmt(v["params"].get(p)) for p in params],
            v.get("reason") or "",
        )
    console.print(table)


def print_best(console: Any, best: Row | None, *, label: str, metrics: Sequence[str], none: str) -> None:
    """``<label> sharpe=3.85`` and its params as JSON; ``none`` when there is no best yet."""
    if best is None:
        console.print(none)
        return
    console.print(
        f"{label} " + ", ".join(f"{m}={_fmt(v)}" for m, v in zip(metrics, best["values"] or [], strict=False))
    )
    console.print("  params: " + json.dumps(best["params"], default=str))


def print_selection(console: Any, selection: Selection | None) -> None:
    """The selection statistics' sentences (trials or points run, deflated Sharpe ratio, PBO)."""
    if selection is None:
        return
    console.print("selection:")
    for sentence in selection.sentences():
        console.print(f"  {sentence}", highlight=False)


def selection_json(selection: Selection | None) -> dict[str, Any] | None:
    """The selection statistics as JSON (the ``--json`` report's ``selection``)."""
    if selection is None:
        return None
    pbo = selection.pbo
    return {
        "trials_run": selection.trials_run,
        "n_trials": selection.n_trials,
        "winner": selection.winner,
        "sharpe": selection.sharpe,
        "expected_max_sharpe": selection.expected_max_sharpe,
        "deflated_sharpe": selection.deflated_sharpe,
        "pbo": None
        if pbo is None
        else {
            "pbo": pbo.pbo,
            "trials": selection.pbo_trials,
            "combinations": pbo.combinations,
            "degradation_slope": pbo.degradation_slope,
            "degradation_intercept": pbo.degradation_intercept,
            "probability_of_loss": pbo.probability_of_loss,
        },
        "note": selection.note,
    }
