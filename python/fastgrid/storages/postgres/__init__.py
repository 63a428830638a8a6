"""fastgrid's distributed store: the embedded store's journal storage over a PostgreSQL log.

Open it with ``open_storage("fastgrid+postgresql://user:password@host:5432/db")`` (see
docs/postgres.md). :class:`PostgresJournalBackend` is the log (an Optuna journal backend, also usable
under a stock ``optuna.storages.JournalStorage``); :class:`PostgresJournalStorage` replays it as the
embedded store does, with Optuna's heartbeat interface timed by the server's clock.
:class:`PostgresSession` (:func:`open_session`) is a connection to the same database with the same
URL rules and reconnects, for the tables of batch sweeps.
"""

from fastgrid.storages.postgres._journal import (
    DEFAULT_RECONNECT_TIMEOUT,
    SCHEMA_VERSION,
    SCHEME,
    PostgresJournalBackend,
    PostgresTarget,
    is_journal_url,
    parse_url,
)
from fastgrid.storages.postgres._session import PostgresSession, open_session
from fastgrid.storages.postgres._storage import PostgresJournalStorage, open_postgres_storage

__all__ = [
    "DEFAULT_RECONNECT_TIMEOUT",
    "SCHEMA_VERSION",
    "SCHEME",
    "PostgresJournalBackend",
    "PostgresJournalStorage",
    "PostgresSession",
    "PostgresTarget",
    "is_journal_url",
    "open_postgres_storage",
    "open_session",
    "parse_url",
]
