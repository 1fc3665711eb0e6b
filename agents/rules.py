"""The evidence rules both sides argue from: one implementation, read in either direction.

A rule reads the snapshot in the direction of a ``Side`` (+1 bull, -1 bear), so the bear's
arguments are the bull's rules applied to the mirrored market. Distances are measured in
ATR(14) units where the raw number is a price move, so one threshold serves every symbol and
timeframe. Strength is 0 at a rule's threshold and grows linearly to 1 over its span.

Calibration: thresholds were placed against the real 5m candles of ../shared/data
(BTC/USDT 2023, ETH/BTC 2018); the comments say where they fall in those bars.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from core.elementwise import clip_unit, divide_where, full_like, where
from core.evidence import Argument, Evidence
from core.snapshot import MarketSnapshot

# Trend: close at least one ATR beyond EMA(50) (about a quarter of bars lean this far)
# and EMA(50) itself moving a quarter ATR over 5 bars, so a lone spike is not a trend.
TREND_GAP_ATR = 1.0
TREND_GAP_SPAN_ATR = 2.0  # full strength at 3 ATR, about the 95th percentile
TREND_SLOPE_ATR = 0.25
TREND_SLOPE_SPAN_ATR = 0.5  # full strength at 0.75 ATR over 5 bars

# Momentum: MACD histogram a tenth of an ATR past zero (above the ~70th percentile) and growing.
MACD_HIST_ATR = 0.1
MACD_HIST_SPAN_ATR = 0.3  # full strength at 0.4 ATR, about the 98th percentile

# Mean reversion: the classic RSI(14) bounds (each side fires on 2-4% of bars).
RSI_NEUTRAL = 50.0
RSI_EXTREME_DISTANCE = 20.0  # oversold < 30, overbought > 70
RSI_SPAN = 15.0  # full strength at RSI 15 / 85

# Bollinger %b: 0 at the lower band, 1 at the upper; a close beyond a band is an excursion.
PERCENT_B_MIDDLE = 0.5
PERCENT_B_BAND = 0.5  # distance from the middle to either band, in %b units
PERCENT_B_SPAN = 0.3  # full strength 0.3 band widths outside, about the 1st/99th percentile

# Volatility regime by ATR% percentile rank within the window (shared with the researcher).
VOL_RANK_HIGH = 0.8  # top fifth: moves overshoot, extremes stretch further
VOL_RANK_LOW = 0.2  # bottom fifth: a squeeze, where a band break tends to start a move

# Volume: the last bar's volume z-score against the previous 20 bars. Volume is skewed
# (median z is about -0.4), so "thin" means the bottom ~10% and "heavy" the top ~15%.
VOLUME_HEAVY_Z = 1.0
VOLUME_HEAVY_SPAN_Z = 2.0  # full strength at z 3, about the 95th percentile
VOLUME_THIN_Z = -1.0
# A bar confirms a direction only if it moved a quarter ATR that way, not just ticked.
VOLUME_MOVE_ATR = 0.25

# Order book: resting quantity leaning a fifth more to one side within the band around the
# mid, in a book whose spread is tight enough (a wide spread means the book says little).
BOOK_IMBALANCE = 0.2
BOOK_IMBALANCE_SPAN = 0.5  # full strength at 0.7
BOOK_MAX_SPREAD = 0.002  # 0.2% of the mid

Category = Literal["trend", "momentum", "mean_reversion", "volume", "volatility", "order_book"]
# Sorted, so a category's code orders arguments as its name does (strongest_first's tie-break).
CATEGORIES: tuple[Category, ...] = (
    "mean_reversion",
    "momentum",
    "order_book",
    "trend",
    "volatility",
    "volume",
)
_CODE = {category: code for code, category in enumerate(CATEGORIES)}

BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.intp]

# The snapshot's values by name: a number each for a decision's bar, or an array each with
# one entry per bar for a backtest's bars at once (core.market_features.evidence_values).
# The rules compute through core.elementwise, the same operations either way.
Values = Mapping[str, Any]


@dataclass(frozen=True)
class Side:
    """Who argues, which way (+1 up, -1 down), and the words for that direction."""

    speaker: Literal["bull", "bear"]
    sign: float
    above: str  # "above" / "below"
    rising: str  # "rising" / "falling"
    trend: str  # "uptrend" / "downtrend"
    extreme: str  # RSI reading this side argues from: "oversold" / "overbought"
    pressure: str  # who the confirming volume belongs to: "buyers" / "sellers"


@dataclass(frozen=True)
class Reading:
    """What a rule finds at a bar (numbers) or at each bar (arrays): whether it fires, how
    strongly (where it fires), the category it argues under (a code into CATEGORIES), and
    the measures its claim states."""

    fired: Any
    strength: Any
    category: Any
    measures: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Rule:
    """A rule's arithmetic over bars (``read``) and its words for one bar (``claim``: the
    claim and the evidence it cites, given the snapshot and the reading of its bar)."""

    read: Callable[[Values, Side], Reading]
    claim: Callable[[MarketSnapshot, Side, Reading], tuple[str, tuple[Evidence, ...]]]


def ramp(value: Any, start: float, span: float) -> Any:
    """0 at ``start``, rising linearly to 1 at ``start + span``, clipped to [0, 1]; for a
    number or an array of them."""
    return clip_unit((value - start) / span)


# Ratios such as close/ema50 - 1, shown as signed percentages.
_FRACTIONS = frozenset({"return_1", "momentum_20", "ema_50_slope_5", "close_vs_ema_50"})
_SIGNED = frozenset({"volume_z_20"})
_BOUNDED = frozenset({"bb_percent_b", "atr_pct_rank"})
_SMALL_FRACTIONS = frozenset({"atr_pct", "book_spread"})


def show(evidence: Evidence) -> str:
    """The value as a claim states it (tests look for exactly this text in the claim)."""
    value = evidence.value
    if evidence.name in _FRACTIONS:
        return f"{value * 100:+.3g}%"
    if evidence.name in _SMALL_FRACTIONS:
        return f"{value * 100:.3g}%"
    if evidence.name == "book_imbalance":
        return f"{value:+.2f}"
    if evidence.name in _SIGNED:
        return f"{value:+.2f}"
    if evidence.name in _BOUNDED:
        return f"{value:.2f}"
    if evidence.name == "rsi_14":
        return f"{value:.1f}"
    return f"{value:,.6g}"


def atr_multiple(values: Values, fraction: Any) -> Any:
    """A fractional move (0.01 = 1%) in units of ATR(14)/close; NaN where ATR is not
    positive (every comparison with it is false: the rule does not fire)."""
    atr_pct = values["atr_pct"]
    return divide_where(fraction, atr_pct, atr_pct > 0.0)


def _reading(fired: Any, strength: Any, category: Category, *measures: Any) -> Reading:
    return Reading(fired, strength, full_like(fired, _CODE[category]), measures)


def _atr_note(snapshot: MarketSnapshot) -> str:
    return f"ATR(14) is {show(snapshot['atr_pct'])} of the close"


def read_trend(values: Values, side: Side) -> Reading:
    """Close beyond EMA(50) with EMA(50) sloping the same way."""
    gap_atr = atr_multiple(values, side.sign * values["close_vs_ema_50"])
    slope_atr = atr_multiple(values, side.sign * values["ema_50_slope_5"])
    fired = (gap_atr > TREND_GAP_ATR) & (slope_atr > TREND_SLOPE_ATR)
    strength = (
        ramp(gap_atr, TREND_GAP_ATR, TREND_GAP_SPAN_ATR)
        + ramp(slope_atr, TREND_SLOPE_ATR, TREND_SLOPE_SPAN_ATR)
    ) / 2
    return _reading(fired, strength, "trend", gap_atr, slope_atr)


def claim_trend(
    snapshot: MarketSnapshot, side: Side, reading: Reading
) -> tuple[str, tuple[Evidence, ...]]:
    gap, slope = snapshot["close_vs_ema_50"], snapshot["ema_50_slope_5"]
    gap_atr, slope_atr = reading.measures
    claim = (
        f"{side.trend}: close {show(gap)} vs EMA(50) is {gap_atr:.2f} ATR {side.above} it "
        f"(> {TREND_GAP_ATR:.2f}) and EMA(50) is {side.rising} {show(slope)} over 5 bars "
        f"({slope_atr:.2f} ATR, > {TREND_SLOPE_ATR:.2f}); {_atr_note(snapshot)}"
    )
    return claim, (gap, slope, snapshot["atr_pct"])


def read_momentum(values: Values, side: Side) -> Reading:
    """MACD histogram past zero and still growing, with 20-bar momentum the same way."""
    hist, previous, atr = values["macd_hist"], values["macd_hist_prev"], values["atr_14"]
    hist_atr = divide_where(side.sign * hist, atr, atr > 0.0)
    growing = side.sign * (hist - previous) > 0.0
    fired = (hist_atr > MACD_HIST_ATR) & growing & (side.sign * values["momentum_20"] > 0.0)
    return _reading(fired, ramp(hist_atr, MACD_HIST_ATR, MACD_HIST_SPAN_ATR), "momentum", hist_atr)


def claim_momentum(
    snapshot: MarketSnapshot, side: Side, reading: Reading
) -> tuple[str, tuple[Evidence, ...]]:
    hist, prev, mom, atr = (
        snapshot[name] for name in ("macd_hist", "macd_hist_prev", "momentum_20", "atr_14")
    )
    claim = (
        f"momentum: MACD histogram {show(hist)} is {reading.measures[0]:.2f} ATR "
        f"{side.above} zero (> {MACD_HIST_ATR:.2f}) and {side.rising} from {show(prev)}, "
        f"20-bar momentum {show(mom)} agrees; ATR(14) {show(atr)}"
    )
    return claim, (hist, prev, mom, atr)


def read_rsi_extreme(values: Values, side: Side) -> Reading:
    """RSI(14) past 30 (bull) or 70 (bear): stretched, due to revert."""
    distance = side.sign * (RSI_NEUTRAL - values["rsi_14"])
    strength = ramp(distance, RSI_EXTREME_DISTANCE, RSI_SPAN)
    return _reading(distance > RSI_EXTREME_DISTANCE, strength, "mean_reversion")


def claim_rsi_extreme(
    snapshot: MarketSnapshot, side: Side, _reading: Reading
) -> tuple[str, tuple[Evidence, ...]]:
    rsi = snapshot["rsi_14"]
    bound = RSI_NEUTRAL - side.sign * RSI_EXTREME_DISTANCE
    relation = "<" if side.sign > 0 else ">"
    return f"RSI(14) {show(rsi)} is {side.extreme} ({relation} {bound:.0f})", (rsi,)


def read_band_excursion(values: Values, side: Side) -> Reading:
    """A close beyond a Bollinger band: a breakout in a squeeze, an overshoot otherwise.

    In a low-volatility regime the side argues *with* the excursion (volatility breakout,
    category volatility); otherwise it argues *against* it (mean reversion).
    """
    squeeze = values["atr_pct_rank"] <= VOL_RANK_LOW
    direction = where(squeeze, side.sign, -side.sign)
    outside = direction * (values["bb_percent_b"] - PERCENT_B_MIDDLE) - PERCENT_B_BAND
    category = where(squeeze, _CODE["volatility"], _CODE["mean_reversion"])
    return Reading(outside > 0.0, ramp(outside, 0.0, PERCENT_B_SPAN), category, (direction,))


def claim_band_excursion(
    snapshot: MarketSnapshot, _side: Side, reading: Reading
) -> tuple[str, tuple[Evidence, ...]]:
    percent_b, rank = snapshot["bb_percent_b"], snapshot["atr_pct_rank"]
    upward = reading.measures[0] > 0
    band = snapshot["bb_upper" if upward else "bb_lower"]
    beyond = "above the upper" if upward else "below the lower"
    where = (
        f"close {show(snapshot['close'])} is {beyond} Bollinger band {show(band)} "
        f"(%b {show(percent_b)})"
    )
    cited = (percent_b, snapshot["close"], band)
    if CATEGORIES[reading.category] == "volatility":
        claim = (
            f"squeeze breakout: {where} while volatility is compressed "
            f"(ATR% rank {show(rank)} <= {VOL_RANK_LOW:.2f})"
        )
        return claim, (*cited, rank)
    return f"overshoot: {where}, likely to revert toward the middle band", cited


def read_volume_confirmation(values: Values, side: Side) -> Reading:
    """Heavy volume on a bar that moved this side's way."""
    move_atr = atr_multiple(values, side.sign * values["return_1"])
    volume_z = values["volume_z_20"]
    fired = (move_atr > VOLUME_MOVE_ATR) & (volume_z > VOLUME_HEAVY_Z)
    strength = ramp(volume_z, VOLUME_HEAVY_Z, VOLUME_HEAVY_SPAN_Z)
    return _reading(fired, strength, "volume", move_atr)


