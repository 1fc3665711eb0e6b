"""The evidence rules both sides argue from: one implementation, read in either direction.

A rule reads the snapshot in the direction of a ``Side`` (+1 bull, -1 bear), so the bear's
arguments are the bull's rules applied to the mirrored market. Distances are measured in
ATR(14) units where the raw number is a price move, so one threshold serves every symbol and
timeframe. Strength is 0 at a rule's threshold and grows linearly to 1 over its span.

Calibration: thresholds were placed against the real 5m candles of ../shared/data
(BTC/USDT 2023, ETH/BTC 2018); the comments say where they fall in those bars.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

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


Rule = Callable[[MarketSnapshot, Side], Argument | None]


def ramp(value: float, start: float, span: float) -> float:
    """0 at ``start``, rising linearly to 1 at ``start + span``, clipped to [0, 1]."""
    return min(1.0, max(0.0, (value - start) / span))


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


def atr_multiple(snapshot: MarketSnapshot, fraction: float) -> float | None:
    """A fractional move (0.01 = 1%) in units of ATR(14)/close; None when ATR is not positive."""
    atr_pct = snapshot.value("atr_pct")
    if not atr_pct > 0.0:
        return None
    return fraction / atr_pct


def _atr_note(snapshot: MarketSnapshot) -> str:
    return f"ATR(14) is {show(snapshot['atr_pct'])} of the close"


def _argue(
    side: Side, category: Category, claim: str, strength: float, cited: tuple[Evidence, ...]
) -> Argument:
    return Argument(
        speaker=side.speaker,
        stance=side.speaker,
        category=category,
        claim=claim,
        evidence=cited,
        strength=strength,
    )


def trend(snapshot: MarketSnapshot, side: Side) -> Argument | None:
    """Close beyond EMA(50) with EMA(50) sloping the same way."""
    gap, slope = snapshot["close_vs_ema_50"], snapshot["ema_50_slope_5"]
    gap_atr = atr_multiple(snapshot, side.sign * gap.value)
    slope_atr = atr_multiple(snapshot, side.sign * slope.value)
    if gap_atr is None or slope_atr is None:
        return None
    if not (gap_atr > TREND_GAP_ATR and slope_atr > TREND_SLOPE_ATR):
        return None
    strength = (
        ramp(gap_atr, TREND_GAP_ATR, TREND_GAP_SPAN_ATR)
        + ramp(slope_atr, TREND_SLOPE_ATR, TREND_SLOPE_SPAN_ATR)
    ) / 2
    claim = (
        f"{side.trend}: close {show(gap)} vs EMA(50) is {gap_atr:.2f} ATR {side.above} it "
        f"(> {TREND_GAP_ATR:.2f}) and EMA(50) is {side.rising} {show(slope)} over 5 bars "
        f"({slope_atr:.2f} ATR, > {TREND_SLOPE_ATR:.2f}); {_atr_note(snapshot)}"
    )
    return _argue(side, "trend", claim, strength, (gap, slope, snapshot["atr_pct"]))


def momentum(snapshot: MarketSnapshot, side: Side) -> Argument | None:
    """MACD histogram past zero and still growing, with 20-bar momentum the same way."""
    hist, prev, mom, atr = (
        snapshot[name] for name in ("macd_hist", "macd_hist_prev", "momentum_20", "atr_14")
    )
    if not atr.value > 0.0:
        return None
    hist_atr = side.sign * hist.value / atr.value
    growing = side.sign * (hist.value - prev.value) > 0.0
    if not (hist_atr > MACD_HIST_ATR and growing and side.sign * mom.value > 0.0):
        return None
    claim = (
        f"momentum: MACD histogram {show(hist)} is {hist_atr:.2f} ATR {side.above} zero "
        f"(> {MACD_HIST_ATR:.2f}) and {side.rising} from {show(prev)}, 20-bar momentum "
        f"{show(mom)} agrees; ATR(14) {show(atr)}"
    )
    strength = ramp(hist_atr, MACD_HIST_ATR, MACD_HIST_SPAN_ATR)
    return _argue(side, "momentum", claim, strength, (hist, prev, mom, atr))


def rsi_extreme(snapshot: MarketSnapshot, side: Side) -> Argument | None:
    """RSI(14) past 30 (bull) or 70 (bear): stretched, due to revert."""
    rsi = snapshot["rsi_14"]
    distance = side.sign * (RSI_NEUTRAL - rsi.value)
    if not distance > RSI_EXTREME_DISTANCE:
        return None
    bound = RSI_NEUTRAL - side.sign * RSI_EXTREME_DISTANCE
    relation = "<" if side.sign > 0 else ">"
    claim = f"RSI(14) {show(rsi)} is {side.extreme} ({relation} {bound:.0f})"
    strength = ramp(distance, RSI_EXTREME_DISTANCE, RSI_SPAN)
    return _argue(side, "mean_reversion", claim, strength, (rsi,))


def band_excursion(snapshot: MarketSnapshot, side: Side) -> Argument | None:
    """A close beyond a Bollinger band: a breakout in a squeeze, an overshoot otherwise.

    In a low-volatility regime the side argues *with* the excursion (volatility breakout);
    otherwise it argues *against* it (mean reversion).
    """
    percent_b, rank = snapshot["bb_percent_b"], snapshot["atr_pct_rank"]
    squeeze = rank.value <= VOL_RANK_LOW
    direction = side.sign if squeeze else -side.sign
    outside = direction * (percent_b.value - PERCENT_B_MIDDLE) - PERCENT_B_BAND
    if not outside > 0.0:
        return None
    band = snapshot["bb_upper" if direction > 0 else "bb_lower"]
    beyond = "above the upper" if direction > 0 else "below the lower"
    where = (
        f"close {show(snapshot['close'])} is {beyond} Bollinger band {show(band)} "
        f"(%b {show(percent_b)})"
    )
    strength = ramp(outside, 0.0, PERCENT_B_SPAN)
    cited = (percent_b, snapshot["close"], band)
    if squeeze:
        claim = (
            f"squeeze breakout: {where} while volatility is compressed "
            f"(ATR% rank {show(rank)} <= {VOL_RANK_LOW:.2f})"
        )
        return _argue(side, "volatility", claim, strength, (*cited, rank))
    claim = f"overshoot: {where}, likely to revert toward the middle band"
    return _argue(side, "mean_reversion", claim, strength, cited)


def volume_confirmation(snapshot: MarketSnapshot, side: Side) -> Argument | None:
    """Heavy volume on a bar that moved this side's way."""
    ret, volume_z = snapshot["return_1"], snapshot["volume_z_20"]
    move_atr = atr_multiple(snapshot, side.sign * ret.value)
    if move_atr is None or not (move_atr > VOLUME_MOVE_ATR and volume_z.value > VOLUME_HEAVY_Z):
        return None
    claim = (
        f"volume: last bar {show(ret)} ({move_atr:.2f} ATR, > {VOLUME_MOVE_ATR:.2f}) on volume "
        f"z {show(volume_z)} (> {VOLUME_HEAVY_Z:.2f}): {side.pressure} in control; "
        f"{_atr_note(snapshot)}"
    )
    strength = ramp(volume_z.value, VOLUME_HEAVY_Z, VOLUME_HEAVY_SPAN_Z)
    return _argue(side, "volume", claim, strength, (ret, volume_z, snapshot["atr_pct"]))


