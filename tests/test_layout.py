"""The package's shape: one import direction, no cycles, no private names across packages.

Two independent checks: import-linter's contracts (``[tool.importlinter]`` in pyproject.toml: the
layers ``_core <- leaves <- study <- runner <- reporting <- cli`` and what reading a study may not
import), and an AST scan of every import statement in the package — at module level, inside
functions and under ``TYPE_CHECKING`` alike — for cycles and private imports.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "python" / "fastgrid"
ROOT = PACKAGE.parent.parent
# The compiled extension: its public names are imported from everywhere (it is the bottom layer).
ALWAYS_ALLOWED = {"fastgrid._core"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _package_of(module: str, path: Path) -> str:
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def _imports(module: str, path: Path, known: dict[str, Path]) -> list[tuple[int, str, str | None]]:
    """(line, imported module, imported name or None) for every fastgrid import in the file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = _package_of(module, path)
    out: list[tuple[int, str, str | None]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, a.name, None) for a in node.names if a.name.split(".")[0] == "fastgrid")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if target.split(".")[0] != "fastgrid":
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in known or sub in ALWAYS_ALLOWED:
                    out.append((node.lineno, sub, None))  # ``from pkg import module``
                else:
                    out.append((node.lineno, target, alias.name))
    return out


def test_import_linter_contracts_hold() -> None:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    if exe is None:
        pytest.fail("import-linter is not installed: scripts/test installs it with the test extra")
    out = subprocess.run(
        [exe, "--config", str(ROOT / "pyproject.toml")], capture_output=True, text=True, cwd=ROOT
    )
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "broken" in out.stdout and "0 broken" in out.stdout


def test_no_import_cycle_among_fastgrid_modules() -> None:
    known = _modules()
    graph: dict[str, set[str]] = {m: set() for m in known}
    for module, path in known.items():
        for _, target, _name in _imports(module, path, known):
            if target in known and target != module:
                graph[module].add(target)
    # The root package re-exports everything: it may import any module, none may import it.
    importers_of_root = sorted(m for m, deps in graph.items() if "fastgrid" in deps and m != "fastgrid")
    assert importers_of_root == [], (
        f"modules importing the package root (a cycle through it): {importers_of_root}"
    )
    cycles = _cycles(graph)
    assert cycles == [], "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_cycle_finder_finds_a_cycle() -> None:
    # The scan above must be able to fail.
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]


def _private_owner(target: str, name: str | None) -> str | None:
    """The package a private import reaches into, or None when the import is public."""
    parts = target.split(".")
    for i, part in enumerate(parts[1:], start=1):
        if part.startswith("_") and ".".join(parts[: i + 1]) not in ALWAYS_ALLOWED:
            return ".".join(parts[:i])
    if name is not None and name.startswith("_") and not name.startswith("__"):
        is_package = (PACKAGE.parent / Path(*parts) / "__init__.py").exists()
        return target if is_package else target.rpartition(".")[0]
    return None


def test_no_module_imports_another_packages_private_name() -> None:
    known = _modules()
    found = []
    for module, path in known.items():
        package = _package_of(module, path)
        for line, target, name in _imports(module, path, known):
            owner = _private_owner(target, name)
            if owner is not None and owner != package:
                shown = f"{target}.{name}" if name else target
                found.append(f"{path.relative_to(ROOT)}:{line}: {shown} (private to {owner})")
    assert found == [], "private imports across packages:\n" + "\n".join(found)


def test_private_import_check_flags_a_cross_package_private_name() -> None:
    assert _private_owner("fastgrid.runner._worker", "Worker") == "fastgrid.runner"
    assert _private_owner("fastgrid.samplers", "_get") == "fastgrid.samplers"
    assert _private_owner("fastgrid.samplers", "GridSampler") is None
    assert _private_owner("fastgrid._core", "Grid") is None


def test_reading_a_stored_study_builds_no_grid_and_loads_no_config(tmp_path: Path, monkeypatch) -> None:
    import fastgrid
    from fastgrid import reporting

    config = tmp_path / "config.json"
    config.write_text('{"a": 1, "b": 2}')
    sweep_file = tmp_path / "s.toml"
    sweep_file.write_text(
        '[sweep]\nname = "s"\ndirection = "minimize"\n'
        '[objective]\ncallable = "math:fsum"\n'
        f'[config]\npath = "{config.name}"\n'
        '[parameters]\na = [1, 2]\nb = {type = "grid", values = [1, 2, 3]}\n'
    )

    def add(cfg):
        return cfg["a"] + cfg["b"]

    sweep = fastgrid.Sweep(
        direction="minimize",
        parameters={"b": {"type": "grid", "values": [1, 2, 3]}},
        objective=add,
        name="s",
        config=config,
        directory=tmp_path,
        progress=False,
    )
    sweep.run()

    def refuse(*args, **kwargs):
        raise AssertionError("reading a stored study built a grid or loaded a config")

    monkeypatch.setattr("fastgrid.runner._plan.Grid", refuse)
    monkeypatch.setattr("fastgrid.config.ConfigCache._load", refuse, raising=False)
    monkeypatch.setattr("fastgrid.config.load_config_file", refuse)
    monkeypatch.setattr("fastgrid.config._read_file", refuse)
    report = reporting.load_report(sweep_file, directory=tmp_path)
    assert report.counts["complete"] == 3
    assert report.best is not None and report.best["params"] == {"b": 1}
    monkeypatch.undo()
    assert report.best_config == {"a": 1, "b": 1}
