"""The local order book replaying a sequenced update stream with injected gaps of 5, 50 and
500 updates: the tier taken and the book after, checked against a book rebuilt by brute
force from every update it applied. Crossed and invalid input is rejected whole."""

import random

import pytest

from ingestion.order_book import (
    LARGE_GAP,
    SMALL_GAP,
    BookAction,
    InvalidBookError,
    Level,
    OrderBook,
)

Update = tuple[int, int, list[Level], list[Level]]


def stream(count: int, seed: int = 7) -> tuple[list[Level], list[Level], list[Update]]:
    """A snapshot at update 1000 and ``count`` updates after it, never crossing: bids stay
    under 100, asks over 100, quantities change and levels come and go."""
    rng = random.Random(seed)
    bids = [(round(99.99 - 0.01 * i, 2), float(rng.randint(1, 9))) for i in range(20)]
    asks = [(round(100.01 + 0.01 * i, 2), float(rng.randint(1, 9))) for i in range(20)]
    updates: list[Update] = []
    last = 1000
    for _ in range(count):
        first, final = last + 1, last + rng.randint(1, 3)
        bid_levels = [
            (round(99.99 - 0.01 * rng.randint(0, 30), 2), float(rng.choice([0, 1, 2, 5])))
            for _ in range(3)
        ]
        ask_levels = [
            (round(100.01 + 0.01 * rng.randint(0, 30), 2), float(rng.choice([0, 1, 2, 5])))
            for _ in range(3)
        ]
        updates.append((first, final, bid_levels, ask_levels))
        last = final
    return bids, asks, updates


def rebuilt(
    bids: list[Level], asks: list[Level], applied: list[Update]
) -> tuple[dict[float, float], dict[float, float]]:
    bid_side, ask_side = dict(bids), dict(asks)
    for _, _, bid_levels, ask_levels in applied:
        for side, levels in ((bid_side, bid_levels), (ask_side, ask_levels)):
            for price, quantity in levels:
                if quantity:
                    side[price] = quantity
                else:
                    side.pop(price, None)
    return bid_side, ask_side


def replay_with_gap(missing_updates: int) -> tuple[OrderBook, list[BookAction], list[Update]]:
    """Replay 400 updates, dropping the ones that cover ``missing_updates`` ids after the
    100th; return the book, the actions and the updates it was handed."""
    bids, asks, updates = stream(400)
    book = OrderBook("BTC/USDT")
    book.apply_snapshot(1000, bids, asks)
    handed: list[Update] = []
    actions: list[BookAction] = []
    gap_start = updates[99][1]
    for update in updates:
        first, final = update[0], update[1]
        if gap_start < first and final <= gap_start + missing_updates:
            continue  # lost in transit
        handed.append(update)
        actions.append(book.apply_update(*update))
    return book, actions, handed


def test_a_gap_under_ten_is_logged_and_ignored() -> None:
    book, actions, handed = replay_with_gap(5)
    assert actions.count(BookAction.GAP_IGNORED) == 1
    assert set(actions) == {BookAction.APPLIED, BookAction.GAP_IGNORED}
    assert book.gaps_ignored == 1
    bids, asks, _ = stream(400)
    expected_bids, expected_asks = rebuilt(bids, asks, handed)
    assert dict(book.levels("bid", 1000)) == expected_bids
    assert dict(book.levels("ask", 1000)) == expected_asks
    assert book.last_update_id == handed[-1][1]


