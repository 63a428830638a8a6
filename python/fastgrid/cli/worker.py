"""``fastgrid worker SWEEP_FILE``: join a sweep on a shared storage and run its points until done.

Start any number of these, on any machines that reach the storage: each is one worker process;
grid points go by storage-assigned trial number, so no point runs twice, and a worker that dies
leaves its trial to be failed after the heartbeat grace period and run again by another.
"""

from __future__ import annotations

import click

from fastgrid.cli._echo import echo_best
from fastgrid.cli._main import main
from fastgrid.cli.run import _timeout, run_sweep_file


@main.command("worker")
@click.argument("sweep_file", type=click.Path(dir_okay=False))
@click.option(
    "--storage",
    help="Optuna storage URL shared by the workers, e.g. postgresql://user:pass@host/db "
    "(default: sweep.storage, else the embedded store in the working directory).",
)
@click.option(
    "--max-trials",
    type=click.IntRange(min=1),
    help="The study's trial budget, counted across runs and workers (overrides sweep.max_trials).",
)
@click.option("--timeout", callback=_timeout, help="Stop starting trials after this long: 90s, 30m, 2h.")
@click.option(
    "--heartbeat-interval",
    type=click.IntRange(min=1),
    help="Seconds between heartbeats of a running trial (overrides sweep.heartbeat_interval).",
)
@click.option(
    "--grace-period",
    type=click.IntRange(min=1),
    help="Seconds without a heartbeat before a trial counts as dead and is retried "
    "(overrides sweep.grace_period; default twice the interval).",
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
def worker(
    sweep_file: str,
    storage: str | None,
    max_trials: int | None,
    timeout: float | None,
    heartbeat_interval: int | None,
    grace_period: int | None,
    progress: bool | None,
    quiet: bool,
    verbose: bool,
) -> None:
    """Join the sweep of SWEEP_FILE (creating it if new) and run its points until none is left."""
    if quiet and verbose:
        raise click.UsageError("--quiet and --verbose exclude each other")
    result = run_sweep_file(
        sweep_file,
        workers=1,
        max_trials=max_trials,
        timeout=timeout,
        storage=storage,
        heartbeat_interval=heartbeat_interval,
        grace_period=grace_period,
        progress=progress,
        quiet=quiet,
        verbose=verbose,
        wait_for_others=True,
    )
    import gc

    # The process ends here: skip the interpreter's last garbage collection over every module's
    # objects (0.1 s alone, up to 0.9 s with 4 workers on this 2-core machine: issue 13, measured
    # in benches/test_bench_batch_postgres.py). Objects are still released by reference counting.
    gc.freeze()
    counts = result.counts
    if "total" in counts:  # a batch sweep: points in chunks, the best by grid slot
        click.echo(
            f"worker done: sweep {result.name}: ran {result.ran:,} point(s) here; {counts['done']:,} of "
            f"{counts['total']:,} points done, {counts['failed']:,} failed, {counts['running']:,} in flight"
        )
        echo_best(result, compact=True)
        if result.interrupted:
            from fastgrid.runner import exit_status, leave

            leave(exit_status(getattr(result, "signal", None) or 2), [])
        return
    click.echo(
        f"worker done: sweep {result.name}: ran {result.ran} trial(s) here; "
        f"{counts['complete']} complete, {counts['failed']} failed, {counts['running']} running in all"
    )
    echo_best(result, compact=True)
    from fastgrid.runner import exit_status, leave

    # 128 + the signal that stopped the run; and no thread the objective left running holds us.
    leave(exit_status(result.signal), result.stray_threads)
