"""ResultIndex.wait_for / wait_changed: wake on change, timeout, stop event, Ctrl-C."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest
from _results_helpers import atomic_write, write
from fastgrid import ResultIndex


@pytest.fixture(params=["native", "poll"])
def idx(request: pytest.FixtureRequest, tmp_path: Path):
    options = {"poll_interval": 0.05} if request.param == "poll" else {}
    with ResultIndex(tmp_path, **options) as index:
        yield index


def later(seconds: float, action) -> threading.Timer:
    timer = threading.Timer(seconds, action)
    timer.start()
    return timer


def test_returns_an_existing_result_at_once(idx: ResultIndex) -> None:
    path = write(idx.directory / "A_1h_1.json")
    idx.record(path)
    assert idx.wait_for(symbol="A", timeframe="1h", timeout=0) == path


def test_wakes_when_a_newer_result_lands(idx: ResultIndex) -> None:
    first = write(idx.directory / "A_1h_1.json")
    idx.record(first)
    timer = later(0.1, lambda: atomic_write(idx.directory / "A_1h_2.json"))
    got = idx.wait_for(symbol="A", timeframe="1h", newer_than=first, timeout=10)
    timer.join()
    assert got == idx.directory / "A_1h_2.json"


def test_newer_than_a_stamp_or_a_deleted_path(idx: ResultIndex) -> None:
    idx.record(write(idx.directory / "A_1h_5.json"))
    assert (
        idx.wait_for(symbol="A", timeframe="1h", newer_than="4", timeout=0) == idx.directory / "A_1h_5.json"
    )
    gone = idx.directory / "A_1h_9.json"
    timer = later(0.1, lambda: write(idx.directory / "A_1h_10.json"))
    # "10" < "9" as text, exactly as sorted(glob) sees it: the new file is not newer.
    with pytest.raises(TimeoutError, match=r"no result for symbol=\"A\", timeframe=\"1h\" newer than"):
        idx.wait_for(symbol="A", timeframe="1h", newer_than=gone, timeout=0.5)
    timer.join()


def test_times_out(idx: ResultIndex) -> None:
    with pytest.raises(TimeoutError, match=r"within 0\.2s"):
        idx.wait_for(symbol="A", timeframe="1h", timeout=0.2)


def test_stop_event_ends_the_wait(idx: ResultIndex) -> None:
    stop = threading.Event()
    timer = later(0.1, stop.set)
    assert idx.wait_for(symbol="A", timeframe="1h", timeout=None, stop_event=stop) is None
    timer.join()
    assert idx.wait_changed(idx.generation, timeout=None, stop_event=stop) == idx.generation


def test_ctrl_c_interrupts_the_wait(idx: ResultIndex) -> None:
    timer = later(0.2, lambda: os.kill(os.getpid(), signal.SIGINT))
    with pytest.raises(KeyboardInterrupt):
        idx.wait_for(symbol="A", timeframe="1h", timeout=30)
    timer.join()


def test_other_threads_run_while_waiting(idx: ResultIndex) -> None:
    counted: list[int] = []
    worker = threading.Thread(target=lambda: counted.extend(range(200_000)))
    timer = later(0.05, worker.start)
    with pytest.raises(TimeoutError):
        idx.wait_for(symbol="A", timeframe="1h", timeout=0.5)
    timer.join()
    worker.join()
    assert len(counted) == 200_000


def test_wait_changed_returns_the_new_generation(idx: ResultIndex) -> None:
    since = idx.generation
    assert idx.wait_changed(since, timeout=0.05) == since
    timer = later(0.05, lambda: write(idx.directory / "A_1h_1.json"))
    assert idx.wait_changed(since, timeout=10) > since
    timer.join()


def test_bad_arguments(idx: ResultIndex) -> None:
    with pytest.raises(ValueError, match="timeout must be a finite number"):
        idx.wait_for(symbol="A", timeframe="1h", timeout=-1)
    with pytest.raises(TypeError, match="newer_than must be"):
        idx.wait_for(symbol="A", timeframe="1h", newer_than=3.5, timeout=0)
    with pytest.raises(ValueError, match="does not match pattern"):
        idx.wait_for(symbol="A", timeframe="1h", newer_than=idx.directory / "x.txt", timeout=0)
    with pytest.raises(TypeError, match="missing key field"):
        idx.wait_for(symbol="A", timeout=0)
