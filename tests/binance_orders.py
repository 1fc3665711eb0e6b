"""Binance's signed spot endpoints on a loopback server, answering like Binance: POST, GET
and DELETE /api/v3/order, GET and DELETE /api/v3/openOrders, GET /api/v3/account and
GET /api/v3/myTrades, each checked for the API key header, the HMAC-SHA256 signature and the
timestamp's recvWindow; errors in Binance's shape and HTTP status.

A small matching engine stands behind them: a MARKET order fills at once at the symbol's
price, a LIMIT order fills when it crosses it and rests otherwise, locking its balance;
``trade`` moves the price and fills resting orders (partly, with ``max_quantity``). The
commission (0.1 %) is taken from what the trade brings in, as Binance does without BNB.
Faults: ``drop_after_accept`` accepts the next new order and closes the connection with no
answer; ``drop_before_accept`` closes it before the order is taken; ``reject_next`` answers
the next new order with the given (code, msg); ``answer_delay_seconds`` holds back the answer
to a new order already taken."""

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from binance_server import EXCHANGE_INFO_SYMBOL
from loopback_http import serving

API_KEY = "loopback-key"
API_SECRET = "loopback-secret"
COMMISSION = 0.001
INSUFFICIENT = (-2010, "Account has insufficient balance for requested action.")
UNKNOWN_ORDER = (-2011, "Unknown order sent.")
NO_SUCH_ORDER = (-2013, "Order does not exist.")


class RefusedError(Exception):
    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg


