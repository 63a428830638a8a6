"""ResultIndex under a misused results folder (issue 12, items 11 and 12, and their siblings):
the folder deleted, moved away or replaced mid-run, symlink loops, unreadable subdirectories,
FIFOs and directories named like result files. Real temporary filesystems, bounded waits; cases
that used to hang run in a child process with a timeout."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from _results_helpers import settle, settle_state, state, write
from fastgrid import ResultIndex

BACKENDS: dict[str, dict[str, float]] = {"native": {}, "poll": {"poll_interval": 0.05}}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest) -> dict[str, float]:
    return BACKENDS[request.param]


def open_index(directory: Path, backend: dict[str, float], *, recursive: bool = False) -> ResultIndex:
    return ResultIndex(directory, recursive=recursive, poll_interval=backend.get("poll_interval"))


def settle_error(idx: ResultIndex, text: str) -> None:
    deadline = time.monotonic() + 10
    while text not in (idx.last_error or ""):
        assert time.monotonic() < deadline, f"last_error stayed {idx.last_error!r}"
        time.sleep(0.01)


# --- the folder itself (item 11) ------------------------------------------------------------------


def test_folder_deleted_and_made_again(tmp_path: Path, backend: dict[str, float]) -> None:
    results = tmp_path / "results"
    results.mkdir()
    write(results / "A_1h_1.json")
    with open_index(results, backend) as idx:
        shutil.rmtree(results)
        settle_state(idx, {})
        settle_error(idx, f"results directory {results} is gone")
        results.mkdir()
        write(results / "A_1h_2.json")
        settle_state(idx, {("A", "1h"): ["A_1h_2.json"]})
        # The new folder is watched: what a trial writes next is found, as the runner waits for it.
        write(results / "A_1h_3.json")
        found = idx.wait_for(symbol="A", timeframe="1h", newer_than=results / "A_1h_2.json", timeout=10)
        assert found == results / "A_1h_3.json"


def test_folder_moved_away_and_made_again(tmp_path: Path, backend: dict[str, float]) -> None:
    """The injected fault: ``mv results results.old; mkdir results`` while trials run."""
    results = tmp_path / "results"
    results.mkdir()
    write(results / "A_1h_1.json")
    with open_index(results, backend) as idx:
        results.rename(tmp_path / "results.old")
        settle_state(idx, {})
        assert idx.last_error is not None
        results.mkdir()
        write(results / "B_1h_1.json")
        settle_state(idx, {("B", "1h"): ["B_1h_1.json"]})
        # Files written into the old folder (the old watch followed it) are not in this one.
        write(tmp_path / "results.old" / "A_1h_2.json")
        write(results / "B_1h_2.json")
        settle_state(idx, {("B", "1h"): ["B_1h_2.json", "B_1h_1.json"]})


def test_folder_replaced_at_once(tmp_path: Path, backend: dict[str, float]) -> None:
    results = tmp_path / "results"
    results.mkdir()
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    write(results / "A_1h_1.json")
    write(fresh / "B_1h_1.json")
    with open_index(results, backend) as idx:
        results.rename(tmp_path / "old")
        fresh.rename(results)
        settle_state(idx, {("B", "1h"): ["B_1h_1.json"]})
        assert idx.last_error is not None
        write(results / "B_1h_2.json")
        settle_state(idx, {("B", "1h"): ["B_1h_2.json", "B_1h_1.json"]})


def test_folder_replaced_by_a_file_and_back(tmp_path: Path) -> None:
    results = tmp_path / "results"
    results.mkdir()
    write(results / "A_1h_1.json")
    with ResultIndex(results) as idx:
        shutil.rmtree(results)
        results.write_text("not a folder")
        settle_state(idx, {})
        results.unlink()
        results.mkdir()
        write(results / "A_1h_2.json")
        settle_state(idx, {("A", "1h"): ["A_1h_2.json"]})


# --- symlink loops and long scans (item 12) ----------------------------------------------------


def run_child(code: str, *args: str, timeout: float = 60) -> str:
    """Runs ``code`` in a fresh interpreter (a hang there cannot hang the suite)."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("options", ["{'watch': False}", "{}", "{'poll_interval': 0.05}"])
def test_symlink_loops_are_not_followed(tmp_path: Path, options: str) -> None:
    write(tmp_path / "A_1h_1.json")
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub" / "B_1h_1.json")
    # The injected fault: two links to "." (and one more loop through a parent).
    (tmp_path / "again").symlink_to(".")
    (tmp_path / "twice").symlink_to(".")
    (tmp_path / "sub" / "up").symlink_to("..")
    out = run_child(
        f"""
        import sys, time
        from pathlib import Path
        from fastgrid import ResultIndex
        d = Path(sys.argv[1])
        with ResultIndex(d, recursive=True, **{options}) as idx:
            files = [p for k in idx for p in idx.history(**dict(zip(idx.fields, k)))]
            print(sorted(p.relative_to(d).as_posix() for p in files))
            if idx.backend != "none":
                (d / "A_1h_2.json").write_text("{{}}")
                print(idx.wait_for(symbol="A", timeframe="1h", newer_than="1", timeout=10).name)
            print(idx.last_error)
        """,
        str(tmp_path),
    )
    lines = out.splitlines()
    assert lines[0] == "['A_1h_1.json', 'sub/B_1h_1.json']"
    if options != "{'watch': False}":
        assert lines[1] == "A_1h_2.json"
    assert lines[-1] == "None"


