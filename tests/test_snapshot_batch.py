"""Indicators over rows of windows, and the backtest's SnapshotBatch built on them, give each
window bitwise what it gets alone — the live path's per-window market_snapshot."""

import numpy as np
import pytest
from conftest import shared_csv
from numpy.lib.stride_tricks import sliding_window_view

from backtest.lookahead import fingerprint
from core import indicators
from core.market_features import SnapshotBatch, market_snapshot
from ingestion.candle_file import parse_candle_file

LOOKBACK = 250


def _series(name: str, symbol: str, timeframe: str):  # type: ignore[no-untyped-def]
    data = shared_csv(name).read_bytes()
    return parse_candle_file(data, symbol, timeframe, "import").candles


def test_each_row_of_windows_equals_the_window_alone() -> None:
    series = _series("BTC_USDT-5m.csv", "BTC/USDT", "5m").part(0, 1200)
    close, high, low, volume = (
        sliding_window_view(column, LOOKBACK)
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
