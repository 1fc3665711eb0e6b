"""A loopback server answering Binance's public REST like Binance: exchangeInfo and klines
from a candle set, including the candle still forming at the server's "now". Faults can be
queued for the next kline requests: an HTTP status (with Retry-After), a delay, klines sent
out of order or twice."""

import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from loopback_http import serving

from core.candles import CandleWindow


@dataclass
class Fault:
    status: int = 200
    retry_after: str | None = None
    delay_seconds: float = 0.0
    shuffle: bool = False
    duplicate: bool = False


@dataclass
class Binance:
    candles: CandleWindow
    now_ms: int
    base_url: str = ""
    faults: deque[Fault] = field(default_factory=deque)
    kline_requests: list[dict[str, str]] = field(default_factory=list)
    # Market data beyond klines (see the block below): depth books by exchange symbol id,
    # further symbols listed in exchangeInfo.
    books: dict[str, "Depth"] = field(default_factory=dict)
    more_symbols: tuple[str, ...] = ()
    depth_requests: int = 0
    # Kline requests being answered at once, and the most there were: shows a client that
    # sends them side by side.
    klines_in_flight: int = 0
    klines_in_flight_peak: int = 0
    _counting: threading.Lock = field(default_factory=threading.Lock)

    def kline_started(self) -> None:
        with self._counting:
            self.klines_in_flight += 1
            self.klines_in_flight_peak = max(self.klines_in_flight_peak, self.klines_in_flight)

    def kline_finished(self) -> None:
        with self._counting:
            self.klines_in_flight -= 1

    def klines(self, start: int, limit: int) -> list[list[object]]:
        step = self.candles.timeframe_ms
        rows = []
        for index in range(len(self.candles)):
            opened = int(self.candles.open_time[index])
            if opened < start or opened > self.now_ms:  # the forming candle is included
                continue
            rows.append(
                [
                    opened,
                    f"{self.candles.open[index]:.8f}",
                    f"{self.candles.high[index]:.8f}",
                    f"{self.candles.low[index]:.8f}",
                    f"{self.candles.close[index]:.8f}",
                    f"{self.candles.volume[index]:.8f}",
                    opened + step - 1,
                    "0",
                    10,
                    "0",
                    "0",
                    "0",
                ]
            )
            if len(rows) == limit:
                break
        return rows


EXCHANGE_INFO_SYMBOL = {
    "status": "TRADING",
    "baseAssetPrecision": 8,
    "quotePrecision": 8,
    "quoteAssetPrecision": 8,
    "orderTypes": ["LIMIT", "MARKET"],
    "icebergAllowed": True,
    "ocoAllowed": True,
    "isSpotTradingAllowed": True,
    "isMarginTradingAllowed": False,
    "filters": [
        {
            "filterType": "PRICE_FILTER",
            "minPrice": "0.01",
            "maxPrice": "1000000",
            "tickSize": "0.01",
        },
        {"filterType": "LOT_SIZE", "minQty": "0.00001", "maxQty": "9000", "stepSize": "0.00001"},
        {"filterType": "NOTIONAL", "minNotional": "5"},
    ],
    "permissions": ["SPOT"],
    "permissionSets": [["SPOT"]],
}


