"""A pydantic model of ``strategy_default.json``, as a user would write one for ``ConfigCache(model=...)``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Strategy(_Section):
    name: str
    version: int = Field(ge=1)
    description: str = ""
    enabled: bool = True


class Cache(_Section):
    enabled: bool
    dir: str
    max_size_mb: int = Field(gt=0)


class Data(_Section):
    source: Literal["parquet", "csv", "feather"]
    root: str
    timeframe: str
    start: str
    end: str
    timezone: str
    lookback_bars: int = Field(gt=0)
    warmup_bars: int = Field(ge=0)
    fill_gaps: bool
    max_gap_bars: int = Field(ge=0)
    price_field: str
    adjust_splits: bool
    cache: Cache


class Universe(_Section):
    symbols: list[str] = Field(min_length=1)
    quote_currency: str
    min_daily_volume_usd: float = Field(ge=0)
    min_history_days: int = Field(ge=0)
    exclude: list[str]
    rebalance_every_bars: int = Field(gt=0)
    max_pairs: int = Field(gt=0)


class HedgeRatio(_Section):
    method: Literal["rolling_ols", "kalman", "static"]
    window: int = Field(gt=1)
    min_r2: float = Field(ge=0, le=1)
    recompute_every: int = Field(gt=0)


class Cointegration(_Section):
    test: Literal["engle_granger", "johansen"]
    pvalue_max: float = Field(gt=0, lt=1)
    window: int = Field(gt=1)
    retest_every: int = Field(gt=0)


class HalfLife(_Section):
    min_bars: int = Field(gt=0)
    max_bars: int = Field(gt=0)
    use: bool


class Smoothing(_Section):
    kind: Literal["ema", "sma", "none"]
    span: int = Field(gt=0)


class Signals(_Section):
    fast_window: int = Field(gt=0)
    slow_window: int = Field(gt=0)
    zscore_window: int = Field(gt=1)
    hedge_ratio: HedgeRatio
    cointegration: Cointegration
    half_life: HalfLife
    smoothing: Smoothing


class Thresholds(_Section):
    entry_z: float = Field(gt=0)
    exit_z: float = Field(ge=0)
    stop_z: float = Field(gt=0)
    reentry_z: float = Field(ge=0)
    min_spread_bps: float = Field(ge=0)
    max_spread_bps: float = Field(gt=0)
    confirm_bars: int = Field(ge=0)
    symmetric: bool


class VolatilityFilter(_Section):
    enabled: bool
    window: int = Field(gt=1)
    min_atr_pct: float = Field(ge=0)
    max_atr_pct: float = Field(gt=0)


class VolumeFilter(_Section):
    enabled: bool
    window: int = Field(gt=1)
    min_ratio: float = Field(ge=0)


class TrendFilter(_Section):
    enabled: bool
    window: int = Field(gt=1)
    max_slope: float


class SessionFilter(_Section):
    enabled: bool
    hours: list[int]
    weekdays: list[int]


class FundingFilter(_Section):
    enabled: bool
    max_abs_rate: float = Field(ge=0)


class Filters(_Section):
    volatility: VolatilityFilter
    volume: VolumeFilter
    trend: TrendFilter
    session: SessionFilter
    funding: FundingFilter


class ScaleIn(_Section):
    enabled: bool
    steps: int = Field(gt=0)
    step_z: float = Field(gt=0)
    weights: list[float]


class Entry(_Section):
    order_type: Literal["limit", "market"]
    limit_offset_bps: float = Field(ge=0)
    timeout_bars: int = Field(gt=0)
    scale_in: ScaleIn
    allow_short: bool
    cooldown_bars: int = Field(ge=0)


class Trailing(_Section):
    enabled: bool
    activation_pct: float = Field(ge=0)
    distance_pct: float = Field(gt=0)
    step_pct: float = Field(ge=0)


class Partial(_Section):
    enabled: bool
    levels: list[float]
    fractions: list[float]


class Exit(_Section):
    take_profit_pct: float = Field(gt=0, lt=1)
    stop_loss_pct: float = Field(gt=0, lt=1)
    max_holding_bars: int = Field(gt=0)
    time_stop: bool
    trailing: Trailing
    partial: Partial
    exit_on_signal_flip: bool
    order_type: Literal["limit", "market"]


class KillSwitch(_Section):
    enabled: bool
    drawdown: float = Field(gt=0, lt=1)
    cooldown_bars: int = Field(ge=0)


class VaR(_Section):
    enabled: bool
    confidence: float = Field(gt=0, lt=1)
    window: int = Field(gt=1)
    limit: float = Field(gt=0)


class Risk(_Section):
    stop_loss: float = Field(gt=0, lt=1)
    max_drawdown: float = Field(gt=0, lt=1)
    daily_loss_limit: float = Field(gt=0, lt=1)
    max_positions: int = Field(gt=0)
    max_leverage: float = Field(gt=0)
    max_exposure_per_symbol: float = Field(gt=0, le=1)
    max_correlation: float = Field(ge=-1, le=1)
    kill_switch: KillSwitch
    var: VaR


class Sizing(_Section):
    method: Literal["volatility_target", "fixed", "kelly"]
    target_vol_annual: float = Field(gt=0)
    kelly_fraction: float = Field(gt=0, le=1)
    min_notional: float = Field(ge=0)
    max_notional: float = Field(gt=0)
    round_lot: bool
    vol_window: int = Field(gt=1)


class Execution(_Section):
    venue: str
    latency_ms: int = Field(ge=0)
    slippage_bps: float = Field(ge=0)
    slippage_model: Literal["fixed", "sqrt_impact", "linear"]
    impact_coef: float = Field(ge=0)
    partial_fills: bool
    fill_probability: float = Field(gt=0, le=1)
    reject_rate: float = Field(ge=0, lt=1)
    use_bid_ask: bool


class Costs(_Section):
    maker_fee_bps: float
    taker_fee_bps: float = Field(ge=0)
    funding: bool
    borrow_rate_annual: float = Field(ge=0)
    min_fee: float = Field(ge=0)


class Rebalance(_Section):
    enabled: bool
    every_bars: int = Field(gt=0)
    threshold: float = Field(ge=0)


class Portfolio(_Section):
    initial_capital: float = Field(gt=0)
    currency: str
    compounding: bool
    cash_buffer: float = Field(ge=0, lt=1)
    rebalance: Rebalance


class Regime(_Section):
    enabled: bool
    model: Literal["hmm", "threshold", "none"]
    states: int = Field(gt=0)
    features: list[str]
    fit_window: int = Field(gt=1)
    refit_every: int = Field(gt=0)
    allowed_states: list[int]


class WalkForward(_Section):
    enabled: bool
    train_bars: int = Field(gt=0)
    test_bars: int = Field(gt=0)
    step_bars: int = Field(gt=0)
    anchored: bool


class MonteCarlo(_Section):
    enabled: bool
    runs: int = Field(gt=0)
    block_bars: int = Field(gt=0)


class Backtest(_Section):
    seed: int
    walk_forward: WalkForward
    monte_carlo: MonteCarlo
    benchmark: str
    annualization: int = Field(gt=0)
    risk_free_rate: float


class Reporting(_Section):
    metrics: list[str]
    save_trades: bool
    save_equity: bool
    plots: bool
    output_format: Literal["json", "csv", "parquet"]
    precision: int = Field(ge=0)


class Logging(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"]
    file: str | None
    json_: bool = Field(alias="json")
    progress: bool


class StrategyConfig(_Section):
    strategy: Strategy
    data: Data
    universe: Universe
    signals: Signals
    thresholds: Thresholds
    filters: Filters
    entry: Entry
    exit: Exit
    risk: Risk
    sizing: Sizing
    execution: Execution
    costs: Costs
    portfolio: Portfolio
    regime: Regime
    backtest: Backtest
    reporting: Reporting
    logging: Logging
