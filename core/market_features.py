"""The market snapshot: every indicator's latest value, named, with the window it covers.

Computed only from the candles handed in, so the same window gives bitwise the same
floats; values are Python floats (exact, deterministic JSON) and never NaN or inf.
"""

import math
from dataclasses import replace
from typing import Any, NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from core import indicators
from core.candles import CandleWindow, FloatArray
from core.elementwise import divide_where
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
    last_close = _closed_by(window, as_of)
    values = _evidence(window, f"to {format_timestamp(last_close)}")
    return _snapshot(window, as_of, last_close, values)


def _closed_by(window: CandleWindow, as_of: int) -> int:
    """The window's last close, once it is known to be enough candles, all closed by as_of."""
    if len(window) < MIN_BARS:
        raise InsufficientDataError(MIN_BARS, len(window))
    last_close = window.last_close_time
    assert last_close is not None  # a window of MIN_BARS candles is not empty
    if last_close > as_of:
        raise ValueError(
            f"newest candle closes at {format_timestamp(last_close)}, after as_of "
            f"{format_timestamp(as_of)}: a snapshot may only use closed candles"
        )
    return last_close


def _snapshot(
    window: CandleWindow, as_of: int, last_close: int, values: dict[str, Evidence]
) -> MarketSnapshot:
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


class _Raw(NamedTuple):
    """The indicator values the evidence is made of: for one window each a number, for rows
    of windows (market_snapshots) each an array with one number per row."""

    close: Any
    close_before: Any  # one bar before
    close_momentum: Any  # MOMENTUM_BARS bars before
    rsi: Any
    macd: Any
    macd_signal: Any
    macd_hist: Any
    macd_hist_before: Any
    bb_upper: Any
    bb_middle: Any
    bb_lower: Any
    atr: Any
    atr_pct: Any
    atr_pct_at_or_below: Any  # how many of the window's ATR/close values are ≤ the last
    atr_pct_defined: Any  # how many of them are defined
    ema: Any
    ema_before: Any  # EMA_SLOPE_BARS bars before
    volume_z: Any

    def row(self, index: int) -> "_Raw":
        return _Raw(*(field[index] for field in self))


def _raw(close: FloatArray, high: FloatArray, low: FloatArray, volume: FloatArray) -> _Raw:
    """Every indicator over the window (the last axis), each reduced to what the evidence
    cites. Bollinger and the volume z-score are computed over the only bars their last value
    reads: the same arithmetic on the same numbers as over the whole window."""
    line, signal, hist = indicators.macd(close, MACD_FAST, MACD_SLOW, MACD_SIGNAL)
    upper, middle, lower = indicators.bollinger(close[..., -BB_PERIOD:], BB_PERIOD, BB_STD)
    atr = indicators.atr(high, low, close, ATR_PERIOD)
    # Left NaN at a zero close (reported by _finite if it is the last one). Over rows of
    # windows the ATR is laid out time-major (core.indicators) and the closes are windows
    # of one series: transposed (a no-op for one window), numpy steps through both in
    # memory order, ~15 times faster than over the rows.
    by_bar, closes = atr.T, close.T
    atr_pct = np.divide(by_bar, closes, out=np.full_like(by_bar, np.nan), where=closes != 0).T
    ema = indicators.ema(close, EMA_PERIOD)
    volume_z = indicators.volume_zscore(volume[..., -VOLUME_PERIOD - 1 :], VOLUME_PERIOD)
    return _Raw(
        close=close[..., -1],
        close_before=close[..., -2],
        close_momentum=close[..., -1 - MOMENTUM_BARS],
        rsi=indicators.rsi(close, RSI_PERIOD)[..., -1],
        macd=line[..., -1],
        macd_signal=signal[..., -1],
        macd_hist=hist[..., -1],
        macd_hist_before=hist[..., -2],
        bb_upper=upper[..., -1],
        bb_middle=middle[..., -1],
        bb_lower=lower[..., -1],
        atr=atr[..., -1],
        atr_pct=atr_pct[..., -1],
        # The volatility regime: where today's ATR/close stands among the window's own values.
        atr_pct_at_or_below=np.count_nonzero(atr_pct <= atr_pct[..., -1:], axis=-1),
        atr_pct_defined=np.count_nonzero(~np.isnan(atr_pct), axis=-1),
        ema=ema[..., -1],
        ema_before=ema[..., -1 - EMA_SLOPE_BARS],
        volume_z=volume_z[..., -1],
    )


def _evidence(window: CandleWindow, to: str) -> dict[str, Evidence]:
    raw = _raw(window.close, window.high, window.low, window.volume)
    return _named(raw, len(window), to)


