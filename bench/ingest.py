"""Ingestion speed against the loopback Binance (tests/binance_server.py) with the real ccxt
`binance` client, its rate limiter on.

1. Close to stored: 100 symbols, each with its history stored up to the previous close; the
   time from the next candle's close until every symbol's new candle is stored, through the
   service's path (ExchangeFeed.prepare, as the scheduler calls it for each series: the
   first call fetches the whole timeframe side by side on ccxt's async client — fetch_ohlcv,
   closed-candle checks, one insert per series — the others find their candle stored).
   ccxt's limiter counts request weight over Binance's one-minute window (rolling window):
   100 klines cost 40 of its 1,200 units a minute. With even spacing (ccxt's default leaky
   bucket) they would wait 20 ms each: 2.0 s for 100. Anchor: the same 100 kline requests
   one after the other with plain httpx, no limiter, nothing parsed or stored.
2. Order-book updates applied per second through ExchangeBook.apply: Binance-shaped diff
   events (text prices) from bench/order_book.py's seeded stream, parsed, sequence-checked,
   validated and applied. Anchor: the same updates already parsed, straight into
   OrderBook.apply_update (bench/order_book.py's measure).

    .venv/bin/python -m bench.ingest
"""

import platform
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # the loopback server and bench/order_book

from binance_server import Depth, binance_server  # noqa: E402

from bench.order_book import stream  # noqa: E402
from core.timeframes import parse_timestamp  # noqa: E402
from ingestion.exchange_book import DiffEvent, ExchangeBook  # noqa: E402
from ingestion.exchange_candles import CandleFetcher, candle_client, public_client  # noqa: E402
from ingestion.exchange_feed import ExchangeFeed  # noqa: E402
from ingestion.feeds import Series  # noqa: E402
from ingestion.order_book import OrderBook  # noqa: E402
from ingestion.sim import simulate_candles  # noqa: E402
from storage.api_errors import ApiErrorStore  # noqa: E402
from storage.candles import CandleStore  # noqa: E402
from storage.engine import open_database  # noqa: E402

SYMBOLS = tuple(f"C{index:03d}/USDT" for index in range(100))
START = parse_timestamp("2026-11-20T00:00:00Z")
STEP = 300_000
BARS = 300


def close_to_stored() -> tuple[float, float]:
    """Seconds from a close to all 100 stored, and the plain-httpx anchor."""
    candles = simulate_candles("C000/USDT", "5m", START, BARS + 2, seed=1)
    first_close = START + BARS * STEP
    with tempfile.TemporaryDirectory() as home, binance_server(candles, first_close) as server:
        server.more_symbols = SYMBOLS[1:]
        database = open_database(f"sqlite:///{home}/bench.db")
        client = candle_client("binance", 10.0, rest_base=server.base_url)
        store = CandleStore(database.guarded_session_factory)
        fetcher = CandleFetcher(client, store, ApiErrorStore(database.session_factory), 60)
        series = tuple(Series(symbol, "5m") for symbol in SYMBOLS)
        feed = ExchangeFeed("binance", store, fetcher, series)
        for item in series:
            feed.prepare(item, first_close)  # the history, up to the previous close
        server.now_ms = first_close + STEP  # the next candle has closed
        started = time.perf_counter()
        for item in series:
            feed.prepare(item, first_close + STEP)
        elapsed = time.perf_counter() - started
        feed.close()
        failed = [key for key, state in feed.states().items() if state.added != 1]
        if failed:
            raise SystemExit(f"not stored: {failed[:3]}")
        anchor_started = time.perf_counter()
        with httpx.Client(base_url=server.base_url) as plain:
            for symbol in SYMBOLS:
                plain.get(
                    "/api/v3/klines",
                    params={"symbol": symbol.replace("/", ""), "interval": "5m", "limit": 2},
                )
        anchor = time.perf_counter() - anchor_started
        database.dispose()
    return elapsed, anchor


class Replay:
    def __init__(self, events: list[DiffEvent]) -> None:
        self._events = events

    def events(self) -> Iterable[DiffEvent]:
        return self._events

    def reconnect(self) -> None:
        raise SystemExit("the bench stream has no gaps")


def book_updates_per_second() -> tuple[float, float]:
    bids, asks, updates = stream()
    events: list[DiffEvent] = [
        {
            "U": first,
            "u": final,
            "b": [[f"{p:.2f}", f"{q:.8f}"] for p, q in bid_levels],
            "a": [[f"{p:.2f}", f"{q:.8f}"] for p, q in ask_levels],
        }
        for first, final, bid_levels, ask_levels in updates
    ]
    candles = simulate_candles("BTC/USDT", "5m", START, 10, seed=1)
    with binance_server(candles, START + 10 * STEP) as server:
        server.books["BTCUSDT"] = Depth(1000, bids, asks)
        book = ExchangeBook(
            public_client("binance", 10.0, rest_base=server.base_url), "BTC/USDT", 1000
        )
        book.snapshot()
        started = time.perf_counter()
        book.apply(Replay(events))
        elapsed = time.perf_counter() - started
    if book.counts.applied != len(events):
        raise SystemExit(f"only {book.counts.applied} of {len(events)} applied: {book.counts}")
    parsed = OrderBook("BTC/USDT")
    parsed.apply_snapshot(1000, bids, asks)
    anchor_started = time.perf_counter()
    for update in updates:
        parsed.apply_update(*update)
    anchor = time.perf_counter() - anchor_started
    return len(events) / elapsed, len(updates) / anchor


def main() -> None:
    machine = f"{platform.machine()}, Python {platform.python_version()}"
    elapsed, anchor = close_to_stored()
    rate, parsed_rate = book_updates_per_second()
    print(
        f"{machine}: close to all {len(SYMBOLS)} symbols stored: {elapsed:.2f} s, rate "
        f"limiter on (target <= 2 s; anchor, the 100 kline requests with plain httpx: "
        f"{anchor:.2f} s)"
    )
    print(
        f"{machine}: order-book diff events applied: {rate:,.0f}/s (target >= 20,000; anchor, "
        f"the same updates already parsed into OrderBook.apply_update: {parsed_rate:,.0f}/s)"
    )


if __name__ == "__main__":
    main()
