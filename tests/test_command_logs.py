"""Command trial logs are capped (issue #6): head + marker + tail, with REAL chatty subprocesses."""

from __future__ import annotations

import errno
import os
import re
import signal
import sys
import textwrap
from pathlib import Path
from typing import Any

import fastgrid
import pytest
from fastgrid import CommandObjective
from fastgrid.objective._capped import DEFAULT_LOG_LIMIT, DEFAULT_LOG_TAIL, CappedLog
from fastgrid.objective._process import Exit, run_in_group
from fastgrid.sweepfile import SweepFileError, load_sweep_file

PY = sys.executable
MARKER = re.compile(rb"\n\[fastgrid: (\d+) bytes of output dropped\]\n")

# 50 MB of numbered lines on stdout and stderr, then the result line and a last stderr line.
CHATTY = """
import sys
out, err = sys.stdout.buffer, sys.stderr.buffer
block = b"".join(b"line %07d ........................................\\n" % i for i in range(1000))
out.write(b"FIRST STDOUT LINE\\n")
err.write(b"FIRST STDERR LINE\\n")
for i in range(1000):
    out.write(block)
    err.write(block)
err.write(b"LAST STDERR LINE\\n")
out.write(b'{"sharpe": 0.75}\\n')
"""
BLOCK_BYTES = 1000 * len(b"line 0000000 ........................................\n")