# Each level links twice to the next: 2**30 paths through real directories, and no loop.
DIAMOND = """
import sys
from pathlib import Path
from fastgrid import ResultIndex
d = Path(sys.argv[1])
idx = ResultIndex(d, recursive=True, watch=False) if sys.argv[2] == "rescan" else None
for level in range(30):
    (d / f"L{level}").mkdir()
    if level:
        (d / f"L{level - 1}" / "x").symlink_to(f"../L{level}")
        (d / f"L{level - 1}" / "y").symlink_to(f"../L{level}")
(d / "L29" / "A_1h_1.json").write_text("{}")
print("scanning", flush=True)
try:
    ResultIndex(d, recursive=True, watch=False) if idx is None else idx.rescan()
    print("finished")
except KeyboardInterrupt:
    print("interrupted")
"""


@pytest.mark.parametrize("call", ["open", "rescan"])
def test_a_long_scan_stops_on_ctrl_c(tmp_path: Path, call: str) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", DIAMOND, str(tmp_path), call],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "scanning\n"
        time.sleep(0.3)
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=30)
    finally:
        child.kill()
        child.wait()
    assert out == "interrupted\n", err


# --- siblings: what is not a readable result file ------------------------------------------------


@pytest.mark.parametrize("recursive", [False, True])
def test_fifos_and_directories_named_like_results(
    tmp_path: Path, backend: dict[str, float], recursive: bool
) -> None:
    write(tmp_path / "A_1h_1.json")
    os.mkfifo(tmp_path / "A_1h_2.json")
    (tmp_path / "A_1h_3.json").mkdir()
    with open_index(tmp_path, backend, recursive=recursive) as idx:
        assert state(idx) == {("A", "1h"): ["A_1h_1.json"]}
        with pytest.raises(ValueError, match=r"A_1h_2\.json is not a regular file"):
            idx.record(tmp_path / "A_1h_2.json")
        with pytest.raises(ValueError, match=r"A_1h_3\.json is a directory"):
            idx.record(tmp_path / "A_1h_3.json")
        # Made while watched: no event opens them, and neither is indexed.
        os.mkfifo(tmp_path / "A_1h_4.json")
        (tmp_path / "A_1h_5.json").mkdir()
        write(tmp_path / "A_1h_0.json")
        settle_state(idx, {("A", "1h"): ["A_1h_1.json", "A_1h_0.json"]})
        assert idx.rescan() is False


@pytest.fixture
def shared_tree() -> Iterator[Path]:
    """A tree an unprivileged uid can read (pytest's own tmp_path is private to its owner)."""
    root = Path(tempfile.mkdtemp(prefix="fastgrid-unreadable-"))
    root.chmod(0o755)
    try:
        yield root
    finally:
        for path in root.rglob("*"):
            if path.is_dir() and not path.is_symlink():
                path.chmod(0o755)
        shutil.rmtree(root)


def as_nobody(check: Callable[[], None]) -> int:
    """Runs ``check()`` as uid/gid 65534 in a forked child (root reads through mode 000) and
    returns the child's exit code: 0 when ``check`` returned."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        status = 1
        try:
            if os.geteuid() == 0:
                os.setgid(65534)
                os.setuid(65534)
            check()
            status = 0
        except BaseException as err:
            print(f"child failed: {err!r}", file=sys.stderr)
        os._exit(status)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_unreadable_subdirectories_are_skipped(shared_tree: Path) -> None:
    d = shared_tree
    (d / "open").mkdir(mode=0o777)
    (d / "open").chmod(0o777)
    write(d / "open" / "A_1h_1.json")
    (d / "locked").mkdir()
    write(d / "locked" / "A_1h_9.json")
    (d / "locked").chmod(0o000)

    def check() -> None:
        with ResultIndex(d, recursive=True) as idx:
            assert state(idx) == {("A", "1h"): ["A_1h_1.json"]}
            assert idx.last_error is not None
            assert f"skipped 1 unreadable subdirectory ({d / 'locked'}: Permission denied" in idx.last_error
            # The index still follows the readable part, through events and full rescans.
            write(d / "open" / "A_1h_2.json")
            settle(idx, lambda: idx.file_count == 2)
            assert idx.rescan() is False
            idx._drop_events(True)
            write(d / "open" / "A_1h_3.json")
            idx._simulate_overflow()
            settle(idx, lambda: idx.file_count == 3)

    assert as_nobody(check) == 0
