"""The backtest's book read per bar: ``BacktestBroker.portfolio(as_of)`` and
``fills(previous, as_of)``, as the rl and gate steps read them, on the BTC/USDT 5m file.

Four books: flat with no fill; one position held (each bar a new close to mark it at);
flat after 500 closed trades (a buy every 8 bars, sold 4 bars later); and holding after
them. Each is read over 2,000 consecutive bars, 7 passes on a broker made afresh; the
least time a pass took counts (a loaded machine's noise only ever adds).

    .venv/bin/python -m bench.book_reads [--data ../shared/data/BTC_USDT-5m.csv]
"""

import argparse
import gc
import itertools
import json
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

from core.candles import CandleWindow
from core.settings import PaperSettings
from core.trading import OrderRequest, Side
from execution.backtest import BacktestBroker
from ingestion.candle_file import parse_candle_file
from storage.control import NEVER_CHANGED

BARS = 2_000
PASSES = 7
TRADED_BARS = 4_000  # 1,000 orders: 500 round trips


class Books:
    def __init__(self, series: CandleWindow) -> None:
        self.series = series
        self.settings = PaperSettings()
        self.orders = 0

    def as_of(self, index: int) -> int:
        return int(self.series.open_time[index]) + self.series.timeframe_ms

    def flat(self) -> BacktestBroker:
        return BacktestBroker(self.series, self.settings, lambda _symbol: NEVER_CHANGED)

    def held(self) -> BacktestBroker:
        broker = self.flat()
        self._order(broker, 0, "buy")
        broker.process_fills(self.as_of(1))
        return broker

    def traded(self) -> BacktestBroker:
        broker = self.flat()
        for index in range(TRADED_BARS):
            broker.process_fills(self.as_of(index))
            if index % 4 == 0:
                self._order(broker, index, "buy" if index % 8 == 0 else "sell")
        return broker

    def traded_then_held(self) -> BacktestBroker:
        broker = self.traded()
        self._order(broker, TRADED_BARS, "buy")
        broker.process_fills(self.as_of(TRADED_BARS + 1))
        return broker

    def _order(self, broker: BacktestBroker, index: int, side: Side) -> None:
        self.orders += 1
        request = OrderRequest(
            client_order_id=f"bench-{self.orders}",
            symbol=self.series.symbol,
            timeframe=self.series.timeframe,
            side=side,
            size_fraction=0.05 if side == "buy" else 1.0,
            reference_price=float(self.series.close[index]),
            not_before=self.as_of(index),
        )
        outcome = broker.submit(request, self.as_of(index))
        if outcome.status != "accepted":
            raise SystemExit(f"order at bar {index} {outcome.status}: {outcome.reason}")


def per_read_us(
    books: Books,
    make: Callable[[], BacktestBroker],
    read: Callable[[BacktestBroker, int, int], None],
    at: int,
) -> float:
    """The least µs a read of the bars from ``at`` took over the passes, each on a broker
    made afresh and read once at the bar before, as that bar would have read it."""
    best = float("inf")
    for _ in range(PASSES):
        broker = make()
        broker.portfolio(books.as_of(at - 1))
        gc.collect()  # the garbage of making the broker is not the reads' to collect
        instants = [books.as_of(index) for index in range(at - 1, at + BARS)]
        started = time.perf_counter()
        for previous, now in itertools.pairwise(instants):
            read(broker, previous, now)
        best = min(best, (time.perf_counter() - started) / BARS * 1e6)
    return best


def portfolio(broker: BacktestBroker, _previous: int, now: int) -> None:
    broker.portfolio(now)


def fills(broker: BacktestBroker, previous: int, now: int) -> None:
    broker.fills(previous, now)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/BTC_USDT-5m.csv"))
    path = parser.parse_args().data
    series = parse_candle_file(path.read_bytes(), "BTC/USDT", "5m", "import").candles
    books = Books(series)
    cases = {
        "flat, no fill": (books.flat, 100),
        "one position held": (books.held, 100),
        "flat after 500 closed trades": (books.traded, TRADED_BARS),
        "held after 500 closed trades": (books.traded_then_held, TRADED_BARS + 2),
    }
    results = {
        name: {
            "portfolio_us": round(per_read_us(books, make, portfolio, at), 2),
            "fills_us": round(per_read_us(books, make, fills, at), 2),
        }
        for name, (make, at) in cases.items()
    }
    for name, result in results.items():
        us = result["portfolio_us"], result["fills_us"]
        print(f"{name:30s} portfolio {us[0]:6.2f} µs   fills {us[1]:5.2f} µs")
    machine = {"python": sys.version.split()[0], "machine": platform.machine()}
    print(json.dumps({"book_reads": results, **machine}))


if __name__ == "__main__":
    main()
