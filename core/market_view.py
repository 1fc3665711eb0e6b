"""What a decision may read, bound to one instant (DESIGN §3): nothing after ``as_of``."""

from collections.abc import Sequence
from typing import Protocol

from pydantic import BaseModel, ConfigDict

from core.candles import CandleWindow


class NewsItem(BaseModel):
    model_config = ConfigDict(frozen=True)

    source: str
    title: str
    url: str
    published_at: int
    sentiment: float | None
    symbols: tuple[str, ...]


class ResearchObservation(BaseModel):
    model_config = ConfigDict(frozen=True)

    source: str
    metric: str
    symbol: str | None
    value: float
    fetched_at: int


class BookSummary(BaseModel):
    """The top of an order book at ``taken_at``: best prices, spread and depth imbalance."""

    model_config = ConfigDict(frozen=True)

    symbol: str
    taken_at: int
    best_bid: float
    best_ask: float
    spread_fraction: float  # (ask − bid) / mid
    imbalance: float  # (bid − ask quantity) / their sum within the band, in [-1, 1]
    band_fraction: float  # the band around the mid the imbalance counts, e.g. 0.01 = ±1%
    source: str


class MarketView(Protocol):
    """Reads bound to ``as_of`` (epoch ms).

    candles: closed candles only (open + timeframe ≤ as_of), the newest ``limit``;
    news: published_at ≤ as_of; research: fetched_at ≤ as_of; book: the newest summary
    taken ≤ as_of and not older than the view's staleness bound (None: none that recent).
    """

    @property
    def as_of(self) -> int: ...

    def candles(self, symbol: str, timeframe: str, limit: int) -> CandleWindow: ...

    def news(self, symbol: str, limit: int) -> Sequence[NewsItem]: ...

    def research(self, symbol: str) -> Sequence[ResearchObservation]: ...

    def book(self, symbol: str) -> BookSummary | None: ...
