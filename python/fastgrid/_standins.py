"""TEMPORARY stand-ins for parts being built on other branches (deleted once they land on main)."""

# ruff: noqa
from __future__ import annotations

import copy
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from fastgrid._core import SpecError as _SpecError


def SpecError(msg):
    e = _SpecError(msg)
    e.path = msg.split(":")[0]
    return e


def _expand_keys(tree: dict, prefix: str = "") -> dict:
    out: dict = {}
    for k, v in tree.items():
        parts = k.split(".")
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        last = parts[-1]
        if isinstance(v, dict) and "type" not in v:
            node.setdefault(last, {})
            node[last].update(_expand_keys(v))
        else:
            node[last] = v
    return out


def _axes(tree: dict, prefix: str = "") -> list[dict]:
    out = []
    for k, v in tree.items():
        path = f"{prefix}{k}"
        if isinstance(v, dict) and "type" not in v:
            out.extend(_axes(v, path + "."))
            continue
        if not isinstance(v, dict):
            out.append({"path": path, "kind": "fixed", "value": v})
            continue
        t = v["type"]
        if t == "fixed":
            out.append({"path": path, "kind": "fixed", "value": v["value"]})
        elif t == "grid":
            if not v["values"]:
                raise SpecError(f"{path}: empty values")
            out.append({"path": path, "kind": "grid", "values": list(v["values"])})
        elif t == "int":
            out.append(
                {
                    "path": path,
                    "kind": "int",
                    "low": v["low"],
                    "high": v["high"],
                    "step": v.get("step", 1),
                    "log": v.get("log", False),
                }
            )
        elif t == "float":
            out.append(
                {
                    "path": path,
                    "kind": "float",
                    "low": v["low"],
                    "high": v["high"],
                    "step": v.get("step"),
                    "num": v.get("num"),
                    "log": v.get("log", False),
                }
            )
        else:
            raise SpecError(f"{path}: unknown type {t!r}")
    return out


def _values(ax: dict) -> list:
    k = ax["kind"]
    if k == "grid":
        return ax["values"]
    if k == "int":
        return list(range(ax["low"], ax["high"] + 1, ax["step"]))
    if k == "float":
        if ax.get("step") is not None:
            lo, hi, st = Decimal(str(ax["low"])), Decimal(str(ax["high"])), Decimal(str(ax["step"]))
            out, x = [], lo
            while x <= hi:
                out.append(float(x))
                x += st
            return out
        if ax.get("num") is not None:
            n = ax["num"]
            return (
                [ax["low"] + (ax["high"] - ax["low"]) * i / (n - 1) for i in range(n)]
                if n > 1
                else [ax["low"]]
            )
        raise SpecError(f"{ax['path']}: continuous float range in a grid: add step or num")
    return [ax["value"]]


class Grid:
    def __init__(self, spec: Any, *, constraints=(), flat: bool = False, continuous: bool = False) -> None:
        self._tree = _expand_keys(spec)
        self.axes = _axes(self._tree)
        self.paths = [a["path"] for a in self.axes]
        self._exprs = [Expression(c) for c in constraints]
        if continuous:
            self._vals = None
            self._points = []
            return
        self._vals = [_values(a) for a in self.axes]
        import itertools

        pts = []
        for combo in itertools.product(*self._vals):
            flatp = dict(zip(self.paths, combo))
            if all(e.evaluate(flatp) for e in self._exprs):
                pts.append(flatp)
        self._points = pts

    def __len__(self) -> int:
        return len(self._points)

    @property
    def size(self) -> int:
        return len(self._points)

    def __getitem__(self, i: int) -> dict:
        return _nest(self._points[i])

    def index(self, point: dict) -> int:
        return self._points.index(_flatten(point))

    def __contains__(self, point: dict) -> bool:
        return _flatten(point) in self._points

    def shuffled(self, seed: int) -> "_Shuffled":
        return _Shuffled(self, seed)


class _Shuffled:
    def __init__(self, grid: Grid, seed: int) -> None:
        self._g = grid
        self._perm = list(range(len(grid)))
        random.Random(seed).shuffle(self._perm)

    def __len__(self) -> int:
        return len(self._perm)

    def __getitem__(self, i: int) -> dict:
        return self._g[self._perm[i]]


def _nest(flat: dict) -> dict:
    out: dict = {}
    for k, v in flat.items():
        parts = k.split(".")
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = copy.deepcopy(v)
    return out


