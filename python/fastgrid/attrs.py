"""The names fastgrid stores on Optuna studies and trials: the one home of each spelling.

Two spellings are stored, and both are kept for the stores already written:
``fastgrid.<name>`` for study user attrs (read by reports), ``fastgrid:<name>`` for system attrs
(bookkeeping of the sampler, heartbeats and runs); a trial's own results are plain user attrs.
"""

from __future__ import annotations

__all__ = [
    "ATTEMPTS",
    "CONSTRAINTS",
    "DURATION",
    "EXHAUSTED",
    "FAILED_IN",
    "FEASIBLE",
    "FINGERPRINT",
    "HEARTBEAT",
    "INFEASIBLE",
    "KEY",
    "METRICS",
    "PARAMS",
    "REASON",
    "REJECTED",
    "RESULT_PATH",
    "RETURNS",
    "RETURNS_STATS",
    "REUSED",
    "RUN",
    "RUN_PREFIX",
    "SLOT",
    "STUDY_AXES",
    "STUDY_BATCH_RETURNS",
    "STUDY_FINGERPRINT",
    "STUDY_FIRST_TRIAL",
    "STUDY_METRICS",
    "STUDY_MODE",
    "STUDY_SPACE",
    "STUDY_VALIDATION",
    "STUDY_VALIDATION_OF",
    "STUDY_WALKFORWARD",
]

# -- study user attrs -------------------------------------------------------------------------------
STUDY_SPACE = "fastgrid.space"
"""The parameters tree's key, where constraints, sampler, order and seed: what a resume must match."""
STUDY_FINGERPRINT = "fastgrid.fingerprint"
"""The default config's fingerprint (``-`` without one)."""
STUDY_FIRST_TRIAL = "fastgrid.first_trial"
"""The trial number where the current grid's slot 0 starts (it moves when the grid changed)."""
STUDY_METRICS = "fastgrid.metrics"
"""The objective metric names, for reports that read the study without the sweep file."""
STUDY_AXES = "fastgrid.axes"
"""``{"paths": [...], "fixed": {path: value}}``: every parameter path in tree order and the fixed
values, so that a report rebuilds a trial's params without building the grid."""
STUDY_BATCH_RETURNS = "fastgrid.batch_returns"
"""A batch sweep's returns series (issue 16): ``{"points": [{"slot", "stats", "returns"}, ...]}``
for its best ``keep_returns`` points (``returns`` packed, ``stats`` as ``RETURNS_STATS``), plus
``n_trials`` (points evaluated), ``sample`` and ``sharpe_variance`` (the variance of the Sharpe
ratios of a seeded random sample of points), which the deflated Sharpe ratio needs."""
STUDY_MODE = "fastgrid.mode"
"""``"batch"`` for a batch sweep (its results are chunks of columns); absent for per-trial sweeps."""
STUDY_VALIDATION = "fastgrid.validation"
"""The rows of the ``[validate]`` step."""
STUDY_VALIDATION_OF = "fastgrid.validation_of"
"""A batch sweep's ``[validate]``: what its rows validated (``key``: the points, their scores, the
override and the config; ``done``: points recorded then) and when (``at``, a Unix time), so a
worker finishing with another one reuses its rows instead of running them again."""
STUDY_WALKFORWARD = "fastgrid.walkforward"
"""A walk-forward fold's study: its windows, the selected trial and the test-window evaluations."""

# -- study system attrs -----------------------------------------------------------------------------
RUN_PREFIX = "fastgrid:run:"
"""One attr per run of the sweep (``fastgrid:run:<run id>``): where it runs and its last heartbeat
(see ``fastgrid.runner._runs``), None once it ended."""

# -- trial system attrs -----------------------------------------------------------------------------
SLOT = "fastgrid:slot"
"""The grid slot a retry (a trial numbered past the grid's end) runs."""
EXHAUSTED = "fastgrid:exhausted"
"""A trial that found no slot left: it ran nothing and is no trial of the sweep."""
FAILED_IN = "fastgrid:failed_in"
"""The run in which a slot failed, so each run retries a failed slot at most ``retry_failed`` times."""
REJECTED = "fastgrid:rejected"
"""A search suggestion that ``sweep.where`` refused: recorded PRUNED with its constraint values (so
that TPE learns the region), never run, not counted toward ``max_trials``; the value is the reason."""
HEARTBEAT = "fastgrid:heartbeat"
"""The last heartbeat (Unix time) of a running trial on storages without Optuna's own."""
RUN = "fastgrid:run"
"""The id of the run that started the trial (its registration says whether that run is alive)."""

# -- trial user attrs -------------------------------------------------------------------------------
KEY = "key"
"""The trial key of the point (canonical hash): equal points share it."""
PARAMS = "params"
"""The point's flat params, stored when Optuna's params cannot hold them exactly."""
METRICS = "metrics"
FEASIBLE = "feasible"
CONSTRAINTS = "constraints"
"""One value per ``require`` constraint, <= 0 when it holds (Optuna's constraint convention)."""
INFEASIBLE = "infeasible"
"""The ``require`` constraints a trial broke."""
REASON = "reason"
REUSED = "reused"
"""The number of the trial whose result this one reuses."""
FINGERPRINT = "fingerprint"
DURATION = "duration"
ATTEMPTS = "attempts"
RESULT_PATH = "result_path"
RETURNS = "returns"
"""The metrics key under which an objective may return its per-period returns series (a list,
array or pandas Series), and the trial user attr that holds it packed (``fastgrid.stats.
pack_returns``) for the trials a sweep keeps (``keep_returns``)."""
RETURNS_STATS = "returns_stats"
"""``{"periods", "sharpe", "skew", "kurtosis"}`` of a trial's returns series (per period): stored
for every trial that returned one, so the deflated Sharpe ratio needs no stored series."""
