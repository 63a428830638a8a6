"""The manual stays true: the site builds strictly, links resolve, the sweep-file reference lists every
key with its real default, the CLI reference names every option, every public name has an API entry,
the repository paths it names exist, and its examples run.

The manual is ``docs/`` (the pages of ``mkdocs.yml``'s nav) plus the front page ``README.md``. Example
markers, on the line before a fenced block:

- ``<!-- file: NAME/path -->``: the block is written to ``path`` in scenario NAME's folder;
- ``<!-- runnable: NAME -->``: the block runs in scenario NAME's folder, in manual order (python: as a
  script; console: each ``$ fastgrid ...`` line runs and must print the lines below it, where ``...``
  stands for any text and a line of only ``...`` for any lines). Scenario ``repo`` starts with a copy of
  ``examples/``, scenario ``batch`` with the bundled example's files (``fastgrid.examples.copy_to``, as
  ``fastgrid demo --dir`` leaves them). Blocks starting with ``>>>`` are doctests.
"""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import itertools
import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
import tomllib
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import fastgrid
import optuna
import pytest
import yaml
from fastgrid import Grid, ResultsSpec
from fastgrid.cli import main
from fastgrid.sweepfile import (
    ConfigSection,
    ConstraintsSection,
    ObjectiveSection,
    ResultsSection,
    SweepFile,
    SweepSection,
    ValidateSection,
    WalkForwardSection,
    load_sweep_file,
)
from pydantic import BaseModel

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
MKDOCS = yaml.safe_load((ROOT / "mkdocs.yml").read_text())


def _nav_pages(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, list):
        return [p for item in node for p in _nav_pages(item)]
    if isinstance(node, dict):
        return [p for value in node.values() for p in _nav_pages(value)]
    return []


NAV = _nav_pages(MKDOCS["nav"])
# Every file of the manual, in reading order: the front page, then the site's pages in nav order.
MANUAL: dict[str, str] = {"README.md": (ROOT / "README.md").read_text()}
MANUAL.update({f"docs/{page}": (DOCS / page).read_text() for page in NAV})
README = MANUAL["README.md"]

FENCE = re.compile(
    r"^(?:<!-- (?P<kind>runnable|file): (?P<arg>[^>]*?) -->\n)?```(?P<lang>[\w-]*)\n(?P<body>.*?)^```$",
    re.S | re.M,
)


@dataclass(frozen=True)
class Block:
    page: str
    lang: str
    body: str
    kind: str | None
    arg: str | None


def blocks(lang: str | None = None, *, pages: list[str] | None = None) -> list[Block]:
    """Fenced code blocks in manual order."""
    out = []
    for page, text in MANUAL.items():
        if pages is not None and page not in pages:
            continue
        for m in FENCE.finditer(text):
            if lang is None or m["lang"] == lang:
                out.append(Block(page, m["lang"], m["body"], m["kind"], m["arg"]))
    return out


def section(text: str, heading: str) -> str:
    """The text from ``heading`` (a whole heading line) up to the next heading of the same level."""
    level = heading.split(" ", 1)[0]
    start = text.index(heading + "\n")
    rest = text[start + len(heading) + 1 :]
    nxt = re.search(rf"^{level} ", FENCE.sub("", rest), re.M)
    if nxt is None:
        return rest
    # Find the same heading in the unstripped text (code blocks hold no headings of this level).
    title = FENCE.sub("", rest)[nxt.start() :].splitlines()[0]
    return rest[: rest.index("\n" + title + "\n") + 1]


# --- the site --------------------------------------------------------------------------------------


