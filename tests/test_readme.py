"""The README is a manual that stays true: links resolve, the sweep-file reference lists every key
with its real default, the CLI reference names every option, and the examples marked
``<!-- runnable ... -->`` run."""

from __future__ import annotations

import doctest
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import click
import optuna
import pytest
from fastgrid import Grid
from fastgrid.cli import main
from fastgrid.objective import ResultsSpec
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
README = (ROOT / "README.md").read_text()
FENCE = re.compile(r"(?P<mark><!-- runnable[^>]*-->\n)?```(?P<lang>\w*)\n(?P<body>.*?)```", re.S)


def blocks(lang: str, *, runnable: bool | None = None) -> list[str]:
    """Code blocks in README order, except that runnable ones marked "after ..." come last."""
    found = [
        m
        for m in FENCE.finditer(README)
        if m["lang"] == lang and (runnable is None or bool(m["mark"]) == runnable)
    ]
    found.sort(key=lambda m: "after " in (m["mark"] or ""))
    return [m["body"] for m in found]


def section(heading: str) -> str:
    """The text from ``heading`` (a whole heading line) up to the next heading of the same level."""
    level = heading.split(" ", 1)[0]
    start = README.index(heading + "\n")
    rest = README[start + len(heading) + 1 :]
    nxt = re.search(rf"^{level} ", rest, re.M)
    return rest[: nxt.start()] if nxt else rest


def slug(heading: str) -> str:
    # GitHub's anchors: lower case, punctuation dropped except '-' and '_', spaces to '-'.
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def test_every_internal_link_names_a_heading() -> None:
    outside_code = FENCE.sub("", README)
    headings = re.findall(r"^#{1,6} (.+)$", outside_code, re.M)
    anchors = {slug(h) for h in headings}
    links = set(re.findall(r"\]\(#([^)]+)\)", outside_code))
    assert links, "the README links its own sections"
    assert sorted(links - anchors) == []


def test_the_quickstart_is_the_two_commands() -> None:
    quick = section("## Quickstart")
    assert "pip install . && fastgrid demo" in quick
    assert "\nscripts/test\n" in quick


# --- sweep-file reference ------------------------------------------------------------------------

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
    text = section("### Every key")
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
    assert "**`[parameters]`** (required)" in section("### Every key")


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
                default = default.name  # sampler = "grid" is SamplerSection(name="grid")
            assert value == default, f"{title} {key}: README says {value!r}, the model {default!r}"
            checked += 1
    assert checked >= 20


def test_the_reference_sweep_file_loads_and_its_grid_is_the_documented_size(tmp_path: Path) -> None:
    (body,) = [b for b in blocks("toml") if "[objective]" in b and "[validate]" in b]
    path = tmp_path / "reference.toml"
    path.write_text(body)
    spec = load_sweep_file(path)
    assert spec.sweep.name == "sma"
    grid = Grid(spec.parameters, constraints=spec.sweep.where)
    assert len(grid) == 81  # "the 81 admissible points of the grid in the reference example"
    example = load_sweep_file(ROOT / "examples" / "sma" / "sma_sweep.toml")
    assert example.parameters == spec.parameters


def test_every_sweep_file_shaped_toml_block_is_valid(tmp_path: Path) -> None:
    found = 0
    for body in blocks("toml"):
        data = tomllib.loads(body)
        if "objective" in data and "parameters" in data:
            SweepFile.model_validate(data)
            found += 1
    assert found >= 1


# --- CLI reference -------------------------------------------------------------------------------


def cli_section(name: str) -> str:
    for heading in re.findall(r"^### `fastgrid [^`]+`.*$", README, re.M):
        if re.match(rf"### `fastgrid {name}[ `]", heading):
            return section(heading)
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


# --- runnable examples ---------------------------------------------------------------------------


def test_the_runnable_python_examples_run_in_order(tmp_path: Path) -> None:
    code = blocks("python", runnable=True)
    assert len(code) >= 2
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    script = tmp_path / "readme_examples.py"
    script.write_text("\n".join(code) + "\nprint('RESULT', result.best['params'], len(result.rows))\n")
    out = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr
    assert "RESULT {'signal.fast':" in out.stdout
    assert (tmp_path / "export.db").exists()
    # The exported copy is a study any Optuna tool opens, with every trial of the sweep.
    copy = optuna.load_study(study_name="sma", storage=f"sqlite:///{tmp_path / 'export.db'}")
    assert len(copy.trials) == int(out.stdout.split()[-1])


def test_the_runnable_console_examples_print_what_the_readme_shows() -> None:
    sessions = blocks("console", runnable=True)
    assert sessions
    for session in sessions:
        command, *expected = session.strip().splitlines()
        assert command.startswith("$ fastgrid ")
        argv = command[2:].split()[1:]
        out = subprocess.run(
            [sys.executable, "-m", "fastgrid", *argv], cwd=ROOT, capture_output=True, text=True
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout.splitlines() == expected


def test_the_doctest_examples_pass() -> None:
    parser = doctest.DocTestParser()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    examples = [b for b in blocks("python") if b.lstrip().startswith(">>>")]
    assert examples
    for i, body in enumerate(examples):
        test = parser.get_doctest(body, {}, f"README example {i}", "README.md", 0)
        runner.run(test)
    assert runner.failures == 0