def test_a_gap_of_ten_to_a_hundred_needs_a_snapshot_and_then_recovers() -> None:
    book, actions, handed = replay_with_gap(50)
    broken_at = actions.index(BookAction.NEEDS_SNAPSHOT)
    assert set(actions[:broken_at]) == {BookAction.APPLIED}
    assert set(actions[broken_at:]) == {BookAction.NEEDS_SNAPSHOT}, "refused until repaired"
    assert book.top() is None
    # The snapshot the exchange gives when asked (it covers the lost updates too), then the
    # updates that arrived after it.
    bids, asks, updates = stream(400)
    now = handed[broken_at][1]
    snapshot_bids, snapshot_asks = rebuilt(
        bids, asks, [update for update in updates if update[1] <= now]
    )
    book.apply_snapshot(now, sorted(snapshot_bids.items()), sorted(snapshot_asks.items()))
    later = handed[broken_at + 1 : broken_at + 51]
    assert len(later) == 50
    assert {book.apply_update(*update) for update in later} == {BookAction.APPLIED}
    expected_bids, expected_asks = rebuilt(bids, asks, [u for u in updates if u[1] <= later[-1][1]])
    assert dict(book.levels("bid", 1000)) == expected_bids
    assert dict(book.levels("ask", 1000)) == expected_asks


def test_a_gap_over_a_hundred_reconnects_the_stream() -> None:
    book, actions, _ = replay_with_gap(500)
    assert BookAction.NEEDS_RECONNECT in actions
    assert BookAction.NEEDS_SNAPSHOT not in actions
    assert book.needs is BookAction.NEEDS_RECONNECT
    book.reconnected()
    assert book.apply_update(5000, 5001, [], []) is BookAction.NEEDS_SNAPSHOT


def test_the_tiers_sit_where_the_seed_put_them() -> None:
    assert (SMALL_GAP, LARGE_GAP) == (10, 100)
    for missing, action in (
        (9, BookAction.GAP_IGNORED),
        (10, BookAction.NEEDS_SNAPSHOT),
        (99, BookAction.NEEDS_SNAPSHOT),
        (100, BookAction.NEEDS_RECONNECT),
    ):
        book = OrderBook("ETH/USDT")
        book.apply_snapshot(1, [(99.0, 1.0)], [(101.0, 1.0)])
        first = 2 + missing
        assert book.apply_update(first, first, [(98.0, 1.0)], []) is action, missing


def test_stale_updates_are_dropped_and_the_spread_and_imbalance_read() -> None:
    book = OrderBook("BTC/USDT")
    book.apply_snapshot(10, [(99.0, 3.0), (98.0, 1.0)], [(101.0, 1.0)])
    assert book.apply_update(5, 10, [(99.0, 100.0)], []) is BookAction.STALE
    top = book.top()
    assert top is not None
    assert (top.best_bid, top.best_ask) == (99.0, 101.0)
    assert top.spread_fraction == pytest.approx(2.0 / 100.0)
    assert top.imbalance == pytest.approx((4.0 - 1.0) / 5.0)


def test_a_crossed_or_invalid_update_is_rejected_whole() -> None:
    book = OrderBook("BTC/USDT")
    book.apply_snapshot(10, [(99.0, 3.0)], [(101.0, 1.0), (102.0, 2.0)])
    before = (book.levels("bid", 10), book.levels("ask", 10), book.last_update_id)
    with pytest.raises(InvalidBookError, match="would cross the book"):
        book.apply_update(11, 11, [(98.5, 1.0), (102.5, 1.0)], [(101.0, 0.0)])
    with pytest.raises(InvalidBookError, match="must be a positive number"):
        book.apply_update(11, 11, [(-1.0, 1.0)], [])
    with pytest.raises(InvalidBookError, match="must be zero or more"):
        book.apply_update(11, 11, [(98.0, float("nan"))], [])
    with pytest.raises(InvalidBookError, match="crossed"):
        OrderBook("X/Y").apply_snapshot(1, [(101.0, 1.0)], [(100.0, 1.0)])
    assert (book.levels("bid", 10), book.levels("ask", 10), book.last_update_id) == before
    assert book.apply_update(11, 11, [(98.5, 1.0)], [(101.0, 0.0)]) is BookAction.APPLIED
    top = book.top()
    assert top is not None
    assert (top.best_bid, top.best_ask) == (99.0, 102.0)
