"""The exchange broker: execution.broker.Broker on an exchange's sandbox or live, via ccxt.

Submitting, in two steps, so that the row exists before anything leaves and the control
state is read in the same guarded transaction (storage.journal) as the send:

1. a guarded transaction reads the control state, sizes the order against the exchange's
   balances, rounds it to the market's precision, checks the market's minimums and stores
   it (open, "sending"), or as rejected when it cannot be sent;
2. a second guarded transaction reads the control state again and, only if it still lets
   the order out, sends it with its client order id and records the exchange's id. A panic's
   HALTED waits for a send under way and every send after it reads HALTED: once a panic is
   acknowledged, no order leaves, from any process.

An answer lost on the way back (a timeout, a dropped connection: ccxt's OperationFailed
family) is ambiguous: the order may have been accepted. The broker then looks it up by its
client order id and resends, under the guard again, only when the exchange does not know it;
after ``send_attempts`` it is left open as "unconfirmed" for the next poll to look up. A
definite refusal (insufficient funds, invalid size or precision, any other rejection) stores
the order as rejected with the exchange's reason.

Polling (``process_fills``) asks the exchange for each open order's status and books every
new trade as a fill, with its price, fee (in the quote currency) and time; partial fills
are booked as they come. The book is the exchange's: balances come from the exchange, the
stored fills give the day's flows and the closed trades.
"""

import uuid
from dataclasses import asdict, dataclass
from typing import Any, Literal, cast

import ccxt
from sqlalchemy.orm import Session

from core.settings import Settings
from core.timeframes import floor_to
from core.trading import (
    FillView,
    OrderOutcome,
    OrderRequest,
    OrderView,
    PortfolioView,
)
from execution.accounting import DUST, Ledger, replay_adopting
from execution.exchange_book import Balances, UnpricedHoldingError, exchange_portfolio
from execution.exchange_client import exchange_client_id, rejection_reason, trading_client
from execution.order_rules import (
    StoredOrderReads,
    answered_already,
    check_request,
    control_refusal,
    fill_records,
    new_order,
    order_view,
    resubmitted,
    side_of,
)
from storage import orders
from storage.api_errors import ApiErrorStore
from storage.control import current_in
from storage.engine import Database
from storage.journal import guarded_transaction
from storage.models import FillRow, OrderRow
from storage.safety_events import SafetyEventDraft, event_row

DAY_MS = 86_400_000
# Reasons that mark an open order the exchange has not confirmed yet.
SENDING = "sending to "
UNCONFIRMED = "unconfirmed: "
_FINAL_STATUS: dict[str, Literal["filled", "cancelled"]] = {
    "closed": "filled",
    "canceled": "cancelled",
    "expired": "cancelled",
}


RECONCILED_EVENT_KIND = "exchange_reconciled"


@dataclass(frozen=True)
class Reconciliation:
    at: int
    differences: tuple[str, ...]


class ExchangeCancelError(RuntimeError):
    """Some open orders could not be cancelled; the message lists which and why."""


@dataclass(frozen=True)
class ExchangeOrder:
    """An order as the exchange reports it (``sigmax status``)."""

    exchange_order_id: str
    client_order_id: str | None
    symbol: str
    side: str
    amount: float
    filled: float
    price: float | None
    status: str


@dataclass(frozen=True)
class ExchangeSnapshot:
    open_orders: tuple[ExchangeOrder, ...]
    balances: dict[str, tuple[float, float]]  # currency: (free, locked)


