"""Indicators over rows of windows, and the backtest's SnapshotBatch built on them, give each
window bitwise what it gets alone — the live path's per-window market_snapshot."""

from collections.abc import Callable

import numpy as np
import pytest
from conftest import shared_csv
from numpy.lib.stride_tricks import sliding_window_view

from backtest.lookahead import fingerprint
from core import indicators
from core.candles import CandleWindow, FloatArray
from core.market_features import SnapshotBatch, _Raw, _raw, market_snapshot
from ingestion.candle_file import parse_candle_file

LOOKBACK = 250
# Small blocks, so a file spans several, the last one partial, and block edges are tested.
SMALL_BLOCK = 97


def _series(name: str, symbol: str, timeframe: str):  # type: ignore[no-untyped-def]
    data = shared_csv(name).read_bytes()
    return parse_candle_file(data, symbol, timeframe, "import").candles


@pytest.mark.parametrize(
    "arrange",
    [np.asarray, np.ascontiguousarray, np.asfortranarray],
    ids=["sliding", "rows apart", "time-major"],
)
def test_each_row_of_windows_equals_the_window_alone(arrange: Callable[..., FloatArray]) -> None:
    """Whatever the rows' memory layout: windows of one series (computed from the series),
    rows copied apart (C order) or transposed (Fortran order)."""
    series = _series("BTC_USDT-5m.csv", "BTC/USDT", "5m").part(0, 1200)
    close, high, low, volume = (
        arrange(sliding_window_view(column, LOOKBACK))
        for column in (series.close, series.high, series.low, series.volume)
    )
    batched = {
        "rsi": (indicators.rsi(close, 14),),
        "macd": indicators.macd(close, 12, 26, 9),
        "bollinger": indicators.bollinger(close, 20, 2.0),
        "atr": (indicators.atr(high, low, close, 14),),
        "ema": (indicators.ema(close, 50),),
        "volume_z": (indicators.volume_zscore(volume, 20),),
    }
    for row in range(0, len(close), 37):
        alone = {
            "rsi": (indicators.rsi(close[row], 14),),
            "macd": indicators.macd(close[row], 12, 26, 9),
            "bollinger": indicators.bollinger(close[row], 20, 2.0),
            "atr": (indicators.atr(high[row], low[row], close[row], 14),),
            "ema": (indicators.ema(close[row], 50),),
            "volume_z": (indicators.volume_zscore(volume[row], 20),),
        }
        for name, outputs in alone.items():
            for one, many in zip(outputs, batched[name], strict=True):
                assert one.tobytes() == np.ascontiguousarray(many[row]).tobytes(), (name, row)


@pytest.mark.parametrize(
    ("name", "symbol", "timeframe"),
    [("XRP_USDT-5m.csv", "XRP/USDT", "5m"), ("XRP_ETH-1m.csv", "XRP/ETH", "1m")],
)
def test_the_batch_gives_every_window_the_live_snapshot(
    name: str, symbol: str, timeframe: str
) -> None:
    """Every bar of the file, the gapped one included: short windows near the start and
    windows whose values are undefined (the error is the same) come out as they do live."""
    series = _series(name, symbol, timeframe)
    batch = SnapshotBatch(series, LOOKBACK)
    for end in range(1, len(series) + 1):
        window = series.part(max(0, end - LOOKBACK), end)
        as_of = int(window.open_time[-1]) + window.timeframe_ms
        try:
            live: object = fingerprint(market_snapshot(window, as_of))
        except ValueError as error:
            live = str(error)
        try:
            batched: object = fingerprint(batch.snapshot(window, as_of))
        except ValueError as error:
            batched = str(error)
        assert batched == live, end


def test_a_window_not_cut_from_the_series_is_computed_alone() -> None:
    series = _series("XRP_USDT-5m.csv", "XRP/USDT", "5m")
    window = series.part(100, 100 + LOOKBACK)
    copied = type(window)(**{**window.__dict__, "close": window.close.copy() * 2.0})
    as_of = int(window.open_time[-1]) + window.timeframe_ms
    batch = SnapshotBatch(series, LOOKBACK)
    assert fingerprint(batch.snapshot(copied, as_of)) == fingerprint(market_snapshot(copied, as_of))
    with pytest.raises(ValueError, match="a snapshot may only use closed candles"):
        batch.snapshot(window, as_of - 1)


