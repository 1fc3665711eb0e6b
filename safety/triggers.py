"""The auto-pause triggers (DESIGN §6, issue 3): deterministic functions over explicit inputs.

Each trigger returns the check the decision records and, when it trips, a ``Trip`` the
caller turns into a pause (cool-down ``limits.cool_down_minutes``) and a safety event. The
daily loss limit never trips: its failed check stops entries at the gate, and the gate's
block is the event. Nothing here reads a clock, a database or the network.

Two triggers react to events rather than to a state: a losing streak and a bad fill pause
once, when the loss or the fill is new since the previous check. Were they re-judged as a
state, the streak that caused a pause would re-pause trading the moment its cool-down
ended, and a win could never come to end it. The others describe the market now (the
newest candle, the news, the last minute's errors) and trip as long as that lasts.
"""

import math
from dataclasses import dataclass
from typing import Literal

from core.candles import CandleWindow
from core.decision import SafetyCheck
from core.indicators import atr
from core.market_view import NewsItem
from core.sentiment import decayed_sentiment
from core.settings import RiskLimits, SafetySettings
from core.timeframes import format_timestamp
from core.trading import ClosedTrade, FillView, consecutive_losses

TriggerScope = Literal["global", "symbol"]

# The report's checks, in this order.
TRIGGER_NAMES = (
    "consecutive_losses",
    "daily_loss",
    "api_error_burst",
    "sentiment_collapse",
    "circuit_breaker",
    "slippage",
)
# Wilder's customary period: the "normal" range a one-candle move is measured against.
CIRCUIT_BREAKER_ATR_PERIOD = 14
# The sentiment drop rate is judged against the reading this long before as_of.
SENTIMENT_DROP_SPAN_MS = 3_600_000


@dataclass(frozen=True)
class Trip:
    """A tripped trigger: pause everything ("global") or ``symbol`` alone, saying why."""

    name: str
    scope: TriggerScope
    symbol: str | None
    reason: str


@dataclass(frozen=True)
class TriggerOutcome:
    check: SafetyCheck
    trip: Trip | None = None


@dataclass(frozen=True)
class DailyEquity:
    """One quote currency's equity now and at 00:00 UTC (core.timeframes.floor_to(as_of,
    86_400_000)), each marked at the prices of its instant."""

    quote: str
    at_day_start: float
    now: float


@dataclass(frozen=True)
class TriggerInputs:
    """What the triggers judge at ``as_of``; anything dated after it is ignored.

    ``previous_check_ms``: when the triggers last ran for this symbol; closed trades and fills
    after it are new (None: the first check, all are new). ``closed_trades``: every symbol's,
    oldest first (Ledger.closed_trades). ``api_error_times``: error instants, at least the
    last error window's (ApiErrorStore.times_since). ``news``: the symbol's items up to as_of.
    ``candles``: the symbol's closed candles, newest last. ``fills``: every symbol's, at
    least those since the previous check.
    """

    symbol: str
    as_of: int
    previous_check_ms: int | None
    closed_trades: tuple[ClosedTrade, ...]
    equity: DailyEquity
    api_error_times: tuple[int, ...]
    news: tuple[NewsItem, ...]
    candles: CandleWindow
    fills: tuple[FillView, ...]


@dataclass(frozen=True)
class TriggerReport:
    """Every trigger's check in TRIGGER_NAMES order, and the trips among them."""

    symbol: str
    as_of: int
    checks: tuple[SafetyCheck, ...]
    trips: tuple[Trip, ...]

    def __post_init__(self) -> None:
        # A report missing a check would let the gate skip it without a word.
        names = tuple(check.name for check in self.checks)
        if names != TRIGGER_NAMES:
            raise ValueError(f"trigger checks must be {TRIGGER_NAMES}, got {names}")


def evaluate_triggers(
    inputs: TriggerInputs, limits: RiskLimits, safety: SafetySettings
) -> TriggerReport:
    """Run every trigger (none short-circuits) in TRIGGER_NAMES order."""
    outcomes = (
        check_consecutive_losses(
            inputs.closed_trades, inputs.as_of, inputs.previous_check_ms, limits
        ),
        check_daily_loss(inputs.equity, limits),
        check_api_error_burst(
            inputs.api_error_times, inputs.as_of, safety.api_error_window_seconds * 1000, limits
        ),
        check_sentiment_collapse(inputs.symbol, inputs.news, inputs.as_of, limits),
        check_circuit_breaker(inputs.symbol, inputs.candles, limits),
        check_slippage(inputs.fills, inputs.as_of, inputs.previous_check_ms, limits),
    )
    return TriggerReport(
        symbol=inputs.symbol,
        as_of=inputs.as_of,
        checks=tuple(outcome.check for outcome in outcomes),
        trips=tuple(outcome.trip for outcome in outcomes if outcome.trip is not None),
    )


