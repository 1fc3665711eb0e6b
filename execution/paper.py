"""The paper broker: orders, fills and the book, all kept in the database (DESIGN §3, §6).

Nothing is held in memory: a new PaperBroker on the same database, in this process or
another, before or after a restart, sees the same orders, positions and cash.

Submitting. One guarded transaction (storage.journal) reads the control state, sizes the
order and stores it with its journal number, so no order is stored after a HALTED it did not
see. ACTIVE lets everything out; PAUSED lets sells (exits) out but no buys; HALTED lets nothing
out except reduce-only sells, the panic's own close-outs, which can only shrink what is held.

Sizing. A buy spends ``size_fraction`` of the quote currency's equity (starting balance plus
the cash flow of the fills, plus positions marked at their last close), and no more than the
cash not already promised to open buys. A sell is sized the same way, capped at the position
not already promised to open sells; a reduce-only sell's fraction is of that position instead
(1.0 closes it whatever the cash). The quantity is floored to the instrument's amount step and
stored as rejected below its minimum amount or notional, where those are known.

Filling. An order fills at the open of the first candle of its series opening at or after
``not_before``, never earlier (DESIGN §3), booked once that candle has closed, moved against
it by the half-spread plus market impact: ``impact_coefficient`` × the order's share of the
quote value traded in the last candle closed before that open (the fill candle's own volume
is not known at its open). The share is capped at 1, and taken as 1 when that candle is
missing or traded nothing: an order never fills free of impact for want of data. The taker
fee is paid in the quote currency.
"""

from dataclasses import asdict

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.settings import PaperSettings
from core.timeframes import floor_to, timeframe_ms
from core.trading import (
    FillView,
    OrderOutcome,
    OrderRequest,
    OrderView,
    PortfolioView,
    quote_of,
)
from execution.accounting import Ledger, replay
from execution.order_rules import (
    StoredOrderReads,
    answered_already,
    check_request,
    fill_records,
    new_order,
    order_view,
    resubmitted,
    side_of,
)
from execution.paper_rules import (
    DAY_MS,
    Book,
    FillTerms,
    booked_at,
    fill_refusal,
    fill_window,
    fit_order,
    portfolio_view,
    priced_fill,
    sellable,
    size_order,
    starting_balance,
    traded_value,
)
from storage import orders
from storage.control import current_in
from storage.engine import Database
from storage.journal import guarded_transaction
from storage.models import CandleRow, FillRow, OrderRow