def script(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return str(path)


def run(obj: CommandObjective, tmp_path: Path) -> Any:
    return obj.run({"a": 1}, trial_number=0, trial_dir=tmp_path / "trial_0", params={})


def split_log(data: bytes) -> tuple[bytes, int, bytes]:
    found = list(MARKER.finditer(data))
    assert len(found) == 1, "expected exactly one marker line"
    m = found[0]
    return data[: m.start()], int(m[1]), data[m.end() :]


def test_50_mb_of_output_keeps_head_marker_and_tail_and_the_result_still_reads(tmp_path: Path) -> None:
    limit = 1_000_000
    obj = CommandObjective([PY, script(tmp_path, "chatty.py", CHATTY)], metrics=["sharpe"], log_limit=limit)
    outcome = run(obj, tmp_path)
    assert outcome.ok, outcome.reason
    assert outcome.value == 0.75

    total = {
        "stdout": len(b"FIRST STDOUT LINE\n") + 1000 * BLOCK_BYTES + len(b'{"sharpe": 0.75}\n'),
        "stderr": len(b"FIRST STDERR LINE\n") + 1000 * BLOCK_BYTES + len(b"LAST STDERR LINE\n"),
    }
    for stream, first, last in (
        ("stdout", b"FIRST STDOUT LINE\n", b'{"sharpe": 0.75}\n'),
        ("stderr", b"FIRST STDERR LINE\n", b"LAST STDERR LINE\n"),
    ):
        data = (tmp_path / "trial_0" / f"{stream}.log").read_bytes()
        assert len(data) <= limit + 64, f"{stream}.log is {len(data)} bytes"
        head, dropped, tail = split_log(data)
        assert head.startswith(first)
        assert len(head) == limit - DEFAULT_LOG_TAIL
        assert tail.endswith(last)
        # The kept tail starts at a line boundary and is the stream's very end.
        assert tail.startswith(b"line ") and len(tail) <= DEFAULT_LOG_TAIL
        assert len(head) + dropped + len(tail) == total[stream]
    assert outcome.stdout_tail.endswith('{"sharpe": 0.75}')
    assert outcome.stderr_tail.endswith("LAST STDERR LINE")


def test_the_default_limit_is_10_mib_and_output_under_it_is_kept_whole(tmp_path: Path) -> None:
    body = """
    import sys
    for i in range(20000):
        print("row", i)
    print('{"sharpe": 1}')
    """
    obj = CommandObjective([PY, script(tmp_path, "s.py", body)], metrics=["sharpe"])
    assert obj.log_limit == DEFAULT_LOG_LIMIT == 10 * 1024 * 1024
    outcome = run(obj, tmp_path)
    assert outcome.ok, outcome.reason
    expected = "".join(f"row {i}\n" for i in range(20000)) + '{"sharpe": 1}\n'
    assert (tmp_path / "trial_0" / "stdout.log").read_text() == expected


def test_the_default_limit_caps_a_runaway_stream(tmp_path: Path) -> None:
    body = """
    import sys
    chunk = b"z" * 999 + b"\\n"
    for _ in range(12 * 1024):
        sys.stderr.buffer.write(chunk)
    sys.stderr.buffer.write(b"Traceback: the real error\\n")
    sys.exit(3)
    """
    outcome = run(CommandObjective([PY, script(tmp_path, "s.py", body)], metrics=["x"]), tmp_path)
    assert not outcome.ok
    # The tail survives, so the failure reason still shows the error.
    assert outcome.reason == "exit code 3: Traceback: the real error"
    data = (tmp_path / "trial_0" / "stderr.log").read_bytes()
    head, dropped, tail = split_log(data)
    assert len(head) + len(tail) <= DEFAULT_LOG_LIMIT
    assert dropped == 12 * 1024 * 1000 + len(b"Traceback: the real error\n") - len(head) - len(tail)
    assert tail.endswith(b"Traceback: the real error\n")


def test_a_result_line_lost_in_the_dropped_part_is_a_clear_failure(tmp_path: Path) -> None:
    body = """
    print('{"sharpe": 1}')
    for i in range(5000):
        print("after the result", i)
    """
    obj = CommandObjective([PY, script(tmp_path, "s.py", body)], metrics=["sharpe"], log_limit=20_000)
    outcome = run(obj, tmp_path)
    assert not outcome.ok
    assert outcome.reason is not None
    assert outcome.reason.startswith("no output: stdout passed the log limit (")
    assert "bytes dropped from its middle) and its kept tail has no JSON object line" in outcome.reason


def test_a_json_line_cut_by_the_limit_is_not_read_from_the_head(tmp_path: Path) -> None:
    body = """
    import json
    print(json.dumps({"sharpe": 1, "pad": "p" * 50_000}))
    """
    obj = CommandObjective([PY, script(tmp_path, "s.py", body)], metrics=["sharpe"], log_limit=10_000)
    outcome = run(obj, tmp_path)
    assert not outcome.ok
    assert outcome.reason is not None and "no JSON object line" in outcome.reason


def test_an_unlimited_log_keeps_everything(tmp_path: Path) -> None:
    body = """
    import sys
    sys.stdout.buffer.write(b"q" * 300_000 + b"\\n")
    """
    obj = CommandObjective([PY, script(tmp_path, "s.py", body)], metrics=["x"], log_limit=None)
    run(obj, tmp_path)
    assert (tmp_path / "trial_0" / "stdout.log").read_bytes() == b"q" * 300_000 + b"\n"


def test_a_slow_writer_on_both_streams_does_not_deadlock(tmp_path: Path) -> None:
    # Alternating large writes on both pipes deadlock a parent that reads one pipe at a time.
    body = """
    import sys
    for _ in range(40):
        sys.stderr.buffer.write(b"e" * 200_000)
        sys.stderr.buffer.flush()
        sys.stdout.buffer.write(b"o" * 200_000)
        sys.stdout.buffer.flush()
    print()
    print('{"sharpe": 2}')
    """
    obj = CommandObjective([PY, script(tmp_path, "s.py", body)], metrics=["sharpe"], timeout=120)
    outcome = run(obj, tmp_path)
    assert outcome.ok, outcome.reason
    assert outcome.value == 2
    assert (tmp_path / "trial_0" / "stderr.log").stat().st_size == 40 * 200_000


@pytest.mark.parametrize("bad", [0, -5, 1.5, True, "10MB"])
def test_a_bad_log_limit_is_refused(bad: Any) -> None:
    with pytest.raises(ValueError, match="log_limit: expected a positive number of bytes or None"):
        CommandObjective([PY, "-c", "pass"], metrics=["x"], log_limit=bad)


SWEEP = '[sweep]\ndirection = "minimize"\n'


def test_log_limit_in_the_sweep_file(tmp_path: Path) -> None:
    path = tmp_path / "sweep.toml"
    path.write_text(
        SWEEP
        + '[objective]\ncommand = ["python", "bt.py"]\nlog_limit = 2_000_000\n[parameters]\na = [1, 2]\n'
    )
    assert load_sweep_file(path).objective.log_limit == 2_000_000
    path.write_text(SWEEP + '[objective]\ncommand = ["python", "bt.py"]\n[parameters]\na = [1, 2]\n')
    assert load_sweep_file(path).objective.log_limit == DEFAULT_LOG_LIMIT
    path.write_text(
        SWEEP + '[objective]\ncommand = ["python", "bt.py"]\nlog_limit = 0\n[parameters]\na = [1]\n'
    )
    with pytest.raises(SweepFileError, match=r"objective\.log_limit"):
        load_sweep_file(path)
    path.write_text(SWEEP + '[objective]\ncallable = "m:f"\nlog_limit = 1000\n[parameters]\na = [1]\n')
    with pytest.raises(SweepFileError, match="'log_limit' only applies to a 'command' objective"):
        load_sweep_file(path)


# --- CappedLog on its own: exact layouts ---------------------------------------------------------


def write_all(path: Path, chunks: list[bytes], *, limit: int | None, tail: int) -> bytes:
    log = CappedLog(path, limit=limit, tail=tail)
    for chunk in chunks:
        log.write(chunk)
    log.close()
    return path.read_bytes()


def test_capped_log_keeps_a_stream_that_fits_unchanged(tmp_path: Path) -> None:
    chunks = [b"ab\n", b"cd", b"ef\n"]
    assert write_all(tmp_path / "l", chunks, limit=10, tail=4) == b"ab\ncdef\n"


def test_capped_log_cuts_the_tail_at_a_line_boundary(tmp_path: Path) -> None:
    data = write_all(tmp_path / "l", [b"0123456789\n", b"abc\nde\nfgh\n"], limit=12, tail=6)
    # The last 6 bytes are "e\nfgh\n": the partial line "e\n" is dropped too.
    assert data == b"012345\n[fastgrid: 12 bytes of output dropped]\nfgh\n"


def test_capped_log_keeps_a_tail_without_line_breaks_whole(tmp_path: Path) -> None:
    data = write_all(tmp_path / "l", [b"x" * 5 + b"\n" + b"y" * 30], limit=10, tail=5)
    assert data == b"xxxxx\n[fastgrid: 26 bytes of output dropped]\nyyyyy"


def test_a_sweep_passes_log_limit_to_its_command_trials(tmp_path: Path) -> None:
    body = """
    for i in range(100_000):
        print("noise", i)
    print('{"value": 1}')
    """
    result = fastgrid.Sweep(
        direction="minimize",
        parameters={"a": [1]},
        objective=[PY, script(tmp_path, "s.py", body)],
        log_limit=50_000,
        directory=tmp_path,
        progress=False,
    ).run()
    assert result.best is not None and result.best["value"] == 1
    data = (tmp_path / "runs" / "sweep" / "trial_0" / "stdout.log").read_bytes()
    head, dropped, tail = split_log(data)
    assert head.startswith(b"noise 0\n") and tail.endswith(b'{"value": 1}\n')
    assert len(head) + len(tail) <= 50_000 and dropped > 0


def test_a_writer_that_left_the_group_does_not_hold_the_trial_open(tmp_path: Path) -> None:
    # A daemon started with its own session escapes the group kill and keeps the pipes open; the
    # trial must still end (after a short drain) with the leader's output and result.
    body = """
    import subprocess, sys
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"], start_new_session=True)
    print(child.pid)
    print('{"sharpe": 3}')
    """
    obj = CommandObjective([PY, script(tmp_path, "s.py", body)], metrics=["sharpe"])
    pid = None
    try:
        outcome = run(obj, tmp_path)
        pid = int(outcome.stdout_tail.splitlines()[0])
        assert outcome.ok, outcome.reason
        assert outcome.value == 3
    finally:
        if pid is not None:
            os.kill(pid, signal.SIGKILL)


def test_a_full_disk_under_a_log_does_not_stop_the_command(tmp_path: Path) -> None:
    body = """
    import sys
    for i in range(10_000):
        print("row", i)
    print("done", file=sys.stderr)
    """
    done = run_in_group(
        [PY, script(tmp_path, "s.py", body)],
        cwd=None,
        env=dict(os.environ),
        stdout_path=Path("/dev/full"),  # every write: ENOSPC
        stderr_path=tmp_path / "stderr.log",
        timeout=60,
        grace=1,
    )
    assert done == Exit(returncode=0, timed_out=False)
    assert (tmp_path / "stderr.log").read_text() == "done\n"


def test_capped_log_records_a_write_error_instead_of_raising(tmp_path: Path) -> None:
    log = CappedLog(Path("/dev/full"), limit=100, tail=10)
    log.write(b"x" * 500)
    log.write(b"y" * 500)
    log.close()
    assert isinstance(log.error, OSError) and log.error.errno == errno.ENOSPC
