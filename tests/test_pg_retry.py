"""The one retry loop of fastgrid's PostgreSQL connections (``RetryWindow``), which the journal
backend and the batch store's ``PostgresSession`` both run: retried while the connection is lost,
given up after ``reconnect_timeout`` seconds (and at once on the next call), no retry for errors a
new connection cannot fix. Driven with the driver's own exception types, no server needed; the
server-backed behaviour is in test_pg_journal.py, test_pg_workers.py and test_batch_postgres.py."""

from __future__ import annotations

import logging

import psycopg
import pytest
from fastgrid.exceptions import StorageConnectionError
from fastgrid.storages.postgres import parse_url
from fastgrid.storages.postgres._journal import RetryWindow

URL = "fastgrid+postgresql://bob:s3cret@db.invalid/sweeps?reconnect_timeout=0.3"


class Flaky:
    """An attempt that loses the connection ``failures`` times, then returns 42."""

    def __init__(self, failures: int, error: Exception | None = None) -> None:
        self.left = failures
        self.error = error or psycopg.OperationalError("server closed the connection unexpectedly s3cret")
        self.firsts: list[bool] = []
        self.drops = 0

    def __call__(self, first: bool) -> int:
        self.firsts.append(first)
        if self.left:
            self.left -= 1
            raise self.error
        return 42

    def drop(self) -> None:
        self.drops += 1


def window() -> RetryWindow:
    return RetryWindow(parse_url(URL, display="fastgrid+postgresql://bob:***@db.invalid/sweeps"))


def test_a_lost_connection_is_retried_on_a_new_one_until_it_works(caplog: pytest.LogCaptureFixture) -> None:
    retries, attempt = window(), Flaky(2)
    with caplog.at_level(logging.WARNING, logger="fastgrid.postgres"):
        assert retries.run(attempt, attempt.drop) == 42
    assert attempt.firsts == [True, False, False] and attempt.drops == 2
    assert "connection lost" in caplog.text and "reconnected" in caplog.text
    assert "s3cret" not in caplog.text


def test_the_window_runs_out_once_then_later_calls_fail_at_once() -> None:
    retries, attempt = window(), Flaky(10**6)
    with pytest.raises(StorageConnectionError, match=r"could not reconnect within 0.3 s") as lost:
        retries.run(attempt, attempt.drop)
    assert "s3cret" not in str(lost.value) and len(attempt.firsts) > 2
    again = Flaky(10**6)
    with pytest.raises(StorageConnectionError, match="lost the connection"):
        retries.run(again, again.drop)
    assert again.firsts == [True]  # no second wait of the window
    assert retries.run(Flaky(0), again.drop) == 42  # the server is back: retries are on again
    assert retries.gave_up is False


def test_without_waiting_tries_once() -> None:
    retries, attempt = window(), Flaky(1)
    with pytest.raises(StorageConnectionError):
        retries.run(attempt, attempt.drop, wait=False)
    assert attempt.firsts == [True] and attempt.drops == 1


@pytest.mark.parametrize(
    "error",
    [
        psycopg.errors.UndefinedTable('relation "fastgrid_batch_chunks" does not exist'),
        psycopg.OperationalError('FATAL: password authentication failed for user "bob"'),
    ],
)
def test_what_a_new_connection_cannot_fix_is_one_line_at_once(error: Exception) -> None:
    attempt = Flaky(1, error)
    with pytest.raises(ValueError, match=r"^storage 'fastgrid\+postgresql://bob:\*\*\*@db.invalid/sweeps': "):
        window().run(attempt, attempt.drop)
    assert attempt.firsts == [True] and attempt.drops == 0