def evidence_values(raw: _Raw) -> dict[str, Any]:
    """Every named value the evidence cites, in the record's order: for one window each a
    number, for rows of windows each an array with one number per row. One set of formulas
    for both, so a backtest's rows are bitwise the values a decision computes alone; a ratio
    over a zero is NaN (refused by _finite, or by finite_rows)."""
    close, upper, middle, lower = raw.close, raw.bb_upper, raw.bb_middle, raw.bb_lower
    return {
        "close": close,
        "return_1": _ratio(close, raw.close_before) - 1.0,
        "momentum_20": _ratio(close, raw.close_momentum) - 1.0,
        "rsi_14": raw.rsi,
        "macd": raw.macd,
        "macd_signal": raw.macd_signal,
        "macd_hist": raw.macd_hist,
        "macd_hist_prev": raw.macd_hist_before,
        "bb_upper": upper,
        "bb_middle": middle,
        "bb_lower": lower,
        "bb_percent_b": _ratio(close - lower, upper - lower),
        "bb_bandwidth": _ratio(upper - lower, middle),
        "atr_14": raw.atr,
        "atr_pct": raw.atr_pct,
        "atr_pct_rank": _ratio(raw.atr_pct_at_or_below, raw.atr_pct_defined),
        "ema_50": raw.ema,
        "ema_50_slope_5": _ratio(raw.ema, raw.ema_before) - 1.0,
        "close_vs_ema_50": _ratio(close, raw.ema) - 1.0,
        "volume_z_20": raw.volume_z,
    }


def finite_rows(values: dict[str, Any]) -> Any:
    """For rows of windows: which rows have every value defined (the others' snapshots are
    refused, with the reason market_snapshot gives)."""
    return np.logical_and.reduce([np.isfinite(column) for column in values.values()])


def _ratio(numerator: Any, denominator: Any) -> Any:
    return divide_where(numerator, denominator, denominator != 0)


def _named(raw: _Raw, bars: int, to: str) -> dict[str, Evidence]:
    """Every named value of one window with its description; refuse any non-finite one."""
    described = _descriptions(bars, to, int(raw.atr_pct_defined))
    return {
        name: _finite(name, float(value), described[name])
        for name, value in evidence_values(raw).items()
    }


def _descriptions(bars: int, to: str, atr_pct_defined: int) -> dict[str, str]:
    """What each value was computed over, as its evidence says."""
    over = f"over {bars} bars {to}"
    macd = f"MACD({MACD_FAST},{MACD_SLOW},{MACD_SIGNAL})"
    bollinger = f"{BB_PERIOD}-bar Bollinger ({BB_STD:g}σ, population std)"
    atr = f"{ATR_PERIOD}-bar Wilder ATR"
    ema = f"{EMA_PERIOD}-bar EMA"
    return {
        "close": f"last bar {to}",
        "return_1": f"last 2 closes {to}",
        "momentum_20": f"change over the last {MOMENTUM_BARS} bars {to}",
        "rsi_14": f"{RSI_PERIOD}-bar Wilder RSI {over}",
        "macd": f"{macd} line {over}",
        "macd_signal": f"{macd} signal {over}",
        "macd_hist": f"{macd} histogram {over}",
        "macd_hist_prev": f"{macd} histogram one bar before, {over}",
        "bb_upper": f"{bollinger} upper band {to}",
        "bb_middle": f"{bollinger} middle (SMA) {to}",
        "bb_lower": f"{bollinger} lower band {to}",
        "bb_percent_b": f"{bollinger} %B {to}",
        "bb_bandwidth": f"{bollinger} bandwidth {to}",
        "atr_14": f"{atr} {over}",
        "atr_pct": f"{atr} / close {over}",
        "atr_pct_rank": f"rank of ATR/close among its {atr_pct_defined} values {over}",
        "ema_50": f"{ema} {over}",
        "ema_50_slope_5": f"{ema} change over the last {EMA_SLOPE_BARS} bars, {over}",
        "close_vs_ema_50": f"last close vs {ema} {over}",
        "volume_z_20": f"last bar's volume vs the {VOLUME_PERIOD} bars before it {to}",
    }


def _finite(name: str, value: float, window: str) -> Evidence:
    # Nothing undefined may leave as evidence: a flat or corrupt series must surface as an
    # error the decision can report, never as a NaN in the record.
    if not math.isfinite(value):
        raise ValueError(
            f"{name} is undefined ({value}) for the candles {window}; "
            "the series is flat or holds non-finite prices"
        )
    return Evidence(name=name, value=value, window=window)


