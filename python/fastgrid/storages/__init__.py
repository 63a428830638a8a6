"""Storages: where a sweep's Optuna study lives.

:func:`open_storage` turns a URL (or nothing: the embedded store ``fastgrid.db``) into an Optuna
storage; :func:`open_heartbeat_storage` adds heartbeats so a dead worker's trial is retried;
:func:`export_study` copies a study to any Optuna storage; :func:`redact_url` masks passwords.
"""

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

__all__ = [
    "ACCEPTED_FORMS",
    "DEFAULT_STORE_NAME",
    "HEARTBEAT_ATTR",
    "SMALL_TAIL",
    "STALE_REASON",
    "EmbeddedStorage",
    "Heartbeat",
    "SQLiteJournalBackend",
    "export_study",
    "is_rdb_url",
    "open_heartbeat_storage",
    "open_storage",
    "redact_url",
    "release_connections",
]
