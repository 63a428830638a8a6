"""``CallableObjective``: one trial = one call of a Python function, in the calling process."""

from __future__ import annotations

import contextlib
import copy
import functools
import inspect
import numbers
import re
import signal
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna

from fastgrid.objective._base import (
    Attempt,
    TrialFiles,
    check_options,
    retry,
    short_message,
    write_json_atomic,
)
from fastgrid.objective._outcome import TrialOutcome, check_metric_names, pick_value
from fastgrid.plain import plain
from fastgrid.refs import import_object

__all__ = ["CallableObjective"]

_TARGET = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


class _Deadline(BaseException):
    """Raised inside the callable by SIGALRM; a BaseException so ``except Exception`` in user code
    does not swallow it."""


@contextlib.contextmanager
def _deadline(seconds: float | None) -> Iterator[None]:
    if seconds is None:
        yield
        return
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        warnings.warn(
            "CallableObjective: the timeout is only enforced in a process's main thread (SIGALRM); "
            "this call runs without it. Use a command objective, or run callables in worker processes.",
            RuntimeWarning,
            stacklevel=4,
        )
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise _Deadline

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class CallableObjective:
    """Calls ``target(config)`` per trial; it returns a number or a dict of metrics.

    ``target`` is a callable or a ``"module:function"`` string, imported on first use (so worker
    processes import it themselves; ``load()`` imports it now). An exception raised by the
    callable fails the trial with ``"ExceptionType: message"`` and its traceback in
    ``trial_dir/error.log``; KeyboardInterrupt propagates.

    Pruning: a callable with a parameter named ``trial`` is called as ``target(config,
    trial=trial)`` with the running Optuna trial (``None`` when ``run`` is given none), so that
    it can ``trial.report(value, step)`` and ``raise optuna.TrialPruned()`` when
    ``trial.should_prune()``; the outcome is then ``pruned`` (not a failure, never retried).

    Timeouts: in-process code cannot be killed. In a process's main thread (the usual case, and the
    case of worker processes) ``timeout`` arms SIGALRM, which raises inside the callable at its
    next Python bytecode — a call stuck inside C code is interrupted only when it returns to
    Python. In any other thread the timeout cannot be enforced: a RuntimeWarning says so and the
    call runs to completion.
    """

    def __init__(
        self,
        target: str | Callable[[dict], Any],
        *,
        metrics: Sequence[str],
        timeout: float | None = None,
        retries: int = 0,
        backoff: float = 1.0,
        write_config: bool = True,
    ) -> None:
        if isinstance(target, str):
            if not _TARGET.match(target):
                raise ValueError(
                    f"callable: expected 'module:function' (e.g. 'mybacktest:run'), got {target!r}"
                )
            self._function: Callable[[dict], Any] | None = None
        elif callable(target):
            self._function = target
        else:
            raise ValueError(f"callable: expected 'module:function' or a callable, got {target!r}")
        self.target = target
        self.metrics = check_metric_names(metrics)
        self.timeout = check_options(timeout=timeout, retries=retries, backoff=backoff)
        self.retries = retries
        self.backoff = float(backoff)
        self.write_config = write_config
        self._lock = threading.Lock()

    def load(self) -> Callable[[dict], Any]:
        """Import the target now; ValueError naming the target string when that fails."""
        with self._lock:
            if self._function is None:
                self._function = _import(str(self.target))
            return self._function

    @functools.cached_property
    def wants_trial(self) -> bool:
        """Whether the target takes the running Optuna trial (a parameter named ``trial``)."""
        try:
            return "trial" in inspect.signature(self.load()).parameters
        except (TypeError, ValueError):  # builtins and some C callables have no signature
            return False

    def validate(self, parameters: Iterable[str]) -> None:
        """Nothing to check (no placeholders); present so runners treat both kinds alike."""

    def close(self) -> None:
        """Nothing to release; present so runners treat both kinds alike."""

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        del state["_lock"]
        if isinstance(self.target, str):
            state["_function"] = None  # re-imported in the receiving process
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"CallableObjective({self.target!r}, metrics={list(self.metrics)!r})"

    def run(
        self,
        config: dict,
        *,
        trial_number: int,
        trial_dir: Path,
        params: Mapping[str, Any],
        trial: Any = None,
    ) -> TrialOutcome:
        started = time.perf_counter()
        function: Callable[[dict], Any] = self.load()
        if self.wants_trial:
            function = functools.partial(function, trial=trial)  # type: ignore[call-arg]
        # The directory is made only when something goes in it (the config, an error log): a
        # callable returns its metrics in memory, and a mkdir per trial is measurable overhead.
        if self.write_config:
            write_json_atomic(TrialFiles.create(trial_dir).config, config)
        # A retry must see the config as it was, whatever the failed attempt did to it.
        pristine = copy.deepcopy(config) if self.retries else None

        def attempt(number: int) -> Attempt:
            given = config if number == 1 or pristine is None else copy.deepcopy(pristine)
            return self._attempt(function, given, trial_dir, number)

        last, attempts = retry(attempt, retries=self.retries, backoff=self.backoff)
        return last.outcome(attempts=attempts, started=started)

    def _attempt(
        self, function: Callable[[dict], Any], config: dict, trial_dir: Path, number: int
    ) -> Attempt:
        try:
            with _deadline(self.timeout):
                result = function(config)
        except _Deadline:
            return Attempt(ok=False, reason=f"timeout after {self.timeout}s")
        except optuna.TrialPruned as exc:
            message = short_message(exc).partition(": ")[2]
            reason = f"pruned: {message}" if message else "pruned"
            return Attempt(ok=False, reason=reason, retryable=False, pruned=True)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            # Anything else the callable raises is its trial's failure: SystemExit, GeneratorExit,
            # asyncio's CancelledError too (issue 12, item 10); only Ctrl-C (and the signals that
            # act like it) stops the sweep.
            self._log_error(trial_dir, number, exc)
            return Attempt(ok=False, reason=short_message(exc))
        if isinstance(result, Mapping):
            try:
                metrics = plain(dict(result))
            except Exception as exc:
                return Attempt(
                    ok=False, reason=f"callable returned a mapping that cannot be read: {exc!r:.200}"
                )
        elif _stats_like(result):
            # A pandas Series, e.g. backtesting.py's stats: its scalar numbers are the metrics
            # (issue 11); frames, curves, timestamps and objects stay out of the table.
            metrics = numeric_entries(result)
        elif isinstance(result, numbers.Real) and not isinstance(result, bool):
            if len(self.metrics) > 1:
                return Attempt(
                    ok=False,
                    reason=f"callable returned one number but {len(self.metrics)} metrics are expected "
                    f"({', '.join(self.metrics)}): return a dict",
                )
            metrics = {self.metrics[0]: result}
        else:
            return Attempt(
                ok=False,
                reason=f"callable returned {type(result).__name__}; expected a number, a dict of metrics "
                "or a pandas Series",
            )
        value = pick_value(metrics, self.metrics, source="the callable's result")
        if isinstance(value, str):
            return Attempt(ok=False, reason=value)
        return Attempt(ok=True, metrics=metrics, value=value)

    @staticmethod
    def _log_error(trial_dir: Path, number: int, exc: BaseException) -> None:
        try:
            with open(TrialFiles.create(trial_dir).error, "a", encoding="utf-8") as log:
                log.write(f"--- attempt {number}\n")
                log.write("".join(traceback.format_exception(exc)))
        except Exception:  # the traceback is a courtesy: a full disk or an odd exception skips it
            return


def _stats_like(result: Any) -> bool:
    """A pandas Series (or another mapping-like with ``items()`` and ``keys()``), without importing
    pandas."""
    return (
        not isinstance(result, str | bytes)
        and callable(getattr(result, "items", None))
        and callable(getattr(result, "keys", None))
    )


def numeric_entries(result: Any) -> dict[str, Any]:
    """The scalar numeric entries of a Series-like result, as plain Python numbers (NaN kept: a
    NaN objective is then refused with its name, a NaN side metric is stored as null), and the
    reserved ``returns`` series as given."""
    out: dict[str, Any] = {}
    for key, value in result.items():
        if isinstance(value, numbers.Real):  # bool, int, float and numpy's scalars, not arrays
            out[str(key)] = plain(value)
        elif key == "returns":
            out["returns"] = value  # the reserved returns series: the runner checks and packs it
    return out


def _import(target: str) -> Callable[[dict], Any]:
    obj = import_object(target, what="callable")
    attribute = target.partition(":")[2]
    if not callable(obj):
        raise ValueError(f"callable {target!r}: {attribute!r} is a {type(obj).__name__}, not a callable")
    return obj