def claim_volume_confirmation(
    snapshot: MarketSnapshot, side: Side, reading: Reading
) -> tuple[str, tuple[Evidence, ...]]:
    ret, volume_z = snapshot["return_1"], snapshot["volume_z_20"]
    claim = (
        f"volume: last bar {show(ret)} ({reading.measures[0]:.2f} ATR, > "
        f"{VOLUME_MOVE_ATR:.2f}) on volume z {show(volume_z)} (> {VOLUME_HEAVY_Z:.2f}): "
        f"{side.pressure} in control; {_atr_note(snapshot)}"
    )
    return claim, (ret, volume_z, snapshot["atr_pct"])


def read_book_pressure(values: Values, side: Side) -> Reading:
    """More resting quantity on this side's book within the band, under a tight spread;
    without a recent book there is nothing to argue from."""
    if "book_imbalance" not in values:
        nowhere = full_like(values["close"], False)
        return _reading(nowhere, full_like(nowhere, 0.0), "order_book")
    lean = side.sign * values["book_imbalance"]
    fired = (lean > BOOK_IMBALANCE) & (values["book_spread"] <= BOOK_MAX_SPREAD)
    return _reading(fired, ramp(lean, BOOK_IMBALANCE, BOOK_IMBALANCE_SPAN), "order_book")


