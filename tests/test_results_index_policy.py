"""The Python layer of the results index, tested against a mock of the compiled class."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import fastgrid
import pytest
from click.testing import CliRunner
from fastgrid import _core
from fastgrid.cli import main
from fastgrid.cli import results as results_cli
from fastgrid.results import (
    DEFAULT_POLL_INTERVAL,
    FORCE_POLLING_ENV,
    forced_poll_interval,
    iter_updates,
)


class FakeIndex:
    """Stands in for the compiled ResultIndex: a scripted sequence of snapshots."""

    fields = ("symbol", "timeframe")
    directory = Path("/results")

    def __init__(self, snapshots: list[dict[tuple[str, ...], Path]], **options: object) -> None:
        self.options = options
        self._snapshots = snapshots
        self.generation = 0
        self.waits: list[tuple[int, float | None]] = []
        self.closed = False

    def snapshot(self) -> dict[tuple[str, ...], Path]:
        return dict(self._snapshots[min(self.generation, len(self._snapshots) - 1)])

    def history(self, **fields: str) -> list[Path]:
        key = tuple(fields[f] for f in self.fields)
        return [self.snapshot()[key]]

    def wait_changed(
        self, since: int, *, timeout: float | None, stop_event: threading.Event | None = None
    ) -> int:
        self.waits.append((since, timeout))
        if self.generation + 1 < len(self._snapshots):
            self.generation += 1
        elif stop_event is not None:
            stop_event.set()
        else:
            raise KeyboardInterrupt
        return self.generation

    def __enter__(self) -> FakeIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.closed = True


Snapshot = dict[tuple[str, ...], Path]
A1: Snapshot = {("A", "1h"): Path("/results/A_1h_1.json")}
A2: Snapshot = {("A", "1h"): Path("/results/A_1h_2.json")}
A2B1: Snapshot = {**A2, ("B", "4h"): Path("/results/B_4h_1.json")}


@pytest.mark.parametrize(
    ("explicit", "env", "expected"),
    [
        (None, {}, None),
        (None, {FORCE_POLLING_ENV: "1"}, DEFAULT_POLL_INTERVAL),
        (None, {FORCE_POLLING_ENV: " TRUE "}, DEFAULT_POLL_INTERVAL),
        (None, {FORCE_POLLING_ENV: "off"}, None),
        (None, {FORCE_POLLING_ENV: ""}, None),
        (2.0, {FORCE_POLLING_ENV: "1"}, 2.0),
        (2.0, {}, 2.0),
    ],
)
def test_forced_poll_interval(explicit: float | None, env: dict[str, str], expected: float | None) -> None:
    assert forced_poll_interval(explicit, environ=env) == expected


def test_forced_poll_interval_names_a_bad_value() -> None:
    with pytest.raises(ValueError, match=r"FASTGRID_FORCE_POLLING='sometimes': expected one of"):
        forced_poll_interval(None, environ={FORCE_POLLING_ENV: "sometimes"})


def test_public_class_is_the_compiled_one_plus_policy() -> None:
    assert issubclass(fastgrid.ResultIndex, _core.ResultIndex)
    assert fastgrid.ResultIndex.latest is _core.ResultIndex.latest
    assert "ResultIndex" in fastgrid.__all__


def test_iter_updates_reports_new_newest_results_in_key_order() -> None:
    fake = FakeIndex([A1, A1, A2B1])
    stop = threading.Event()
    assert list(iter_updates(fake, stop_event=stop)) == [
        (("A", "1h"), Path("/results/A_1h_2.json")),
        (("B", "4h"), Path("/results/B_4h_1.json")),
    ]
    assert fake.waits == [(0, None), (1, None), (2, None)]


def test_iter_updates_ends_after_an_idle_timeout() -> None:
    class Idle(FakeIndex):
        def wait_changed(self, since: int, *, timeout: float | None, stop_event: object = None) -> int:
            self.waits.append((since, timeout))
            return since

    fake = Idle([A1])
    assert list(iter_updates(fake, idle_timeout=0.5)) == []
    assert fake.waits == [(0, 0.5)]


@pytest.fixture
def fake_cls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[FakeIndex]]:
    made: list[FakeIndex] = []

    def factory(directory: Path, **options: object) -> FakeIndex:
        made.append(FakeIndex([A2B1, {**A2B1, ("A", "1h"): Path("/results/A_1h_3.json")}], **options))
        made[-1].options["directory"] = directory
        return made[-1]

    monkeypatch.setattr(results_cli, "ResultIndex", factory)
    yield made


def test_cli_table(fake_cls: list[FakeIndex]) -> None:
    out = CliRunner().invoke(main, ["results", "/results", "--pattern", "{symbol}_{timeframe}_{stamp}.json"])
    assert out.exit_code == 0, out.output
    assert "A_1h_2.json" in out.output
    assert "B_4h_1.json" in out.output
    assert "symbol" in out.output
    assert fake_cls[0].options["watch"] is False
    assert fake_cls[0].closed


def test_cli_json(fake_cls: list[FakeIndex]) -> None:
    out = CliRunner().invoke(main, ["results", "/results", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output) == [
        {"symbol": "A", "timeframe": "1h", "path": "/results/A_1h_2.json"},
        {"symbol": "B", "timeframe": "4h", "path": "/results/B_4h_1.json"},
    ]


def test_cli_watch_prints_results_as_they_land_until_ctrl_c(fake_cls: list[FakeIndex]) -> None:
    out = CliRunner().invoke(main, ["results", "/results", "--watch", "--json", "--poll-interval", "0.5"])
    assert out.exit_code == 0, out.output
    assert [json.loads(line) for line in out.output.splitlines()] == [
        {"symbol": "A", "timeframe": "1h", "path": "/results/A_1h_2.json"},
        {"symbol": "B", "timeframe": "4h", "path": "/results/B_4h_1.json"},
        {"symbol": "A", "timeframe": "1h", "path": "/results/A_1h_3.json"},
    ]
    assert fake_cls[0].options["watch"] is True
    assert fake_cls[0].options["poll_interval"] == 0.5


def test_cli_on_a_real_directory(tmp_path: Path) -> None:
    for name in ["A_1h_1.json", "A_1h_2.json", "B_4h_1.json"]:
        (tmp_path / name).write_text("{}")
    out = CliRunner().invoke(main, ["results", str(tmp_path), "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output) == [
        {"symbol": "A", "timeframe": "1h", "path": str(tmp_path / "A_1h_2.json")},
        {"symbol": "B", "timeframe": "4h", "path": str(tmp_path / "B_4h_1.json")},
    ]


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    out = CliRunner().invoke(main, ["results", str(tmp_path / "missing")])
    assert out.exit_code == 2
    assert "No such file or directory" in out.output
    assert "Traceback" not in out.output
    out = CliRunner().invoke(main, ["results", str(tmp_path), "--pattern", "{a}_{a}.json", "--order-by", "a"])
    assert out.exit_code == 2
    assert "field {a} appears more than once" in out.output
