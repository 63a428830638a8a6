"""Behaviour of the compiled ResultIndex on real temporary directories, for both backends."""

from __future__ import annotations

import multiprocessing
import os
import random
import shutil
import threading
from pathlib import Path

import pytest
from _results_helpers import State, atomic_write, settle, settle_state, state, write
from fastgrid import ResultIndex

BACKENDS = {"native": {}, "poll": {"poll_interval": 0.05}}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest) -> dict[str, float]:
    return BACKENDS[request.param]


def open_index(directory: Path, backend: dict[str, float], **options: object) -> ResultIndex:
    return ResultIndex(directory, **backend, **options)


def test_initial_scan_builds_the_exact_state(tmp_path: Path) -> None:
    for name in [
        "BTCUSD_1h_20261129_171502.json",
        "BTCUSD_1h_20261129_171459.json",
        "BTCUSD_4h_20261128_000000.json",
        "ETH_1h_20261101_000000.json",
        ".BTCUSD_1h_20261130_000000.json",
        "BTCUSD_1h_20261130_000000.json.tmp",
        "BTCUSD_1h_20261130_000001.json.part",
        "BTCUSD_1h_20261130_000002.json~",
        "README.md",
    ]:
        write(tmp_path / name)
    (tmp_path / "ETH_4h_1.json").mkdir()
    with ResultIndex(tmp_path, watch=False) as idx:
        assert state(idx) == {
            ("BTCUSD", "1h"): ["BTCUSD_1h_20261129_171502.json", "BTCUSD_1h_20261129_171459.json"],
            ("BTCUSD", "4h"): ["BTCUSD_4h_20261128_000000.json"],
            ("ETH", "1h"): ["ETH_1h_20261101_000000.json"],
        }
        assert idx.latest(symbol="BTCUSD", timeframe="1h") == tmp_path / "BTCUSD_1h_20261129_171502.json"
        assert idx.latest(symbol="BTCUSD", timeframe="1d") is None
        assert len(idx) == 3
        assert idx.file_count == 4
        assert list(idx) == idx.keys() == [("BTCUSD", "1h"), ("BTCUSD", "4h"), ("ETH", "1h")]
        assert idx.snapshot() == {
            ("BTCUSD", "1h"): tmp_path / "BTCUSD_1h_20261129_171502.json",
            ("BTCUSD", "4h"): tmp_path / "BTCUSD_4h_20261128_000000.json",
            ("ETH", "1h"): tmp_path / "ETH_1h_20261101_000000.json",
        }
        assert idx.fields == ("symbol", "timeframe")
        assert idx.backend == "none"


def test_membership_by_key_fields_and_path(tmp_path: Path) -> None:
    path = write(tmp_path / "A_1h_1.json")
    with ResultIndex(tmp_path, watch=False) as idx:
        assert ("A", "1h") in idx
        assert ("A", "4h") not in idx
        assert ("A",) not in idx
        assert {"symbol": "A", "timeframe": "1h"} in idx
        assert path in idx
        assert tmp_path / "A_1h_2.json" not in idx
        with pytest.raises(TypeError, match="key tuple"):
            _ = 3 in idx


def test_sequence_of_changes_gives_the_exact_state_after_each_step(
    tmp_path: Path, backend: dict[str, float]
) -> None:
    write(tmp_path / "A_1h_1.json")
    with open_index(tmp_path, backend) as idx:
        a = ("A", "1h")
        assert state(idx) == {a: ["A_1h_1.json"]}

        write(tmp_path / "A_1h_2.json")
        settle_state(idx, {a: ["A_1h_2.json", "A_1h_1.json"]})

        before = idx.generation
        atomic_write(tmp_path / "A_1h_3.json")
        settle_state(idx, {a: ["A_1h_3.json", "A_1h_2.json", "A_1h_1.json"]})
        # The temp file never showed: the whole write was one change.
        write(tmp_path / "Z_1h_barrier.json")
        settle(idx, lambda: ("Z", "1h") in idx)
        assert idx.generation == before + 2

        (tmp_path / "A_1h_3.json").unlink()
        settle_state(idx, {a: ["A_1h_2.json", "A_1h_1.json"], ("Z", "1h"): ["Z_1h_barrier.json"]})

        # Rewriting an older file does not make it newest: the stamp decides.
        write(tmp_path / "A_1h_1.json", '{"rewritten": true}')
        (tmp_path / "Z_1h_barrier.json").unlink()
        settle(idx, lambda: ("Z", "1h") not in idx)
        assert state(idx) == {a: ["A_1h_2.json", "A_1h_1.json"]}

        os.rename(tmp_path / "A_1h_2.json", tmp_path / "parked.txt")
        settle_state(idx, {a: ["A_1h_1.json"]})

        os.rename(tmp_path / "parked.txt", tmp_path / "B_4h_9.json")
        settle_state(idx, {a: ["A_1h_1.json"], ("B", "4h"): ["B_4h_9.json"]})

        for p in tmp_path.iterdir():
            p.unlink()
        settle_state(idx, {})
        assert len(idx) == 0


