"""Order books and tickers from the exchange, for the service and `sigmax ingest`.

Each run takes a REST depth snapshot of every symbol into its local book (ExchangeBook),
stores the book's summary (the agents' spread and imbalance evidence) and asks the 24 h
ticker (ccxt fetch_ticker: last price, best bid/ask, change), kept for /health. Errors are
recorded as API errors (the gate's burst trigger) and per symbol; the others go on.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import ccxt

from core.settings import BookSettings
from ingestion.exchange_book import ExchangeBook
from ingestion.feeds import FeedError
from ingestion.workers import WorkFailedError
from storage.api_errors import ApiErrorStore
from storage.book_summaries import BookSummaryStore


@dataclass(frozen=True)
class Ticker:
    symbol: str
    taken_at: int
    last: float | None
    bid: float | None
    ask: float | None
    change_percent_24h: float | None


class BookWorker:
    def __init__(
        self,
        exchange: Any,
        symbols: Sequence[str],
        summaries: BookSummaryStore,
        api_errors: ApiErrorStore,
        settings: BookSettings,
    ) -> None:
        self._exchange = exchange
        self._summaries = summaries
        self._api_errors = api_errors
        self._settings = settings
        self.books = {s: ExchangeBook(exchange, s, settings.snapshot_levels) for s in symbols}
        self.tickers: dict[str, Ticker] = {}
        self.errors: dict[str, str] = {}

    def run(self, now_ms: int) -> str:
        stored, errors = 0, {}
        for symbol, book in self.books.items():
            try:
                book.snapshot()
                summary = book.summary(now_ms, self._settings.band_fraction)
                if summary is not None:
                    self._summaries.add(summary)
                    stored += 1
                self._ticker(symbol, now_ms)
            except FeedError as error:
                errors[symbol] = str(error)
                self._api_errors.record(f"exchange:{self._exchange.id}", "book", str(error), now_ms)
        self.errors = errors
        if errors and not stored:
            raise WorkFailedError("; ".join(errors.values()))
        return f"{stored} book summaries stored, {len(self.tickers)} tickers"

    def _ticker(self, symbol: str, now_ms: int) -> None:
        try:
            raw = self._exchange.fetch_ticker(symbol)
        except ccxt.BaseError as error:
            raise FeedError(f"{symbol} ticker: {type(error).__name__}: {error}") from None
        self.tickers = {
            **self.tickers,
            symbol: Ticker(
                symbol=symbol,
                taken_at=now_ms,
                last=raw.get("last"),
                bid=raw.get("bid"),
                ask=raw.get("ask"),
                change_percent_24h=raw.get("percentage"),
            ),
        }