@dataclass
class OrderDesk:
    """The account, its orders and trades, and what every signed request asked."""

    prices: dict[str, float]  # Binance symbol id (BTCUSDT): the price market orders fill at
    balances: dict[str, list[float]]  # asset: [free, locked]
    orders: dict[int, dict[str, Any]] = field(default_factory=dict)
    trades: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    min_notional: float = 5.0
    drop_after_accept: int = 0
    drop_before_accept: int = 0
    reject_next: tuple[int, str] | None = None
    # How long a new order's answer takes once the order is taken.
    answer_delay_seconds: float = 0.0
    assets: dict[str, tuple[str, str]] = field(default_factory=dict)  # id: (base, quote)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _next_id: int = 1000

    def new_orders(self) -> list[dict[str, str]]:
        return [
            query
            for method, path, query in self.requests
            if (method, path) == ("POST", "/api/v3/order")
        ]

    # --- the matching engine --------------------------------------------------------------------

    def place(self, query: dict[str, str], now: int) -> dict[str, Any]:
        symbol = query["symbol"]
        if symbol not in self.assets:
            raise RefusedError(400, -1121, "Invalid symbol.")
        client_id = query.get("newClientOrderId") or f"web_{self._next_id}"
        if any(
            o["clientOrderId"] == client_id and o["status"] in ("NEW", "PARTIALLY_FILLED")
            for o in self.orders.values()
        ):
            raise RefusedError(400, -2010, "Duplicate order sent.")
        if self.reject_next is not None:
            code, msg = self.reject_next
            self.reject_next = None
            raise RefusedError(400, code, msg)
        quantity = float(query["quantity"])
        kind, side = query["type"], query["side"]
        price = float(query["price"]) if kind == "LIMIT" else self.prices[symbol]
        if quantity * price < self.min_notional:
            raise RefusedError(400, -1013, "Filter failure: NOTIONAL")
        base, quote = self.assets[symbol]
        unit = price if side == "BUY" else 1.0
        spend, need = (quote if side == "BUY" else base), quantity * unit
        if self.balances.get(spend, [0.0, 0.0])[0] < need - 1e-12:
            raise RefusedError(400, *INSUFFICIENT)
        self.balances[spend][0] -= need
        self.balances[spend][1] += need
        self._next_id += 1
        order = {
            "symbol": symbol,
            "orderId": self._next_id,
            "orderListId": -1,
            "clientOrderId": client_id,
            "price": f"{price if kind == 'LIMIT' else 0.0:.8f}",
            "origQty": f"{quantity:.8f}",
            "executedQty": "0.00000000",
            "cummulativeQuoteQty": "0.00000000",
            "status": "NEW",
            "timeInForce": query.get("timeInForce", "GTC"),
            "type": kind,
            "side": side,
            "stopPrice": "0.00000000",
            "icebergQty": "0.00000000",
            "time": now,
            "updateTime": now,
            "transactTime": now,
            "workingTime": now,
            "isWorking": True,
            "origQuoteOrderQty": "0.00000000",
            "selfTradePreventionMode": "NONE",
            "_locked": need,
            "_unit": unit,
        }
        self.orders[self._next_id] = order
        market = self.prices[symbol]
        if (
            kind == "MARKET"
            or (side == "BUY" and price >= market)
            or (side == "SELL" and price <= market)
        ):
            self._fill(order, quantity, market, now)
        return order

    def trade(self, symbol: str, price: float, max_quantity: float | None = None) -> None:
        """The market moves to ``price``: resting orders it crosses fill (up to max_quantity)."""
        with self.lock:
            self.prices[symbol] = price
            now = int(time.time() * 1000)
            for order in list(self.orders.values()):
                if order["symbol"] != symbol or order["status"] not in ("NEW", "PARTIALLY_FILLED"):
                    continue
                limit = float(order["price"])
                if (order["side"] == "BUY" and limit >= price) or (
                    order["side"] == "SELL" and limit <= price
                ):
                    left = float(order["origQty"]) - float(order["executedQty"])
                    self._fill(order, min(left, max_quantity or left), limit, now)

    def _fill(self, order: dict[str, Any], quantity: float, price: float, now: int) -> None:
        base, quote = self.assets[order["symbol"]]
        buy = order["side"] == "BUY"
        spent_asset, got_asset = (quote, base) if buy else (base, quote)
        release = quantity * order["_unit"]
        paid = quantity * price if buy else quantity
        order["_locked"] -= release
        self.balances[spent_asset][1] -= release
        self.balances[spent_asset][0] += release - paid  # a buy below its limit gets change
        got = quantity if buy else quantity * price
        commission = got * COMMISSION
        self.balances.setdefault(got_asset, [0.0, 0.0])[0] += got - commission
        executed = float(order["executedQty"]) + quantity
        order["executedQty"] = f"{executed:.8f}"
        order["cummulativeQuoteQty"] = (
            f"{float(order['cummulativeQuoteQty']) + quantity * price:.8f}"
        )
        order["status"] = (
            "FILLED" if executed >= float(order["origQty"]) - 1e-12 else "PARTIALLY_FILLED"
        )
        order["updateTime"] = now
        self.trades.append(
            {
                "symbol": order["symbol"],
                "id": len(self.trades) + 1,
                "orderId": order["orderId"],
                "orderListId": -1,
                "price": f"{price:.8f}",
                "qty": f"{quantity:.8f}",
                "quoteQty": f"{quantity * price:.8f}",
                "commission": f"{commission:.8f}",
                "commissionAsset": got_asset,
                "time": now,
                "isBuyer": buy,
                "isMaker": False,
                "isBestMatch": True,
            }
        )

    def cancel(self, order: dict[str, Any], now: int) -> dict[str, Any]:
        if order["status"] not in ("NEW", "PARTIALLY_FILLED"):
            raise RefusedError(400, *UNKNOWN_ORDER)
        base, quote = self.assets[order["symbol"]]
        asset = quote if order["side"] == "BUY" else base
        self.balances[asset][1] -= order["_locked"]
        self.balances[asset][0] += order["_locked"]
        order["_locked"] = 0.0
        order["status"] = "CANCELED"
        order["updateTime"] = now
        return order

    def find(self, query: dict[str, str], missing: tuple[int, str]) -> dict[str, Any]:
        for order in self.orders.values():
            if order["symbol"] != query.get("symbol"):
                continue
            if "orderId" in query and str(order["orderId"]) == query["orderId"]:
                return order
            if (
                "origClientOrderId" in query
                and order["clientOrderId"] == query["origClientOrderId"]
            ):
                return order
        raise RefusedError(400, *missing)

    def open_orders(self, symbol: str | None) -> list[dict[str, Any]]:
        return [
            order
            for order in self.orders.values()
            if order["status"] in ("NEW", "PARTIALLY_FILLED") and symbol in (None, order["symbol"])
        ]

    # --- the endpoints --------------------------------------------------------------------------

    def answer(self, method: str, path: str, query: dict[str, str]) -> Any:
        now = int(time.time() * 1000)
        if (method, path) == ("POST", "/api/v3/order"):
            return self.place(query, now)
        if (method, path) == ("GET", "/api/v3/order"):
            return self.find(query, NO_SUCH_ORDER)
        if (method, path) == ("DELETE", "/api/v3/order"):
            return self.cancel(self.find(query, UNKNOWN_ORDER), now)
        if (method, path) == ("GET", "/api/v3/openOrders"):
            return self.open_orders(query.get("symbol"))
        if (method, path) == ("DELETE", "/api/v3/openOrders"):
            listed = self.open_orders(query["symbol"])
            if not listed:
                raise RefusedError(400, *UNKNOWN_ORDER)
            return [self.cancel(order, now) for order in listed]
        if (method, path) == ("GET", "/api/v3/account"):
            return {
                "makerCommission": 10,
                "takerCommission": 10,
                "canTrade": True,
                "canWithdraw": True,
                "canDeposit": True,
                "updateTime": now,
                "accountType": "SPOT",
                "balances": [
                    {"asset": asset, "free": f"{free:.8f}", "locked": f"{locked:.8f}"}
                    for asset, (free, locked) in sorted(self.balances.items())
                ],
                "permissions": ["SPOT"],
            }
        if (method, path) == ("GET", "/api/v3/myTrades"):
            return [
                trade
                for trade in self.trades
                if trade["symbol"] == query["symbol"]
                and ("orderId" not in query or str(trade["orderId"]) == query["orderId"])
            ]
        raise RefusedError(404, -1, "not found")