@contextmanager
def binance_server(candles: CandleWindow, now_ms: int) -> Iterator[Binance]:
    exchange = Binance(candles, now_ms)
    base, quote = candles.symbol.split("/")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = {key: values[0] for key, values in parse_qs(url.query).items()}
            if url.path == "/api/v3/exchangeInfo":
                info = {
                    "timezone": "UTC",
                    "serverTime": exchange.now_ms,
                    "rateLimits": [],
                    "exchangeFilters": [],
                    "symbols": [
                        {"symbol": b + q, "baseAsset": b, "quoteAsset": q} | EXCHANGE_INFO_SYMBOL
                        for b, q in [(base, quote), *listed_pairs(exchange)]
                    ],
                }
                self._json(200, info)
                return
            answer = market_data(exchange, url.path, query)
            if answer is not None:
                self._json(*answer)
                return
            if url.path != "/api/v3/klines":
                self._json(404, {"code": -1, "msg": "not found"})
                return
            exchange.kline_requests.append(query)
            fault = exchange.faults.popleft() if exchange.faults else Fault()
            exchange.kline_started()
            try:
                time.sleep(fault.delay_seconds)
            finally:
                exchange.kline_finished()
            if fault.status != 200:
                headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                self._json(fault.status, {"code": -1003, "msg": "too many requests"}, headers)
                return
            rows = exchange.klines(int(query.get("startTime", 0)), int(query.get("limit", 500)))
            if fault.duplicate:
                rows = rows + rows[-3:]
            if fault.shuffle:
                rows = rows[::-1]
            self._json(200, rows)

        def _json(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the test reads ``exchange.kline_requests``."""

    with serving(Handler) as base_url:
        exchange.base_url = base_url
        yield exchange


# --- Market data beyond klines: depth, ticker/24hr, bookTicker, many symbols -------------


@dataclass
class Depth:
    """A book as /api/v3/depth answers it: lastUpdateId and [price, quantity] text rows."""

    last_update_id: int
    bids: list[tuple[float, float]]
    asks: list[tuple[float, float]]


def listed_pairs(exchange: Binance) -> list[tuple[str, str]]:
    return [tuple(symbol.split("/")) for symbol in exchange.more_symbols]  # type: ignore[misc]


def market_data(exchange: Binance, path: str, query: dict[str, str]) -> tuple[int, object] | None:
    """The answer to a depth or ticker request, or None for any other path."""
    if path == "/api/v3/depth":
        exchange.depth_requests += 1
        book = exchange.books.get(query.get("symbol", ""))
        if book is None:
            return 400, {"code": -1121, "msg": "Invalid symbol."}
        limit = int(query.get("limit", 100))
        return 200, {
            "lastUpdateId": book.last_update_id,
            "bids": [[f"{p:.8f}", f"{q:.8f}"] for p, q in book.bids[:limit]],
            "asks": [[f"{p:.8f}", f"{q:.8f}"] for p, q in book.asks[:limit]],
        }
    if path in ("/api/v3/ticker/24hr", "/api/v3/ticker/bookTicker"):
        symbol = query.get("symbol", "")
        book = exchange.books.get(symbol)
        if book is None:
            return 400, {"code": -1121, "msg": "Invalid symbol."}
        (bid, bid_qty), (ask, ask_qty) = book.bids[0], book.asks[0]
        top = {
            "symbol": symbol,
            "bidPrice": f"{bid:.8f}",
            "bidQty": f"{bid_qty:.8f}",
            "askPrice": f"{ask:.8f}",
            "askQty": f"{ask_qty:.8f}",
        }
        if path.endswith("bookTicker"):
            return 200, top
        closes = exchange.candles.close
        last, first = float(closes[-1]), float(closes[0])
        return 200, top | {
            "priceChange": f"{last - first:.8f}",
            "priceChangePercent": f"{(last / first - 1) * 100:.3f}",
            "weightedAvgPrice": f"{last:.8f}",
            "prevClosePrice": f"{first:.8f}",
            "lastPrice": f"{last:.8f}",
            "lastQty": "1.00000000",
            "openPrice": f"{first:.8f}",
            "highPrice": f"{float(exchange.candles.high.max()):.8f}",
            "lowPrice": f"{float(exchange.candles.low.min()):.8f}",
            "volume": f"{float(exchange.candles.volume.sum()):.8f}",
            "quoteVolume": "0",
            "openTime": exchange.now_ms - 86_400_000,
            "closeTime": exchange.now_ms,
            "firstId": 1,
            "lastId": 2,
            "count": 2,
        }
    return None
