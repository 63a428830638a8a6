"""docs/stats.md names every public function of fastgrid.stats (its examples run in tests/test_docs.py)."""

from __future__ import annotations

from pathlib import Path

from fastgrid import stats

PAGE = Path(__file__).resolve().parents[2] / "docs" / "stats.md"


def test_stats_page_names_every_public_function() -> None:
    text = PAGE.read_text()
    for name in stats.__all__:
        if name[0].islower():
            assert f"{name}(" in text, name
