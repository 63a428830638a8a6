"""Batch sweeps: the unit of bookkeeping is a chunk of grid points, not an Optuna trial (issue 13).

``run_batch`` evaluates a grid chunk by chunk with a vectorized objective (``batch=``, called once
per chunk with the parameter columns) or a per-point callable (``callable=``), records each chunk's
rows in a columnar store inside the sweep's SQLite file, and writes the top-K points to the sweep's
Optuna study. ``BatchResults`` reads the stored columns (counts, top points, failures, frames).
See docs/batch.md.
"""

from typing import TYPE_CHECKING

from fastgrid.exceptions import BatchFailedError, BatchObjectiveError, StoreMismatchError
from fastgrid.lazy import lazy_exports

if TYPE_CHECKING:
    from fastgrid.batch._evaluate import ChunkResult, metric_columns
    from fastgrid.batch._file import batch_options, run_batch_file
    from fastgrid.batch._pgstore import PgBatchStore
    from fastgrid.batch._results import BatchResults, as_row
    from fastgrid.batch._runner import (
        MODE_ATTR,
        BatchRun,
        PointCheck,
        check_columns,
        check_point,
        check_study_mode,
        default_chunk,
        delete_batch_sweep,
        run_batch,
        slot_columns,
        store_path,
        sweep_view,
    )
    from fastgrid.batch._store import BatchStore, Chunk, ChunkStore, owner_id
    from fastgrid.batch._stores import open_batch_store
else:
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "fastgrid.batch._evaluate": ["ChunkResult", "metric_columns"],
            "fastgrid.batch._file": ["batch_options", "run_batch_file"],
            "fastgrid.batch._pgstore": ["PgBatchStore"],
            "fastgrid.batch._results": ["BatchResults", "as_row"],
            "fastgrid.batch._runner": [
                "MODE_ATTR",
                "BatchRun",
                "PointCheck",
                "check_columns",
                "check_point",
                "check_study_mode",
                "default_chunk",
                "delete_batch_sweep",
                "run_batch",
                "slot_columns",
                "store_path",
                "sweep_view",
            ],
            "fastgrid.batch._store": ["BatchStore", "Chunk", "ChunkStore", "owner_id"],
            "fastgrid.batch._stores": ["open_batch_store"],
        },
    )

__all__ = [
    "MODE_ATTR",
    "BatchFailedError",
    "BatchObjectiveError",
    "BatchResults",
    "BatchRun",
    "BatchStore",
    "Chunk",
    "ChunkResult",
    "ChunkStore",
    "PgBatchStore",
    "PointCheck",
    "StoreMismatchError",
    "as_row",
    "batch_options",
    "check_columns",
    "check_point",
    "check_study_mode",
    "default_chunk",
    "delete_batch_sweep",
    "metric_columns",
    "open_batch_store",
    "owner_id",
    "run_batch",
    "run_batch_file",
    "slot_columns",
    "store_path",
    "sweep_view",
]