def _synthetic(bars: int) -> CandleWindow:
    """A series made awkward on purpose: flat stretches (no change, no range, so RSI's 0/0
    and an ATR of 0), zero volume (flat and not), price gaps up and down, a bar whose high
    is the previous close, and missing bars in the timestamps."""
    rng = np.random.default_rng(7)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.004, bars)))
    close[300:600] = close[299]  # flat for 300 bars: whole windows with no move at all
    close[650:] *= 1.3  # a gap up
    close[900:] *= 0.6  # a gap down
    close[1100:1400] = np.round(close[1100:1400], 1)  # a coarse tick: many equal closes
    spread = np.abs(rng.normal(0.0, 0.003, bars)) * close
    spread[300:600] = 0.0
    high, low = close + spread, close - spread
    high[700] = close[699]
    low[701] = close[700]
    volume = rng.lognormal(3.0, 1.0, bars)
    volume[300:520] = 0.0  # no trades: a flat volume history, then zeros among values
    volume[800:1000:7] = 0.0
    open_time = np.arange(bars, dtype=np.int64) * 300_000
    open_time[1000:] += 3 * 300_000  # three missing bars
    return CandleWindow(
        symbol="SYN/USDT",
        timeframe="5m",
        timeframe_ms=300_000,
        open_time=open_time,
        open=np.concatenate(([close[0]], close[:-1])),
        high=high,
        low=low,
        close=close,
        volume=volume,
        sources=("sim",),
    )


def _candles(name: str) -> CandleWindow:
    if name == "synthetic":
        return _synthetic(1500)
    symbol, timeframe = name.removesuffix(".csv").split("-")
    series: CandleWindow = _series(name, symbol.replace("_", "/"), timeframe)
    return series


SERIES = ["synthetic", "XRP_USDT-5m.csv", "XRP_ETH-1m.csv", "ETH_BTC-5m.csv", "LTC_BTC-5m.csv"]


def _same(one: object, other: object) -> bool:
    return bool(np.asarray(one).tobytes() == np.asarray(other).tobytes())


@pytest.mark.parametrize("name", SERIES)
def test_raw_block_rows_are_bitwise_each_window_alone(name: str) -> None:
    """Every row of every block (the last one partial) against _raw of its window alone,
    the path `sigmax decide` takes: every field, NaNs included, byte for byte."""
    series = _candles(name)
    batch = SnapshotBatch(series, LOOKBACK, SMALL_BLOCK)
    windows = len(series) - LOOKBACK + 1
    for row in range(windows):
        block, offset = divmod(row, SMALL_BLOCK)
        window = series.part(row, row + LOOKBACK)
        alone = _raw(window.close, window.high, window.low, window.volume)
        batched = batch.raw_block(block).row(offset)
        for field, one, many in zip(_Raw._fields, alone, batched, strict=True):
            assert _same(one, many), (name, row, field)


@pytest.mark.parametrize("name", SERIES)
@pytest.mark.parametrize("period", [14, 5, 60])
def test_breaker_atr_block_is_the_atr_of_each_window_without_its_newest_candle(
    name: str, period: int
) -> None:
    series = _candles(name)
    batch = SnapshotBatch(series, LOOKBACK, SMALL_BLOCK)
    windows = len(series) - LOOKBACK + 1
    for row in range(windows):
        block, offset = divmod(row, SMALL_BLOCK)
        window = series.part(row, row + LOOKBACK)
        alone = indicators.atr(window.high[:-1], window.low[:-1], window.close[:-1], period)[-1]
        assert _same(alone, batch.breaker_atr_block(block, period)[offset]), (name, row)


def test_the_synthetic_series_reaches_the_awkward_cases() -> None:
    """The synthetic series is only a test if its windows reach what it is made for: a zero
    ATR, an undefined RSI, a flat volume history, a zero close-to-close change."""
    series = _synthetic(1500)
    batch = SnapshotBatch(series, LOOKBACK)
    raw = batch.raw_block(0)
    assert np.isnan(raw.rsi).any()
    assert (raw.atr == 0.0).any()
    assert (raw.volume_z == 0.0).any()
    assert (raw.close == raw.close_before).any()
    assert (batch.breaker_atr_block(0, 14) == 0.0).any()


def test_a_block_past_the_last_window_is_refused() -> None:
    series = _synthetic(1500).part(0, LOOKBACK + 10)  # 11 windows: block 0 only
    batch = SnapshotBatch(series, LOOKBACK)
    assert len(batch.raw_block(0).close) == 11
    with pytest.raises(IndexError, match="block 1 holds no 250-bar window"):
        batch.raw_block(1)
