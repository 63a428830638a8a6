"""``[walkforward]``: the sweep run once per training window, its choice run on the next window.

Fold i is an ordinary sweep, the study ``NAME.foldI``: the sweep file's parameters plus the two
window keys fixed to the training window, so every command reads it like any sweep and a re-run
resumes it (a search fold runs only what is left of ``max_trials``). Once its sweep is done, the
in-sample best trial and the fold's other top trials are run with the window keys set to the test
window (as ``[validate]`` runs its trials: not as Optuna trials) and the outcome is stored on the
fold's study (``fastgrid.walkforward``); a later run reuses that record while the fold's selection
is unchanged. The selection is made in sample only: the test scores never choose.
"""

from __future__ import annotations

import math
from typing import Any

import optuna

from fastgrid import attrs
from fastgrid._core import parse_parameters
from fastgrid.exceptions import SweepFileError
from fastgrid.runner._result import SweepResult
from fastgrid.runner._state import RunState
from fastgrid.runner._sweep import Sweep
from fastgrid.runner._validate import validate
from fastgrid.runner._worker import quiet_optuna
from fastgrid.stats import Fold
from fastgrid.study import Row, top_rows
from fastgrid.sweepfile import ValidateSection, WalkForwardSection
from fastgrid.walkforward import FoldResult, WalkForwardResult, fold_rank_correlation, fold_study_name

__all__ = ["WalkForward"]


class WalkForward:
    """Runs (or resumes) the folds of a sweep with a ``[walkforward]`` section.

    Build it from that sweep: ``WalkForward(Sweep.from_file("wf.toml")).run()``.
    """

    def __init__(self, sweep: Sweep) -> None:
        section = sweep.spec.walkforward
        if section is None:
            raise SweepFileError(sweep.source, ["[walkforward]: the sweep has no [walkforward] section"])
        self.sweep = sweep
        self.section: WalkForwardSection = section
        self.folds: list[Fold] = section.folds()
        self._check_keys()

    @property
    def name(self) -> str:
        return self.sweep.name

    def _check_keys(self) -> None:
        trees = self.sweep.spec.parameters
        paths: set[str] = set()
        for tree in trees if isinstance(trees, list) else [trees]:
            paths.update(str(a["path"]) for a in parse_parameters(tree))
        clash = [k for k in self.section.keys if k in paths]
        if clash:
            raise SweepFileError(
                self.sweep.source,
                [
                    f"walkforward.keys: {', '.join(clash)} is also a parameter; the walk-forward sets it to "
                    "each fold's window, so leave it out of [parameters]"
                ],
            )

    def fold_sweep(self, fold: Fold) -> Sweep:
        """Fold ``fold``'s sweep: the parameters with the window keys fixed to its training window."""
        base = self.sweep
        spec = base.spec
        start_key, end_key = self.section.keys
        window = {start_key: fold.train[0], end_key: fold.train[1]}
        trees = spec.parameters
        parameters: Any = [{**t, **window} for t in trees] if isinstance(trees, list) else {**trees, **window}
        section = spec.sweep.model_copy(update={"name": fold_study_name(self.name, fold.index)})
        fold_spec = spec.model_copy(update={"sweep": section, "parameters": parameters, "walkforward": None})
        sweep = Sweep.__new__(Sweep)
        plan = base.plan
        sweep._init(
            fold_spec,
            target=plan.target,
            directory=plan.directory,
            fresh=base.fresh,
            allow_changed=plan.allow_changed,
            progress=base.progress,
            quiet=base.quiet,
            verbose=base.verbose,
            config=plan.config,
            source=plan.source,
            import_path=plan.import_path,
            wait_for_others=plan.wait_for_others,
        )
        return sweep

    def run(self) -> WalkForwardResult:
        """Run or resume every fold in order; stops at the first interrupted fold."""
        quiet_optuna()
        self._stopped_by: int | None = None
        spec = self.sweep.spec
        result = WalkForwardResult(
            name=self.name,
            metric=spec.sweep.objective_metrics[0],
            direction=spec.sweep.all_directions[0],
            folds=[],
            planned=len(self.folds),
        )
        for fold in self.folds:
            outcome = self._run_fold(fold)
            if outcome is None:
                result.interrupted, result.signal = True, self._stopped_by
                break
            result.folds.append(outcome)
        return result

    def _run_fold(self, fold: Fold) -> FoldResult | None:
        # max_trials counts each fold study's trials (Sweep.run), so a resumed fold runs only what
        # is left of its budget, and one whose budget is spent runs nothing.
        sweep = self.fold_sweep(fold)
        ran: SweepResult = sweep.run()
        if ran.interrupted:
            self._stopped_by = ran.signal
            return None
        return self._evaluate(fold, sweep, ran.study, ran.rows, ran.best)

    def _evaluate(
        self, fold: Fold, sweep: Sweep, study: optuna.Study, fold_rows: list[Row], best: Row | None
    ) -> FoldResult:
        out = FoldResult(index=fold.index, train=fold.train, test=fold.test, study=sweep.name)
        if best is None:
            out.reason = "no completed feasible trial in the training window"
            return out
        direction = sweep.spec.sweep.all_directions[0]
        top = top_rows(fold_rows, direction, self.section.top, feasible_only=True, distinct=True)
        stored = study.user_attrs.get(attrs.STUDY_WALKFORWARD)
        wanted = [r["number"] for r in top]
        if (
            isinstance(stored, dict)
            and stored.get("selected") == best["number"]
            and [t.get("number") for t in stored.get("top", [])] == wanted
            and FoldResult.from_record(stored, sweep.name).record()["test"] == out.record()["test"]
        ):
            return FoldResult.from_record(stored, sweep.name)
        start_key, end_key = self.section.keys
        override = {start_key: fold.test[0], end_key: fold.test[1]}
        plan = sweep.plan
        plan.spec = plan.spec.model_copy(
            update={"validate_": ValidateSection(top=self.section.top, override=override)}
        )
        try:
            tested = validate(plan, RunState.create(plan), top)
        except ValueError as exc:
            raise SweepFileError(
                sweep.source, [f"walkforward: {exc}".replace("validate.override", "keys")]
            ) from None
        metric = sweep.spec.sweep.objective_metrics[0]
        # The test score is the metric itself: a `require` constraint chose what may be selected in
        # sample, it does not hide what the selection then did (its breach stays in the note).
        by_number = {v["number"]: {**v, "validated": _score(v, metric)} for v in tested}
        out.selected = best["number"]
        out.params = {k: v for k, v in best["params"].items() if k not in self.section.keys}
        out.in_sample = best["values"][0] if best["values"] else None
        chosen = by_number.get(best["number"])
        if chosen is not None:
            out.out_of_sample = chosen["validated"]
            out.reason = chosen["reason"]
            out.returns = chosen.get("returns")
        out.top = [
            {
                "number": r["number"],
                "in_sample": r["values"][0] if r["values"] else None,
                "out_of_sample": by_number[r["number"]]["validated"] if r["number"] in by_number else None,
            }
            for r in top
        ]
        out.rank_correlation = fold_rank_correlation(out.top)
        study.set_user_attr(attrs.STUDY_WALKFORWARD, out.record())
        return out


def _score(tested: dict[str, Any], metric: str) -> float | None:
    if tested["validated"] is not None:
        return float(tested["validated"])
    value = tested["metrics"].get(metric)
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None
