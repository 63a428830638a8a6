"""The release wheel installs into a fresh virtualenv and runs the demo (what a user gets from pip).

Builds with ``maturin build --release`` into the project's own ``target/`` (after the test
script's ``maturin develop --release`` that is a cache hit: a re-link and a zip, seconds), installs
the wheel with ``--no-deps --no-index`` into a new venv that sees the current environment's
site-packages (so it stays offline), and runs ``fastgrid demo`` from outside the source tree.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.wheel


def _maturin() -> list[str]:
    exe = shutil.which("maturin", path=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])
    if exe is None:
        pytest.skip("maturin is not installed (scripts/test installs it)")
    return [exe]


def test_wheel_installs_in_a_fresh_venv_and_runs_the_demo(tmp_path: Path) -> None:
    started = time.monotonic()
    build = subprocess.run(
        [*_maturin(), "build", "--release", "--out", str(tmp_path / "dist")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    print(f"maturin build --release: {time.monotonic() - started:.1f}s")
    wheels = list((tmp_path / "dist").glob("fastgrid-*.whl"))
    assert len(wheels) == 1

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    # The dependencies come from this environment: its site-packages directories go on the new
    # venv's path after its own, so the wheel's fastgrid wins over any other copy.
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    outer = [p for p in sys.path if p.endswith(("site-packages", "dist-packages")) and Path(p).is_dir()]
    Path(purelib, "_outer_env.pth").write_text("\n".join(outer) + "\n")
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheels[0])],
        check=True,
        capture_output=True,
    )
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    smoke = subprocess.run(
        [
            str(python),
            "-c",
            "import fastgrid, fastgrid._core; print(fastgrid.__file__, fastgrid.__version__)",
        ],
        cwd=work,
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert smoke.stdout.startswith(purelib), smoke.stdout
    demo = subprocess.run(
        [str(venv / "bin" / "fastgrid"), "demo", "--dir", str(work / "demo"), "--no-progress"],
        cwd=work,
        capture_output=True,
        text=True,
        env=env,
    )
    assert demo.returncode == 0, demo.stderr[-3000:]
    assert "348 complete" in demo.stdout
    assert "best trial: #" in demo.stdout
    assert (work / "demo" / "heatmap.png").read_bytes()[:4] == b"\x89PNG"
    assert (work / "demo" / "best_config.json").exists()
