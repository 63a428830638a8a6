"""``fastgrid run SWEEP_FILE``: run or resume a sweep, print the best trial and its config file."""

from __future__ import annotations

import json
import signal
import sys
from typing import TYPE_CHECKING, Any

import click

from fastgrid.cli._echo import echo_best
from fastgrid.cli._main import InputError, RunError, main
from fastgrid.exceptions import (
    BatchFailedError,
    HeartbeatLostError,
    StoreError,
    SweepAbortedError,
    SweepChangedError,
    SweepDeletedError,
    SweepFileError,
)

if TYPE_CHECKING:
    from fastgrid.runner import BatchSweepResult, SweepResult
    from fastgrid.walkforward import WalkForwardResult


def run_sweep_file(sweep_file: str, **options: Any) -> SweepResult:
    """``Sweep.from_file(sweep_file, **options).run()``, bad input as the CLI's InputError."""
    from fastgrid.runner import Sweep

    try:
        return Sweep.from_file(sweep_file, **options).run()
    except (SweepFileError, SweepChangedError, StoreError) as exc:
        raise InputError(str(exc)) from None
    except (SweepAbortedError, BatchFailedError, SweepDeletedError, HeartbeatLostError) as exc:
        raise RunError(str(exc)) from None
    except (ValueError, OSError) as exc:
        # Config files, models and storage URLs are checked when the run opens them.
        raise InputError(f"{sweep_file}: {type(exc).__name__}: {exc}") from None


def run_walkforward_file(sweep_file: str, **options: Any) -> WalkForwardResult | None:
    """The folds of a [walkforward] sweep file, run or resumed; None for a file without one."""
    from fastgrid.runner import Sweep, WalkForward

    try:
        sweep = Sweep.from_file(sweep_file, **options)
        return WalkForward(sweep).run() if sweep.spec.walkforward is not None else None
    except (SweepFileError, SweepChangedError, StoreError) as exc:
        raise InputError(str(exc)) from None
    except (ValueError, OSError) as exc:
        raise InputError(f"{sweep_file}: {type(exc).__name__}: {exc}") from None


