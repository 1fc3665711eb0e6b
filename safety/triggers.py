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

Each trigger is measured in numbers first (a small NamedTuple: what it counted, whether
it passes, whether it trips) and described in words after. ``rule_triggers`` measures all
of them and rules, building no text and no model object, so a backtest can rule bar after
bar; ``evaluate_triggers`` is that ruling with each check's words, the report a decision
records.
"""

import math
from dataclasses import dataclass, fields
from typing import Literal, NamedTuple

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
# The newest candle and, before it, the period + 1 candles an ATR over them needs.
CIRCUIT_BREAKER_MIN_CANDLES = CIRCUIT_BREAKER_ATR_PERIOD + 2
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
class TriggerFacts:
    """What the triggers judge at ``as_of`` besides the candles; anything dated after it is
    ignored.

    ``previous_check_ms``: when the triggers last ran for this symbol; closed trades and fills
    after it are new (None: the first check, all are new). ``closed_trades``: every symbol's,
    oldest first (Ledger.closed_trades). ``api_error_times``: error instants, at least the
    last error window's (ApiErrorStore.times_since). ``news``: the symbol's items up to as_of.
    ``fills``: every symbol's, at least those since the previous check.
    """

    symbol: str
    as_of: int
    previous_check_ms: int | None
    closed_trades: tuple[ClosedTrade, ...]
    equity: DailyEquity
    api_error_times: tuple[int, ...]
    news: tuple[NewsItem, ...]
    fills: tuple[FillView, ...]


@dataclass(frozen=True)
class TriggerInputs(TriggerFacts):
    """The facts and ``candles``: the symbol's closed candles, newest last, which the
    circuit breaker's reading is taken from."""

    candles: CandleWindow


def with_candles(facts: TriggerFacts, candles: CandleWindow) -> TriggerInputs:
    """The facts with the candles the circuit breaker's reading is taken from."""
    given = {field.name: getattr(facts, field.name) for field in fields(facts)}
    return TriggerInputs(**given, candles=candles)


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


# --- the measures: each trigger's numbers, whether it passes, whether it trips ----------------


class LossStreak(NamedTuple):
    passed: bool
    trips: bool
    streak: int
    # When the streak's newest loss closed; None while the streak is below the limit.
    last_closed_at: int | None


class DayChange(NamedTuple):
    passed: bool
    trips: bool  # never: a day's loss stops entries at the gate, it does not pause
    # The equity's change since 00:00 UTC as a fraction; None without equity at 00:00 UTC.
    change: float | None


class ErrorBurst(NamedTuple):
    passed: bool
    trips: bool
    error_count: int  # in the window up to as_of


class SentimentMove(NamedTuple):
    """The decayed sentiment now and an hour earlier: score (NaN) and 0 items when a
    reading had no scored news."""

    passed: bool
    trips: bool
    score: float
    items: int
    earlier_score: float
    earlier_items: int
    drop: float  # earlier - now; NaN unless both readings exist


class CircuitReading(NamedTuple):
    """What the circuit breaker measures of the newest closed candle."""

    true_range: float
    atr: float  # ATR(CIRCUIT_BREAKER_ATR_PERIOD) of the candles before it
    close: float
    previous_close: float
    close_time: int


class CircuitMove(NamedTuple):
    passed: bool
    trips: bool  # not without a reading: too few candles fail without a pause
    reading: CircuitReading | None
    multiple: float  # true range / ATR (inf for an ATR of 0); NaN without a reading
    move: float  # close / previous close - 1; NaN without a reading


class SlippageScan(NamedTuple):
    passed: bool
    trips: bool
    new_fills: int  # since the previous check
    worst: float  # the new fills' worst slippage; NaN without new fills
    over: tuple[FillView, ...]  # the new fills that slipped beyond the limit, in order


