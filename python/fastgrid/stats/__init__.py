"""Statistics that say how much of a sweep's best score is selection luck.

Pure functions over numpy arrays (``docs/stats.md`` explains each number, its formula and its
assumptions): the Sharpe ratio and its standard error under non-normal returns, the probabilistic
Sharpe ratio, the expected maximum Sharpe ratio of N skill-less trials, the deflated Sharpe ratio
(Bailey & López de Prado 2014) and the probability of backtest overfitting by combinatorially
symmetric cross-validation (Bailey, Borwein, López de Prado & Zhu 2016).
"""

from fastgrid.stats._pbo import PBOResult, pbo
from fastgrid.stats._sharpe import (
    ReturnsSummary,
    deflated_sharpe_ratio,
    describe_returns,
    expected_maximum_sharpe,
    probabilistic_sharpe_ratio,
    sharpe_ratio,
    sharpe_ratio_standard_error,
)

__all__ = [
    "PBOResult",
    "ReturnsSummary",
    "deflated_sharpe_ratio",
    "describe_returns",
    "expected_maximum_sharpe",
    "pbo",
    "probabilistic_sharpe_ratio",
    "sharpe_ratio",
    "sharpe_ratio_standard_error",
]
