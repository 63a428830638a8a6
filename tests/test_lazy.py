"""A light ``import fastgrid`` and a fast CLI start: what a fresh interpreter imports, and the lazy
re-exports (``fastgrid.lazy``) that make it so.

Every ``fastgrid worker`` process and every CLI call used to import Optuna, numpy and pydantic
(~0.5 s) before its first line of work. These tests check behaviour, in fresh interpreters: which
modules are loaded, that every public name still resolves to the real object, and that the names
type checkers see (``if TYPE_CHECKING:``) are the names the lazy table serves. The timings are in
``benches/test_bench_cli_start.py``.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
from fastgrid.cli import main
from fastgrid.lazy import lazy_exports

PACKAGE = Path(__file__).resolve().parents[1] / "python" / "fastgrid"
HEAVY = ["matplotlib", "numpy", "optuna", "pandas", "pyarrow", "pydantic", "rich", "scipy", "sqlalchemy"]
HEAVY += ["yaml"]

LOADED = """
import json, sys
{body}
print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))
"""


def _loaded(body: str, *, cwd: Path | None = None) -> list[str]:
    """The heavy modules a fresh interpreter holds after running ``body`` (in ``cwd``)."""
    code = LOADED.format(body=body, heavy=HEAVY)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=cwd)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.splitlines()[-1])


def test_import_fastgrid_loads_no_heavy_module() -> None:
    assert _loaded("import fastgrid") == []


def test_the_heavy_modules_are_the_ones_the_api_loads() -> None:
    # The check above can fail: the same probe sees what reading a study and a sweep file import.
    assert {"numpy", "optuna", "pydantic"} <= set(_loaded("import fastgrid.study, fastgrid.sweepfile"))


def _help(argv: list[str]) -> str:
    # The console script's entry point, as ``fastgrid ... --help`` runs it; output to stderr.
    return (
        "import contextlib\nfrom fastgrid.cli import main\n"
        f"with contextlib.redirect_stdout(sys.stderr), contextlib.suppress(SystemExit):\n"
        f"    main({argv!r}, prog_name='fastgrid')"
    )


@pytest.mark.parametrize("command", ["", *sorted(main.commands)])
def test_help_loads_no_heavy_module(command: str) -> None:
    assert _loaded(_help([command, "--help"] if command else ["--help"])) == []


def test_help_lists_every_command_with_its_short_help() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "fastgrid", "--help"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    listed = out.stdout.partition("Commands:")[2]
    for name, command in main.commands.items():
        assert f"  {name} " in listed
        assert command.get_short_help_str(limit=40)[:20] in listed


def test_every_public_name_resolves_in_a_fresh_interpreter() -> None:
    code = """
import json, importlib, fastgrid
missing = [n for n in fastgrid.__all__ if n not in dir(fastgrid)]
where = {}
for n in fastgrid.__all__:
    value = getattr(fastgrid, n)
    where[n] = getattr(value, "__module__", None) or getattr(value, "__name__", None)
from fastgrid import Sweep, reporting, study
same = (Sweep is fastgrid.runner.Sweep, reporting is importlib.import_module("fastgrid.reporting"),
        study is importlib.import_module("fastgrid.study"), fastgrid.load is reporting.load)
print(json.dumps({"missing": missing, "where": where, "same": same}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout)
    assert found["missing"] == []
    assert found["same"] == [True, True, True, True]
    assert found["where"]["Sweep"].startswith("fastgrid.runner")
    assert found["where"]["GridSampler"].startswith("fastgrid.samplers")
    assert found["where"]["study"] == "fastgrid.study"


def test_an_unknown_name_is_the_usual_error() -> None:
    import fastgrid

    with pytest.raises(AttributeError, match="module 'fastgrid' has no attribute 'Sweeep'"):
        _ = fastgrid.Sweeep  # type: ignore[attr-defined]
    with pytest.raises(ImportError, match="cannot import name 'Nope'"):
        from fastgrid import Nope  # type: ignore[attr-defined]  # noqa: F401


def test_a_name_served_twice_is_refused() -> None:
    with pytest.raises(ValueError, match=r"'x' re-exported from a\.b and a\.c"):
        lazy_exports("a", {"a.b": ["x"], "a.c": ["x"]})


# --- the lazy tables against what type checkers see ----------------------------------------------


def _lazy_packages() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("__init__.py") if "lazy_exports(" in p.read_text())


