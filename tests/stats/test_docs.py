"""The examples in docs/stats.md run and print what the page says."""

from __future__ import annotations

import doctest
from pathlib import Path

import numpy as np
from fastgrid import stats

PAGE = Path(__file__).resolve().parents[2] / "docs" / "stats.md"


def test_stats_page_examples() -> None:
    result = doctest.testfile(
        str(PAGE),
        module_relative=False,
        globs={"np": np, "stats": stats},
        optionflags=doctest.ELLIPSIS,
        verbose=False,
    )
    assert result.attempted >= 2
    assert result.failed == 0


def test_stats_page_names_every_public_function() -> None:
    text = PAGE.read_text()
    for name in stats.__all__:
        if name[0].islower():
            assert f"{name}(" in text, name