# The measures of nothing to measure, made once: a backtest meets them on most bars.
_NO_SCORED_NEWS = SentimentMove(True, False, math.nan, 0, math.nan, 0, math.nan)
_NO_READING = CircuitMove(False, False, None, math.nan, math.nan)
_NO_NEW_FILLS = SlippageScan(True, False, 0, math.nan, ())

TriggerMeasure = LossStreak | DayChange | ErrorBurst | SentimentMove | CircuitMove | SlippageScan


class TriggerRuling(NamedTuple):
    """Each trigger's pass in TRIGGER_NAMES order, the names of those that trip, and the
    measures the words describe."""

    passed: tuple[bool, ...]
    trips: tuple[str, ...]
    losses: LossStreak
    day_loss: DayChange
    errors: ErrorBurst
    sentiment: SentimentMove
    circuit: CircuitMove
    slippage: SlippageScan


def rule_triggers(
    inputs: TriggerFacts,
    limits: RiskLimits,
    safety: SafetySettings,
    circuit: CircuitReading | None,
) -> TriggerRuling:
    """Measure every trigger (none short-circuits) and rule. ``circuit`` is the newest
    candle's reading (circuit_reading of the window; None: too few candles), handed in so
    a backtest can take every bar's at once."""
    as_of, previous = inputs.as_of, inputs.previous_check_ms
    losses = loss_streak(inputs.closed_trades, as_of, previous, limits)
    day_loss = day_change(inputs.equity, limits)
    errors = error_burst(
        inputs.api_error_times, as_of, safety.api_error_window_seconds * 1000, limits
    )
    sentiment = sentiment_move(inputs.news, as_of, limits)
    breaker = circuit_move(circuit, limits)
    slippage = slippage_scan(inputs.fills, as_of, previous, limits)
    passed = (
        losses.passed,
        day_loss.passed,
        errors.passed,
        sentiment.passed,
        breaker.passed,
        slippage.passed,
    )
    trips: tuple[str, ...] = ()
    if not all(passed):
        measures: tuple[TriggerMeasure, ...] = (
            losses,
            day_loss,
            errors,
            sentiment,
            breaker,
            slippage,
        )
        trips = tuple(
            name for name, measure in zip(TRIGGER_NAMES, measures, strict=True) if measure.trips
        )
    return TriggerRuling(passed, trips, losses, day_loss, errors, sentiment, breaker, slippage)


def loss_streak(
    trades: tuple[ClosedTrade, ...], as_of: int, previous_check_ms: int | None, limits: RiskLimits
) -> LossStreak:
    """Trips when the trade that made the losing streak reach the limit, or a further loss
    while it lasts, closed since the previous check."""
    known = [trade for trade in trades if trade.closed_at <= as_of]
    streak = consecutive_losses(known)
    if streak < limits.max_consecutive_losses:
        return LossStreak(True, False, streak, None)
    last = known[-1].closed_at
    new = _is_new(last, as_of, previous_check_ms)
    return LossStreak(not new, new, streak, last)


def day_change(equity: DailyEquity, limits: RiskLimits) -> DayChange:
    """Fails once the day's change reaches -daily_loss_limit, and without equity at 00:00
    UTC to measure it against."""
    if equity.at_day_start <= 0.0:
        return DayChange(False, False, None)
    change = (equity.now - equity.at_day_start) / equity.at_day_start
    return DayChange(change > -limits.daily_loss_limit_fraction, False, change)


def error_burst(
    error_times: tuple[int, ...], as_of: int, window_ms: int, limits: RiskLimits
) -> ErrorBurst:
    """Trips on more than ``api_error_burst`` errors in (as_of - window, as_of]."""
    count = len([at for at in error_times if as_of - window_ms < at <= as_of])
    calm = count <= limits.api_error_burst
    return ErrorBurst(calm, not calm, count)


