"""The embedded store: an Optuna journal storage over one SQLite file (``fastgrid.db``).

Operations are appended to a SQLite journal (:class:`SQLiteJournalBackend`, WAL mode, safe for
several processes); :class:`EmbeddedStorage` replays it into memory, snapshots the replayed state
so a later open replays only the tail, and shares the finished trials' fields to stay small.
"""

from fastgrid.storages.embedded._journal import SQLiteJournalBackend
from fastgrid.storages.embedded._storage import SMALL_TAIL, EmbeddedStorage

__all__ = ["SMALL_TAIL", "EmbeddedStorage", "SQLiteJournalBackend"]