class ExchangeBroker(StoredOrderReads):
    """An exchange's account as a Broker; see the module docstring for the rules."""

    def __init__(self, database: Database, settings: Settings, client: Any | None = None) -> None:
        broker = settings.broker
        self._database = database
        self._settings = settings
        self._client = client if client is not None else trading_client(broker)
        self.real_money = broker.real_money
        # Sandbox and live orders are kept apart: the live caps count only real ones.
        self.name = broker.exchange[:11] + ("" if self.real_money else "-test")
        self._api_errors = ApiErrorStore(database.session_factory)
        self._source = f"exchange:{self.name}"

    # --- the Broker protocol --------------------------------------------------------------------

    def submit(self, request: OrderRequest, now_ms: int) -> OrderOutcome:
        check_request(request)
        with self._database.session_factory() as session:
            existing = orders.order_by_client_id(session, request.client_order_id)
        if existing is not None:
            return resubmitted(existing)
        try:
            market = self._market(request.symbol)
            book = self._balances()
        except ccxt.BaseError as error:
            self._record_error(error, now_ms)
            return OrderOutcome("refused", f"{self.name} could not be asked: {_said(error)}")
        stored = self._store(request, market, book, now_ms)
        if isinstance(stored, OrderOutcome):
            return stored
        return self._send(stored, request, now_ms)

    def process_fills(self, now_ms: int) -> list[FillView]:
        """Poll every open order the exchange has (or may have) and book its new trades."""
        with self._database.session_factory() as session:
            due = [
                _Snapshot.of(row)
                for row in orders.open_orders(session, self.name)
                if not row.reason.startswith(SENDING)
            ]
        booked: list[FillView] = []
        for order in due:
            try:
                booked += self._sync(order, now_ms)
            except ccxt.BaseError as error:  # the next poll tries again
                self._record_error(error, now_ms)
        return booked

    def cancel_all(self, reason: str, now_ms: int) -> list[OrderView]:
        """Cancel every open order the exchange reports for the configured symbols and those
        of our open orders, placed by SIGMAX or not; then book what each came to.

        Orders placed outside SIGMAX are stored too (adopted, cancelled). Every symbol is
        tried; failures are raised together at the end."""
        with self._database.session_factory() as session:
            ours = [_Snapshot.of(row) for row in orders.open_orders(session, self.name)]
        symbols = sorted(set(self._settings.symbols) | {order.symbol for order in ours})
        problems: list[str] = []
        foreign: list[dict[str, Any]] = []
        known = {order.exchange_order_id for order in ours}
        for symbol in symbols:
            try:
                listed = self._client.fetch_open_orders(symbol)
            except ccxt.BaseError as error:
                problems.append(f"{symbol}: open orders unknown: {_said(error)}")
                continue
            for listed_order in listed:
                try:
                    self._client.cancel_order(listed_order["id"], symbol)
                except ccxt.OrderNotFound:
                    pass  # filled or cancelled meanwhile: the sync below books which
                except ccxt.BaseError as error:
                    problems.append(f"{symbol} order {listed_order['id']}: {_said(error)}")
                    continue
                if str(listed_order["id"]) not in known:
                    foreign.append(listed_order)
        for order in ours:
            try:
                self._sync(order, now_ms, closing=reason)
            except ccxt.BaseError as error:
                problems.append(f"order {order.id}: status unknown: {_said(error)}")
        with self._database.session_factory() as session:
            rows = (session.get(OrderRow, order.id) for order in ours)
            cancelled = [order_view(row) for row in rows if row and row.status == "cancelled"]
        cancelled += self._adopt(
            foreign, f"{reason}: placed outside SIGMAX", now_ms, cancelled=True
        )
        if problems:
            raise ExchangeCancelError(
                f"{len(cancelled)} cancelled; not done: " + "; ".join(problems)
            )
        return cancelled

    def ledger(self, until_ms: int | None = None) -> Ledger:
        """The stored fills replayed; coins sold that no stored fill bought are adopted."""
        with self._database.session_factory() as session:
            return _replay(orders.fills(session, self.name, until_ms=until_ms))

    def real_notional_today(self, now_ms: int) -> float:
        if not self.real_money:
            return 0.0
        with self._database.session_factory() as session:
            return orders.bought_since(session, self.name, floor_to(now_ms, DAY_MS))

    def portfolio(self, now_ms: int) -> PortfolioView:
        """The exchange's balances now, marked at the last closes, with the day's flows from
        the stored fills (the book at 00:00 is today's balances less today's fills)."""
        balances = self._balances()
        with self._database.session_factory() as session:
            return exchange_portfolio(session, self.name, self._settings, balances, now_ms)

    # --- beyond the protocol --------------------------------------------------------------------

    def snapshot(self) -> ExchangeSnapshot:
        """What the exchange reports now: the configured symbols' open orders, the balances."""
        listed = [
            _exchange_order(order)
            for symbol in self._settings.symbols
            for order in self._client.fetch_open_orders(symbol)
        ]
        balance = self._client.fetch_balance()
        held = {
            currency: (float(balance["free"].get(currency) or 0.0), float(used or 0.0))
            for currency, used in balance["used"].items()
            if (balance["total"].get(currency) or 0.0) > 0.0
        }
        return ExchangeSnapshot(open_orders=tuple(listed), balances=held)

    def reconcile(self, now_ms: int) -> "Reconciliation":
        """At start-up: bring the stored open orders to what the exchange says, adopt the open
        orders it has and the database does not, and compare its balances with the stored
        fills. The exchange's truth is kept; every difference is reported and recorded as a
        safety event (nothing is dropped silently)."""
        differences: list[str] = []
        with self._database.session_factory() as session:
            ours = [_Snapshot.of(row) for row in orders.open_orders(session, self.name)]
        for order in ours:
            before = order.exchange_order_id
            self._sync(order, now_ms)
            with self._database.session_factory() as session:
                row = session.get(OrderRow, order.id)
                if row is not None and (row.status != "open" or before != row.exchange_order_id):
                    differences.append(f"order {order.id}: now {row.status} ({row.reason})")
        listed = [
            found
            for symbol in self._settings.symbols
            for found in self._client.fetch_open_orders(symbol)
        ]
        adopted = self._adopt(
            listed, "adopted at start-up: open on the exchange, not stored", now_ms,
            cancelled=False,
        )  # fmt: skip
        differences += [f"order {view.id}: adopted ({view.symbol} {view.side})" for view in adopted]
        book = self._balances()
        positions = self.ledger(now_ms).positions
        for symbol in self._settings.symbols:
            base = symbol.partition("/")[0]
            position = positions.get(symbol)
            stored = 0.0 if position is None else position.quantity
            held = book.total.get(base, 0.0)
            if abs(held - stored) > DUST:
                differences.append(
                    f"{base}: {held:.10g} on {self.name}, {stored:.10g} from the stored fills of "
                    f"{symbol}: the exchange's balance is the book"
                )
        report = Reconciliation(at=now_ms, differences=tuple(differences))
        draft = SafetyEventDraft(
            RECONCILED_EVENT_KIND, None, {"broker": self.name, "differences": differences}, now_ms
        )
        with self._database.session_factory.begin() as session:
            session.add(event_row(draft))
        return report

    # --- submitting -----------------------------------------------------------------------------

    def _store(
        self, request: OrderRequest, market: dict[str, Any], book: Balances, now_ms: int
    ) -> "_Snapshot | OrderOutcome":
        with guarded_transaction(self._database, exclusive=False) as session:
            answered = answered_already(session, request)
            if answered is not None:
                return answered
            try:
                portfolio = exchange_portfolio(session, self.name, self._settings, book, now_ms)
            except UnpricedHoldingError as error:
                return OrderOutcome("refused", f"cannot size the order: {error}")
            sized = _size(request, book, portfolio, float(market.get("taker") or 0.0))
            if isinstance(sized, str):
                return OrderOutcome("refused", sized)
            quantity, problem = self._fit(request, market, sized)
            row = orders.add_order(
                session,
                new_order(
                    request,
                    self.name,
                    quantity,
                    "rejected" if problem else "open",
                    problem or f"{SENDING}{self.name}",
                ),
                now_ms,
            )
            if problem:
                return OrderOutcome("rejected", problem, row.id, row.quantity, row.journal_seq)
            return _Snapshot.of(row)

    def _fit(
        self, request: OrderRequest, market: dict[str, Any], quantity: float
    ) -> tuple[float, str | None]:
        """Round down to the market's amount precision; check its minimum amount and cost."""
        try:
            rounded = float(self._client.amount_to_precision(request.symbol, quantity))
        except ccxt.BaseError as error:  # rounds to nothing
            return 0.0, f"quantity {quantity:.10g} rounds to nothing on {self.name}: {_said(error)}"
        limits = market.get("limits") or {}
        least = (limits.get("amount") or {}).get("min")
        if rounded <= 0.0 or (least is not None and rounded < least):
            return rounded, f"quantity {rounded:.10g} is below {self.name}'s minimum {least}"
        least_cost = (limits.get("cost") or {}).get("min")
        cost = rounded * request.reference_price
        if least_cost is not None and cost < least_cost:
            return rounded, f"notional {cost:.10g} is below {self.name}'s minimum {least_cost}"
        return rounded, None

    def _send(self, order: "_Snapshot", request: OrderRequest, now_ms: int) -> OrderOutcome:
        client_id = exchange_client_id(order.client_order_id)
        attempts = self._settings.broker.send_attempts
        lost: Exception | None = None
        for attempt in range(attempts):
            if attempt:
                try:
                    found = self._find_by_client_id(order.symbol, client_id)
                except ccxt.BaseError as error:
                    self._record_error(error, now_ms)
                    lost = error
                    continue
                if found is not None:
                    return self._confirmed(order, found, now_ms, "the answer was lost; found")
            outcome, lost = self._send_once(order, request, client_id, now_ms)
            if outcome is not None:
                return outcome
            self._record_error(lost, now_ms)
        reason = (
            f"{UNCONFIRMED}sent {attempts} times to {self.name} with no answer "
            f"({_said(lost)}); looked up by client id {client_id} at the next poll"
        )
        with self._database.session_factory.begin() as session:
            orders.note_exchange_state(session, order.id, reason=reason, at_ms=now_ms)
        return OrderOutcome("accepted", reason, order.id, order.quantity, order.journal_seq)

    def _send_once(
        self, order: "_Snapshot", request: OrderRequest, client_id: str, now_ms: int
    ) -> tuple[OrderOutcome | None, Exception | None]:
        """One send under the guard: (outcome, None) when the exchange answered, (None, the
        error) when the answer was lost."""
        settings = self._settings.broker
        with guarded_transaction(self._database, exclusive=False) as session:
            refusal = control_refusal(request, current_in(session, request.symbol))
            if refusal is not None:
                reason = f"not sent: {refusal}"
                orders.close_order(session, order.id, "rejected", reason, now_ms)
                return OrderOutcome("rejected", reason, order.id, 0.0, order.journal_seq), None
            price = request.reference_price if settings.order_type == "limit" else None
            try:
                answer = self._client.create_order(
                    order.symbol,
                    settings.order_type,
                    order.side,
                    order.quantity,
                    price,
                    {"newClientOrderId": client_id},
                )
            except ccxt.OperationFailed as error:  # timeouts, dropped connections: ambiguous
                return None, error
            except ccxt.BaseError as error:
                refused: Exception = error
                reason = rejection_reason(self.name, error)
                orders.close_order(session, order.id, "rejected", reason, now_ms)
                rejected = OrderOutcome("rejected", reason, order.id, 0.0, order.journal_seq)
            else:
                return self._confirm_in(session, order, answer, now_ms, "sent"), None
        # Recorded once the guard is released: the error store writes in its own transaction.
        self._record_error(refused, now_ms)
        return rejected, None

    def _confirmed(
        self, order: "_Snapshot", answer: dict[str, Any], now_ms: int, how: str
    ) -> OrderOutcome:
        with self._database.session_factory.begin() as session:
            return self._confirm_in(session, order, answer, now_ms, how)

    def _confirm_in(
        self, session: Session, order: "_Snapshot", answer: dict[str, Any], now_ms: int, how: str
    ) -> OrderOutcome:
        exchange_id = str(answer["id"])
        reason = f"{how} on {self.name} as order {exchange_id} ({answer.get('status')})"
        orders.note_exchange_state(
            session, order.id, reason=reason, at_ms=now_ms, exchange_order_id=exchange_id
        )
        return OrderOutcome("accepted", reason, order.id, order.quantity, order.journal_seq)

    def _find_by_client_id(self, symbol: str, client_id: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = self._client.fetch_order(
                None, symbol, {"origClientOrderId": client_id}
            )
        except ccxt.OrderNotFound:
            return None
        return found

    # --- polling --------------------------------------------------------------------------------

    def _sync(self, order: "_Snapshot", now_ms: int, closing: str | None = None) -> list[FillView]:
        """Bring one stored order up to what the exchange says: new trades booked, status.

        ``closing``: why the caller cancelled it (the panic), kept in a cancelled order's reason.
        """
        if order.exchange_order_id is None:
            found = self._find_by_client_id(order.symbol, exchange_client_id(order.client_order_id))
            if found is None:
                why = f"never reached {self.name} (its client id is unknown)"
                with self._database.session_factory.begin() as session:
                    if closing is None:
                        orders.close_order(session, order.id, "rejected", why, now_ms)
                    else:
                        orders.close_order(
                            session, order.id, "cancelled", f"{closing}: {why}", now_ms
                        )
                return []
            self._confirmed(order, found, now_ms, "found by client id")
            order = order.with_exchange_id(str(found["id"]))
        state = self._client.fetch_order(order.exchange_order_id, order.symbol)
        filled = float(state.get("filled") or 0.0)
        trades = (
            self._client.fetch_my_trades(
                order.symbol, None, None, {"orderId": order.exchange_order_id}
            )
            if filled > order.filled_quantity + DUST
            else []
        )
        with self._database.session_factory.begin() as session:
            booked, unbooked = self._book_trades(session, order, trades)
            final = _FINAL_STATUS.get(str(state.get("status")))
            reason = f"{self.name} order {order.exchange_order_id}: {filled:.10g} of " + (
                f"{order.quantity:.10g} filled, {state.get('status')}"
            )
            if unbooked:
                reason += "; " + "; ".join(unbooked)
            orders.note_exchange_state(
                session, order.id, reason=reason, at_ms=now_ms, filled_quantity=filled
            )
            if final == "cancelled" and closing is not None:
                reason = f"{closing}: {reason}"
            if final is not None:
                orders.close_order(session, order.id, final, reason, now_ms)
        return booked

    def _book_trades(
        self, session: Session, order: "_Snapshot", trades: list[dict[str, Any]]
    ) -> tuple[list[FillView], list[str]]:
        """Book the trades not booked yet; also returns what the book could not take in."""
        known = orders.booked_trade_ids(session, order.id)
        booked: list[FillView] = []
        unbooked: list[str] = []
        for trade in trades:
            trade_id = str(trade["id"])
            if trade_id in known:
                continue
            fill, note = _fill_of(order, trade)
            orders.add_fill(session, FillRow(**asdict(fill), exchange_trade_id=trade_id))
            booked.append(fill)
            if note is not None:
                unbooked.append(note)
        return booked, unbooked

    # --- adopting what the exchange has and the database does not -------------------------------

    def _adopt(
        self, listed: list[dict[str, Any]], reason: str, now_ms: int, *, cancelled: bool
    ) -> list[OrderView]:
        """Store orders found on the exchange only, so nothing it holds goes unrecorded."""
        if not listed:
            return []
        adopted: list[OrderView] = []
        with guarded_transaction(self._database, exclusive=False) as session:
            for found in listed:
                exchange_id = str(found["id"])
                if orders.orders_by_exchange_id(session, self.name, [exchange_id]):
                    continue
                client_id = found.get("clientOrderId") or f"adopted-{exchange_id}"
                if orders.order_by_client_id(session, client_id) is not None:
                    client_id = f"adopted-{self.name}-{exchange_id}"
                row = orders.add_order(
                    session,
                    orders.NewOrder(
                        id=str(uuid.uuid4()),
                        client_order_id=client_id[:64],
                        decision_id=None,
                        broker=self.name,
                        symbol=found["symbol"],
                        timeframe=self._settings.timeframes[0],
                        side=found["side"],
                        quantity=float(found.get("amount") or 0.0),
                        reference_price=float(found.get("price") or 0.0),
                        reduce_only=False,
                        status="open",
                        reason=reason,
                        not_before=int(found.get("timestamp") or now_ms),
                        exchange_order_id=exchange_id,
                    ),
                    now_ms,
                )
                if cancelled:
                    orders.close_order(session, row.id, "cancelled", reason, now_ms)
                    row.status = "cancelled"
                adopted.append(order_view(row))
        return adopted

    # --- the exchange ---------------------------------------------------------------------------

    def _market(self, symbol: str) -> dict[str, Any]:
        self._client.load_markets()
        market: dict[str, Any] = self._client.market(symbol)
        return market

    def _balances(self) -> Balances:
        balance = self._client.fetch_balance()
        return Balances(
            free={key: float(value or 0.0) for key, value in balance["free"].items()},
            total={key: float(value or 0.0) for key, value in balance["total"].items()},
        )

    def _record_error(self, error: Exception | None, now_ms: int) -> None:
        """Exchange errors feed the gate's error-burst trigger, like market-data errors."""
        if error is not None:
            self._api_errors.record(self._source, type(error).__name__, _said(error), now_ms)


@dataclass(frozen=True)
class _Snapshot:
    """The stored order's fields the exchange calls need, read once (rows leave sessions)."""

    id: str
    client_order_id: str
    exchange_order_id: str | None
    symbol: str
    side: str
    quantity: float
    filled_quantity: float
    reference_price: float
    journal_seq: int

    @staticmethod
    def of(row: OrderRow) -> "_Snapshot":
        return _Snapshot(
            row.id,
            row.client_order_id,
            row.exchange_order_id,
            row.symbol,
            row.side,
            row.quantity,
            row.filled_quantity,
            row.reference_price,
            row.journal_seq,
        )

    def with_exchange_id(self, exchange_order_id: str) -> "_Snapshot":
        return _Snapshot(
            self.id,
            self.client_order_id,
            exchange_order_id,
            self.symbol,
            self.side,
            self.quantity,
            self.filled_quantity,
            self.reference_price,
            self.journal_seq,
        )


def _fill_of(order: _Snapshot, trade: dict[str, Any]) -> tuple[FillView, str | None]:
    """A trade as a fill, its fee in the quote currency, and a note when a fee is not in it.

    Binance takes the commission from what the trade brings in: on a buy, from the coins. The
    fill then holds the coins received, and the commission, valued at the trade's price, is
    its fee: the cash paid (quantity × price + fee) is what the exchange debited, and the
    position is what the account holds.
    """
    base, _, quote = order.symbol.partition("/")
    price, quantity = float(trade["price"]), float(trade["amount"])
    fee = trade.get("fee") or {}
    cost, currency = float(fee.get("cost") or 0.0), fee.get("currency")
    note = None
    if currency == base:
        quantity, fee_in_quote = quantity - cost, cost * price
    elif currency in (None, quote):
        fee_in_quote = cost
    else:  # a third currency (BNB): not the book's cash, and said so on the order
        fee_in_quote = 0.0
        note = f"fee of {cost:.10g} {currency} on trade {trade['id']} is not in the book"
    sign = 1.0 if order.side == "buy" else -1.0
    fill = FillView(
        order_id=order.id,
        symbol=order.symbol,
        side=side_of(order.side),
        quantity=quantity,
        price=price,
        fee=fee_in_quote,
        # An adopted market order has no reference price: no slippage to measure against.
        slippage_fraction=(
            sign * (price - order.reference_price) / order.reference_price
            if order.reference_price > 0.0
            else 0.0
        ),
        filled_at=int(trade["timestamp"]),
    )
    return fill, note


def _size(
    request: OrderRequest, book: Balances, portfolio: PortfolioView, taker_fee: float
) -> float | str:
    """The quantity before the market's rules: a buy spends ``size_fraction`` of the quote
    currency's equity, no more than is free; a sell is capped at the free coins."""
    base, _, quote = request.symbol.partition("/")
    currency = portfolio.currencies.get(quote)
    equity = 0.0 if currency is None else currency.equity
    if request.side == "buy":
        if request.reduce_only:
            return "a reduce-only buy has nothing to reduce: spot positions are long only"
        free = book.free.get(quote, 0.0)
        if free <= 0.0:
            return f"no free {quote} on the exchange"
        notional = min(equity * request.size_fraction, free / (1.0 + taker_fee))
        return notional / request.reference_price
    held = book.free.get(base, 0.0)
    if held <= DUST:
        return f"nothing to sell: no free {base} on the exchange"
    if request.reduce_only:
        return held * request.size_fraction
    return min(held, equity * request.size_fraction / request.reference_price)


def _replay(stored: list[orders.StoredFill]) -> Ledger:
    return replay_adopting(fill_records(stored))


def _exchange_order(order: dict[str, Any]) -> ExchangeOrder:
    return ExchangeOrder(
        exchange_order_id=str(order["id"]),
        client_order_id=order.get("clientOrderId"),
        symbol=str(order["symbol"]),
        side=str(order["side"]),
        amount=float(order.get("amount") or 0.0),
        filled=float(order.get("filled") or 0.0),
        price=cast(float | None, order.get("price")),
        status=str(order.get("status")),
    )


def _said(error: Exception | None) -> str:
    return "no error" if error is None else f"{type(error).__name__}: {str(error)[:300]}"