def sentiment_move(news: tuple[NewsItem, ...], as_of: int, limits: RiskLimits) -> SentimentMove:
    """Trips when the decayed sentiment is below the floor, or has fallen by more than the
    allowed drop since an hour earlier (each reading from the items published by its own
    instant). Without scored news there is nothing to judge: it passes."""
    now = decayed_sentiment(news, as_of)
    if now is None:
        return _NO_SCORED_NEWS
    earlier = decayed_sentiment(news, as_of - SENTIMENT_DROP_SPAN_MS)
    collapsed = now.score < limits.sentiment_floor
    if earlier is None:
        return SentimentMove(
            not collapsed, collapsed, now.score, now.item_count, math.nan, 0, math.nan
        )
    drop = earlier.score - now.score
    collapsed = collapsed or drop > limits.sentiment_max_drop_per_hour
    return SentimentMove(
        not collapsed,
        collapsed,
        now.score,
        now.item_count,
        earlier.score,
        earlier.item_count,
        drop,
    )


def circuit_reading(candles: CandleWindow) -> CircuitReading | None:
    """The newest closed candle's true range and close against the candles before it;
    None with fewer than CIRCUIT_BREAKER_MIN_CANDLES."""
    if len(candles) < CIRCUIT_BREAKER_MIN_CANDLES:
        return None
    before = atr(
        candles.high[:-1], candles.low[:-1], candles.close[:-1], CIRCUIT_BREAKER_ATR_PERIOD
    )
    return newest_candle_reading(
        float(candles.high[-1]),
        float(candles.low[-1]),
        float(candles.close[-1]),
        float(candles.close[-2]),
        int(candles.open_time[-1]) + candles.timeframe_ms,
        float(before[-1]),
    )


def newest_candle_reading(
    high: float, low: float, close: float, previous: float, close_time: int, atr_before: float
) -> CircuitReading:
    """The reading of a candle given its prices, the previous close and the ATR of the
    candles before it (a backtest takes every bar's ATR in one block)."""
    true_range = max(high - low, abs(high - previous), abs(low - previous))
    return CircuitReading(true_range, atr_before, close, previous, close_time)


def circuit_move(reading: CircuitReading | None, limits: RiskLimits) -> CircuitMove:
    """Trips when the newest closed candle's true range exceeds k × ATR of the candles
    before it, or its close moved more than the allowed fraction from the previous close.
    No reading (too few candles to measure) fails, stopping entries, without a pause.

    An ATR of 0 (nothing moved for 14 candles) makes any move beyond any multiple: a feed
    frozen that long and then moving is abnormal too.
    """
    if reading is None:
        return _NO_READING
    normal = reading.atr
    multiple = reading.true_range / normal if normal > 0.0 else math.inf
    move = reading.close / reading.previous_close - 1.0
    calm = reading.true_range <= limits.circuit_breaker_atr_multiple * normal
    passed = calm and abs(move) <= limits.circuit_breaker_move_fraction
    return CircuitMove(passed, not passed, reading, multiple, move)


def slippage_scan(
    fills: tuple[FillView, ...], as_of: int, previous_check_ms: int | None, limits: RiskLimits
) -> SlippageScan:
    """Trips when a fill since the previous check slipped (adversely) beyond the limit; a
    fill better than the reference price is no cost and no alarm."""
    new = [fill for fill in fills if _is_new(fill.filled_at, as_of, previous_check_ms)]
    if not new:
        return _NO_NEW_FILLS
    limit = limits.max_slippage_fraction
    over = tuple(fill for fill in new if fill.slippage_fraction > limit)
    worst = max(fill.slippage_fraction for fill in new)
    return SlippageScan(not over, bool(over), len(new), worst, over)


def _is_new(at: int, as_of: int, previous_check_ms: int | None) -> bool:
    """Happened after the previous check and by as_of (never after: DESIGN §3)."""
    return at <= as_of and (previous_check_ms is None or at > previous_check_ms)


# --- the words: each measure described, as the decision records it ----------------------------


