"""The sweep file: pydantic models of its sections and errors that name the file, key path and fix.

A sweep file is TOML (YAML and JSON are accepted too) with the sections ``[sweep]``, ``[objective]``,
``[config]``, ``[constraints]``, ``[validate]``, ``[walkforward]`` and ``[parameters]``. Unknown keys
are errors, so a typo never silently falls back to a default. Relative paths resolve against the
sweep file's directory.
"""

from __future__ import annotations

import difflib
import re
from datetime import date, datetime
from pathlib import Path
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from fastgrid._core import Grid, SpecError, parse_parameters
from fastgrid.exceptions import DocumentError, SweepFileError
from fastgrid.files import read_document
from fastgrid.objective import DEFAULT_LOG_LIMIT
from fastgrid.samplers import PRUNER_NAMES, SEARCH_SAMPLER_NAMES
from fastgrid.stats import Fold, explicit_folds, walk_forward_folds

__all__ = [
    "ConfigSection",
    "ConstraintsSection",
    "ObjectiveSection",
    "ResultsSection",
    "SamplerSection",
    "SweepFile",
    "SweepFileError",
    "SweepSection",
    "ValidateSection",
    "WalkForwardSection",
    "bare_lists",
    "batch_problems",
    "format_errors",
    "key_name",
    "load_grid_spec",
    "load_parameters",
    "load_sweep_file",
    "parameter_leaves",
    "parameter_problems",
    "parse_duration",
    "problem_text",
    "resolve_paths",
]

SAMPLERS = ("grid", *SEARCH_SAMPLER_NAMES)
PRUNERS = PRUNER_NAMES
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
NAME_MAX = 100
"""Longest sweep name: it names the runs/ folder, and file systems allow 255 bytes per name."""
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(d|h|m|s)", re.IGNORECASE)
_UNIT = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}


