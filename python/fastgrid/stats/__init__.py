"""Statistics that say how much of a sweep's best score is selection luck.

Pure functions over numpy arrays (``docs/stats.md`` explains each number, its formula and its
assumptions): the Sharpe ratio and its standard error under non-normal returns, the probabilistic
Sharpe ratio, the expected maximum Sharpe ratio of N skill-less trials, the deflated Sharpe ratio
(Bailey & López de Prado 2014) and the probability of backtest overfitting by combinatorially
symmetric cross-validation (Bailey, Borwein, López de Prado & Zhu 2016); and the pieces of a
walk-forward analysis: its folds, the rank correlation of in- and out-of-sample scores, and a
compact text form of a returns series for storing it with a trial.
"""

from typing import TYPE_CHECKING

from fastgrid.lazy import lazy_exports

if TYPE_CHECKING:
    from fastgrid.stats._pbo import PBOResult, pbo
    from fastgrid.stats._ranks import rank_correlation
    from fastgrid.stats._series import pack_returns, returns_series, unpack_returns
    from fastgrid.stats._sharpe import (
        ReturnsSummary,
        deflated_sharpe_ratio,
        describe_returns,
        expected_maximum_sharpe,
        probabilistic_sharpe_ratio,
        sharpe_ratio,
        sharpe_ratio_standard_error,
    )
    from fastgrid.stats._walkforward import Fold, explicit_folds, walk_forward_folds
else:
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "fastgrid.stats._pbo": ["PBOResult", "pbo"],
            "fastgrid.stats._ranks": ["rank_correlation"],
            "fastgrid.stats._series": ["pack_returns", "returns_series", "unpack_returns"],
            "fastgrid.stats._sharpe": [
                "ReturnsSummary",
                "deflated_sharpe_ratio",
                "describe_returns",
                "expected_maximum_sharpe",
                "probabilistic_sharpe_ratio",
                "sharpe_ratio",
                "sharpe_ratio_standard_error",
            ],
            "fastgrid.stats._walkforward": ["Fold", "explicit_folds", "walk_forward_folds"],
        },
    )

__all__ = [
    "Fold",
    "PBOResult",
    "ReturnsSummary",
    "deflated_sharpe_ratio",
    "describe_returns",
    "expected_maximum_sharpe",
    "explicit_folds",
    "pack_returns",
    "pbo",
    "probabilistic_sharpe_ratio",
    "rank_correlation",
    "returns_series",
    "sharpe_ratio",
    "sharpe_ratio_standard_error",
    "unpack_returns",
    "walk_forward_folds",
]
