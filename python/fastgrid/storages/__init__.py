"""Storages: where a sweep's Optuna study lives.

:func:`open_storage` turns a URL (or nothing: the embedded store ``fastgrid.db``) into an Optuna
storage; :func:`open_heartbeat_storage` adds heartbeats so a dead worker's trial is retried;
:func:`export_study` copies a study to any Optuna storage; :func:`redact_url` masks passwords.
Two journal stores of fastgrid's own: the embedded one (:class:`EmbeddedStorage`, one SQLite file)
and the distributed one (:class:`PostgresJournalStorage`, ``fastgrid+postgresql://``).
"""

from typing import TYPE_CHECKING

from fastgrid.lazy import lazy_exports

if TYPE_CHECKING:
    from fastgrid.storages._heartbeat import (
        HEARTBEAT_ATTR,
        STALE_REASON,
        Heartbeat,
        open_heartbeat_storage,
    )
    from fastgrid.storages._urls import (
        ACCEPTED_FORMS,
        DEFAULT_STORE_NAME,
        export_study,
        is_rdb_url,
        open_storage,
        redact_url,
        release_connections,
    )
    from fastgrid.storages.embedded import SMALL_TAIL, EmbeddedStorage, SQLiteJournalBackend
    from fastgrid.storages.postgres import PostgresJournalBackend, PostgresJournalStorage
else:
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "fastgrid.storages._heartbeat": [
                "HEARTBEAT_ATTR",
                "STALE_REASON",
                "Heartbeat",
                "open_heartbeat_storage",
            ],
            "fastgrid.storages._urls": [
                "ACCEPTED_FORMS",
                "DEFAULT_STORE_NAME",
                "export_study",
                "is_rdb_url",
                "open_storage",
                "redact_url",
                "release_connections",
            ],
            "fastgrid.storages.embedded": ["SMALL_TAIL", "EmbeddedStorage", "SQLiteJournalBackend"],
            "fastgrid.storages.postgres": ["PostgresJournalBackend", "PostgresJournalStorage"],
        },
    )

__all__ = [
    "ACCEPTED_FORMS",
    "DEFAULT_STORE_NAME",
    "HEARTBEAT_ATTR",
    "SMALL_TAIL",
    "STALE_REASON",
    "EmbeddedStorage",
    "Heartbeat",
    "PostgresJournalBackend",
    "PostgresJournalStorage",
    "SQLiteJournalBackend",
    "export_study",
    "is_rdb_url",
    "open_heartbeat_storage",
    "open_storage",
    "redact_url",
    "release_connections",
]