def triggers_off(symbol: str, as_of: int) -> TriggerReport:
    """The report of a research backtest run with the triggers switched off: every check
    passes, saying so, and nothing trips. Never used outside a backtest."""
    detail = "off: research backtest run with --no-triggers"
    checks = tuple(SafetyCheck(name=name, passed=True, detail=detail) for name in TRIGGER_NAMES)
    return TriggerReport(symbol=symbol, as_of=as_of, checks=checks, trips=())


def check_consecutive_losses(
    trades: tuple[ClosedTrade, ...], as_of: int, previous_check_ms: int | None, limits: RiskLimits
) -> TriggerOutcome:
    """Trips (global) when the trade that made the losing streak reach the limit, or a
    further loss while it lasts, closed since the previous check."""
    known = [trade for trade in trades if trade.closed_at <= as_of]
    streak = consecutive_losses(known)
    detail = f"{streak} losing trades in a row (pause at {limits.max_consecutive_losses})"
    if streak < limits.max_consecutive_losses:
        return _passed("consecutive_losses", detail)
    last = known[-1].closed_at
    detail += f"; the last closed {format_timestamp(last)}"
    if not _is_new(last, as_of, previous_check_ms):
        return _passed("consecutive_losses", detail + ", before the previous check: acted on then")
    return _tripped("consecutive_losses", "global", None, detail)


def check_daily_loss(equity: DailyEquity, limits: RiskLimits) -> TriggerOutcome:
    """Fails (entries stop; no pause) once the day's change reaches -daily_loss_limit."""
    limit = limits.daily_loss_limit_fraction
    if equity.at_day_start <= 0.0:
        detail = f"no {equity.quote} equity at 00:00 UTC ({equity.at_day_start:.6g}): unmeasurable"
        return TriggerOutcome(SafetyCheck(name="daily_loss", passed=False, detail=detail))
    change = (equity.now - equity.at_day_start) / equity.at_day_start
    detail = (
        f"{equity.quote} equity {equity.now:.6g} vs {equity.at_day_start:.6g} at 00:00 UTC: "
        f"{change:+.2%} (entries stop at {-limit:.2%})"
    )
    return TriggerOutcome(SafetyCheck(name="daily_loss", passed=change > -limit, detail=detail))


def check_api_error_burst(
    error_times: tuple[int, ...], as_of: int, window_ms: int, limits: RiskLimits
) -> TriggerOutcome:
    """Trips (global) on more than ``api_error_burst`` errors in (as_of - window, as_of]."""
    count = sum(1 for at in error_times if as_of - window_ms < at <= as_of)
    detail = (
        f"{count} API errors in the {window_ms // 1000} s up to as_of "
        f"(pause above {limits.api_error_burst})"
    )
    if count <= limits.api_error_burst:
        return _passed("api_error_burst", detail)
    return _tripped("api_error_burst", "global", None, detail)


def check_sentiment_collapse(
    symbol: str, news: tuple[NewsItem, ...], as_of: int, limits: RiskLimits
) -> TriggerOutcome:
    """Trips (the symbol) when the decayed sentiment is below the floor, or has fallen by
    more than the allowed drop since an hour earlier (each reading from the items published
    by its own instant). Without scored news there is nothing to judge: it passes."""
    now = decayed_sentiment(news, as_of)
    if now is None:
        return _passed("sentiment_collapse", "no scored news")
    earlier = decayed_sentiment(news, as_of - SENTIMENT_DROP_SPAN_MS)
    floor = limits.sentiment_floor
    detail = f"sentiment {now.score:+.3f} from {now.item_count} items (floor {floor:+.3f})"
    collapsed = now.score < floor
    if earlier is None:
        detail += "; an hour earlier: no scored news"
    else:
        drop = earlier.score - now.score
        detail += (
            f"; an hour earlier {earlier.score:+.3f} from {earlier.item_count} items, "
            f"drop {drop:.3f} (limit {limits.sentiment_max_drop_per_hour:.3f} per hour)"
        )
        collapsed = collapsed or drop > limits.sentiment_max_drop_per_hour
    if not collapsed:
        return _passed("sentiment_collapse", detail)
    return _tripped("sentiment_collapse", "symbol", symbol, detail)


