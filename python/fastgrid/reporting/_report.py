"""Reports of a stored sweep: the top trials, counts, parameter importance and exports.

Everything here reads the study; nothing runs a trial. A report is built from a sweep file (its
storage, study name, config and parameters) or from a storage URL and a study name alone (then
there is no default config: the "best config" is the best trial's parameters as a nested dict).
"""

from __future__ import annotations

import csv
import functools
import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import optuna
from optuna.trial import TrialState

from fastgrid import attrs
from fastgrid.batch import store_path
from fastgrid.dotted import nest
from fastgrid.files import open_text, replaced_on_success
from fastgrid.reporting._batch import BatchReport, load_batch_report, render_batch_report
from fastgrid.reporting._common import (
    FailureGroup,
    _config_of,
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
from fastgrid.selection import Selection, assess_selection
from fastgrid.storages import DEFAULT_STORE_NAME, open_storage, redact_url
from fastgrid.study import (
    Row,
    best_trials,
    counts,
    flat_metrics,
    rows,
    same_reason,
    stored_axes,
    stored_metrics,
    to_pandas,
    top_rows,
)
from fastgrid.sweepfile import load_sweep_file

__all__ = ["FailureGroup", "Report", "load", "load_report", "render_report"]

_SWEEP_FILE_SUFFIXES = (".toml", ".yaml", ".yml", ".json")


@dataclass
class Report:
    """The rows of every trial of one study plus what a reader wants first.

    ``rows`` are those of :class:`fastgrid.SweepResult`; ``best`` is the best feasible trial
    (the best validated one when the sweep has a ``[validate]`` step); ``validation`` the rows of
    that step; ``importance`` Optuna's parameter importances for the first objective (None when
    fewer than two trials completed or Optuna could not compute them).
    """

    name: str
    directions: list[str]
    metrics: list[str]
    rows: list[Row]
    best: Row | None
    counts: dict[str, int] = field(default_factory=dict)
    """Complete / failed / reused / infeasible / running / pruned trials of the study."""
    validation: list[dict[str, Any]] = field(default_factory=list)
    importance: dict[str, float] | None = None
    study: optuna.Study | None = field(default=None, repr=False)
    config: Any = field(default=None, repr=False)
    """The sweep's default config cache (None without one): loaded only for ``best_config``."""
    runs_dir: Path | None = None
    """``runs/<name>`` of the sweep (its trial folders), when known."""

    @functools.cached_property
    def failures(self) -> list[FailureGroup]:
        """The failed trials grouped by reason (numbers in it blanked, see
        :func:`fastgrid.study.same_reason`), most frequent first: count, first trial, one trial
        folder (or log) to look at."""
        groups: dict[str, FailureGroup] = {}
        for row in self.rows:
            if row["state"] != "FAIL":
                continue
            reason = row["reason"] or "(no reason recorded)"
            key = same_reason(reason)
            group = groups.get(key)
            if group is None:
                group = groups[key] = FailureGroup(reason=reason, count=0, first=row["number"], trials=[])
            group.count += 1
            group.trials.append(row["number"])
        for group in groups.values():
            group.evidence = self._evidence(group.trials)
        return sorted(groups.values(), key=lambda g: (-g.count, g.first))

    def _evidence(self, numbers: list[int]) -> str | None:
        if self.runs_dir is None:
            return None
        folders = [self.runs_dir / f"trial_{n}" for n in numbers[:50]]
        for folder in folders:
            for log in ("error.log", "stderr.log"):
                if (folder / log).is_file() and (folder / log).stat().st_size > 0:
                    return str(folder / log)
        return next((str(f) for f in folders if f.is_dir()), None)

    selection: Selection | None = None
    """Trials run, the winner's deflated Sharpe ratio and PBO, and what they mean."""

    @functools.cached_property
    def best_config(self) -> dict[str, Any] | None:
        """The best trial's merged config: its params over the sweep's default config (when it has
        one; else the params as a nested dict). Reading it is the only thing that loads the config."""
        if self.best is None:
            return None
        point = nest(self.best["params"])
        return self.config.merged(point) if self.config is not None else point

    @property
    def param_names(self) -> list[str]:
        names: dict[str, None] = {}
        for row in self.rows:
            names.update(dict.fromkeys(row["params"]))
        return list(names)

    def to_pandas(self) -> Any:
        """The rows as a ``pandas.DataFrame`` with flat columns (see :func:`fastgrid.study.to_pandas`);
        pandas is optional (``pip install pandas``)."""
        return to_pandas(self.rows, self.metrics)

    def top(self, n: int) -> list[Row]:
        """The ``n`` best completed trials, feasible ones first, then by the first objective."""
        return top_rows(self.rows, self.directions[0], n)

    def to_json(self, path: str | Path | IO[str]) -> None:
        """The whole report as JSON, to a file or a text stream."""
        data = {
            "sweep": self.name,
            "directions": self.directions,
            "metrics": self.metrics,
            "counts": self.counts,
            "best": self.best,
            "best_config": self.best_config,
            "validation": self.validation,
            "importance": self.importance,
            "failures": [g.to_dict() for g in self.failures],
            "selection": selection_json(self.selection),
            "trials": self.rows,
        }
        with open_text(path) as fh:
            fh.write(json_text(data) + "\n")

    def _table(self) -> tuple[list[str], list[list[Any]]]:
        """The header and a line per trial: number, state, values, params.*, metrics.*, bookkeeping."""
        metric_names: dict[str, None] = {}
        for row in self.rows:
            metric_names.update(dict.fromkeys(flat_metrics(row["metrics"])))
        values = [f"value_{m}" for m in self.metrics] if len(self.metrics) > 1 else ["value"]
        header = (
            ["number", "state", *values]
            + [f"params.{p}" for p in self.param_names]
            + [f"metrics.{m}" for m in metric_names]
            + ["feasible", "reused", "duration", "attempts", "reason"]
        )
        lines = []
        for row in self.rows:
            vals = list(row["values"]) if row["values"] else [None] * len(values)
            lines.append(
                [row["number"], row["state"], *vals]
                + [_cell(row["params"].get(p)) for p in self.param_names]
                + [_cell(flat_metrics(row["metrics"]).get(m)) for m in metric_names]
                + [row["feasible"], row["reused"], row["duration"], row["attempts"], row["reason"]]
            )
        return header, lines

    def to_csv(self, path: str | Path | IO[str]) -> None:
        """One line per trial: number, state, values, params.*, metrics.*, bookkeeping (to a file
        or a text stream)."""
        header, lines = self._table()
        with open_text(path, newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(header)
            writer.writerows(lines)

    def to_parquet(self, path: str | Path) -> None:
        """The lines of ``to_csv`` as a Parquet file (needs pyarrow); a column of mixed types holds
        its values' JSON text."""
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise ImportError("Parquet needs pyarrow: pip install pyarrow (or export to .csv)") from None
        header, lines = self._table()
        columns: dict[str, list[Any]] = {}
        for i, name in enumerate(header):
            cells = [line[i] for line in lines]
            kinds = {type(v) for v in cells if v is not None}
            if kinds == {int, float}:
                cells = [None if v is None else float(v) for v in cells]
            elif len(kinds) > 1:
                cells = [None if v is None else json.dumps(v) for v in cells]
            columns[name] = cells
        with replaced_on_success(path) as out:
            pq.write_table(pa.table(columns), str(out))

    def write_best_config(self, path: str | Path | IO[str]) -> None:
        if self.best_config is None:
            raise ValueError(f"sweep {self.name!r} has no completed feasible trial: no best config")
        with open_text(path) as fh:
            # The config as the objective got it (a NaN stays NaN: it is the user's value).
            fh.write(json.dumps(self.best_config, indent=2, default=str) + "\n")


def _cell(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, list | dict) else value


def load_report(
    sweep_file: str | Path | None = None,
    *,
    storage: str | None = None,
    study: str | None = None,
    directory: str | Path | None = None,
    importance: bool = True,
) -> Report | BatchReport:
    """Read a stored sweep: from ``sweep_file`` (``storage`` overrides its storage), or from
    ``storage`` and ``study`` (its name). Reading builds no grid and loads no config. A batch
    sweep's report (:class:`BatchReport`) reads its columnar results.

    Raises:
        SweepFileError: a sweep file that cannot be used.
        ValueError: neither or both of a sweep file and a study name; no such study.
    """
    if (sweep_file is None) == (study is None):
        raise ValueError("give a sweep file, or --storage and --study, not both")
    config: Any = None
    if sweep_file is not None:
        spec = load_sweep_file(sweep_file)
        url = storage if storage is not None else spec.sweep.storage
        base = Path(directory) if directory is not None else Path.cwd()
        store = open_storage(url, directory=base, readonly=True)
        name = spec.sweep.name or "sweep"
        config = _config_of(spec)
        where = f"{redact_url(url) if url else DEFAULT_STORE_NAME} (from {base.resolve()})"
        runs: Path | None = base.resolve() / "runs" / name
    else:
        if storage is None:
            raise ValueError("--study needs --storage (the storage URL the study lives in)")
        store = open_storage(storage, directory=Path(directory) if directory else None, readonly=True)
        name, where = str(study), redact_url(storage)
        guess = (Path(directory) if directory else Path.cwd()).resolve() / "runs" / name
        runs = guess if guess.is_dir() else None
        url, base = storage, Path(directory) if directory else Path.cwd()
    try:
        loaded = optuna.load_study(study_name=name, storage=store)
    except KeyError:
        names = sorted(optuna.get_all_study_names(storage=store))
        listing = ", ".join(names) if names else "none"
        raise ValueError(
            f"no sweep named {name!r} in the storage {where}; studies there: {listing} "
            "(run the sweep first, or pass the storage it used with --storage)"
        ) from None
    study_attrs = loaded.user_attrs
    if study_attrs.get(attrs.STUDY_MODE) == "batch":
        metrics = stored_metrics(loaded)
        return load_batch_report(loaded, store_path(url, base), name=name, metrics=metrics, config=config)
    trials = loaded.get_trials(deepcopy=False)
    directions = [d.name.lower() for d in loaded.directions]
    validation = list(study_attrs.get(attrs.STUDY_VALIDATION, []))
    all_rows = rows(trials, stored_axes(study_attrs))
    report = Report(
        name=name,
        directions=directions,
        metrics=stored_metrics(loaded),
        rows=all_rows,
        best=_best(trials, all_rows, directions, validation),
        counts=counts(trials),
        validation=validation,
        study=loaded,
        config=config,
        runs_dir=runs,
    )
    report.selection = assess_selection(trials, report.best["number"] if report.best is not None else None)
    if importance:
        report.importance = _importance(loaded)
    return report


def load(
    source: str | Path,
    *,
    study: str | None = None,
    directory: str | Path | None = None,
    importance: bool = False,
) -> Report | BatchReport:
    """Read a finished (or running) sweep without running anything: ``fastgrid.load("sweep.toml")``.

    ``source`` is a sweep file (``.toml``, ``.yaml``, ``.yml``, ``.json``) or a storage URL or path
    (``fastgrid.db``, ``sqlite:///study.db``, ``postgresql://...``, ``trials.log``); a storage
    holding one study needs no ``study`` name. ``directory`` is where the sweep ran (default: the
    working directory), for the default store and relative storage paths. The :class:`Report` has
    the rows, the best trial and config, counts and ``to_pandas()``.

    Raises:
        SweepFileError: a sweep file that cannot be used.
        ValueError: no such study, or a storage of several studies and no ``study`` name.
    """
    text = str(source)
    if Path(text).suffix.lower() in _SWEEP_FILE_SUFFIXES and "://" not in text:
        if study is not None:
            raise ValueError("give a sweep file, or a storage and study=, not both")
        return load_report(text, directory=directory, importance=importance)
    if study is None:
        store = open_storage(text, directory=Path(directory) if directory else None)
        names = sorted(optuna.get_all_study_names(storage=store))
        if len(names) != 1:
            listing = ", ".join(names) if names else "none"
            raise ValueError(
                f"{redact_url(text)} holds {len(names)} studies ({listing}): pass study=NAME to choose one"
            )
        study = names[0]
    return load_report(storage=text, study=study, directory=directory, importance=importance)


def _best(
    trials: list[optuna.trial.FrozenTrial], all_rows: list[Row], directions: list[str], validation: list[Any]
) -> Row | None:
    """The best validated trial when the sweep has a ``[validate]`` step, else the best feasible one."""
    if validation and validation[0].get("validated") is not None:
        number = validation[0]["number"]
        for r in all_rows:
            if r["number"] == number:
                return r
    best = best_trials(trials, directions)
    if not best:
        return None
    by_number = {r["number"]: r for r in all_rows}
    return by_number.get(best[0].number)


def _importance(study: optuna.Study) -> dict[str, float] | None:
    """Optuna's fANOVA importances of the first objective; None when they cannot be computed."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len({tuple(sorted(t.params.items())) for t in complete}) < 2 or not any(t.params for t in complete):
        return None
    if len({t.values[0] for t in complete if t.values}) < 2:
        # Every trial scored the same: fANOVA would still rank the parameters, and any ranking of
        # a constant is noise (issue 11).
        return None
    target = None if len(study.directions) == 1 else (lambda t: t.values[0])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = optuna.importance.get_param_importances(study, target=target)
    except (ValueError, RuntimeError, ZeroDivisionError):
        # e.g. every trial has the same value, or the params changed distribution mid-study.
        return None
    return {k: float(v) for k, v in result.items() if math.isfinite(float(v))}


# -- rendering -------------------------------------------------------------------------------------
def render_report(report: Report | BatchReport, *, top: int = 10, console: Any = None) -> None:
    """Print the report with rich: counts, the top trials, validation, importance, best params."""
    if isinstance(report, BatchReport):
        render_batch_report(report, top=top, console=console)
        return
    console = make_console(console)
    counts = report.counts
    print_header(
        console,
        name=report.name,
        directions=report.directions,
        metrics=report.metrics,
        counts=f"{counts['complete']} complete ({counts['reused']} reused, "
        f"{counts['infeasible']} infeasible), {counts['failed']} failed, {counts['running']} running"
        + (f", {counts['pruned']} pruned" if counts.get("pruned") else ""),
    )
    print_failures(
        console,
        report.failures,
        title=f"{counts['failed']} failed trials by reason",
        unit="trials",
        first=lambda g: f"#{g.first}",
        evidence=True,
    )
    rows = report.top(top)
    params = report.param_names
    print_top(
        console,
        rows,
        title=f"top {len(rows)} trials",
        number="#",
        metrics=report.metrics,
        params=params,
        tag=lambda row: f"{row['number']}" + (f" (={row['reused']})" if row["reused"] is not None else ""),
        feasible=True,
    )
    print_validation(
        console,
        report.validation,
        title="validation (held-out re-run of the top trials)",
        number="#",
        params=params,
    )
    if report.importance:
        console.print("parameter importance (Optuna, fANOVA):")
        for name, value in report.importance.items():
            bar = "█" * max(1, round(value * 30))
            console.print(f"  {name:<24} {value:6.3f} {bar}")
    label = "best validated trial" if report.validation and report.best is not None else "best trial"
    print_best(
        console,
        report.best,
        label=f"{label}: #{report.best['number']}" if report.best is not None else label,
        metrics=report.metrics,
        none="no completed feasible trial yet",
    )
    print_selection(console, report.selection)