def parse_duration(value: str | float | int) -> float:
    """Seconds from ``90``, ``"90s"``, ``"30m"``, ``"2h"``, ``"1h30m"`` or ``"1d"``."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like '90s', '30m', '2h' or a number of seconds")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = value.strip()
        try:
            seconds = float(text)
        except ValueError:
            parts = _DURATION.findall(text)
            if not parts or _DURATION.sub("", text).strip():
                raise ValueError(
                    f"expected a duration like '90s', '30m', '2h' or '1h30m', got {value!r}"
                ) from None
            seconds = sum(float(n) * _UNIT[u.lower()] for n, u in parts)
    if not seconds > 0 or seconds == float("inf"):
        raise ValueError(f"expected a positive duration, got {value!r}")
    return seconds


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_a_number(cls, value: Any, info: ValidationInfo) -> Any:
        # pydantic's lax mode reads true as 1: `chunk = true` or `workers = true` ran as 1.
        if isinstance(value, bool) and info.field_name is not None:
            field = cls.model_fields.get(info.field_name)
            if (
                field is not None
                and _takes(field.annotation, (int, float))
                and not _takes(field.annotation, (bool,))
            ):
                raise ValueError(f"expected a number, not {str(value).lower()}")
        return value


def _takes(annotation: Any, kinds: tuple[type, ...]) -> bool:
    """Whether a field of this type may hold a value of one of ``kinds`` (through unions, Literal)."""
    if annotation in kinds or (annotation is Any and bool in kinds):
        return True
    args = get_args(annotation)
    if get_origin(annotation) is Literal:
        return any(type(a) in kinds for a in args)
    if get_origin(annotation) in (Union, UnionType):
        return any(_takes(a, kinds) for a in args)
    return False


class SamplerSection(BaseModel):
    """``sampler = "tpe"`` or ``sampler = {name = "tpe", n_startup_trials = 20}``: extra keys go to Optuna."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: Literal["grid", "tpe", "random", "cmaes", "qmc", "nsga2"]

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class PrunerSection(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    name: Literal["none", "median", "percentile", "hyperband", "successive_halving", "threshold", "patient"]

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class SweepSection(_Model):
    name: str | None = None
    # Required (issue 11): a sweep that silently minimized a sharpe ratio printed the worst point as
    # "best"; ``directions`` alone is copied here by the validator below.
    direction: Literal["minimize", "maximize"] | list[Literal["minimize", "maximize"]]
    directions: list[Literal["minimize", "maximize"]] | None = None
    metric: str = "value"
    metrics: list[str] | None = None
    sampler: SamplerSection = SamplerSection(name="grid")
    pruner: PrunerSection | None = None
    order: Literal["sequential", "shuffled"] = "sequential"
    max_trials: int | None = Field(default=None, ge=1)
    timeout: float | None = None
    end_at: datetime | None = None
    workers: int = Field(default=1, ge=1)
    seed: int | None = Field(default=None, ge=0)
    storage: str | None = None
    where: list[str] = []
    retry_failed: int = Field(default=1, ge=0)
    # Stop when the first N trials of a run all fail for one reason (0: never); see runner/_guard.py.
    fail_fast: int = Field(default=5, ge=0)
    heartbeat_interval: int = Field(default=10, ge=1)
    grace_period: int | None = Field(default=None, ge=1)
    # How many of the best trials keep the returns series their objective returned (packed, as a
    # trial attr): "all" keeps every one (a sweep to analyse later), 0 none.
    keep_returns: int | Literal["all"] = 50
    # Batch sweeps (issue 13, docs/batch.md): the unit of bookkeeping is a chunk of grid points.
    mode: Literal["trial", "batch"] = "trial"
    chunk: int | None = Field(default=None, ge=1)
    top_k: int = Field(default=100, ge=0)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        if v is not None and not _NAME.match(v):
            raise ValueError(
                "expected letters, digits, '.', '_' or '-' (it names the Optuna study and the runs/ folder)"
            )
        if v is not None and len(v) > NAME_MAX:
            raise ValueError(
                f"at most {NAME_MAX} characters, got {len(v)} (it names the runs/ folder); use a shorter name"
            )
        return v

    @model_validator(mode="before")
    @classmethod
    def _directions_alone(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("directions") is not None and "direction" not in data:
            data = {**data, "direction": data["directions"], "directions": None}
        return data

    @field_validator("keep_returns")
    @classmethod
    def _keep_returns(cls, v: int | str) -> int | str:
        if isinstance(v, int) and v < 0:
            raise ValueError('expected a number of trials (0 or more) or "all"')
        return v

    @field_validator("sampler", mode="before")
    @classmethod
    def _sampler(cls, v: Any) -> Any:
        return {"name": v} if isinstance(v, str) else v

    @field_validator("pruner", mode="before")
    @classmethod
    def _pruner(cls, v: Any) -> Any:
        return {"name": v} if isinstance(v, str) else v

    @field_validator("timeout", mode="before")
    @classmethod
    def _timeout(cls, v: Any) -> Any:
        return None if v is None else parse_duration(v)

    @model_validator(mode="after")
    def _objectives(self) -> SweepSection:
        if self.directions is not None:
            if "direction" in self.model_fields_set:
                raise ValueError("set 'direction' or 'directions', not both")
            object.__setattr__(self, "direction", list(self.directions))
        if isinstance(self.direction, list):
            if not self.metrics or len(self.metrics) != len(self.direction):
                raise ValueError(
                    "a list of directions needs 'metrics', a list of the same length naming the metric "
                    "each direction applies to"
                )
        elif self.metrics is not None and len(self.metrics) != 1:
            raise ValueError("'metrics' with several names needs 'direction' to be a list of the same length")
        return self

    @model_validator(mode="after")
    def _heartbeat(self) -> SweepSection:
        if self.grace_period is not None and self.grace_period <= self.heartbeat_interval:
            raise ValueError(
                f"grace_period ({self.grace_period}s) must exceed heartbeat_interval "
                f"({self.heartbeat_interval}s), or live trials would be failed as stale"
            )
        return self

    @property
    def grace(self) -> int:
        """Seconds without a heartbeat after which a running trial is failed (default: twice the interval)."""
        return self.grace_period if self.grace_period is not None else 2 * self.heartbeat_interval

    @property
    def all_directions(self) -> list[str]:
        return list(self.direction) if isinstance(self.direction, list) else [self.direction]

    @property
    def objective_metrics(self) -> list[str]:
        return list(self.metrics) if self.metrics else [self.metric]


class ResultsSection(_Model):
    """Where a command that names its own result file puts it (see ``fastgrid.ResultIndex``)."""

    dir: Path
    pattern: str | None = None
    key: dict[str, str] = {}
    order_by: str | None = None
    wait: float | None = None
    recursive: bool | None = None

    @field_validator("wait", mode="before")
    @classmethod
    def _wait(cls, v: Any) -> Any:
        return None if v is None else parse_duration(v)


class ObjectiveSection(_Model):
    callable: str | None = None
    # A vectorized objective of a batch sweep: fn(columns, config) -> metric columns.
    batch: str | None = None
    command: list[str] | None = None
    timeout: float | None = None
    retries: int = Field(default=0, ge=0)
    backoff: float = Field(default=1.0, ge=0)
    env: dict[str, str] = {}
    cwd: Path | None = None
    results: ResultsSection | None = None
    # Bytes kept per log (stdout.log, stderr.log) of a command trial: head + marker + last 64 KiB.
    log_limit: int = Field(default=DEFAULT_LOG_LIMIT, ge=1)

    @field_validator("callable", "batch")
    @classmethod
    def _callable(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$", v):
            raise ValueError("expected 'module:function', e.g. 'mybacktest:run'")
        return v

    @field_validator("command")
    @classmethod
    def _command(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and not v:
            raise ValueError("expected a non-empty argv list, e.g. ['python', 'bt.py', '{config_file}']")
        return v

    @field_validator("timeout", mode="before")
    @classmethod
    def _timeout(cls, v: Any) -> Any:
        return None if v is None else parse_duration(v)

    @model_validator(mode="after")
    def _one_kind(self, info: ValidationInfo) -> ObjectiveSection:
        if sum(x is not None for x in (self.callable, self.command, self.batch)) != 1:
            if info.context and info.context.get("keywords"):
                raise ValueError(
                    'set exactly one of objective= (a callable, "module:function" or a command argv '
                    'list) or, in a batch sweep, batch= (fn(columns, config) or "module:function")'
                )
            raise ValueError(
                "set exactly one of 'callable' (\"module:function\"), 'command' (an argv list) or, "
                "in a batch sweep, 'batch' (\"module:function\" taking parameter columns)"
            )
        if self.results is not None and self.command is None:
            raise ValueError("'results' only applies to a 'command' objective")
        if "log_limit" in self.model_fields_set and self.command is None:
            raise ValueError("'log_limit' only applies to a 'command' objective (its stdout/stderr logs)")
        return self


class ConfigSection(_Model):
    path: Path
    model: str | None = None
    allow_new: bool = False
    reload: bool = False

    @field_validator("model")
    @classmethod
    def _model(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$", v):
            raise ValueError("expected 'module:Class', e.g. 'mystrategy.config:Settings'")
        return v


class ConstraintsSection(_Model):
    require: list[str] = []


class ValidateSection(_Model):
    """``[validate]``: re-run the top ``top`` trials with ``override`` (dotted config path → value).

    The override typically moves the data window to held-out bars; "best" becomes the best trial on
    the validation run.
    """

    top: int = Field(default=5, ge=1)
    override: dict[str, Any]

    @field_validator("override")
    @classmethod
    def _override(cls, v: dict[str, Any]) -> dict[str, Any]:
        if not v:
            raise ValueError('expected at least one dotted config path, e.g. {"data.start" = 3000}')
        return v


class WalkForwardSection(_Model):
    """``[walkforward]``: run the sweep once per training window, evaluate its choice on the next
    test window. ``keys`` are the two config paths a window sets (its start and end, ``[start,
    end)``); the windows are ``start``/``end``/``train``/``test``/``step``/``anchored`` (see
    :func:`fastgrid.stats.walk_forward_folds`) or an explicit list ``windows``. ``top``: how many
    of each fold's best trials are also run on its test window (for the rank correlation)."""

    keys: list[str]
    start: int | date | str | None = None
    end: int | date | str | None = None
    train: int | str | None = None
    test: int | str | None = None
    step: int | str | None = None
    anchored: bool = False
    windows: list[dict[str, Any]] | None = None
    top: int = Field(default=5, ge=1)

    @field_validator("keys")
    @classmethod
    def _keys(cls, v: list[str]) -> list[str]:
        if len(v) != 2 or len(set(v)) != 2 or not all(v):
            raise ValueError(
                "expected the two config paths a window sets, its start and its end, "
                'e.g. ["data.start", "data.end"]'
            )
        return v

    @model_validator(mode="after")
    def _windows(self) -> WalkForwardSection:
        rolling = {k: getattr(self, k) for k in ("start", "end", "train", "test")}
        if self.windows is not None:
            given = [k for k in (*rolling, "step") if getattr(self, k) is not None]
            if given or "anchored" in self.model_fields_set:
                raise ValueError(
                    f"give 'windows' or start/end/train/test, not both (also set: {', '.join(given)})"
                )
        else:
            missing = [k for k, v in rolling.items() if v is None]
            if missing:
                raise ValueError(
                    f"missing {', '.join(missing)}: give start, end, train and test (and optionally step, "
                    "anchored), or an explicit list 'windows'"
                )
        self.folds()  # every window problem is reported when the file is read
        return self

    def folds(self) -> list[Fold]:
        if self.windows is not None:
            return explicit_folds(self.windows)
        return walk_forward_folds(
            start=self.start,
            end=self.end,
            train=self.train,
            test=self.test,
            step=self.step,
            anchored=self.anchored,
        )


class SweepFile(_Model):
    """A whole sweep file; ``path`` is where it was read from (None when built in code)."""

    sweep: SweepSection
    objective: ObjectiveSection
    config: ConfigSection | None = None
    constraints: ConstraintsSection = ConstraintsSection()
    validate_: ValidateSection | None = Field(default=None, alias="validate")
    walkforward: WalkForwardSection | None = None
    # A list of trees is the union of their grids (grid mode only).
    parameters: dict[str, Any] | list[dict[str, Any]]

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _sweep_section(cls, data: Any) -> Any:
        # Without a [sweep] table the one required key in it is what is missing.
        if isinstance(data, dict) and data.get("sweep") is None:
            data = {**data, "sweep": {}}
        return data

    @field_validator("parameters")
    @classmethod
    def _parameters(cls, v: dict[str, Any] | list[dict[str, Any]]) -> dict[str, Any] | list[dict[str, Any]]:
        if not v or (isinstance(v, list) and not all(v)):
            raise ValueError("expected at least one parameter")
        return v

    @model_validator(mode="after")
    def _validate_objectives(self, info: ValidationInfo) -> SweepFile:
        if self.validate_ is not None and len(self.sweep.all_directions) > 1:
            raise ValueError("[validate] compares one score; it needs a single objective (direction)")
        if self.walkforward is not None:
            if len(self.sweep.all_directions) > 1:
                raise ValueError("[walkforward] compares one score per fold; it needs a single objective")
            if self.validate_ is not None:
                raise ValueError(
                    "[walkforward] already evaluates each fold's choice on held-out data; drop [validate]"
                )
            if self.sweep.mode == "batch":
                raise ValueError("[walkforward] runs its folds as trial sweeps; use mode = 'trial'")
        problems = batch_problems(self, keywords=bool(info.context and info.context.get("keywords")))
        if problems:
            raise ValueError("\n".join(problems))  # format_errors makes a problem of each line
        return self


# The keys of a batch sweep and their rules, in one place for the sweep file and ``Sweep(...)``'s
# keywords (``SweepFile.model_validate(data, context={"keywords": True})`` names the keyword).
_KEYWORD = {
    "objective.callable": "objective",
    "objective.command": "objective",
    "objective.timeout": "objective_timeout",
    "constraints.require": "require",
}


def key_name(path: str, *, keywords: bool) -> str:
    """A key as the sweep file writes it (``sweep.pruner``) or as ``Sweep(...)`` takes it (``pruner``)."""
    if not keywords:
        return path
    return _KEYWORD.get(path, path.rsplit(".", 1)[-1])


def batch_problems(spec: SweepFile, *, keywords: bool = False) -> list[str]:
    """What a batch sweep (``mode = "batch"``, docs/batch.md) cannot do, one line each naming the
    key (``keywords``: the ``Sweep(...)`` keyword) and the fix; and the batch keys outside one."""
    sweep, objective = spec.sweep, spec.objective

    def line(path: str, text: str) -> str:
        return f"{key_name(path, keywords=keywords)}: {text}"

    if sweep.mode != "batch":
        given: list[str] = [k for k in ("chunk", "top_k") if k in sweep.model_fields_set]
        if objective.batch is not None:
            given.insert(0, "objective.batch")
        return [
            line(
                key if "." in key else f"sweep.{key}",
                'applies to batch sweeps only: add mode = "batch" (or drop it)',
            )
            for key in given
        ]
    problems: list[str] = []
    if sweep.sampler.name != "grid":
        problems.append(
            line(
                "sweep.sampler",
                "a batch sweep evaluates a grid chunk by chunk; a "
                f'{sweep.sampler.name!r} search proposes one point at a time: use sampler = "grid" '
                'or mode = "trial"',
            )
        )
    if objective.command is not None:
        problems.append(
            line(
                "objective.command",
                "a command runs one process per point, which cannot be batched; give a batch "
                'objective (fn(columns, config)) or a callable, or use mode = "trial"',
            )
        )
    if sweep.pruner is not None:
        problems.append(
            line(
                "sweep.pruner",
                "a batch sweep scores whole chunks and reports no intermediate values, so there is "
                'nothing to prune: drop the pruner or use mode = "trial"',
            )
        )
    if "timeout" in objective.model_fields_set and objective.batch is None and objective.callable:
        problems.append(
            line(
                "objective.timeout",
                "limits each call of a batch objective; a per-point callable in a batch sweep has "
                'none: drop it, give a batch objective, or use mode = "trial"',
            )
        )
    for key in ("retries", "backoff"):
        if key in objective.model_fields_set and (objective.callable or objective.batch):
            problems.append(
                line(
                    f"objective.{key}",
                    "applies to per-trial objectives; a batch sweep retries failed points on "
                    'the next run (retry_failed): drop it or use mode = "trial"',
                )
            )
    for key, value in (("env", objective.env), ("cwd", objective.cwd)):
        if value and (objective.callable or objective.batch):
            problems.append(line(f"objective.{key}", "applies to a command objective only: drop it"))
    return problems


def _read(path: Path) -> Any:
    """Parse the file through the one strict reader; every failure is a SweepFileError naming it."""
    try:
        return read_document(path)
    except FileNotFoundError:
        raise SweepFileError(str(path), ["file not found"]) from None
    except OSError as exc:
        raise SweepFileError(str(path), [f"cannot read: {exc.strerror or exc}"]) from None
    except DocumentError as exc:
        # "invalid YAML: line 2, column 1: ...": the place after the format, as the parsers say it.
        head, sep, rest = exc.reason.partition(": ")
        if exc.line is not None and sep:
            column = f", column {exc.column}" if exc.column is not None else ""
            reason = f"{head}: line {exc.line}{column}: {rest}"
        else:
            reason = exc.reason
        raise SweepFileError(str(path), [reason]) from None


def _keys(model: type[BaseModel]) -> dict[str, Any]:
    """A model's fields by the key a file uses (the alias where there is one)."""
    return {f.alias or name: f for name, f in model.model_fields.items()}


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class that owns the key at ``loc`` (for listing the allowed keys of a typo)."""
    model: type[BaseModel] | None = SweepFile
    for part in loc[:-1]:
        fields = _keys(model) if model is not None else {}
        if not isinstance(part, str) or part not in fields:
            return None
        annotation = fields[part].annotation
        nxt = None
        for candidate in getattr(annotation, "__args__", (annotation,)):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                nxt = candidate
        model = nxt
    return model


_KEYED = re.compile(r"^[a-z_][a-z_.]*: ")
_MISSING_HINTS = {
    "sweep.direction": ': direction = "maximize" or "minimize" (which way is better for the metric; '
    "fastgrid never picks one)",
}


def format_errors(exc: ValidationError) -> list[str]:
    """One readable line per pydantic error: dotted key path, what is wrong, what is expected."""
    problems: list[str] = []
    for err in exc.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        # pydantic adds union-branch tags ("str", "list[...]") to loc; they mean nothing to a user.
        clean = [p for p in loc if not (isinstance(p, str) and ("[" in p or p in ("str", "int", "float")))]
        path = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in clean).replace(".[", "[")
        kind = err["type"]
        msg = err["msg"].removeprefix("Value error, ")
        if kind == "extra_forbidden":
            model = _model_at(tuple(clean))
            allowed = sorted(_keys(model)) if model is not None else []
            close = difflib.get_close_matches(str(clean[-1]), allowed, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            listing = f"; allowed keys: {', '.join(allowed)}" if allowed else ""
            msg = f"unknown key{hint}{listing}"
        elif kind == "missing":
            msg = "required key is missing" + _MISSING_HINTS.get(path, "")
        elif "input" in err and kind not in ("value_error", "assertion_error"):
            shown = repr(err["input"])
            msg = f"{msg} (got {shown[:80]})"
        if not path and kind == "value_error":
            # A rule over several sections names its own key (batch_problems), one per line.
            problems.extend(m if _KEYED.match(m) else f"(top level): {m}" for m in msg.split("\n"))
            continue
        problems.append(f"{path or '(top level)'}: {msg}")
    # A union of a string and a table reports both branches; keep each line once.
    return list(dict.fromkeys(problems))


def load_sweep_file(path: str | Path) -> SweepFile:
    """Read and validate a sweep file; relative paths in it are made relative to its directory."""
    path = Path(path)
    data = _read(path)
    if not isinstance(data, dict):
        raise SweepFileError(str(path), ["(top level): expected a table of sections"])
    try:
        sweep = SweepFile.model_validate(data)
    except ValidationError as exc:
        raise SweepFileError(str(path), format_errors(exc) + _raw_parameter_problems(data)) from None
    return resolve_paths(sweep, path.resolve().parent, default_name=path.stem)


def _raw_parameter_problems(data: dict[str, Any]) -> list[str]:
    """The parameters tree's problems when the rest of the file has some too: all are listed at
    once (the runner checks the tree again, with the sampler's rules, once the file validates)."""
    tree = data.get("parameters")
    if not tree or not isinstance(tree, dict | list):
        return []
    sweep = data.get("sweep")
    sampler = sweep.get("sampler", "grid") if isinstance(sweep, dict) else "grid"
    name = sampler.get("name") if isinstance(sampler, dict) else sampler
    return parameter_problems(tree, grid=name == "grid")


def resolve_paths(sweep: SweepFile, base: Path, *, default_name: str) -> SweepFile:
    """Anchor relative paths at ``base`` and fill the default sweep name."""
    updates: dict[str, Any] = {}
    if sweep.sweep.name is None:
        name = default_name if _NAME.match(default_name) and len(default_name) <= NAME_MAX else "sweep"
        updates["sweep"] = sweep.sweep.model_copy(update={"name": name})
    if sweep.config is not None and not sweep.config.path.is_absolute():
        updates["config"] = sweep.config.model_copy(update={"path": base / sweep.config.path})
    obj = sweep.objective
    obj_updates: dict[str, Any] = {}
    if obj.cwd is not None and not obj.cwd.is_absolute():
        obj_updates["cwd"] = base / obj.cwd
    if obj.results is not None and not obj.results.dir.is_absolute():
        obj_updates["results"] = obj.results.model_copy(update={"dir": base / obj.results.dir})
    if obj_updates:
        updates["objective"] = obj.model_copy(update=obj_updates)
    return sweep.model_copy(update=updates) if updates else sweep


# -- the parameters tree, walked in Python -----------------------------------------------------------
def parameter_leaves(tree: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """``(dotted path, leaf as written)`` of every parameter of a tree (a union: of every tree, paths
    prefixed ``[i].``), by the rule of the compiled parser: a dict with a ``type`` key is a leaf,
    any other dict a namespace, and dotted keys are paths."""
    if isinstance(tree, list):
        return [leaf for i, t in enumerate(tree) for leaf in parameter_leaves(t, f"[{i}].")]
    out: list[tuple[str, Any]] = []
    if not isinstance(tree, dict):
        return out
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and "type" not in value:
            out.extend(parameter_leaves(value, f"{path}."))
        else:
            out.append((path, value))
    return out


def _probe(tree: Any, *, grid: bool, where: tuple[str, ...] = ()) -> None:
    if grid:
        Grid(tree, constraints=where)
    else:
        parse_parameters(tree)


def problem_text(exc: BaseException, prefix: str = "parameters.", where: tuple[str, ...] = ()) -> str:
    """``parameters.PATH: what is wrong``, the path printed once (the core's message starts with
    it too); a constraint's error as ``sweep.where[i]: ...``."""
    message = str(exc)
    expr = getattr(exc, "expr", None)
    if expr:
        index = f"[{where.index(expr)}]" if expr in where else ""
        return f"sweep.where{index}: {message}"
    path = getattr(exc, "path", "") or ""
    if path and message.startswith(f"{path}: "):
        message = message[len(path) + 2 :]
    return f"{prefix}{path}: {message}" if path else f"{prefix.rstrip('.')}: {message}"


def parameter_problems(tree: Any, *, grid: bool, where: tuple[str, ...] = ()) -> list[str]:
    """Every problem of a parameters tree at once (issue 11: one per run), each naming its path.

    The compiled parser stops at the first bad leaf, so on failure each leaf is parsed alone;
    problems of the whole (a path defined twice, a ``where`` naming no parameter) are reported
    when every leaf is fine.
    """
    try:
        _probe(tree, grid=grid, where=where)
        return []
    except (ValueError, TypeError, OverflowError) as exc:
        first = exc
    problems: list[str] = []
    for path, leaf in parameter_leaves(tree):
        tag, _, inner = path.rpartition("].")
        try:
            _probe({inner: leaf}, grid=grid)
        except (ValueError, TypeError, OverflowError) as exc:
            problems.append(problem_text(exc, f"parameters{tag + ']' if tag else ''}."))
    return list(dict.fromkeys(problems)) or [problem_text(first, where=where)]


def bare_lists(tree: Any) -> list[str]:
    """The paths whose value is written as a bare list: a fixed value, which a user coming from
    sklearn or backtesting.py may have meant as the choices of an axis."""
    return [path.split("].", 1)[-1] for path, leaf in parameter_leaves(tree) if isinstance(leaf, list)]


# -- parameters files (``fastgrid grid FILE``) --------------------------------------------------
def _spec_error(exc: DocumentError) -> SpecError:
    """A reader error as the SpecError that parameter-tree commands raise (with ``.file``/``.line``)."""
    err = SpecError(str(exc))
    err.path = ""
    err.file = exc.file  # type: ignore[attr-defined]
    err.line = exc.line  # type: ignore[attr-defined]
    return err


def _read_spec(path: str | Path) -> Any:
    try:
        data = read_document(path)
    except DocumentError as exc:
        raise _spec_error(exc) from None
    if data is None:
        raise _spec_error(DocumentError(str(path), "the file is empty; it needs a parameters tree"))
    return data


def load_parameters(path: str | Path) -> Any:
    """The parameters tree of a file: its ``parameters`` table when it has one, else the whole file.

    A sweep file (or a workload file with ``expected_grid_size``) contributes its ``parameters``;
    any other file is the tree itself. Errors are :class:`fastgrid.SpecError` naming the file.
    """
    data = _read_spec(path)
    if isinstance(data, dict) and "parameters" in data:
        return data["parameters"]
    return data


def load_grid_spec(path: str | Path) -> tuple[Any, tuple[str, ...]]:
    """The parameters tree of a file and, for a sweep file, its ``[sweep] where`` constraints, so
    that ``fastgrid grid`` shows the same points a grid sweep of that file runs."""
    data = _read_spec(path)
    if not (isinstance(data, dict) and "parameters" in data):
        return data, ()
    sweep = data.get("sweep")
    where = sweep.get("where", []) if isinstance(sweep, dict) else []
    if isinstance(where, str):
        where = [where]
    if not (isinstance(where, list) and all(isinstance(w, str) for w in where)):
        raise _spec_error(DocumentError(str(path), "sweep.where must be a list of constraint strings"))
    return data["parameters"], tuple(where)
