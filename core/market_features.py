"""The market snapshot: every indicator's latest value, named, with the window it covers.

Computed only from the candles handed in, so the same window gives bitwise the same
floats; values are Python floats (exact, deterministic JSON) and never NaN or inf.
"""

import math
from dataclasses import replace

import numpy as np

from core import indicators
from core.candles import CandleWindow, FloatArray
from core.evidence import Evidence
from core.market_view import BookSummary
from core.snapshot import InsufficientDataError, MarketSnapshot
from core.timeframes import format_timestamp

RSI_PERIOD = 14
MACD_FAST, MACD_SLOW, MACD_SIGNAL = 12, 26, 9
BB_PERIOD, BB_STD = 20, 2.0
ATR_PERIOD = 14
VOLUME_PERIOD = 20
EMA_PERIOD, EMA_SLOPE_BARS = 50, 5
MOMENTUM_BARS = 20

# The longest chain is ema_50_slope_5: EMA(50) is seeded at bar 50, its 5-bar slope needs
# 55 bars. 60 matches the settings floor (lookback_bars ≥ 60) and keeps the slope's older
# end off the EMA's plain-SMA seed. Every other value needs fewer (MACD's histogram of the
# previous bar: 26 + 9; momentum and volume z-score: 21).
MIN_BARS = 60


def market_snapshot(window: CandleWindow, as_of: int) -> MarketSnapshot:
    """Indicator values for the newest candle of ``window`` (closed candles, oldest first).

    Raises InsufficientDataError below MIN_BARS candles, and ValueError when the window reaches
    past ``as_of`` or a value is undefined (NaN/inf, e.g. RSI of a series that never moved).
    """
    if len(window) < MIN_BARS:
        raise InsufficientDataError(MIN_BARS, len(window))
    last_close = window.last_close_time
    assert last_close is not None  # a window of MIN_BARS candles is not empty
    if last_close > as_of:
        raise ValueError(
            f"newest candle closes at {format_timestamp(last_close)}, after as_of "
            f"{format_timestamp(as_of)}: a snapshot may only use closed candles"
        )
    values = _evidence(window, f"to {format_timestamp(last_close)}")
    return MarketSnapshot(
        symbol=window.symbol,
        timeframe=window.timeframe,
        as_of=as_of,
        last_close_time=last_close,
        values=values,
    )


def with_book(snapshot: MarketSnapshot, book: BookSummary | None) -> MarketSnapshot:
    """The snapshot plus the order book's spread and imbalance, when a recent book exists;
    without one the snapshot is unchanged (and nobody argues from a book)."""
    if book is None:
        return snapshot
    taken = f"order book at {format_timestamp(book.taken_at)} ({book.source})"
    band = f"levels within ±{book.band_fraction * 100:g}% of the mid, {taken}"
    entries = [
        ("book_spread", book.spread_fraction, f"(ask − bid) / mid, {taken}"),
        ("book_imbalance", book.imbalance, f"(bid − ask quantity) / their sum, {band}"),
    ]
    values = dict(snapshot.values)
    values.update({name: _finite(name, value, where) for name, value, where in entries})
    return replace(snapshot, values=values)


Entry = tuple[str, float, str]  # name, value, what it was computed over


def _evidence(window: CandleWindow, to: str) -> dict[str, Evidence]:
    """Compute every named value with its window description; refuse any non-finite one."""
    over = f"over {len(window)} bars {to}"
    entries = [
        *_price_entries(window.close, to),
        *_momentum_entries(window.close, over),
        *_bollinger_entries(window.close, to),
        *_atr_entries(window, over),
        *_ema_entries(window.close, over),
        (
            "volume_z_20",
            _last(indicators.volume_zscore(window.volume, VOLUME_PERIOD)),
            f"last bar's volume vs the {VOLUME_PERIOD} bars before it {to}",
        ),
    ]
    return {name: _finite(name, value, described) for name, value, described in entries}