def claim_book_pressure(
    snapshot: MarketSnapshot, side: Side, _reading: Reading
) -> tuple[str, tuple[Evidence, ...]]:
    imbalance, spread = snapshot["book_imbalance"], snapshot["book_spread"]
    resting = "bids" if side.sign > 0 else "asks"
    claim = (
        f"order book: imbalance {show(imbalance)} leans to the {resting} (|x| > "
        f"{BOOK_IMBALANCE:.2f}) with spread {show(spread)} (<= {BOOK_MAX_SPREAD * 100:.2g}%): "
        f"{side.pressure} are queued"
    )
    return claim, (imbalance, spread)


RULES: tuple[Rule, ...] = (
    Rule(read_trend, claim_trend),
    Rule(read_momentum, claim_momentum),
    Rule(read_rsi_extreme, claim_rsi_extreme),
    Rule(read_band_excursion, claim_band_excursion),
    Rule(read_volume_confirmation, claim_volume_confirmation),
    Rule(read_book_pressure, claim_book_pressure),
)


def readings(values: Values, side: Side) -> tuple[Reading, ...]:
    """Every rule's reading over the bars of ``values``, in rule order."""
    if not isinstance(values["close"], np.ndarray):  # one bar's floats: nothing to warn of
        return tuple(rule.read(values, side) for rule in RULES)
    with np.errstate(invalid="ignore"):  # NaN measures (no ATR) compare false: no firing
        return tuple(rule.read(values, side) for rule in RULES)


