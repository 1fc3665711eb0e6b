"""Order-book updates applied per second by ingestion.order_book.OrderBook.

A seeded stream like Binance's diff depth for one symbol: a 1,000-level snapshot (500 a
side), then updates of 1–3 ids touching 10 levels each (some removals), never crossing.
Measured: ``apply_update`` for every update (sequence check, validation, crossing check,
best-price heaps), with ``top()`` (spread and imbalance over 10 levels) every 100 updates.
Anchor: the same levels written into two plain dicts with no check at all.

    .venv/bin/python -m bench.order_book
"""

import json
import platform
import random
import sys
import time

from ingestion.order_book import BookAction, Level, OrderBook

UPDATES = 200_000
LEVELS_PER_UPDATE = 10


Update = tuple[int, int, list[Level], list[Level]]


def stream(seed: int = 11) -> tuple[list[Level], list[Level], list[Update]]:
    rng = random.Random(seed)
    bids = [(round(99.99 - 0.01 * i, 2), float(rng.randint(1, 9))) for i in range(500)]
    asks = [(round(100.01 + 0.01 * i, 2), float(rng.randint(1, 9))) for i in range(500)]
    updates: list[Update] = []
    last = 1000
    half = LEVELS_PER_UPDATE // 2
    for _ in range(UPDATES):
        first, final = last + 1, last + rng.randint(1, 3)
        bid_levels = [
            (round(99.99 - 0.01 * rng.randint(0, 600), 2), float(rng.choice((0, 1, 2, 5))))
            for _ in range(half)
        ]
        ask_levels = [
            (round(100.01 + 0.01 * rng.randint(0, 600), 2), float(rng.choice((0, 1, 2, 5))))
            for _ in range(half)
        ]
        updates.append((first, final, bid_levels, ask_levels))
        last = final
    return bids, asks, updates


def main() -> None:
    bids, asks, updates = stream()
    book = OrderBook("BENCH/USDT")
    book.apply_snapshot(1000, bids, asks)
    started = time.perf_counter()
    for index, update in enumerate(updates):
        if book.apply_update(*update) is not BookAction.APPLIED:
            raise SystemExit(f"update {index} not applied")
        if index % 100 == 0:
            book.top()
    elapsed = time.perf_counter() - started

    plain_bids, plain_asks = dict(bids), dict(asks)
    anchor_started = time.perf_counter()
    for _, _, bid_levels, ask_levels in updates:
        for side, levels in ((plain_bids, bid_levels), (plain_asks, ask_levels)):
            for price, quantity in levels:
                if quantity:
                    side[price] = quantity
                else:
                    side.pop(price, None)
    anchor = time.perf_counter() - anchor_started

    result = {
        "machine": f"{platform.machine()}, Python {platform.python_version()}",
        "updates": UPDATES,
        "levels_per_update": LEVELS_PER_UPDATE,
        "updates_per_second": round(UPDATES / elapsed),
        "anchor_plain_dicts_updates_per_second": round(UPDATES / anchor),
    }
    if "--json" in sys.argv:
        print(json.dumps(result, indent=2))
        return
    anchor_rate = result["anchor_plain_dicts_updates_per_second"]
    print(
        f"{result['machine']}: {UPDATES:,} updates of {LEVELS_PER_UPDATE} levels: "
        f"{result['updates_per_second']:,} updates/s "
        f"(anchor, plain dicts without checks: {anchor_rate:,}/s)"
    )


if __name__ == "__main__":
    main()
