"""``CommandObjective``: one trial = one external command (argv list, never a shell)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from fastgrid.objective import _placeholders as ph
from fastgrid.objective._base import (
    Attempt,
    TrialFiles,
    check_options,
    merged_env,
    retry,
    write_json_atomic,
)
from fastgrid.objective._capped import DEFAULT_LOG_LIMIT, check_log_limit
from fastgrid.objective._outcome import TrialOutcome, check_metric_names, pick_value
from fastgrid.objective._process import run_in_group
from fastgrid.objective._reading import (
    OutputError,
    last_json_object_line,
    read_json_file,
    tail_text,
)
from fastgrid.objective._results import ResultsSpec, SharedIndex, results_turn

__all__ = ["CommandObjective"]


def _describe_exit(returncode: int, stderr_path: Path) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        reason = f"killed by {name}"
    else:
        reason = f"exit code {returncode}"
    last = tail_text(stderr_path, lines=1, max_bytes=1024).strip()
    if last:
        reason += ": " + (last if len(last) <= 200 else last[:197] + "...")
    return reason


class CommandObjective:
    """Runs a command per trial and reads its metrics (the docs' "Concepts: objectives" has it all).

    ``argv`` is a list of arguments with placeholders (each element stays ONE argument). The
    result is the JSON object at ``{output_file}`` if the command wrote one; else, with
    ``results``, the command's own newest result file; else the last line of stdout that is a JSON
    object. Commands run in their own process group; a timeout kills the whole group (SIGTERM,
    ``kill_grace`` seconds, SIGKILL), and so does a KeyboardInterrupt, which is then re-raised.
    Each of stdout.log and stderr.log keeps at most ``log_limit`` bytes (default 10 MiB; None keeps
    everything): the head, a line ``[fastgrid: N bytes of output dropped]``, and the last 64 KiB.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        metrics: Sequence[str],
        timeout: float | None = None,
        retries: int = 0,
        backoff: float = 1.0,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        results: ResultsSpec | None = None,
        max_output_bytes: int = 10_000_000,
        log_limit: int | None = DEFAULT_LOG_LIMIT,
        kill_grace: float = 2.0,
        parameters: Iterable[str] | None = None,
    ) -> None:
        if isinstance(argv, (str, bytes)):
            raise ValueError(
                "argv: expected a list of arguments, not one string (fastgrid never runs a shell), "
                f"e.g. {str(argv).split()!r}"
            )
        argv = list(argv)
        if not argv:
            raise ValueError("argv: expected at least the program, e.g. ['python', 'backtest.py']")
        self.argv: tuple[str, ...] = tuple(argv)
        self._templates = ph.parse_all(self.argv, name="argv")
        self.metrics = check_metric_names(metrics)
        self.timeout = check_options(timeout=timeout, retries=retries, backoff=backoff)
        self.retries = retries
        self.backoff = float(backoff)
        self.env: dict[str, str] = {}
        for key, value in (env or {}).items():
            if not isinstance(key, str) or not isinstance(value, str) or not key or "=" in key:
                raise ValueError(f"env[{key!r}]: expected a variable name and a string value, got {value!r}")
            self.env[key] = value
        self.cwd = None if cwd is None else Path(os.path.abspath(cwd))
        if self.cwd is not None and not self.cwd.is_dir():
            raise ValueError(f"cwd: {str(self.cwd)!r} is not a directory")
        if (
            isinstance(max_output_bytes, bool)
            or not isinstance(max_output_bytes, int)
            or max_output_bytes < 1
        ):
            raise ValueError(f"max_output_bytes: expected a positive integer, got {max_output_bytes!r}")
        self.max_output_bytes = max_output_bytes
        self.log_limit = check_log_limit(log_limit)
        if not kill_grace >= 0:
            raise ValueError(f"kill_grace: expected seconds >= 0, got {kill_grace!r}")
        self.kill_grace = float(kill_grace)
        self.results = results
        self._key_templates = results.templates() if results is not None else {}
        self._index: SharedIndex | None = None
        if results is not None:
            base = self.cwd if self.cwd is not None else Path.cwd()
            self._index = SharedIndex(Path(os.path.abspath(base / results.dir)), results)
        self._check_program()
        if parameters is not None:
            self.validate(parameters)

    # -- construction-time checks -------------------------------------------------------------

    def _check_program(self) -> None:
        program = self._templates[0]
        if not program.is_literal:
            return
        name = program.source
        if os.sep in name:
            path = Path(name) if os.path.isabs(name) else (self.cwd or Path.cwd()) / name
            if not path.is_file():
                raise ValueError(f"argv[0]: program {name!r} not found (looked at {str(path)!r})")
            return
        search_path = self.env.get("PATH", os.environ.get("PATH", os.defpath))
        if shutil.which(name, path=search_path) is None:
            raise ValueError(f"argv[0]: program {name!r} not found on PATH")

    @property
    def parameter_paths(self) -> tuple[str, ...]:
        """The parameter paths named by ``{params.…}`` placeholders (argv and results key)."""
        paths: list[str] = []
        for template in (*self._templates, *self._key_templates.values()):
            paths.extend(p for p in template.param_paths if p not in paths)
        return tuple(paths)

    def validate(self, parameters: Iterable[str]) -> None:
        """Raise ValueError when a ``{params.…}`` placeholder names none of ``parameters``."""
        ph.check_paths((*self._templates, *self._key_templates.values()), parameters)

    def close(self) -> None:
        """Stop the results watcher, if one was started."""
        if self._index is not None:
            self._index.close()

    def __enter__(self) -> CommandObjective:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        # The live index (a watcher thread) and its lock stay behind; a copy opens its own.
        state = {k: getattr(self, k) for k in _STATE}
        state["_index"] = None if self._index is None else (self._index.directory, self._index.spec)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        index = state.pop("_index")
        self.__dict__.update(state)
        self._index = None if index is None else SharedIndex(*index)

    def __repr__(self) -> str:
        return f"CommandObjective({list(self.argv)!r}, metrics={list(self.metrics)!r})"

    # -- one trial --------------------------------------------------------------------------

    def run(
        self,
        config: dict,
        *,
        trial_number: int,
        trial_dir: Path,
        params: Mapping[str, Any],
        cancel: threading.Event | None = None,
    ) -> TrialOutcome:
        """Run one trial. Setting ``cancel`` (from another thread) kills the command's process
        group and raises KeyboardInterrupt here, as Ctrl-C does in the main thread."""
        started = time.perf_counter()
        try:
            files = TrialFiles.create(trial_dir)
            if files.config.is_dir() and not files.config.is_symlink():
                shutil.rmtree(files.config)  # left by an earlier command in this folder
            write_json_atomic(files.config, config)
        except OSError as exc:
            # Whatever an earlier command left in its folder fails this trial, not the sweep.
            where = exc.filename or trial_dir
            reason = f"cannot write the trial's config file: {exc.strerror or exc} ({where})"
            return TrialOutcome(ok=False, reason=reason, duration=time.perf_counter() - started)
        ctx = ph.Context(
            trial_dir=str(files.dir),
            config_file=str(files.config),
            output_file=str(files.output),
            trial_number=trial_number,
            params=params,
            config=config,
        )
        try:
            argv = [t.render(ctx) for t in self._templates]
            key = {name: t.render(ctx) for name, t in self._key_templates.items()}
        except ph.UnsafeValue as exc:
            return TrialOutcome(ok=False, reason=str(exc), duration=time.perf_counter() - started)
        env = merged_env(
            self.env,
            {
                "FASTGRID_TRIAL_NUMBER": str(trial_number),
                "FASTGRID_TRIAL_DIR": ctx.trial_dir,
                "FASTGRID_CONFIG_FILE": ctx.config_file,
                "FASTGRID_OUTPUT_FILE": ctx.output_file,
            },
        )

        def attempt(number: int) -> Attempt:
            return self._attempt(argv, env, files, key, cancel)

        def keep_logs(number: int) -> None:
            # The failed attempt's logs stay next to the new ones as stdout.attempt<N>.log.
            for log in (files.stdout, files.stderr):
                with contextlib.suppress(OSError):  # gone with a folder the command deleted
                    os.replace(log, log.with_name(f"{log.stem}.attempt{number - 1}{log.suffix}"))

        turn = (
            results_turn(self._index.directory, key, cancel=cancel)
            if self._index is not None
            else contextlib.nullcontext()
        )
        with turn:
            last, attempts = retry(
                attempt, retries=self.retries, backoff=self.backoff, before_retry=keep_logs
            )
        return last.outcome(
            attempts=attempts,
            started=started,
            stdout_tail=tail_text(files.stdout),
            stderr_tail=tail_text(files.stderr),
        )

    def _attempt(
        self,
        argv: list[str],
        env: dict[str, str],
        files: TrialFiles,
        key: dict[str, str],
        cancel: threading.Event | None = None,
    ) -> Attempt:
        # A stale output.json (an earlier attempt, or a run interrupted before a resume) must never
        # be read as this attempt's result; the folder itself may be gone (a command deleted it).
        try:
            files.dir.mkdir(parents=True, exist_ok=True)
            _clear(files.output)
        except OSError as exc:
            reason = f"cannot prepare the trial folder: {exc.strerror or exc} ({exc.filename or files.dir})"
            return Attempt(ok=False, reason=reason, retryable=False)
        index = self._index.get() if self._index is not None else None
        before = index.latest(**key) if index is not None else None
        try:
            done = run_in_group(
                argv,
                cwd=None if self.cwd is None else str(self.cwd),
                env=env,
                stdout_path=files.stdout,
                stderr_path=files.stderr,
                timeout=self.timeout,
                grace=self.kill_grace,
                log_limit=self.log_limit,
                cancel=cancel,
            )
        except OSError as exc:
            return Attempt(
                ok=False, reason=f"cannot start {argv[0]!r}: {exc.strerror or exc}", retryable=False
            )
        if done.timed_out:
            return Attempt(ok=False, reason=f"timeout after {self.timeout}s", returncode=done.returncode)
        if done.returncode != 0:
            return Attempt(
                ok=False, reason=_describe_exit(done.returncode, files.stderr), returncode=done.returncode
            )
        try:
            document, result_path = self._read_result(files, index, before, key)
        except OutputError as exc:
            return Attempt(ok=False, reason=str(exc), returncode=0)
        except OSError as exc:  # the command removed or broke its own files (issue 12, item 9)
            reason = f"no output: cannot read it ({exc.strerror or exc}: {exc.filename or files.dir})"
            return Attempt(ok=False, reason=reason, returncode=0)
        if isinstance(document, (int, float)) and not isinstance(document, bool) and len(self.metrics) == 1:
            document = {self.metrics[0]: document}
        if not isinstance(document, dict):
            return Attempt(
                ok=False,
                reason=f"output is not a JSON object of metrics (got {type(document).__name__})",
                result_path=result_path,
                returncode=0,
            )
        value = pick_value(document, self.metrics, source="output")
        if isinstance(value, str):
            return Attempt(ok=False, reason=value, result_path=result_path, returncode=0)
        return Attempt(ok=True, metrics=document, value=value, result_path=result_path, returncode=0)

    def _read_result(
        self, files: TrialFiles, index: Any, before: Path | None, key: dict[str, str]
    ) -> tuple[Any, str | None]:
        limit = self.max_output_bytes
        if os.path.lexists(files.output):
            return read_json_file(files.output, limit=limit, source=files.output.name), str(files.output)
        if index is not None:
            assert self.results is not None and self._index is not None
            try:
                path = index.wait_for(newer_than=before, timeout=self.results.wait, **key)
                if path is None:  # only with a stop event, which is not passed: treat as not found
                    raise TimeoutError
            except TimeoutError:
                fields = ", ".join(f"{k}={v!r}" for k, v in key.items()) or "any key"
                raise OutputError(
                    f"no output: no new result file matching {self.results.pattern!r} ({fields}) "
                    f"appeared in {str(self._index.directory)!r} within {self.results.wait}s of exit"
                ) from None
            return read_json_file(Path(path), limit=limit, source=Path(path).name), str(path)
        if not files.stdout.exists():
            raise OutputError(
                f"no output: the command exited 0 but wrote no {files.output.name}, and its "
                f"{files.stdout.name} is gone (did it delete its trial folder?)"
            )
        line = last_json_object_line(files.stdout, limit=limit)
        if line is None:
            raise OutputError(
                f"no output: the command exited 0 but wrote no {files.output.name} "
                "and printed no JSON object line on stdout"
            )
        return line, None


def _clear(path: Path) -> None:
    """Remove whatever is at ``path`` (a file, a link, a FIFO, or a directory an earlier command
    made there) so that fastgrid can write or expect its own file there."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


_STATE = (
    "argv",
    "_templates",
    "metrics",
    "timeout",
    "retries",
    "backoff",
    "env",
    "cwd",
    "max_output_bytes",
    "log_limit",
    "kill_grace",
    "results",
    "_key_templates",
)