def _tables(path: Path, root: Path = PACKAGE) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """(lazy table, TYPE_CHECKING imports, __all__) of a package ``__init__``, each name -> module."""
    tree = ast.parse(path.read_text())
    package = ".".join(path.relative_to(root.parent).parent.parts)
    lazy: dict[str, str] = {}
    typed: dict[str, str] = {}
    exported: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "lazy_exports":
            table = ast.literal_eval(node.args[1])
            lazy.update({name: module for module, names in table.items() for name in names})
        elif isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for imp in node.body:
                assert isinstance(imp, ast.ImportFrom) and imp.module, ast.dump(imp)
                for alias in imp.names:
                    sub = f"{imp.module}.{alias.name}"
                    is_module = imp.module == package and (
                        (path.parent / alias.name / "__init__.py").exists()
                        or (path.parent / f"{alias.name}.py").exists()
                    )
                    typed[alias.asname or alias.name] = sub if is_module else imp.module
        elif isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "__all__":
            exported = ast.literal_eval(node.value)
    return lazy, typed, exported


def test_some_packages_are_lazy() -> None:
    assert PACKAGE / "__init__.py" in _lazy_packages()


@pytest.mark.parametrize("path", _lazy_packages(), ids=lambda p: str(p.relative_to(PACKAGE.parent)))
def test_type_checkers_see_the_names_the_lazy_table_serves(path: Path) -> None:
    lazy, typed, exported = _tables(path)
    assert lazy, "no lazy table found"
    assert typed == lazy
    assert sorted(set(lazy) - set(exported)) == []


def test_the_table_check_sees_a_difference(tmp_path: Path) -> None:
    init = tmp_path / "fastgrid" / "pkg" / "__init__.py"
    init.parent.mkdir(parents=True)
    init.write_text(
        "if TYPE_CHECKING:\n    from fastgrid.pkg._a import A\nelse:\n"
        "    __getattr__, __dir__ = lazy_exports(__name__, {'fastgrid.pkg._b': ['A']})\n"
        "__all__ = ['A']\n"
    )
    lazy, typed, _ = _tables(init, root=tmp_path / "fastgrid")
    assert lazy == {"A": "fastgrid.pkg._b"} and typed == {"A": "fastgrid.pkg._a"}


def test_a_submodule_resolves_on_first_access_as_with_eager_imports() -> None:
    code = "import fastgrid; print(fastgrid.stats.sharpe_ratio.__module__, 'stats' in dir(fastgrid))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["fastgrid.stats._sharpe", "True"]


def test_every_name_of_every_lazy_package_resolves() -> None:
    packages = [".".join(p.relative_to(PACKAGE.parent).parent.parts) for p in _lazy_packages()]
    code = f"""
import importlib, json
missing = []
for name in {packages!r}:
    package = importlib.import_module(name)
    missing += [f"{{name}}.{{n}}" for n in package.__all__ if getattr(package, n, None) is None]
print(json.dumps(missing))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == []
    assert len(packages) >= 8


def test_a_worker_joining_a_batch_sweep_loads_no_optuna(tmp_path: Path) -> None:
    """A batch sweep's process imports Optuna only to write the study: a `fastgrid worker` joining
    a registered sweep (which writes no top-K points here) never loads it."""
    (tmp_path / "vec.py").write_text("def score(cols, config):\n    return {'score': cols['a'] * 1.0}\n")
    sweep = tmp_path / "b.toml"
    sweep.write_text(
        '[sweep]\nname = "b"\nmode = "batch"\nchunk = 10\ndirection = "maximize"\nmetric = "score"\n'
        'top_k = 0\n[objective]\nbatch = "vec:score"\n'
        '[parameters]\na = { type = "int", low = 1, high = 50 }\n'
    )
    work = (
        "import contextlib\nfrom fastgrid.cli import main\n"
        "with contextlib.redirect_stdout(sys.stderr), contextlib.suppress(SystemExit):\n"
        f"    main(['worker', {str(sweep)!r}, '--no-progress'], prog_name='fastgrid')"
    )
    # In the sweep's folder: its store is there (fastgrid.db), not in the test's working directory.
    assert "optuna" in _loaded(work, cwd=tmp_path)  # the first registers the sweep, creates the study
    assert "optuna" not in _loaded(work, cwd=tmp_path)
    assert (tmp_path / "fastgrid.db").exists()