class PaperBroker(StoredOrderReads):
    """execution.broker.Broker on paper; see the module docstring for the rules."""

    real_money = False

    def __init__(self, database: Database, settings: PaperSettings, name: str = "paper") -> None:
        self.name = name
        self._database = database
        self._settings = settings

    def submit(self, request: OrderRequest, now_ms: int) -> OrderOutcome:
        """Check the control state, size and store the order, in one guarded transaction.

        Idempotent by ``client_order_id``: a second submission returns the first's outcome.
        """
        check_request(request)
        try:
            with guarded_transaction(self._database, exclusive=False) as session:
                return self._submit_in(session, request, now_ms)
        except IntegrityError:
            # PostgreSQL runs submissions side by side: two of one client order id can both
            # find none stored, and the unique key turns the second away. The first stands.
            with self._database.session_factory() as session:
                existing = orders.order_by_client_id(session, request.client_order_id)
            if existing is None:
                raise
            return resubmitted(existing)

    def process_fills(self, now_ms: int) -> list[FillView]:
        """Fill every open order whose fill candle has closed by ``now_ms``, in journal order.

        The candle must have closed, not merely opened: the book at ``now_ms`` then depends
        only on candles a decision at ``now_ms`` may read (DESIGN §3), in replay as live.
        """
        due: list[tuple[OrderRow, CandleRow, CandleRow | None]] = []
        with self._database.session_factory() as session:
            for order in orders.open_orders(session, self.name):
                earliest, latest = fill_window(
                    order.not_before, now_ms, timeframe_ms(order.timeframe)
                )
                candle = orders.first_candle_opening(
                    session, order.symbol, order.timeframe, earliest, latest
                )
                if candle is not None:
                    previous = orders.last_closed_candle(
                        session, order.symbol, order.timeframe, candle.open_time
                    )
                    due.append((order, candle, previous))
        filled = (self._fill(order, candle, previous, now_ms) for order, candle, previous in due)
        return [fill for fill in filled if fill is not None]

    def cancel_all(self, reason: str, now_ms: int) -> list[OrderView]:
        """Cancel every open order of this broker; returns those cancelled.

        Exclusive, like a control change: in a panic it goes before the placements waiting
        their turn, and no order is placed while it sweeps.
        """
        with guarded_transaction(self._database, exclusive=True) as session:
            cancelled = orders.cancel_open_orders(session, self.name, reason, now_ms)
            return [order_view(row) for row in sorted(cancelled, key=lambda row: row.journal_seq)]

    def ledger(self, until_ms: int | None = None) -> Ledger:
        """The book replayed from the stored fills filled no later than ``until_ms``."""
        with self._database.session_factory() as session:
            return _replay(orders.fills(session, self.name, until_ms=until_ms))

    def real_notional_today(self, _now_ms: int) -> float:
        """Paper spends no real money."""
        return 0.0

    def portfolio(self, now_ms: int) -> PortfolioView:
        """The book at ``now_ms`` and at the start of its UTC day, marked at the last closes
        (execution.paper_rules.portfolio_view)."""
        day_start = floor_to(now_ms, DAY_MS)
        with self._database.session_factory() as session:
            now = _book(session, self.name, now_ms, now_ms)
            open_buys = {
                open_order.symbol: open_order.notional
                for open_order in orders.promised(session, self.name, placed_by=now_ms)
                if open_order.side == "buy"
            }
            # A fill at 00:00 sharp belongs to the new day; a close at 00:00 is its price.
            opening = _book(session, self.name, day_start - 1, day_start)
        return portfolio_view(now_ms, day_start, now, opening, open_buys, self._settings)

    # --- submitting ---------------------------------------------------------------------------

    def _submit_in(self, session: Session, request: OrderRequest, now_ms: int) -> OrderOutcome:
        answered = answered_already(session, request)
        if answered is not None:
            return answered
        start = starting_balance(request.symbol, self._settings)
        if isinstance(start, OrderOutcome):
            return start
        orders.lock_quote_currency(session, quote_of(request.symbol))
        book = _book(session, self.name, now_ms, now_ms)
        pending = orders.promised(session, self.name)
        sized = size_order(request, book, start, pending, self._settings.taker_fee)
        if isinstance(sized, str):
            return OrderOutcome("refused", sized)
        status, quantity, reason = fit_order(
            request, sized, orders.instrument(session, request.symbol)
        )
        row = orders.add_order(
            session,
            new_order(request, self.name, quantity, status, reason),
            now_ms,
        )
        return OrderOutcome(
            "accepted" if status == "open" else "rejected",
            reason,
            row.id,
            row.quantity,
            row.journal_seq,
        )

    # --- filling ------------------------------------------------------------------------------

    def _fill(
        self, order: OrderRow, candle: CandleRow, previous: CandleRow | None, now_ms: int
    ) -> FillView | None:
        """Fill one order in a guarded transaction; None when it is no longer open (a panic
        cancelled it meanwhile) or, for a sell, nothing is left to sell."""
        with guarded_transaction(self._database, exclusive=False) as session:
            orders.lock_quote_currency(session, quote_of(order.symbol))
            orders.instrument(session, order.symbol, lock=True)
            control = current_in(session, order.symbol)
            refusal = fill_refusal(order.side, order.reduce_only, control)
            if refusal is not None:
                # An order left open would fill after a resume at a price nobody decided on.
                orders.close_order(session, order.id, "cancelled", refusal, now_ms)
                return None
            quantity = order.quantity
            if order.side == "sell":
                # Two sells sized side by side may together exceed the position: fill no more
                # than is held now, so the book never goes short.
                position = _replay(
                    orders.fills(session, self.name, symbol=order.symbol)
                ).positions.get(order.symbol)
                held = 0.0 if position is None else position.quantity
                sold = sellable(quantity, held)
                if sold is None:
                    orders.close_order(
                        session, order.id, "cancelled", "nothing left to sell at the fill", now_ms
                    )
                    return None
                quantity = sold
            traded = 0.0 if previous is None else traded_value(previous.volume, previous.close)
            terms = FillTerms(order.id, order.symbol, side_of(order.side), order.reference_price)
            filled_at = booked_at(candle.open_time, timeframe_ms(order.timeframe))
            # Booked when its candle has closed: the book at t holds only what t may know.
            fill = priced_fill(terms, quantity, candle.open, traded, filled_at, self._settings)
            reason = f"filled {quantity:.10g} at the open of the candle of {candle.open_time}"
            if quantity < order.quantity:
                reason += f" ({order.quantity:.10g} ordered, only that much held)"
            if not orders.close_order(session, order.id, "filled", reason, now_ms):
                return None
            orders.add_fill(session, FillRow(**asdict(fill)))
        return fill


def _book(session: Session, broker: str, fills_until_ms: int, mark_at_ms: int) -> Book:
    stored = orders.fills(session, broker, until_ms=fills_until_ms)
    ledger = _replay(stored)
    newest = {fill.symbol: fill for fill in stored}
    marks: dict[str, float] = {}
    for symbol in ledger.positions:
        fill = newest[symbol]
        candle = orders.last_closed_candle(session, symbol, fill.timeframe, mark_at_ms)
        # Before its series has a close to show, the fill price is the newest price known.
        marks[symbol] = fill.price if candle is None else candle.close
    timeframes = {symbol: newest[symbol].timeframe for symbol in ledger.positions}
    return Book(ledger, marks, timeframes)


def _replay(stored: list[orders.StoredFill]) -> Ledger:
    return replay(fill_records(stored))