def test_the_site_builds_strictly_and_renders_every_api_entry(tmp_path: Path) -> None:
    if importlib.util.find_spec("mkdocs") is None:
        pytest.skip("mkdocs is not installed: pip install mkdocs mkdocs-material 'mkdocstrings[python]'")
    site = tmp_path / "site"
    build = ["build", "--strict", "--config-file", str(ROOT / "mkdocs.yml"), "--site-dir", str(site)]
    out = subprocess.run(
        [sys.executable, "-m", "mkdocs", *build],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert out.returncode == 0, out.stdout + out.stderr
    rendered = "".join(p.read_text() for p in (site / "api").rglob("*.html"))
    missing = [name for name in public_names() if f'id="fastgrid.{name}"' not in rendered]
    assert missing == [], "API entries that mkdocstrings did not render"
    assert 'id="fastgrid.Grid.shuffled"' in rendered  # members of the compiled classes, from _core.pyi


def test_every_page_of_docs_is_in_the_nav_and_exists() -> None:
    on_disk = sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md"))
    assert sorted(NAV) == on_disk
    assert MKDOCS.get("strict") is True


def public_names() -> list[str]:
    return sorted(n for n in fastgrid.__all__ if n != "__version__")


def test_every_public_name_has_an_api_reference_entry() -> None:
    directives = [
        d
        for page in NAV
        if page.startswith("api/")
        for d in re.findall(r"^::: (\S+)$", MANUAL[f"docs/{page}"], re.M)
    ]
    assert all(d.startswith("fastgrid.") for d in directives), directives
    named = {d.removeprefix("fastgrid.") for d in directives}
    assert sorted(set(public_names()) - named) == []
    # ... and names only what exists, each once.
    assert sorted(n for n in named if not hasattr(fastgrid, n)) == []
    assert len(directives) == len(named)


# --- links ---------------------------------------------------------------------------------------


def slugify(text: str) -> str:
    """The anchor Python-Markdown's toc extension gives a heading (what MkDocs links to)."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text).replace("`", "")
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def anchors(text: str) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for heading in re.findall(r"^#{1,6} (.+)$", FENCE.sub("", text), re.M):
        slug = slugify(heading)
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}_{n}")
    return out


def links(text: str) -> list[str]:
    prose = re.sub(r"`[^`\n]*`", "", FENCE.sub("", text))
    return re.findall(r"\]\(([^)\s]+)\)", prose)


def test_every_link_of_the_manual_resolves() -> None:
    checked = 0
    for page, text in MANUAL.items():
        here = (ROOT / page).parent
        for target in links(text):
            if re.match(r"^[a-z]+:", target):
                continue  # http(s), mailto: not checked offline
            path, _, anchor = target.partition("#")
            file = (here / path).resolve() if path else ROOT / page
            assert file.exists(), f"{page}: link to {target}: no such file"
            if anchor:
                assert file.suffix == ".md", f"{page}: anchor into a non-page {target}"
                assert anchor in anchors(file.read_text()), f"{page}: {target}: no such heading"
            checked += 1
    assert checked >= 100


def test_the_readme_links_every_page_of_the_manual() -> None:
    targets = {t.partition("#")[0] for t in links(README)}
    assert sorted(f"docs/{page}" for page in NAV if f"docs/{page}" not in targets) == []
    assert {"LICENSE", "CHANGELOG.md"} <= targets


def test_the_readme_stays_a_front_page() -> None:
    assert 100 <= len(README.splitlines()) <= 250


def test_lists_are_written_the_way_python_markdown_reads_them() -> None:
    """GitHub renders a list that follows a paragraph line, or is nested by two spaces; MkDocs'
    Markdown does not (it needs a blank line before a list and four spaces per nesting level)."""
    item = re.compile(r"^(\s*)(?:[-*]|\d+\.) ")
    problems = []
    for page in NAV:
        lines = FENCE.sub(lambda m: "\n" * m[0].count("\n"), MANUAL[f"docs/{page}"]).split("\n")
        for n, (prev, line) in enumerate(itertools.pairwise(lines), start=2):
            found = item.match(line)
            if found is None:
                continue
            if prev.strip() and not item.match(prev) and not prev.startswith(" "):
                problems.append(f"{page}:{n}: a list needs a blank line before it")
            if found[1] and len(found[1]) % 4:
                problems.append(f"{page}:{n}: nest lists by four spaces")
    assert problems == []


# --- quickstart ----------------------------------------------------------------------------------

QUICKSTART = """\
# 1. install and run the demo
python3 -m venv .venv && . .venv/bin/activate && pip install . && fastgrid demo

# 2. run the whole test suite (Rust unit tests + one release build + pytest)
scripts/test
"""


def test_the_quickstart_is_the_two_commands_in_the_readme_and_getting_started() -> None:
    for page, heading in [
        ("README.md", "## Quickstart"),
        ("docs/getting-started.md", "## Install and run the demo"),
    ]:
        bash = [m["body"] for m in FENCE.finditer(section(MANUAL[page], heading)) if m["lang"] == "bash"]
        assert bash == [QUICKSTART], page
    assert os.access(ROOT / "scripts" / "test", os.X_OK)
    assert "demo" in main.commands


# --- sweep-file reference ------------------------------------------------------------------------

SWEEP_FILE_PAGE = MANUAL["docs/sweep-file.md"]
TABLES: dict[str, tuple[type[BaseModel], Any]] = {
    "[sweep]": (SweepSection, None),
    "[objective]": (ObjectiveSection, None),
    "[objective.results]": (ResultsSection, ResultsSpec),
    "[config]": (ConfigSection, None),
    "[constraints]": (ConstraintsSection, None),
    "[validate]": (ValidateSection, None),
    "[walkforward]": (WalkForwardSection, None),
}


def key_tables() -> dict[str, dict[str, str]]:
    """{"[sweep]": {key: default cell}} from the "Every key" tables."""
    text = section(SWEEP_FILE_PAGE, "## Every key")
    tables: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in text.splitlines():
        title = re.match(r"^\*\*`(\[[\w.]+\])`\*\*", line)
        if title:
            current = tables.setdefault(title[1], {})
            continue
        row = re.match(r"^\| `(\w+)` \| (.*?) \|", line)
        if row and current is not None:
            current[row[1]] = row[2]
    return {title: rows for title, rows in tables.items() if rows}


def field_keys(model: type[BaseModel]) -> set[str]:
    return {f.alias or name for name, f in model.model_fields.items()}


def test_the_key_tables_list_every_key_of_every_section_and_nothing_else() -> None:
    tables = key_tables()
    assert set(tables) == set(TABLES)
    for title, (model, _) in TABLES.items():
        assert set(tables[title]) == field_keys(model), title
    assert field_keys(SweepFile) == {
        "sweep",
        "objective",
        "config",
        "constraints",
        "validate",
        "walkforward",
        "parameters",
    }
    assert "**`[parameters]`** (required)" in section(SWEEP_FILE_PAGE, "## Every key")


def literal(cell: str) -> Any:
    """The TOML value of the cell's first code span, or a marker when it is prose."""
    code = re.match(r"^`([^`]+)`", cell)
    if code is None:
        return NotImplemented
    try:
        return tomllib.loads(f"v = {code[1]}")["v"]
    except tomllib.TOMLDecodeError:
        return NotImplemented


def test_the_documented_defaults_are_the_real_ones() -> None:
    checked = 0
    for title, cells in key_tables().items():
        model, runtime = TABLES[title]
        for key, cell in cells.items():
            value = literal(cell)
            if value is NotImplemented:
                continue
            name = next(n for n, f in model.model_fields.items() if (f.alias or n) == key)
            default = model.model_fields[name].default
            if default is None and runtime is not None:
                # The sweep file leaves it unset and the objective's own default applies.
                default = runtime.__dataclass_fields__[name].default
            if isinstance(default, BaseModel):
                default = default.model_dump()["name"]  # sampler = "grid" is SamplerSection(name="grid")
            assert value == default, f"{title} {key}: the docs say {value!r}, the model {default!r}"
            checked += 1
    assert checked >= 20


def test_the_reference_sweep_file_loads_and_its_grid_is_the_documented_size(tmp_path: Path) -> None:
    (body,) = [b.body for b in blocks("toml", pages=["docs/sweep-file.md"]) if "[validate]" in b.body]
    path = tmp_path / "reference.toml"
    path.write_text(body)
    spec = load_sweep_file(path)
    assert spec.sweep.name == "sma"
    grid = Grid(spec.parameters, constraints=spec.sweep.where)
    assert len(grid) == 81  # "the 81 admissible points of the grid in the reference example"
    assert "81 admissible points" in SWEEP_FILE_PAGE
    example = load_sweep_file(ROOT / "examples" / "sma" / "sma_sweep.toml")
    assert example.parameters == spec.parameters


def test_every_sweep_file_shaped_toml_block_is_valid() -> None:
    found = 0
    for block in blocks("toml"):
        data = tomllib.loads(block.body)
        if "objective" in data and "parameters" in data:
            SweepFile.model_validate(data)
            found += 1
    assert found >= 7


@pytest.mark.parametrize(("file", "name"), [("grid.toml", "sma-grid"), ("sma_batch.toml", "sma-batch")])
def test_the_bundled_example_shown_is_the_shipped_file(file: str, name: str) -> None:
    shipped = tomllib.loads((Path(fastgrid.__file__).parent / "examples" / file).read_text())
    shown = [tomllib.loads(b.body) for b in blocks("toml") if f'name = "{name}"' in b.body]
    assert shown == [shipped]


def test_the_readme_example_is_the_tested_walkthrough_sweep() -> None:
    shown = [tomllib.loads(b.body) for b in blocks("toml", pages=["README.md"])]
    tested = [tomllib.loads(b.body) for b in blocks("toml") if b.arg == "walkthrough/breakout.toml"]
    assert len(tested) == 1 and shown == tested
    (readme_run,) = [b.body for b in blocks("console", pages=["README.md"])]
    (walk_run,) = [
        b.body
        for b in blocks("console", pages=["docs/walkthrough.md"])
        if b.body.startswith("$ fastgrid run breakout.toml\n")
    ]
    best = walk_run.splitlines()[1:4]  # the best trial, its params and metrics
    assert len(best) == 3 and "\n".join(best) in readme_run


# --- CLI reference -------------------------------------------------------------------------------

CLI_PAGE = MANUAL["docs/cli.md"]


def cli_section(name: str) -> str:
    for heading in re.findall(r"^## `fastgrid [^`]+`.*$", CLI_PAGE, re.M):
        if re.match(rf"## `fastgrid {name}[ `]", heading):
            return section(CLI_PAGE, heading)
    raise AssertionError(f"no CLI reference section for fastgrid {name}")


@pytest.mark.parametrize("name", sorted(main.commands))
def test_the_cli_reference_names_every_option_of_every_command(name: str) -> None:
    text = cli_section(name)
    command = main.commands[name]
    for param in command.params:
        if isinstance(param, click.Option) and "--help" not in param.opts:
            longest = max(param.opts, key=len)
            assert longest in text, f"fastgrid {name}: {longest} is not documented"
            for secondary in param.secondary_opts:
                assert secondary in text, f"fastgrid {name}: {secondary} is not documented"


def test_the_cli_reference_names_no_option_that_does_not_exist() -> None:
    for name, command in main.commands.items():
        real = {o for p in command.params for o in (*p.opts, *getattr(p, "secondary_opts", []))}
        # "there is no `--fresh`" names an option by saying the command lacks it.
        text = re.sub(r"no `--[\w-]+`", "", cli_section(name))
        documented = set(re.findall(r"(?<![\w-])(--[a-z][\w-]*)", text))
        assert documented <= real | {"--help", "--version"}, (name, sorted(documented - real))


# --- names and paths -----------------------------------------------------------------------------

# Repository paths the manual mentions (in prose or in commands) must exist.
REPO_PATH = re.compile(
    r"(?<![\w/.-])((?:examples|benches|scripts|src|tests|docs|python/fastgrid|\.ci)/[\w./*-]*)"
)


def test_every_repository_path_the_manual_names_exists() -> None:
    checked = set()
    for page, text in MANUAL.items():
        for path in REPO_PATH.findall(text):
            path = path.rstrip(".")
            assert any(ROOT.glob(path)) if "*" in path else (ROOT / path).exists(), f"{page}: no {path}"
            checked.add(path)
    assert {
        "examples/sma/sma_sweep.toml",
        "benches/test_bench_grid.py",
        "python/fastgrid/_core.pyi",
    } <= checked


def test_every_cargo_bench_the_manual_names_exists() -> None:
    cargo = tomllib.loads((ROOT / "Cargo.toml").read_text())
    benches = {b["name"] for b in cargo["bench"]}
    named = {n for text in MANUAL.values() for n in re.findall(r"cargo bench --bench (\w+)", text)}
    assert named and named <= benches


# Names in the new package layout (issue 10): checked once that layout has landed.
NEW_LAYOUT = ("fastgrid.exceptions", "fastgrid.storages", "fastgrid.reporting")
# Dotted words that are not Python names: files, study attributes, the key encoding's prefix.
NOT_PYTHON = {
    "fastgrid.db",
    "fastgrid.metrics",
    "fastgrid.mode",
    "fastgrid.validation",
    "fastgrid.trial_key.v1",
}


def python_names() -> set[str]:
    found = set()
    for text in MANUAL.values():
        for name in re.findall(r"(?<![\w./-])(fastgrid(?:\.\w+)+(?::\w+)?)", text):
            if name not in NOT_PYTHON and not name.startswith("fastgrid.db"):
                found.add(name)
    return found


def resolves(name: str) -> bool:
    module_part, _, attr = name.partition(":")
    parts = module_part.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for part in [*parts[i:], *([attr] if attr else [])]:
            if not hasattr(obj, part):
                return False
            obj = getattr(obj, part)
        return True
    return False


def test_every_python_name_the_manual_mentions_exists() -> None:
    names = {n for n in python_names() if not n.startswith(NEW_LAYOUT)}
    assert {"fastgrid.Sweep", "fastgrid.examples.sma:run"} <= names
    assert sorted(n for n in names if not resolves(n)) == []


@pytest.mark.skipif(
    importlib.util.find_spec("fastgrid.runner") is None,
    reason="the package layout of issue 10 (fastgrid.runner, .storages, .reporting, ...) has not landed",
)
def test_the_new_layout_names_the_manual_mentions_exist() -> None:
    names = {n for n in python_names() if n.startswith(NEW_LAYOUT)}
    assert names
    assert sorted(n for n in names if not resolves(n)) == []


# --- runnable examples ---------------------------------------------------------------------------


def output_pattern(expected: list[str]) -> re.Pattern[str]:
    """Expected lines as one regex: ``...`` in a line is any text, a line of ``...`` any lines."""
    parts = []
    for line in expected:
        if line.strip() == "...":
            parts.append(r"(?:[^\n]*\n)*?")
        else:
            parts.append(".*".join(re.escape(p) for p in line.split("...")) + r"\n")
    return re.compile("".join(parts))


def run_console(body: str, cwd: Path, env: dict[str, str], where: str) -> None:
    sessions: list[tuple[str, list[str]]] = []
    for line in body.rstrip("\n").splitlines():
        if line.startswith("$ "):
            sessions.append((line[2:], []))
        else:
            assert sessions, f"{where}: output before the first command"
            sessions[-1][1].append(line)
    assert sessions
    for command, expected in sessions:
        argv = shlex.split(command, comments=True)
        assert argv[0] == "fastgrid", f"{where}: only fastgrid commands run here: {command}"
        out = subprocess.run(
            [sys.executable, "-m", "fastgrid", *argv[1:]],
            cwd=cwd,
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
        assert out.returncode == 0, f"{where}: $ {command}\n{out.stderr}"
        assert output_pattern(expected).fullmatch(out.stdout), f"{where}: $ {command} printed\n{out.stdout}"


def scenarios() -> list[str]:
    names = [b.arg for b in blocks() if b.kind == "runnable"]
    return list(dict.fromkeys(n for n in names if n))


def test_the_examples_form_the_documented_scenarios() -> None:
    assert set(scenarios()) == {"repo", "walkthrough", "batch"}
    for block in blocks():
        if block.kind == "file":
            assert block.arg is not None and block.arg.split("/", 1)[0] in scenarios(), block
        if block.kind == "runnable":
            assert block.lang in ("python", "console"), block


@pytest.mark.parametrize("scenario", ["repo", "walkthrough", "batch"])
def test_the_runnable_examples_run_in_order(scenario: str, tmp_path: Path) -> None:
    folder = tmp_path / scenario
    folder.mkdir()
    if scenario == "repo":
        shutil.copytree(ROOT / "examples", folder / "examples")
    if scenario == "batch":
        fastgrid.examples.copy_to(folder)
    # Commands such as `python bt.py` must find this interpreter, the one fastgrid is installed in.
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])}
    ran = 0
    for i, block in enumerate(blocks()):
        where = f"{block.page} block {i}"
        if block.kind == "file" and block.arg and block.arg.startswith(scenario + "/"):
            (folder / block.arg.split("/", 1)[1]).write_text(block.body)
        elif block.kind == "runnable" and block.arg == scenario:
            if block.lang == "python":
                script = folder / f"_block_{i}.py"
                script.write_text(block.body)
                out = subprocess.run(
                    [sys.executable, str(script)],
                    cwd=folder,
                    capture_output=True,
                    text=True,
                    env=env,
                    timeout=600,
                )
                assert out.returncode == 0, f"{where}\n{out.stderr}"
            else:
                run_console(block.body, folder, env, where)
            ran += 1
    assert ran >= 2
    if scenario == "repo":
        # The exported copy is a study any Optuna tool opens, with every trial of the sweep.
        source = optuna.load_study(study_name="sma", storage=fastgrid.open_storage(folder / "fastgrid.db"))
        copy = optuna.load_study(study_name="sma", storage=f"sqlite:///{folder / 'export.db'}")
        assert len(copy.trials) == len(source.trials) >= 81  # every point of the grid ran
    elif scenario == "batch":
        # Every point exported, once; the Parquet file is the same table.
        assert len((folder / "points.csv").read_text().splitlines()) == 138_304 + 1
        assert (folder / "heatmap.png").stat().st_size > 0 and (folder / "points.parquet").exists()
    else:
        with sqlite3.connect(folder / "fastgrid.db") as db:
            assert db.execute("SELECT value FROM fastgrid_meta WHERE key = 'schema'").fetchone() == ("1",)
        assert (
            (folder / "runs" / "breakout-cmd" / "trial_4" / "stdout.log")
            .read_text()
            .startswith("backtesting")
        )


def test_the_doctest_examples_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    parser = doctest.DocTestParser()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    examples = [b for b in blocks("python") if b.body.lstrip().startswith(">>>")]
    assert len(examples) >= 6
    for i, block in enumerate(examples):
        test = parser.get_doctest(block.body, {}, f"{block.page} example {i}", block.page, 0)
        runner.run(test)
    assert runner.failures == 0