def evaluate_triggers(
    inputs: TriggerInputs, limits: RiskLimits, safety: SafetySettings
) -> TriggerReport:
    """Rule every trigger on the inputs and describe each, in TRIGGER_NAMES order."""
    ruling = rule_triggers(inputs, limits, safety, circuit_reading(inputs.candles))
    symbol = inputs.symbol
    details = (
        losses_words(ruling.losses, limits),
        day_loss_words(ruling.day_loss, inputs.equity, limits),
        errors_words(ruling.errors, safety.api_error_window_seconds * 1000, limits),
        sentiment_words(ruling.sentiment, limits),
        circuit_words(ruling.circuit, len(inputs.candles), limits),
        slippage_words(ruling.slippage, limits),
    )
    checks = tuple(
        [
            SafetyCheck(name=name, passed=passed, detail=detail)
            for name, passed, detail in zip(TRIGGER_NAMES, ruling.passed, details, strict=True)
        ]
    )
    trips = tuple(
        [
            _trip(name, symbol, detail)
            for name, detail in zip(TRIGGER_NAMES, details, strict=True)
            if name in ruling.trips
        ]
    )
    return TriggerReport(symbol=symbol, as_of=inputs.as_of, checks=checks, trips=trips)


def triggers_off(symbol: str, as_of: int) -> TriggerReport:
    """The report of a research backtest run with the triggers switched off: every check
    passes, saying so, and nothing trips. Never used outside a backtest."""
    detail = "off: research backtest run with --no-triggers"
    checks = tuple(SafetyCheck(name=name, passed=True, detail=detail) for name in TRIGGER_NAMES)
    return TriggerReport(symbol=symbol, as_of=as_of, checks=checks, trips=())


def check_consecutive_losses(
    trades: tuple[ClosedTrade, ...], as_of: int, previous_check_ms: int | None, limits: RiskLimits
) -> TriggerOutcome:
    """The losing streak's check (loss_streak) and trip."""
    streak = loss_streak(trades, as_of, previous_check_ms, limits)
    return _outcome("consecutive_losses", streak, losses_words(streak, limits))


def losses_words(streak: LossStreak, limits: RiskLimits) -> str:
    detail = f"{streak.streak} losing trades in a row (pause at {limits.max_consecutive_losses})"
    if streak.last_closed_at is None:
        return detail
    detail += f"; the last closed {format_timestamp(streak.last_closed_at)}"
    if streak.passed:
        detail += ", before the previous check: acted on then"
    return detail


def check_daily_loss(equity: DailyEquity, limits: RiskLimits) -> TriggerOutcome:
    """The day's change's check (day_change): it stops entries, no pause."""
    day = day_change(equity, limits)
    return _outcome("daily_loss", day, day_loss_words(day, equity, limits))


def day_loss_words(day: DayChange, equity: DailyEquity, limits: RiskLimits) -> str:
    if day.change is None:
        return f"no {equity.quote} equity at 00:00 UTC ({equity.at_day_start:.6g}): unmeasurable"
    return (
        f"{equity.quote} equity {equity.now:.6g} vs {equity.at_day_start:.6g} at 00:00 UTC: "
        f"{day.change:+.2%} (entries stop at {-limits.daily_loss_limit_fraction:.2%})"
    )


def check_api_error_burst(
    error_times: tuple[int, ...], as_of: int, window_ms: int, limits: RiskLimits
) -> TriggerOutcome:
    """The API errors' check (error_burst) and trip."""
    burst = error_burst(error_times, as_of, window_ms, limits)
    return _outcome("api_error_burst", burst, errors_words(burst, window_ms, limits))


def errors_words(burst: ErrorBurst, window_ms: int, limits: RiskLimits) -> str:
    return (
        f"{burst.error_count} API errors in the {window_ms // 1000} s up to as_of "
        f"(pause above {limits.api_error_burst})"
    )


def check_sentiment_collapse(
    symbol: str, news: tuple[NewsItem, ...], as_of: int, limits: RiskLimits
) -> TriggerOutcome:
    """The sentiment's check (sentiment_move) and trip."""
    move = sentiment_move(news, as_of, limits)
    return _outcome("sentiment_collapse", move, sentiment_words(move, limits), symbol)


