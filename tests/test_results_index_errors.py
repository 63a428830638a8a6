"""ResultIndex errors: each names what is wrong and where."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fastgrid import PatternError, ResultIndex


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as err:
        ResultIndex(tmp_path / "missing")
    assert err.value.filename == str(tmp_path / "missing")


def test_file_instead_of_directory(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("")
    with pytest.raises(NotADirectoryError) as err:
        ResultIndex(tmp_path / "f")
    assert err.value.filename == str(tmp_path / "f")


def test_unreadable_directory(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o000)
    if os.geteuid() != 0:
        with pytest.raises(PermissionError) as err:
            ResultIndex(locked)
        assert err.value.filename == str(locked)
        return
    # Root reads through mode 000: drop to an unprivileged uid in a forked child, which already
    # has fastgrid loaded, and report the outcome through its exit status.
    expected = str(locked)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        status = 1
        try:
            os.setgid(65534)
            os.setuid(65534)
            ResultIndex(locked, watch=False)
        except PermissionError as err:
            status = 0 if err.filename == expected else 2
        except BaseException:
            status = 3
        os._exit(status)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


@pytest.mark.parametrize(
    ("pattern", "order_by", "problem"),
    [
        ("results.json", "stamp", "has no fields"),
        ("{a}_{a}_{stamp}.json", "stamp", "field {a} appears more than once"),
        ("{symbol}_{timeframe}.json", "stamp", 'order_by "stamp" names no field of the pattern'),
        ("{symbol}_{stamp.json", "stamp", "unbalanced '{' at column 10"),
        ("{symbol}_stamp}.json", "symbol", "unbalanced '}' at column 15"),
        ("{symbol}{stamp}.json", "stamp", "adjacent"),
        ("{sym bol}_{stamp}.json", "stamp", "not an identifier"),
        ("{symbol}/{stamp}.json", "stamp", "needs recursive=True"),
    ],
)
def test_bad_patterns_name_the_problem(tmp_path: Path, pattern: str, order_by: str, problem: str) -> None:
    with pytest.raises(PatternError) as err:
        ResultIndex(tmp_path, pattern=pattern, order_by=order_by)
    assert problem in str(err.value)
    assert err.value.pattern == pattern
    assert isinstance(err.value, ValueError)


def test_bad_options(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="poll_interval must be a positive number"):
        ResultIndex(tmp_path, poll_interval=0)
    with pytest.raises(ValueError, match="poll_interval needs watch=True"):
        ResultIndex(tmp_path, watch=False, poll_interval=1.0)


def test_lookup_fields_are_checked(tmp_path: Path) -> None:
    with ResultIndex(tmp_path, watch=False) as idx:
        with pytest.raises(TypeError, match=r'latest\(\) missing key field "timeframe"'):
            idx.latest(symbol="A")
        with pytest.raises(
            TypeError, match=r"unknown field\(s\) window \(the key fields are: symbol, timeframe\)"
        ):
            idx.latest(symbol="A", timeframe="1h", window="3")
        with pytest.raises(TypeError, match='key field "timeframe" must be a str, got int'):
            idx.history(symbol="A", timeframe=1)
