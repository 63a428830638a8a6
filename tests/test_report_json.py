"""``fastgrid report --json`` is strict JSON (RFC 8259): a NaN or infinite metric is ``null``.

``json.dumps`` wrote the bare words ``NaN`` and ``Infinity``, which jq, JavaScript and most JSON
parsers reject (jq 1.6 read ``Infinity`` as a huge number)."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastgrid.cli import main


def _strict(text: str) -> Any:
    def refuse(word: str) -> None:
        raise ValueError(f"not JSON: {word}")

    return json.loads(text, parse_constant=refuse)


SWEEP = textwrap.dedent(
    """
    [sweep]
    name = "j"
    mode = "{mode}"
    direction = "maximize"
    metric = "score"

    [objective]
    {key} = "jsonobj:{fn}"

    [parameters]
    x = {{ type = "int", low = 0, high = 3 }}
    """
)

OBJECTIVE = textwrap.dedent(
    """
    import math
    import numpy as np

    def per_point(config):
        x = config["x"]
        return {"score": float(x), "edge": [math.nan, math.inf, -math.inf, 1.5][x]}

    def batch(cols, config):
        x = cols["x"]
        return {"score": x * 1.0, "edge": np.array([math.nan, math.inf, -math.inf, 1.5])[x]}
    """
)


@pytest.mark.parametrize(
    ("mode", "key", "fn"),
    [("trial", "callable", "per_point"), ("batch", "batch", "batch"), ("batch", "callable", "per_point")],
)
def test_report_json_is_strict_with_non_finite_metrics(tmp_path: Path, mode: str, key: str, fn: str) -> None:
    (tmp_path / "jsonobj.py").write_text(OBJECTIVE)
    (tmp_path / "j.toml").write_text(SWEEP.format(mode=mode, key=key, fn=fn))
    sys.modules.pop("jsonobj", None)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        run = CliRunner().invoke(main, ["run", "j.toml", "--no-progress"], catch_exceptions=False)
        assert run.exit_code == 0, run.output
        done = CliRunner().invoke(main, ["report", "j.toml", "--json", "-"], catch_exceptions=False)
    finally:
        os.chdir(cwd)
        sys.modules.pop("jsonobj", None)
    assert done.exit_code == 0, done.output
    data = _strict(done.stdout)  # the human report goes to standard error with --json -
    rows = data["trials"] if "trials" in data else data["top"]
    edges = {row["params"]["x"]: row["metrics"]["edge"] for row in rows}
    assert edges == {0: None, 1: None, 2: None, 3: 1.5}
