"""An exchange's order book kept locally: a REST depth snapshot (ccxt ``fetch_order_book``;
on Binance its ``nonce`` is the snapshot's lastUpdateId) plus sequenced diff updates
(Binance's diff-depth events: first id ``U``, last id ``u``, bid and ask levels ``b``/``a``).

Where the updates come from is an ``UpdateSource``: a websocket stream in production (ccxt
pro's watch_order_book or Binance's @depth stream), a replay of recorded events in tests.
The gap tiers are the OrderBook's: a small gap is logged and the update applied, a middle
one takes a fresh snapshot, a large one reconnects the source and then takes a snapshot.
Crossed or invalid snapshots and updates are refused whole and counted; the book's summary
(best prices, spread, depth imbalance within a band of the mid) is what the agents cite.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypedDict

import ccxt

from core.market_view import BookSummary
from ingestion.feeds import FeedError
from ingestion.order_book import BookAction, InvalidBookError, OrderBook


class DiffEvent(TypedDict):
    """One Binance diff-depth event, as the stream sends it (prices and sizes as text)."""

    U: int
    u: int
    b: list[list[str]]
    a: list[list[str]]


class UpdateSource(Protocol):
    def events(self) -> Iterable[DiffEvent]:
        """The updates received since the last call, in the order they came."""
        ...

    def reconnect(self) -> None:
        """Drop the stream and open it again (what follows may start anywhere)."""
        ...


@dataclass
class BookCounts:
    """What the book worker did, for /health and the tests."""

    snapshots: int = 0
    applied: int = 0
    stale: int = 0
    gaps_ignored: int = 0
    resnapshots: int = 0
    reconnects: int = 0
    rejected: int = 0
    last_error: str | None = None
    actions_seen: set[str] = field(default_factory=set)


class ExchangeBook:
    def __init__(self, exchange: Any, symbol: str, snapshot_levels: int) -> None:
        self._exchange = exchange
        self._levels = snapshot_levels
        self.book = OrderBook(symbol)
        self.counts = BookCounts()

    def snapshot(self) -> None:
        """Take a REST depth snapshot; FeedError when the exchange fails or sends a bad book."""
        symbol = self.book.symbol
        try:
            depth = self._exchange.fetch_order_book(symbol, self._levels)
        except ccxt.BaseError as error:
            self.counts.last_error = f"{type(error).__name__}: {str(error)[:300]}"
            raise FeedError(f"{symbol} depth: {self.counts.last_error}") from None
        nonce = depth.get("nonce")
        if nonce is None:
            raise FeedError(f"{symbol} depth: the snapshot carries no lastUpdateId")
        try:
            self.book.apply_snapshot(int(nonce), _levels(depth["bids"]), _levels(depth["asks"]))
        except InvalidBookError as error:
            self.counts.rejected += 1
            self.counts.last_error = str(error)
            raise FeedError(f"{symbol} depth refused: {error}") from None
        self.counts.snapshots += 1

    def apply(self, source: UpdateSource) -> None:
        """Apply what ``source`` received, repairing gaps as their tier says."""
        for event in source.events():
            self._apply_one(event, source)

    def _apply_one(self, event: DiffEvent, source: UpdateSource) -> None:
        try:
            bids, asks = _levels(event["b"]), _levels(event["a"])
            action = self.book.apply_update(int(event["U"]), int(event["u"]), bids, asks)
        except (InvalidBookError, ValueError, KeyError) as error:
            self.counts.rejected += 1
            self.counts.last_error = str(error)
            return
        self.counts.actions_seen.add(action.value)
        if action is BookAction.APPLIED:
            self.counts.applied += 1
        elif action is BookAction.GAP_IGNORED:
            self.counts.applied += 1
            self.counts.gaps_ignored += 1
        elif action is BookAction.STALE:
            self.counts.stale += 1
        else:
            if action is BookAction.NEEDS_RECONNECT:
                self.counts.reconnects += 1
                source.reconnect()
                self.book.reconnected()
            else:
                self.counts.resnapshots += 1
            self.snapshot()

    def summary(self, taken_at: int, band_fraction: float) -> BookSummary | None:
        """The book's top and imbalance within ``band_fraction`` of the mid; None while the
        book is broken or one side is empty."""
        top = self.book.top()
        if top is None:
            return None
        mid = (top.best_bid + top.best_ask) / 2
        low, high = mid * (1 - band_fraction), mid * (1 + band_fraction)
        bid_depth = sum(q for price, q in self.book.levels("bid", self._levels) if price >= low)
        ask_depth = sum(q for price, q in self.book.levels("ask", self._levels) if price <= high)
        return BookSummary(
            symbol=self.book.symbol,
            taken_at=taken_at,
            best_bid=top.best_bid,
            best_ask=top.best_ask,
            spread_fraction=top.spread_fraction,
            imbalance=(bid_depth - ask_depth) / (bid_depth + ask_depth),
            band_fraction=band_fraction,
            source=f"exchange:{self._exchange.id}",
        )


def _levels(rows: Iterable[Iterable[Any]]) -> list[tuple[float, float]]:
    """ccxt sends [price, amount] (maybe with a count); the stream sends them as text."""
    return [(float(price), float(amount)) for price, amount, *_ in rows]
