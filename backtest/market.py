"""The market a backtest decides on: one candle series, read as the live path reads the
database — through a MarketView bound to as_of (DESIGN §3) — and its poisoned twin."""

from collections.abc import Sequence

import numpy as np

from core.candles import CandleWindow
from core.market_view import BookSummary, NewsItem, ResearchObservation

# What the future becomes when poisoned: prices a thousand times higher, a volume no market
# trades. Absurd on purpose, so any decision reading it cannot stay the same.
POISON_PRICE_FACTOR = 1000.0
POISON_VOLUME = 1e15


class SeriesView:
    """core.market_view.MarketView over one series: its closed candles up to as_of. A candle
    file carries no news, research or order books: those reads return nothing."""

    def __init__(self, series: CandleWindow, as_of: int) -> None:
        self._series = series
        self._as_of = as_of

    @property
    def as_of(self) -> int:
        return self._as_of

    def candles(self, symbol: str, timeframe: str, limit: int) -> CandleWindow:
        series = self._series
        if (symbol, timeframe) != (series.symbol, series.timeframe):
            raise ValueError(
                f"this backtest holds {series.symbol} {series.timeframe} candles, "
                f"not {symbol} {timeframe}"
            )
        closed = closed_count(series, self._as_of)
        return series.part(max(0, closed - limit), closed)

    def news(self, _symbol: str, _limit: int) -> Sequence[NewsItem]:
        return ()

    def research(self, _symbol: str) -> Sequence[ResearchObservation]:
        return ()

    def book(self, _symbol: str) -> BookSummary | None:
        return None


def closed_count(series: CandleWindow, as_of: int) -> int:
    """How many of the series' candles have closed by ``as_of`` (open + timeframe ≤ as_of)."""
    return int(np.searchsorted(series.open_time, as_of - series.timeframe_ms, "right"))


def poisoned(series: CandleWindow, as_of: int) -> CandleWindow:
    """The series with every candle not closed by ``as_of`` replaced by absurd values; the
    candles a decision at as_of may read are left untouched, byte for byte."""
    keep = closed_count(series, as_of)

    def spoil(column: np.ndarray, value: np.ndarray) -> np.ndarray:
        spoiled = column.copy()
        spoiled[keep:] = value[keep:]
        return spoiled

    return CandleWindow(
        symbol=series.symbol,
        timeframe=series.timeframe,
        timeframe_ms=series.timeframe_ms,
        open_time=series.open_time,
        open=spoil(series.open, series.open * POISON_PRICE_FACTOR),
        high=spoil(series.high, series.high * POISON_PRICE_FACTOR * 2.0),
        low=spoil(series.low, series.low * POISON_PRICE_FACTOR / 2.0),
        close=spoil(series.close, series.close * POISON_PRICE_FACTOR * 1.5),
        volume=spoil(series.volume, np.full(len(series), POISON_VOLUME)),
        sources=series.sources,
    )
