"""Opening the store a batch sweep's columns live in: SQLite (a path) or PostgreSQL (a URL)."""

from __future__ import annotations

import os

from fastgrid.batch._pgstore import PgBatchStore, is_postgres_url
from fastgrid.batch._store import BatchStore, ChunkStore

__all__ = ["open_batch_store"]


def open_batch_store(location: str | os.PathLike[str], *, readonly: bool = False) -> ChunkStore:
    """The store at ``location``: a ``fastgrid+postgresql://`` or ``postgresql://`` URL
    (:class:`PgBatchStore`) or an SQLite file (:class:`BatchStore`). ``readonly`` (reports): an SQLite
    file is neither created nor written, and may be in a read-only folder."""
    if is_postgres_url(location):
        return PgBatchStore(str(location))
    return BatchStore(location, readonly=readonly)
