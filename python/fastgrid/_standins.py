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