def test_many_files_scanned_and_followed(tmp_path: Path, backend: dict[str, float]) -> None:
    symbols = [f"S{i:03d}" for i in range(100)]
    for s in symbols:
        for stamp in range(100):
            (tmp_path / f"{s}_1h_{stamp:04d}.json").touch()
    with open_index(tmp_path, backend) as idx:
        assert idx.file_count == 10_000
        assert len(idx) == 100
        assert all(idx.latest(symbol=s, timeframe="1h") == tmp_path / f"{s}_1h_0099.json" for s in symbols)
        for s in symbols:
            (tmp_path / f"{s}_1h_0100.json").touch()
            (tmp_path / f"{s}_1h_0000.json").unlink()
        settle(
            idx,
            lambda: (
                idx.file_count == 10_000
                and all(
                    idx.latest(symbol=s, timeframe="1h") == tmp_path / f"{s}_1h_0100.json" for s in symbols
                )
            ),
        )
        with ResultIndex(tmp_path, watch=False) as fresh:
            assert state(idx) == state(fresh)


def _process_writer(directory: str, writer: str, count: int) -> None:
    for i in range(count):
        atomic_write(Path(directory) / f"P{i % 3}_1h_{i:05d}_{writer}.json")


def test_concurrent_writers_in_threads_and_processes_lose_nothing(
    tmp_path: Path, backend: dict[str, float]
) -> None:
    count = 150
    with open_index(tmp_path, backend) as idx:
        threads = [
            threading.Thread(target=_process_writer, args=(str(tmp_path), f"t{t}", count)) for t in range(3)
        ]
        ctx = multiprocessing.get_context("spawn")
        procs = [ctx.Process(target=_process_writer, args=(str(tmp_path), f"p{p}", count)) for p in range(2)]
        for t in threads:
            t.start()
        for p in procs:
            p.start()
        for t in threads:
            t.join()
        for p in procs:
            p.join(timeout=60)
            assert p.exitcode == 0
        writers = ["p0", "p1", "t0", "t1", "t2"]
        expected: State = {
            (f"P{k}", "1h"): sorted(
                (f"P{k}_1h_{i:05d}_{w}.json" for w in writers for i in range(count) if i % 3 == k),
                reverse=True,
            )
            for k in range(3)
        }
        settle_state(idx, expected, timeout=30)
        newest = max(i for i in range(count) if i % 3 == 0)
        assert idx.latest(symbol="P0", timeframe="1h") == tmp_path / f"P0_1h_{newest:05d}_t2.json"


def test_overflow_rescan_ends_equal_to_a_fresh_scan(tmp_path: Path, backend: dict[str, float]) -> None:
    for i in range(5):
        write(tmp_path / f"A_1h_{i}.json")
    with open_index(tmp_path, backend) as idx:
        assert idx.file_count == 5
        # Events lost in a full kernel queue, then inotify's path-less overflow event.
        idx._drop_events(True)
        (tmp_path / "A_1h_4.json").unlink()
        os.rename(tmp_path / "A_1h_3.json", tmp_path / "B_1h_3.json")
        for i in range(20):
            write(tmp_path / f"C_4h_{i:02d}.json")
        idx._drop_events(False)
        idx._simulate_overflow()
        with ResultIndex(tmp_path, watch=False) as fresh:
            expected = state(fresh)
        settle_state(idx, expected)
        assert expected[("A", "1h")] == ["A_1h_2.json", "A_1h_1.json", "A_1h_0.json"]


def test_rescan_forces_a_refresh_without_a_watcher(tmp_path: Path) -> None:
    with ResultIndex(tmp_path, watch=False) as idx:
        write(tmp_path / "A_1h_1.json")
        assert state(idx) == {}
        generation = idx.generation
        assert idx.rescan() is True
        assert idx.generation > generation
        assert state(idx) == {("A", "1h"): ["A_1h_1.json"]}
        assert idx.rescan() is False


def test_record_inserts_at_once_and_the_event_is_idempotent(
    tmp_path: Path, backend: dict[str, float]
) -> None:
    with open_index(tmp_path, backend) as idx:
        path = write(tmp_path / "A_1h_1.json")
        idx.record(path)
        assert idx.latest(symbol="A", timeframe="1h") == path
        generation = idx.generation
        assert idx.record(str(path)) is False
        write(tmp_path / "Z_1h_barrier.json")
        settle(idx, lambda: ("Z", "1h") in idx)
        assert idx.generation == generation + 1
        assert state(idx)[("A", "1h")] == ["A_1h_1.json"]


def test_record_errors_name_the_file(tmp_path: Path) -> None:
    with ResultIndex(tmp_path, watch=False) as idx:
        with pytest.raises(FileNotFoundError) as missing:
            idx.record(tmp_path / "A_1h_1.json")
        assert missing.value.filename == str(tmp_path / "A_1h_1.json")
        write(tmp_path / "notes.txt")
        with pytest.raises(ValueError, match=r"notes\.txt is not a result file of this index"):
            idx.record(tmp_path / "notes.txt")
        write(tmp_path.parent / "A_1h_2.json")
        with pytest.raises(ValueError, match="directly in"):
            idx.record(tmp_path.parent / "A_1h_2.json")


