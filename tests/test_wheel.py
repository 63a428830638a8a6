"""The release wheel of the running interpreter, built and tested as a user gets it (issue 14).

``scripts/wheels`` (its default: the running interpreter only) builds the manylinux2014 wheel
with zig, checks it with ``auditwheel show``, installs it into a fresh virtualenv with no Rust
toolchain on PATH and runs ``scripts/smoke_test.py`` there. ``scripts/wheels --all`` does the
same for every CPython >= 3.11 on the machine and the sdist; it takes minutes per interpreter,
so the suite runs only this one.
"""

from __future__ import annotations

import importlib.metadata
import json
import platform
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.wheel


@pytest.mark.skipif(
    sys.platform != "linux", reason="scripts/wheels builds manylinux wheels (CI builds the rest)"
)
@pytest.mark.timeout(1800)  # a cold cargo cache compiles every dependency for the zig target once
def test_release_wheel_of_this_interpreter_installs_without_rust_and_passes_the_smoke_test(
    tmp_path: Path,
) -> None:
    report = tmp_path / "report.json"
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "wheels"),
            "--out",
            str(tmp_path / "dist"),
            "--report",
            str(report),
        ],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    print(run.stdout)
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]

    [wheel] = json.loads(report.read_text())
    machine = platform.machine()
    py = f"cp{sys.version_info.major}{sys.version_info.minor}"
    abi = py + ("t" if sysconfig.get_config_var("Py_GIL_DISABLED") else "")
    version = importlib.metadata.version("fastgrid")
    assert Path(wheel["file"]).name == (
        f"fastgrid-{version}-{py}-{abi}-manylinux2014_{machine}.manylinux_2_17_{machine}.whl"
    )
    assert wheel["policy"] == f"manylinux_2_17_{machine}"
    assert wheel["size"] == Path(wheel["file"]).stat().st_size > 0
    assert len(wheel["tested_with"]) == 1
    assert platform.python_version() in wheel["tested_with"][0]
    for check in ("no cargo, rustc or rustup on PATH", "Grid:", "ResultIndex:", "fastgrid demo:"):
        assert f"ok: {check}" in run.stdout, check


def test_smoke_test_refuses_a_checkout_that_is_not_an_installed_package(tmp_path: Path) -> None:
    """The smoke test's first check: a fastgrid imported from anywhere but site-packages (here the
    checkout's python/, which the development install puts on sys.path) fails it."""
    import fastgrid

    if Path(fastgrid.__file__).resolve().parent.parent != (ROOT / "python").resolve():
        pytest.skip("fastgrid is installed from a wheel here, not from the checkout")
    run = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "smoke_test.py"), "--work", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 1
    assert run.stdout.startswith("FAILED: fastgrid imported from"), run.stdout