def _timeout(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    if value is None:
        return None
    from fastgrid.sweepfile import parse_duration

    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@main.command("run")
@click.argument("sweep_file", type=click.Path(dir_okay=False))
@click.option("--workers", type=click.IntRange(min=1), help="Worker processes (overrides sweep.workers).")
@click.option(
    "--max-trials",
    type=click.IntRange(min=1),
    help="The study's trial budget, counted across runs (overrides sweep.max_trials).",
)
@click.option(
    "--more", type=click.IntRange(min=1), help="Run up to N more trials in this run, past max_trials."
)
@click.option("--timeout", callback=_timeout, help="Stop starting trials after this long (per run): 90s, 2h.")
@click.option("--storage", help="Optuna storage URL (default: the embedded store in the working directory).")
@click.option("--fresh", is_flag=True, help="Delete the stored trials of this sweep and start over.")
@click.option(
    "--allow-changed", is_flag=True, help="Resume even though the config or parameters tree changed."
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="A progress bar, or a summary line every 10 s (the default without a terminal).",
)
@click.option(
    "--quiet", "-q", is_flag=True, help="Print only the start, each new failure reason and the summary."
)
@click.option("--verbose", "-v", is_flag=True, help="Print one line per finished trial.")
@click.option(
    "--check", is_flag=True, help="Run one point in the foreground with its full log; record nothing."
)
@click.option(
    "--point", type=int, default=0, show_default=True, help="--check: the grid index (search: a seed)."
)
def run(
    sweep_file: str,
    workers: int | None,
    max_trials: int | None,
    more: int | None,
    timeout: float | None,
    storage: str | None,
    fresh: bool,
    allow_changed: bool,
    progress: bool | None,
    quiet: bool,
    verbose: bool,
    check: bool,
    point: int,
) -> None:
    """Run SWEEP_FILE, or resume it: completed points are never run again.

    A sweep file with [walkforward] runs one sweep per training window (fold), each resumable.
    """
    if quiet and verbose:
        raise click.UsageError("--quiet and --verbose exclude each other")
    if check:
        _check(sweep_file, point)
        return
    from fastgrid.runner import BatchSweepResult

    options: dict[str, Any] = {
        "workers": workers,
        "max_trials": max_trials,
        "more": more,
        "timeout": timeout,
        "storage": storage,
        "fresh": fresh,
        "allow_changed": allow_changed,
        "progress": progress,
        "quiet": quiet,
        "verbose": verbose,
    }
    folds = run_walkforward_file(sweep_file, **options)
    if folds is not None:
        _echo_walkforward(folds)
        if folds.interrupted:
            from fastgrid.runner import exit_status, leave

            leave(exit_status(folds.signal or signal.SIGINT), [])
        return
    result = run_sweep_file(sweep_file, **options)
    if isinstance(result, BatchSweepResult):
        _echo_batch(result)
    elif result.best is None:
        click.echo(f"sweep {result.name}: no completed feasible trial yet")
    else:
        echo_best(result)
    unit = "point" if isinstance(result, BatchSweepResult) else "trial"
    for v in result.validation:
        held_out = f"{v['validated']:.6g}" if v["validated"] is not None else f"- ({v['reason']})"
        click.echo(f"  validated {unit} {v['number']}: search {v['value']:.6g}, held-out {held_out}")
    selection = result.selection if result.best is not None else None
    # Only what the returns series made computable; `fastgrid report` always shows the whole note.
    if selection is not None and (selection.deflated_sharpe is not None or selection.pbo is not None):
        for sentence in selection.sentences():
            click.echo(f"  {sentence}")
    from fastgrid.runner import exit_status, leave

    # 128 + the signal that stopped the run; and no thread the objective left running holds us.
    leave(exit_status(result.signal), result.stray_threads)


def _echo_batch(result: BatchSweepResult) -> None:
    """A batch sweep's summary: points done, the best point (by grid slot) and its config."""
    c = result.counts
    click.echo(
        f"sweep {result.name}: {c['done']:,} of {c['total']:,} points done ({c['failed']:,} failed, "
        f"{c['infeasible']:,} infeasible), {result.ran:,} in this run ({result.seconds:.1f}s)"
    )
    for reason, count in list(result.failures().items())[:5] if c["failed"] else []:
        click.echo(f"  {count:,} failed: {reason}")
    if c["total"] == 0:
        # (A grid spec of no point is refused; only `where` can leave none.)
        click.echo("  the grid has no point: its `where` constraints exclude every one")
    elif result.best is None:
        click.echo("  no feasible point yet")
    first = result.validation[0] if result.validation else None
    if result.best is not None and first is not None and first["validated"] is not None:
        # [validate] chose it, as the per-trial summary says: not the search's best.
        click.echo(
            f"best validated: point {first['number']}, {first['value']:.6g} in the search, "
            f"{first['validated']:.6g} held out"
        )
    echo_best(result)


def _check(sweep_file: str, point: int) -> None:
    from fastgrid.runner import Sweep

    try:
        ok = Sweep.from_file(sweep_file).check(point)
    except (SweepFileError, SweepChangedError) as exc:
        raise InputError(str(exc)) from None
    except (ValueError, OSError) as exc:
        raise InputError(f"{sweep_file}: {type(exc).__name__}: {exc}") from None
    if not ok:
        sys.exit(1)


def _echo_walkforward(result: WalkForwardResult) -> None:
    for f in result.folds:
        scores = f"in-sample {f.in_sample:.6g}" if f.in_sample is not None else "no selection"
        if f.out_of_sample is not None:
            scores += f", out-of-sample {f.out_of_sample:.6g}"
        elif f.selected is not None:
            scores += f", out-of-sample - ({f.reason})"
        params = json.dumps(f.params, default=str) if f.selected is not None else f.reason
        click.echo(f"fold {f.index} train {f.train[0]}..{f.train[1]} test {f.test[0]}..{f.test[1]}: {scores}")
        click.echo(f"  trial {f.selected} of {f.study}: {params}")
    for sentence in result.sentences():
        click.echo(f"  {sentence}")
