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


class MarketView(Protocol):
    """Reads bound to ``as_of`` (epoch ms).

    candles: closed candles only (open + timeframe ≤ as_of), the newest ``limit``;
    news: published_at ≤ as_of; research: fetched_at ≤ as_of.
    """

    @property
    def as_of(self) -> int: ...

    def candles(self, symbol: str, timeframe: str, limit: int) -> CandleWindow: ...

    def news(self, symbol: str, limit: int) -> Sequence[NewsItem]: ...

    def research(self, symbol: str) -> Sequence[ResearchObservation]: ...