def sentiment_words(move: SentimentMove, limits: RiskLimits) -> str:
    if move.items == 0:
        return "no scored news"
    floor = limits.sentiment_floor
    detail = f"sentiment {move.score:+.3f} from {move.items} items (floor {floor:+.3f})"
    if move.earlier_items == 0:
        return detail + "; an hour earlier: no scored news"
    return detail + (
        f"; an hour earlier {move.earlier_score:+.3f} from {move.earlier_items} items, "
        f"drop {move.drop:.3f} (limit {limits.sentiment_max_drop_per_hour:.3f} per hour)"
    )


def check_circuit_breaker(symbol: str, candles: CandleWindow, limits: RiskLimits) -> TriggerOutcome:
    """The newest candle's check (circuit_move of its reading) and trip."""
    move = circuit_move(circuit_reading(candles), limits)
    return _outcome("circuit_breaker", move, circuit_words(move, len(candles), limits), symbol)


def circuit_words(move: CircuitMove, candle_count: int, limits: RiskLimits) -> str:
    reading = move.reading
    if reading is None:
        return (
            f"need {CIRCUIT_BREAKER_MIN_CANDLES} closed candles to measure the newest one's "
            f"move, have {candle_count}"
        )
    return (
        f"candle closed {format_timestamp(reading.close_time)}: "
        f"true range {reading.true_range:.6g} = {move.multiple:.2f} × "
        f"ATR({CIRCUIT_BREAKER_ATR_PERIOD}) {reading.atr:.6g} "
        f"(limit {limits.circuit_breaker_atr_multiple:g} ×); close moved "
        f"{move.move:+.2%} (limit ±{limits.circuit_breaker_move_fraction:.2%})"
    )


def check_slippage(
    fills: tuple[FillView, ...], as_of: int, previous_check_ms: int | None, limits: RiskLimits
) -> TriggerOutcome:
    """The new fills' check (slippage_scan) and trip."""
    scan = slippage_scan(fills, as_of, previous_check_ms, limits)
    return _outcome("slippage", scan, slippage_words(scan, limits))


def slippage_words(scan: SlippageScan, limits: RiskLimits) -> str:
    limit = f"(limit {limits.max_slippage_fraction:.2%})"
    if scan.new_fills == 0:
        return f"no fills since the previous check {limit}"
    if not scan.over:
        worst = f"worst slippage {scan.worst:+.2%}"
        return f"{scan.new_fills} fills since the previous check, {worst} {limit}"
    detail = "; ".join(
        # No order id: ids are random, and the decision record must not be.
        f"{fill.symbol} {fill.side} booked {format_timestamp(fill.filled_at)} "
        f"with slippage {fill.slippage_fraction:+.2%}"
        for fill in scan.over
    )
    return f"{detail} {limit}"


# What a trip pauses: the symbol for the market's own alarms, every symbol for the rest.
_PAUSES_THE_SYMBOL = frozenset({"sentiment_collapse", "circuit_breaker"})


def _trip(name: str, symbol: str | None, detail: str) -> Trip:
    """The trip of ``name``: of ``symbol`` alone when the trigger pauses a symbol."""
    if name in _PAUSES_THE_SYMBOL and symbol is not None:
        return Trip(name, "symbol", symbol, f"{name} pauses {symbol}: {detail}")
    return Trip(name, "global", None, f"{name} pauses all symbols: {detail}")


def _outcome(
    name: str, measure: TriggerMeasure, detail: str, symbol: str | None = None
) -> TriggerOutcome:
    """The check, passed as the measure says, and its trip when the measure trips."""
    check = SafetyCheck(name=name, passed=measure.passed, detail=detail)
    return TriggerOutcome(check, _trip(name, symbol, detail) if measure.trips else None)
