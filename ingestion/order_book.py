"""A local order book kept from a snapshot plus sequenced updates (Binance's diff-depth model:
each update carries the first and last update id it covers).

Gaps in the sequence, by size (the seed's tiers): under ``SMALL_GAP`` missing updates the gap
is logged and the update applied; up to ``LARGE_GAP`` a fresh snapshot is needed; beyond,
the stream itself is suspect and must be reconnected. Until a snapshot or reconnect repairs
it, the book refuses updates. A book that would end crossed (best bid ≥ best ask) or an
update with a non-positive price or a negative quantity is rejected whole.
"""

import heapq
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

log = logging.getLogger("sigmax.order_book")

SMALL_GAP = 10
LARGE_GAP = 100

Level = tuple[float, float]  # price, quantity (0: remove the level)


class BookAction(Enum):
    APPLIED = "applied"
    STALE = "stale"  # wholly before the book's last update: dropped
    GAP_IGNORED = "gap_ignored"  # a small gap, logged; the update applied
    NEEDS_SNAPSHOT = "needs_snapshot"
    NEEDS_RECONNECT = "needs_reconnect"


class InvalidBookError(ValueError):
    """An update or snapshot that would leave the book invalid; nothing of it was applied."""


@dataclass(frozen=True)
class BookTop:
    best_bid: float
    best_ask: float
    spread_fraction: float  # (ask − bid) / mid
    # (bid depth − ask depth) / (bid depth + ask depth) over the top levels, in [-1, 1].
    imbalance: float


class OrderBook:
    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.last_update_id: int | None = None
        self.needs: BookAction | None = BookAction.NEEDS_SNAPSHOT
        self.gaps_ignored = 0
        self._bids: dict[float, float] = {}
        self._asks: dict[float, float] = {}
        # Best-price heaps with lazy deletion: a price no longer in the side is skipped.
        self._bid_heap: list[float] = []
        self._ask_heap: list[float] = []

    def apply_snapshot(
        self, last_update_id: int, bids: Iterable[Level], asks: Iterable[Level]
    ) -> None:
        bid_levels, ask_levels = _checked(bids), _checked(asks)
        new_bids = {price: quantity for price, quantity in bid_levels if quantity > 0}
        new_asks = {price: quantity for price, quantity in ask_levels if quantity > 0}
        if new_bids and new_asks and max(new_bids) >= min(new_asks):
            raise InvalidBookError(f"{self.symbol}: snapshot {last_update_id} is crossed")
        self._bids, self._asks = new_bids, new_asks
        self._bid_heap = [-price for price in new_bids]
        self._ask_heap = list(new_asks)
        heapq.heapify(self._bid_heap)
        heapq.heapify(self._ask_heap)
        self.last_update_id = last_update_id
        self.needs = None

    def apply_update(
        self, first_id: int, final_id: int, bids: Iterable[Level], asks: Iterable[Level]
    ) -> BookAction:
        """Apply one sequenced update, or say what the book needs first."""
        if first_id > final_id:
            raise InvalidBookError(
                f"{self.symbol}: update ids {first_id}..{final_id} run backwards"
            )
        if self.needs is not None or self.last_update_id is None:
            return self.needs or BookAction.NEEDS_SNAPSHOT
        if final_id <= self.last_update_id:
            return BookAction.STALE
        missing = first_id - (self.last_update_id + 1)
        if missing >= LARGE_GAP:
            return self._broken(BookAction.NEEDS_RECONNECT, missing)
        if missing >= SMALL_GAP:
            return self._broken(BookAction.NEEDS_SNAPSHOT, missing)
        self._apply(_checked(bids), _checked(asks), final_id)
        if missing > 0:
            self.gaps_ignored += 1
            log.info("%s: %d updates missing before %d; ignored", self.symbol, missing, first_id)
            return BookAction.GAP_IGNORED
        return BookAction.APPLIED

    def reconnected(self) -> None:
        """The stream was reopened: a snapshot is needed before any update."""
        self.needs = BookAction.NEEDS_SNAPSHOT

    def top(self, depth: int = 10) -> BookTop | None:
        """Best prices, spread and imbalance; None while a side is empty or the book broken."""
        if self.needs is not None:
            return None
        bid, ask = (
            self._best(self._bid_heap, self._bids, -1),
            self._best(self._ask_heap, self._asks, 1),
        )
        if bid is None or ask is None:
            return None
        bid_depth = sum(quantity for _, quantity in self.levels("bid", depth))
        ask_depth = sum(quantity for _, quantity in self.levels("ask", depth))
        mid = (bid + ask) / 2
        return BookTop(
            best_bid=bid,
            best_ask=ask,
            spread_fraction=(ask - bid) / mid,
            imbalance=(bid_depth - ask_depth) / (bid_depth + ask_depth),
        )

    def levels(self, side: str, depth: int) -> list[Level]:
        """The best ``depth`` levels of a side, best first."""
        if side == "bid":
            return sorted(self._bids.items(), reverse=True)[:depth]
        return sorted(self._asks.items())[:depth]

    def _apply(self, bids: list[Level], asks: list[Level], final_id: int) -> None:
        """Apply both sides; if the book ends crossed, put every touched level back."""
        sides = ((self._bids, self._bid_heap, -1.0, bids), (self._asks, self._ask_heap, 1.0, asks))
        undo = [
            (side, heap, sign, price, side.get(price))
            for side, heap, sign, levels in sides
            for price, _ in levels
        ]
        for side, heap, sign, levels in sides:
            for price, quantity in levels:
                _set(side, heap, price, quantity, sign * price)
        bid = self._best(self._bid_heap, self._bids, -1)
        ask = self._best(self._ask_heap, self._asks, 1)
        if bid is not None and ask is not None and bid >= ask:
            for side, heap, sign, price, old in reversed(undo):
                if old is None:
                    side.pop(price, None)
                else:
                    side[price] = old
                    heapq.heappush(heap, sign * price)  # it may have been popped as stale
            raise InvalidBookError(f"{self.symbol}: update to {final_id} would cross the book")
        self.last_update_id = final_id

    def _broken(self, needs: BookAction, missing: int) -> BookAction:
        log.warning("%s: %d updates missing: %s", self.symbol, missing, needs.value)
        self.needs = needs
        return needs

    @staticmethod
    def _best(heap: list[float], side: dict[float, float], sign: float) -> float | None:
        while heap and sign * heap[0] not in side:
            heapq.heappop(heap)
        return sign * heap[0] if heap else None


def _checked(levels: Iterable[Level]) -> list[Level]:
    checked = []
    for price, quantity in levels:
        if not (math.isfinite(price) and price > 0):
            raise InvalidBookError(f"price {price!r} must be a positive number")
        if not (math.isfinite(quantity) and quantity >= 0):
            raise InvalidBookError(f"quantity {quantity!r} at {price} must be zero or more")
        checked.append((float(price), float(quantity)))
    return checked


def _set(
    side: dict[float, float], heap: list[float], price: float, quantity: float, key: float
) -> None:
    if quantity == 0:
        side.pop(price, None)
        return
    if price not in side:
        heapq.heappush(heap, key)
    side[price] = quantity