class SnapshotBatch:
    """market_snapshot for the windows a backtest reads: every ``lookback``-bar window of
    ``series``, their indicators computed together, a block of windows at a time (rows of
    windows: core.indicators), so each is bitwise what market_snapshot gives for it alone.
    Any other window (a shorter one near the start, one not cut from ``series``) is handed
    to market_snapshot itself.

    Row r of the series' windows ends at bar r + lookback - 1; block b holds rows
    b * BLOCK up to (b + 1) * BLOCK, as sliding windows of the series, which the
    indicators compute from the series wherever a value does not depend on the window.
    """

    # Windows computed together: ≈ 4 MB per indicator array. Larger blocks spread the
    # recursions' per-step cost over more windows, but a first pass over a file pays for
    # fresh memory, and 4,096 windows' arrays cost more there than the per-step saving
    # (docs/BENCHMARKS.md, bench/indicators.py).
    BLOCK = 2048

    def __init__(
        self, series: CandleWindow, lookback: int, block: int = BLOCK, first_row: int = 0
    ) -> None:
        """``block``: how many windows are computed together (each row's values are the
        same whatever the block: a look-ahead twin, which reads one bar, takes 1);
        ``first_row``: the first window the blocks hold (a backtest from --from needs none
        before its first bar); the windows before it go to market_snapshot."""
        if block < 1:
            raise ValueError(f"a block holds at least one window, not {block}")
        self.block = block
        self.first_row = max(0, first_row)
        self._series = series
        self._lookback = lookback
        self._blocks: dict[int, _Raw] = {}
        self._breaker_blocks: dict[tuple[int, int], FloatArray] = {}

    def snapshot(self, window: CandleWindow, as_of: int) -> MarketSnapshot:
        row = self._row_of(window)
        place = None if row is None else self.place(row)
        if place is None:
            return market_snapshot(window, as_of)
        last_close = _closed_by(window, as_of)
        block, offset = place
        raw = self.raw_block(block).row(offset)
        values = _named(raw, len(window), f"to {format_timestamp(last_close)}")
        return _snapshot(window, as_of, last_close, values)

    def place(self, row: int) -> tuple[int, int] | None:
        """The block holding window ``row`` (the one ending at bar row + lookback - 1) and
        its offset there, or None for a row before first_row."""
        if row < self.first_row:
            return None
        return divmod(row - self.first_row, self.block)

    def first_row_of(self, block: int) -> int:
        return self.first_row + block * self.block

    def raw_block(self, block: int) -> _Raw:
        """The indicator values of the block's windows, one entry per row: row ``offset`` is
        bitwise _raw of the window ending at bar first_row_of(block) + offset + lookback - 1."""
        if block not in self._blocks:
            close, high, low, volume = self._windows(block, self._lookback)
            self._blocks = {block: _raw(close, high, low, volume)}  # a backtest walks forward
        return self._blocks[block]

    def breaker_atr_block(self, block: int, period: int) -> FloatArray:
        """For each of the block's windows, the last ATR(``period``) of the window without its
        newest candle: bitwise ``indicators.atr(high[:-1], low[:-1], close[:-1], period)[-1]``
        of that window (the circuit breaker's measure of a normal move)."""
        key = (block, period)
        if key not in self._breaker_blocks:
            close, high, low, _ = self._windows(block, self._lookback - 1)
            atr = indicators.atr(high, low, close, period)[..., -1]
            self._breaker_blocks = {key: np.ascontiguousarray(atr)}
        return self._breaker_blocks[key]

    def _windows(self, block: int, width: int) -> tuple[FloatArray, ...]:
        """close, high, low and volume of the block's windows, each cut to its first
        ``width`` bars: sliding views of the series, nothing copied."""
        first = self.first_row_of(block)
        stop = min(first + self.block, len(self._series) - self._lookback + 1)
        if stop <= first:
            raise IndexError(f"block {block} holds no {self._lookback}-bar window of the series")
        bars = slice(first, stop - 1 + width)
        return tuple(
            sliding_window_view(column[bars], width)
            for column in (
                self._series.close,
                self._series.high,
                self._series.low,
                self._series.volume,
            )
        )

    def _row_of(self, window: CandleWindow) -> int | None:
        """The row of ``window`` among the series' full windows (row r ends at bar r +
        lookback - 1), or None when it is not one of them."""
        series, lookback = self._series, self._lookback
        if len(window) != lookback or len(series) < lookback:
            return None
        if (window.symbol, window.timeframe) != (series.symbol, series.timeframe):
            return None
        start = int(np.searchsorted(series.open_time, window.open_time[0]))
        if start + lookback > len(series) or not all(
            np.shares_memory(part, whole) and part[0] == whole[start]
            for part, whole in (
                (window.open_time, series.open_time),
                (window.close, series.close),
                (window.high, series.high),
                (window.low, series.low),
                (window.volume, series.volume),
            )
        ):
            return None
        return start
