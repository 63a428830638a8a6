"""The runner: a sweep's trials evaluated, recorded and resumed on an Optuna study.

:class:`Sweep` (from keywords or a sweep file) runs or resumes a sweep and returns a
:class:`SweepResult`. Inside: a :class:`SweepPlan` (the validated definition every worker gets),
one :class:`Worker` loop per worker, the one trial evaluation that runs and ``[validate]`` share,
and the progress :class:`Reporter`; :class:`WalkForward` runs a ``[walkforward]`` sweep fold by fold.
"""

from typing import TYPE_CHECKING

from fastgrid.lazy import lazy_exports

if TYPE_CHECKING:
    from fastgrid.runner._batch import BatchSweepResult
    from fastgrid.runner._describe import BARE_LIST_HINT
    from fastgrid.runner._plan import SweepPlan
    from fastgrid.runner._progress import Reporter, TrialEvent
    from fastgrid.runner._result import SweepResult
    from fastgrid.runner._signals import Interrupted, exit_status, leave
    from fastgrid.runner._sweep import Sweep
    from fastgrid.runner._validate import apply_override
    from fastgrid.runner._walkforward import WalkForward
    from fastgrid.runner._worker import Worker, quiet_optuna
else:
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "fastgrid.runner._batch": ["BatchSweepResult"],
            "fastgrid.runner._describe": ["BARE_LIST_HINT"],
            "fastgrid.runner._plan": ["SweepPlan"],
            "fastgrid.runner._progress": ["Reporter", "TrialEvent"],
            "fastgrid.runner._result": ["SweepResult"],
            "fastgrid.runner._signals": ["Interrupted", "exit_status", "leave"],
            "fastgrid.runner._sweep": ["Sweep"],
            "fastgrid.runner._validate": ["apply_override"],
            "fastgrid.runner._walkforward": ["WalkForward"],
            "fastgrid.runner._worker": ["Worker", "quiet_optuna"],
        },
    )

__all__ = [
    "BARE_LIST_HINT",
    "BatchSweepResult",
    "Interrupted",
    "Reporter",
    "Sweep",
    "SweepPlan",
    "SweepResult",
    "TrialEvent",
    "WalkForward",
    "Worker",
    "apply_override",
    "exit_status",
    "leave",
    "quiet_optuna",
]