def test_equal_stamps_break_ties_by_path(tmp_path: Path) -> None:
    for run in ["b", "a", "c"]:
        write(tmp_path / f"A_20261129_{run}.json")
    with ResultIndex(tmp_path, pattern="{symbol}_{stamp}_{_run}.json", watch=False) as idx:
        assert idx.fields == ("symbol",)
        assert state(idx) == {("A",): ["A_20261129_c.json", "A_20261129_b.json", "A_20261129_a.json"]}


def test_mtime_ordering_follows_modification_times(tmp_path: Path, backend: dict[str, float]) -> None:
    old = write(tmp_path / "A_first.json")
    new = write(tmp_path / "A_second.json")
    os.utime(old, ns=(2_000_000_000_000_000_000, 2_000_000_000_000_000_000))
    os.utime(new, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    with open_index(tmp_path, backend, pattern="{symbol}_{_}.json", order_by="mtime") as idx:
        assert idx.order_by == "mtime"
        assert state(idx) == {("A",): ["A_first.json", "A_second.json"]}
        os.utime(new, ns=(3_000_000_000_000_000_000, 3_000_000_000_000_000_000))
        settle_state(idx, {("A",): ["A_second.json", "A_first.json"]})


@pytest.mark.parametrize("seed", range(5))
def test_latest_agrees_with_sorted_glob(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(200):
        stamp = f"2026{rng.randrange(10**10):010d}"
        write(tmp_path / f"{rng.choice('XYZ')}_{rng.choice(['1h', '4h'])}_{stamp}.json")
    with ResultIndex(tmp_path, watch=False) as idx:
        for symbol in "XYZ":
            for tf in ["1h", "4h"]:
                matches = sorted(tmp_path.glob(f"{symbol}_{tf}_*.json"))
                assert idx.latest(symbol=symbol, timeframe=tf) == (matches[-1] if matches else None)


def test_recursive_index_follows_new_and_removed_directories(
    tmp_path: Path, backend: dict[str, float]
) -> None:
    (tmp_path / "BTC").mkdir()
    write(tmp_path / "BTC" / "1.json")
    with open_index(tmp_path, backend, pattern="{symbol}/{stamp}.json", recursive=True) as idx:
        assert state(idx) == {("BTC",): ["1.json"]}
        staging = tmp_path / ".staging"
        staging.mkdir()
        write(staging / "5.json")
        write(staging / "7.json")
        os.rename(staging, tmp_path / "ETH")
        settle_state(idx, {("BTC",): ["1.json"], ("ETH",): ["7.json", "5.json"]})
        os.rename(tmp_path / "ETH", tmp_path / ".gone")
        settle_state(idx, {("BTC",): ["1.json"]})


def test_closed_index_refuses_use(tmp_path: Path) -> None:
    idx = ResultIndex(tmp_path)
    with idx:
        assert not idx.closed
    assert idx.closed
    assert "closed" in repr(idx)
    for call in [
        lambda: idx.latest(symbol="A", timeframe="1h"),
        idx.keys,
        lambda: len(idx),
        idx.rescan,
        lambda: idx.wait_for(symbol="A", timeframe="1h", timeout=1),
    ]:
        with pytest.raises(ValueError, match="is closed"):
            call()
    idx.close()


def test_repr_names_backend_and_sizes(tmp_path: Path) -> None:
    write(tmp_path / "A_1h_1.json")
    write(tmp_path / "A_1h_2.json")
    with ResultIndex(tmp_path, poll_interval=0.5) as idx:
        assert repr(idx) == (
            f"ResultIndex({str(tmp_path)!r}, pattern='{{symbol}}_{{timeframe}}_{{stamp}}.json', "
            "order_by='stamp', backend='poll every 0.5s', keys=1, files=2)"
        )
    with ResultIndex(tmp_path) as idx:
        assert idx.backend == "inotify"
        assert idx.last_error is None


def test_environment_forces_polling(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FASTGRID_FORCE_POLLING", "1")
    with ResultIndex(tmp_path) as idx:
        assert idx.backend == "poll every 0.3s"
        write(tmp_path / "A_1h_1.json")
        settle_state(idx, {("A", "1h"): ["A_1h_1.json"]})
    with ResultIndex(tmp_path, poll_interval=0.1) as idx:
        assert idx.backend == "poll every 0.1s"
    monkeypatch.setenv("FASTGRID_FORCE_POLLING", "maybe")
    with pytest.raises(ValueError, match="FASTGRID_FORCE_POLLING='maybe'"):
        ResultIndex(tmp_path)


def test_removing_the_directory_empties_the_index(tmp_path: Path, backend: dict[str, float]) -> None:
    directory = tmp_path / "results"
    directory.mkdir()
    write(directory / "A_1h_1.json")
    with open_index(directory, backend) as idx:
        assert idx.file_count == 1
        shutil.rmtree(directory)
        settle_state(idx, {})