def book_pressure(snapshot: MarketSnapshot, side: Side) -> Argument | None:
    """More resting quantity on this side's book within the band, under a tight spread."""
    if "book_imbalance" not in snapshot.values:
        return None  # no recent book: nothing to argue from
    imbalance, spread = snapshot["book_imbalance"], snapshot["book_spread"]
    lean = side.sign * imbalance.value
    if not (lean > BOOK_IMBALANCE and spread.value <= BOOK_MAX_SPREAD):
        return None
    resting = "bids" if side.sign > 0 else "asks"
    claim = (
        f"order book: imbalance {show(imbalance)} leans to the {resting} (|x| > "
        f"{BOOK_IMBALANCE:.2f}) with spread {show(spread)} (<= {BOOK_MAX_SPREAD * 100:.2g}%): "
        f"{side.pressure} are queued"
    )
    strength = ramp(lean, BOOK_IMBALANCE, BOOK_IMBALANCE_SPAN)
    return _argue(side, "order_book", claim, strength, (imbalance, spread))


RULES: tuple[Rule, ...] = (
    trend,
    momentum,
    rsi_extreme,
    band_excursion,
    volume_confirmation,
    book_pressure,
)


def arguments_for(snapshot: MarketSnapshot, side: Side) -> tuple[Argument, ...]:
    """Every rule that fires for ``side``, strongest first (ties: by category, then rule order)."""
    found = (rule(snapshot, side) for rule in RULES)
    return strongest_first([argument for argument in found if argument is not None])


def strongest_first(arguments: Sequence[Argument]) -> tuple[Argument, ...]:
    """By strength, highest first; ties by category, then in the order given."""
    return tuple(sorted(arguments, key=lambda argument: (-argument.strength, argument.category)))