def _public(order: Any) -> Any:
    if isinstance(order, dict):
        return {key: value for key, value in order.items() if not key.startswith("_")}
    if isinstance(order, list):
        return [_public(item) for item in order]
    return order


def check_signature(headers: Any, raw: str) -> dict[str, str]:
    """Binance's checks of a signed request; the query without its signature."""
    if headers.get("X-MBX-APIKEY") != API_KEY:
        raise RefusedError(401, -2015, "Invalid API-key, IP, or permissions for action.")
    unsigned, _, signature = raw.rpartition("&signature=")
    expected = hmac.new(API_SECRET.encode(), unsigned.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(signature, expected):
        raise RefusedError(400, -1022, "Signature for this request is not valid.")
    query = dict(parse_qsl(unsigned))
    window = int(query.get("recvWindow", "5000"))
    if abs(time.time() * 1000 - int(query.get("timestamp", "0"))) > window:
        raise RefusedError(400, -1021, "Timestamp for this request is outside of the recvWindow.")
    return query


@dataclass
class OrderServer:
    desk: OrderDesk
    base_url: str = ""


@contextmanager
def binance_order_server(desk: OrderDesk, symbols: list[str]) -> Iterator[OrderServer]:
    """exchangeInfo for ``symbols`` (BASE/QUOTE) and the signed endpoints over ``desk``."""
    for symbol in symbols:
        base, quote = symbol.split("/")
        desk.assets[base + quote] = (base, quote)
    served = OrderServer(desk)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

        def do_DELETE(self) -> None:
            self._handle("DELETE")

        def _handle(self, method: str) -> None:
            url = urlsplit(self.path)
            if url.path == "/api/v3/exchangeInfo":
                info = {
                    "timezone": "UTC",
                    "serverTime": int(time.time() * 1000),
                    "rateLimits": [],
                    "exchangeFilters": [],
                    "symbols": [
                        {"symbol": key, "baseAsset": base, "quoteAsset": quote}
                        | EXCHANGE_INFO_SYMBOL
                        for key, (base, quote) in desk.assets.items()
                    ],
                }
                self._json(200, info)
                return
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode() if method == "POST" else url.query
            try:
                query = check_signature(self.headers, raw)
                with desk.lock:
                    desk.requests.append((method, url.path, query))
                    new_order = (method, url.path) == ("POST", "/api/v3/order")
                    if new_order and desk.drop_before_accept:
                        desk.drop_before_accept -= 1
                        self._drop()
                        return
                    body = _public(desk.answer(method, url.path, query))
                    if new_order and desk.drop_after_accept:
                        desk.drop_after_accept -= 1
                        self._drop()
                        return
            except RefusedError as refusal:
                self._json(refusal.status, {"code": refusal.code, "msg": refusal.msg})
                return
            if new_order:
                time.sleep(desk.answer_delay_seconds)
            self._json(200, body)

        def _drop(self) -> None:
            """The connection closes with no answer, as when a network path fails."""
            self.close_connection = True
            self.connection.close()

        def _json(self, status: int, body: object) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the tests read ``desk.requests``."""

    with serving(Handler) as base_url:
        served.base_url = base_url
        yield served