def check_circuit_breaker(symbol: str, candles: CandleWindow, limits: RiskLimits) -> TriggerOutcome:
    """Trips (the symbol) when the newest closed candle's true range exceeds k × ATR(14) of
    the candles before it, or its close moved more than the allowed fraction from the
    previous close. Too few candles to measure fails (entries stop) without a pause.

    An ATR of 0 (nothing moved for 14 candles) makes any move beyond any multiple: a feed
    frozen that long and then moving is abnormal too.
    """
    needed = CIRCUIT_BREAKER_ATR_PERIOD + 2  # ATR over the candles before needs period + 1
    if len(candles) < needed:
        detail = (
            f"need {needed} closed candles to measure the newest one's move, have {len(candles)}"
        )
        return TriggerOutcome(SafetyCheck(name="circuit_breaker", passed=False, detail=detail))
    high, low, close = float(candles.high[-1]), float(candles.low[-1]), float(candles.close[-1])
    previous = float(candles.close[-2])
    true_range = max(high - low, abs(high - previous), abs(low - previous))
    before = atr(
        candles.high[:-1], candles.low[:-1], candles.close[:-1], CIRCUIT_BREAKER_ATR_PERIOD
    )
    normal = float(before[-1])
    multiple = true_range / normal if normal > 0.0 else math.inf
    move = close / previous - 1.0
    detail = (
        f"candle closed {format_timestamp(int(candles.open_time[-1]) + candles.timeframe_ms)}: "
        f"true range {true_range:.6g} = {multiple:.2f} × ATR({CIRCUIT_BREAKER_ATR_PERIOD}) "
        f"{normal:.6g} (limit {limits.circuit_breaker_atr_multiple:g} ×); close moved "
        f"{move:+.2%} (limit ±{limits.circuit_breaker_move_fraction:.2%})"
    )
    calm = true_range <= limits.circuit_breaker_atr_multiple * normal
    if calm and abs(move) <= limits.circuit_breaker_move_fraction:
        return _passed("circuit_breaker", detail)
    return _tripped("circuit_breaker", "symbol", symbol, detail)


def check_slippage(
    fills: tuple[FillView, ...], as_of: int, previous_check_ms: int | None, limits: RiskLimits
) -> TriggerOutcome:
    """Trips (global) when a fill since the previous check slipped (adversely) beyond the
    limit; a fill better than the reference price is no cost and no alarm."""
    new = [fill for fill in fills if _is_new(fill.filled_at, as_of, previous_check_ms)]
    limit = limits.max_slippage_fraction
    if not new:
        return _passed("slippage", f"no fills since the previous check (limit {limit:.2%})")
    over = [fill for fill in new if fill.slippage_fraction > limit]
    if not over:
        worst = max(fill.slippage_fraction for fill in new)
        detail = f"{len(new)} fills since the previous check, worst slippage {worst:+.2%}"
        return _passed("slippage", f"{detail} (limit {limit:.2%})")
    detail = "; ".join(
        # No order id: ids are random, and the decision record must not be.
        f"{fill.symbol} {fill.side} booked {format_timestamp(fill.filled_at)} "
        f"with slippage {fill.slippage_fraction:+.2%}"
        for fill in over
    )
    detail += f" (limit {limit:.2%})"
    return _tripped("slippage", "global", None, detail)


def _is_new(at: int, as_of: int, previous_check_ms: int | None) -> bool:
    """Happened after the previous check and by as_of (never after: DESIGN §3)."""
    return at <= as_of and (previous_check_ms is None or at > previous_check_ms)


def _passed(name: str, detail: str) -> TriggerOutcome:
    return TriggerOutcome(SafetyCheck(name=name, passed=True, detail=detail))


def _tripped(name: str, scope: TriggerScope, symbol: str | None, detail: str) -> TriggerOutcome:
    where = "all symbols" if symbol is None else symbol
    trip = Trip(name=name, scope=scope, symbol=symbol, reason=f"{name} pauses {where}: {detail}")
    return TriggerOutcome(SafetyCheck(name=name, passed=False, detail=detail), trip)