def arguments_for(snapshot: MarketSnapshot, side: Side) -> tuple[Argument, ...]:
    """Every rule that fires for ``side``, strongest first (ties: by category, then rule order)."""
    found = []
    values = {name: evidence.value for name, evidence in snapshot.values.items()}
    for rule, reading in zip(RULES, readings(values, side), strict=True):
        if not reading.fired:
            continue
        claim, cited = rule.claim(snapshot, side, reading)
        found.append(
            Argument(
                speaker=side.speaker,
                stance=side.speaker,
                category=CATEGORIES[reading.category],
                claim=claim,
                evidence=cited,
                strength=reading.strength,
            )
        )
    return strongest_first(found)


def strongest_first(arguments: Sequence[Argument]) -> tuple[Argument, ...]:
    """By strength, highest first; ties by category, then in the order given."""
    return tuple(sorted(arguments, key=lambda argument: (-argument.strength, argument.category)))


def strongest_first_order(readings_of_side: Sequence[Reading]) -> IntArray:
    """For every bar, the rules whose arguments fired, in strongest_first's order (the
    rules that did not fire after them): shape (bars, rules), indices into the readings."""
    strength = np.stack([reading.strength for reading in readings_of_side], axis=-1)
    fired = np.stack([reading.fired for reading in readings_of_side], axis=-1)
    category = np.stack([reading.category for reading in readings_of_side], axis=-1)
    rule = np.broadcast_to(np.arange(len(readings_of_side)), strength.shape)
    # lexsort: the last key is the first compared; unfired rules sort last.
    return np.lexsort((rule, category, np.where(fired, -strength, np.inf), ~fired), axis=-1)