def _price_entries(close: FloatArray, to: str) -> list[Entry]:
    last = float(close[-1])
    return [
        ("close", last, f"last bar {to}"),
        ("return_1", _div(last, float(close[-2])) - 1.0, f"last 2 closes {to}"),
        (
            "momentum_20",
            _div(last, float(close[-1 - MOMENTUM_BARS])) - 1.0,
            f"change over the last {MOMENTUM_BARS} bars {to}",
        ),
    ]


def _momentum_entries(close: FloatArray, over: str) -> list[Entry]:
    line, signal, hist = indicators.macd(close, MACD_FAST, MACD_SLOW, MACD_SIGNAL)
    name = f"MACD({MACD_FAST},{MACD_SLOW},{MACD_SIGNAL})"
    return [
        ("rsi_14", _last(indicators.rsi(close, RSI_PERIOD)), f"{RSI_PERIOD}-bar Wilder RSI {over}"),
        ("macd", _last(line), f"{name} line {over}"),
        ("macd_signal", _last(signal), f"{name} signal {over}"),
        ("macd_hist", _last(hist), f"{name} histogram {over}"),
        ("macd_hist_prev", float(hist[-2]), f"{name} histogram one bar before, {over}"),
    ]


def _bollinger_entries(close: FloatArray, to: str) -> list[Entry]:
    upper, middle, lower = (_last(band) for band in indicators.bollinger(close, BB_PERIOD, BB_STD))
    name = f"{BB_PERIOD}-bar Bollinger ({BB_STD:g}σ, population std)"
    return [
        ("bb_upper", upper, f"{name} upper band {to}"),
        ("bb_middle", middle, f"{name} middle (SMA) {to}"),
        ("bb_lower", lower, f"{name} lower band {to}"),
        ("bb_percent_b", _div(float(close[-1]) - lower, upper - lower), f"{name} %B {to}"),
        ("bb_bandwidth", _div(upper - lower, middle), f"{name} bandwidth {to}"),
    ]


def _atr_entries(window: CandleWindow, over: str) -> list[Entry]:
    atr = indicators.atr(window.high, window.low, window.close, ATR_PERIOD)
    # Left NaN at a zero close (reported by _finite if it is the last one).
    atr_pct = np.divide(atr, window.close, out=np.full(len(atr), np.nan), where=window.close != 0)
    # The volatility regime: where today's ATR/close stands among the window's own values.
    defined = atr_pct[~np.isnan(atr_pct)]
    rank = _div(int(np.count_nonzero(defined <= atr_pct[-1])), len(defined))
    name = f"{ATR_PERIOD}-bar Wilder ATR"
    return [
        ("atr_14", _last(atr), f"{name} {over}"),
        ("atr_pct", _last(atr_pct), f"{name} / close {over}"),
        ("atr_pct_rank", rank, f"rank of ATR/close among its {len(defined)} values {over}"),
    ]


def _ema_entries(close: FloatArray, over: str) -> list[Entry]:
    ema = indicators.ema(close, EMA_PERIOD)
    now = float(ema[-1])
    name = f"{EMA_PERIOD}-bar EMA"
    return [
        ("ema_50", now, f"{name} {over}"),
        (
            "ema_50_slope_5",
            _div(now, float(ema[-1 - EMA_SLOPE_BARS])) - 1.0,
            f"{name} change over the last {EMA_SLOPE_BARS} bars, {over}",
        ),
        ("close_vs_ema_50", _div(float(close[-1]), now) - 1.0, f"last close vs {name} {over}"),
    ]


def _last(series: FloatArray) -> float:
    return float(series[-1])


def _div(numerator: float, denominator: float) -> float:
    """A ratio that is NaN, not a ZeroDivisionError, when undefined: _finite reports it."""
    if denominator == 0:
        return math.nan
    return float(numerator / denominator)


def _finite(name: str, value: float, window: str) -> Evidence:
    # Nothing undefined may leave as evidence: a flat or corrupt series must surface as an
    # error the decision can report, never as a NaN in the record.
    if not math.isfinite(value):
        raise ValueError(
            f"{name} is undefined ({value}) for the candles {window}; "
            "the series is flat or holds non-finite prices"
        )
    return Evidence(name=name, value=value, window=window)