def _flatten(tree: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in tree.items():
        if isinstance(v, dict) and v and prefix + k + "." not in ():
            sub = _flatten(v, prefix + k + ".")
            out.update(sub)
        else:
            out[prefix + k] = v
    return out


class Expression:
    def __init__(self, source: str) -> None:
        self.source = source
        try:
            self._code = compile(source, "<expr>", "eval")
        except SyntaxError as e:
            raise SpecError(f"{source}: syntax error") from None
        self.names = [n for n in self._code.co_names if n not in ("and", "or", "not")]

    def evaluate(self, mapping: dict) -> bool:
        ns: dict = {}
        for k, v in mapping.items():
            parts = k.split(".")
            node = ns
            for p in parts[:-1]:
                node = node.setdefault(p, _NS())
                node = node.__dict__
            node[parts[-1]] = v
        return bool(eval(self._code, {"__builtins__": {}}, ns))


class _NS:
    pass


def open_storage(url, *, directory=None):
    import optuna

    if url is None:
        directory = Path(directory or Path.cwd())
        return optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(directory / "fastgrid.db"))
        )
    if url.endswith(".log"):
        return optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(Path(directory or Path.cwd()) / url))
        )
    if url.startswith("journal:"):
        return optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(url[len("journal:") :])
        )
    return optuna.storages.RDBStorage(url)


def redact_url(url):
    return url


@dataclass
class TrialOutcome:
    ok: bool
    metrics: dict = field(default_factory=dict)
    value: Any = None
    reason: str | None = None
    duration: float = 0.0
    attempts: int = 1
    result_path: str | None = None
    stdout_tail: str = ""
    stderr_tail: str = ""


def _values_from(metrics, names):
    if not names:
        return None
    try:
        vals = [float(metrics[m]) for m in names]
    except KeyError as e:
        return f"missing metric {e.args[0]!r}"
    return vals


class CallableObjective:
    def __init__(self, target, *, metrics=(), timeout=None, retries=0, backoff=0.0) -> None:
        if isinstance(target, str):
            import importlib

            mod, _, fn = target.partition(":")
            target = getattr(importlib.import_module(mod), fn)
        self.target = target
        self.metrics = list(metrics)

    def run(self, config, *, trial_number, trial_dir, params):
        t0 = time.perf_counter()
        try:
            r = self.target(config)
        except Exception as e:
            return TrialOutcome(False, reason=f"{type(e).__name__}: {e}", duration=time.perf_counter() - t0)
        metrics = r if isinstance(r, dict) else {"value": r}
        vals = (
            _values_from(metrics, self.metrics)
            if self.metrics
            else [float(r) if not isinstance(r, dict) else None]
        )
        if isinstance(vals, str):
            return TrialOutcome(False, metrics=metrics, reason=vals, duration=time.perf_counter() - t0)
        return TrialOutcome(
            True, metrics=metrics, value=vals if len(vals) > 1 else vals[0], duration=time.perf_counter() - t0
        )


class CommandObjective:
    def __init__(
        self, argv, *, metrics=(), timeout=None, retries=0, backoff=0.0, env=None, cwd=None, results=None
    ) -> None:
        self.argv = list(argv)
        self.metrics = list(metrics)
        self.timeout = timeout
        self.env = env or {}
        self.cwd = cwd

    def run(self, config, *, trial_number, trial_dir, params):
        trial_dir = Path(trial_dir)
        trial_dir.mkdir(parents=True, exist_ok=True)
        cfg = trial_dir / "config.json"
        cfg.write_text(json.dumps(config))
        out = trial_dir / "result.json"
        argv = [
            a.format(config_file=cfg, output_file=out, trial_dir=trial_dir, trial_number=trial_number)
            for a in self.argv
        ]
        t0 = time.perf_counter()
        p = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            cwd=self.cwd,
            env={**os.environ, **self.env},
            text=True,
        )
        try:
            so, se = p.communicate(timeout=self.timeout)
        except KeyboardInterrupt:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            raise
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.communicate()
            return TrialOutcome(
                False, reason=f"timeout after {self.timeout}s", duration=time.perf_counter() - t0
            )
        d = time.perf_counter() - t0
        if p.returncode != 0:
            return TrialOutcome(False, reason=f"exit code {p.returncode}", duration=d, stderr_tail=se[-2000:])
        if out.exists():
            metrics = json.loads(out.read_text())
        else:
            try:
                metrics = json.loads(so.strip().splitlines()[-1])
            except Exception:
                return TrialOutcome(False, reason="no result", duration=d)
        vals = _values_from(metrics, self.metrics)
        if isinstance(vals, str):
            return TrialOutcome(False, metrics=metrics, reason=vals, duration=d)
        return TrialOutcome(
            True,
            metrics=metrics,
            value=vals if len(vals) > 1 else vals[0],
            duration=d,
            result_path=str(out) if out.exists() else None,
        )


@dataclass
class ResultsSpec:
    dir: str
    pattern: str
    key: str | None = None


def export_study(src_storage, *, study_name, to_url):
    import optuna

    source = open_storage(src_storage) if isinstance(src_storage, str) else src_storage
    target = open_storage(to_url)
    if study_name in {s.study_name for s in target.get_all_studies()}:
        raise ValueError(f"{to_url}: already holds a study named {study_name!r}; export elsewhere")
    try:
        source.get_study_id_from_name(study_name)
    except KeyError:
        names = sorted(s.study_name for s in source.get_all_studies())
        raise KeyError(f"no study named {study_name!r} in the source storage (studies: {names})") from None
    optuna.copy_study(from_study_name=study_name, from_storage=source, to_storage=target)
