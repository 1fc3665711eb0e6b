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

import math
from dataclasses import asdict, dataclass
from typing import Literal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.settings import PaperSettings
from core.timeframes import floor_to, timeframe_ms
from core.trading import (
    CurrencyView,
    FillView,
    HoldingView,
    OrderOutcome,
    OrderRequest,
    OrderView,
    PortfolioView,
    quote_of,
)
from execution.accounting import DUST, Ledger, equity_fraction, replay
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
from storage import orders
from storage.control import ControlState, current_in
from storage.engine import Database
from storage.journal import guarded_transaction
from storage.models import CandleRow, FillRow, InstrumentRow, OrderRow

DAY_MS = 86_400_000
# Floors to an amount step forgive float error: 0.003 / 0.001 is 2.9999999999999996.
_STEP_TOLERANCE = 1e-9


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
                latest_open = now_ms - timeframe_ms(order.timeframe)
                candle = orders.first_candle_opening(
                    session, order.symbol, order.timeframe, order.not_before, latest_open
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
        """The book at ``now_ms`` and at the start of its UTC day, marked at the last closes.

        A currency listed in the settings is shown even when untouched; one dropped from them
        after it was traded counts from a starting balance of zero.
        """
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
        quotes = set(self._settings.starting_balances) | set(now.ledger.cash_flow)
        currencies: dict[str, CurrencyView] = {}
        for quote in sorted(quotes):
            start = self._settings.starting_balances.get(quote, 0.0)
            equity = now.equity(quote, start)
            currencies[quote] = CurrencyView(
                quote=quote,
                cash=start + now.ledger.cash_flow.get(quote, 0.0),
                equity=equity,
                day_start_equity=opening.equity(quote, start),
                exposure_fraction=equity_fraction(now.held_value(quote), equity),
            )
        holdings = {
            symbol: HoldingView(
                symbol=symbol,
                timeframe=now.timeframes[symbol],
                quantity=position.quantity,
                cost=position.cost,
                mark_price=now.marks[symbol],
                fraction=equity_fraction(
                    position.value(now.marks[symbol]), currencies[quote_of(symbol)].equity
                ),
            )
            for symbol, position in sorted(now.ledger.positions.items())
        }
        return PortfolioView(
            as_of=now_ms,
            day_start=day_start,
            currencies=currencies,
            holdings=holdings,
            closed_trades=tuple(now.ledger.closed_trades),
            open_buy_notional=open_buys,
        )

    # --- submitting ---------------------------------------------------------------------------

    def _submit_in(self, session: Session, request: OrderRequest, now_ms: int) -> OrderOutcome:
        answered = answered_already(session, request)
        if answered is not None:
            return answered
        quote = quote_of(request.symbol)
        start = self._settings.starting_balances.get(quote)
        if start is None:
            return OrderOutcome(
                "refused",
                f"no paper balance in {quote}: add one to paper.starting_balances to trade "
                f"{request.symbol}",
            )
        orders.lock_quote_currency(session, quote)
        book = _book(session, self.name, now_ms, now_ms)
        pending = orders.promised(session, self.name)
        sized = _size(request, book, start, pending, self._settings.taker_fee)
        if isinstance(sized, str):
            return OrderOutcome("refused", sized)
        status, quantity, reason = _fit(request, sized, orders.instrument(session, request.symbol))
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
            refusal = _fill_refusal(order, current_in(session, order.symbol))
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
                if held <= DUST:
                    orders.close_order(
                        session, order.id, "cancelled", "nothing left to sell at the fill", now_ms
                    )
                    return None
                quantity = min(quantity, held)
            price = _fill_price(order.side, quantity, candle.open, previous, self._settings)
            reason = f"filled {quantity:.10g} at the open of the candle of {candle.open_time}"
            if quantity < order.quantity:
                reason += f" ({order.quantity:.10g} ordered, only that much held)"
            if not orders.close_order(session, order.id, "filled", reason, now_ms):
                return None
            sign = 1.0 if order.side == "buy" else -1.0
            fill = FillView(
                order_id=order.id,
                symbol=order.symbol,
                side=side_of(order.side),
                quantity=quantity,
                price=price,
                fee=self._settings.taker_fee * quantity * price,
                slippage_fraction=sign * (price - order.reference_price) / order.reference_price,
                # Booked when its candle has closed: the book at t holds only what t may know.
                filled_at=candle.open_time + timeframe_ms(order.timeframe),
            )
            orders.add_fill(session, FillRow(**asdict(fill)))
        return fill


@dataclass(frozen=True)
class _Book:
    """The ledger at an instant, each position marked and with the series it is marked on."""

    ledger: Ledger
    marks: dict[str, float]
    timeframes: dict[str, str]

    def equity(self, quote: str, starting_balance: float) -> float:
        return self.ledger.equity(quote, starting_balance, self.marks)

    def held_value(self, quote: str) -> float:
        return sum(
            position.value(self.marks[symbol])
            for symbol, position in self.ledger.positions.items()
            if quote_of(symbol) == quote
        )


def _book(session: Session, broker: str, fills_until_ms: int, mark_at_ms: int) -> _Book:
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
    return _Book(ledger, marks, timeframes)


def _replay(stored: list[orders.StoredFill]) -> Ledger:
    return replay(fill_records(stored))


def _fill_refusal(order: OrderRow, control: ControlState) -> str | None:
    """An open order the control state no longer lets through is cancelled, not filled."""
    if control.state == "HALTED" and not order.reduce_only:
        return f"HALTED before it filled ({control.reason})"
    if control.state == "PAUSED" and order.side == "buy":
        return f"PAUSED before it filled ({control.reason}): no new entries"
    return None


def _size(
    request: OrderRequest,
    book: _Book,
    start: float,
    pending: list[orders.Promised],
    taker_fee: float,
) -> float | str:
    """The quantity before the instrument's rules, or why there is none to order."""
    quote = quote_of(request.symbol)
    equity = book.equity(quote, start)
    if request.side == "buy":
        if request.reduce_only:
            return "a reduce-only buy has nothing to reduce: spot positions are long only"
        promised = sum(
            open_buys.notional * (1.0 + taker_fee)
            for open_buys in pending
            if open_buys.side == "buy" and quote_of(open_buys.symbol) == quote
        )
        free = start + book.ledger.cash_flow.get(quote, 0.0) - promised
        if free <= 0.0:
            return f"no free {quote}: {free:.10g} left after the open buys"
        notional = min(equity * request.size_fraction, free / (1.0 + taker_fee))
        return notional / request.reference_price
    position = book.ledger.positions.get(request.symbol)
    held = (0.0 if position is None else position.quantity) - sum(
        open_sells.quantity
        for open_sells in pending
        if open_sells.side == "sell" and open_sells.symbol == request.symbol
    )
    if held <= DUST:
        return f"nothing to sell: no {request.symbol} held beyond the open sell orders"
    if request.reduce_only:
        return held * request.size_fraction
    return min(held, equity * request.size_fraction / request.reference_price)


def _fit(
    request: OrderRequest, quantity: float, instrument: InstrumentRow | None
) -> tuple[Literal["open", "rejected"], float, str]:
    """Floor to the amount step and check the minimums, where the instrument has them."""
    step = instrument.amount_step if instrument is not None else None
    if step:
        quantity = math.floor(quantity / step + _STEP_TOLERANCE) * step
    notional = quantity * request.reference_price
    if quantity <= 0.0:
        return "rejected", quantity, f"the quantity comes to nothing (amount step {step})"
    if instrument is not None and instrument.min_amount and quantity < instrument.min_amount:
        return (
            "rejected",
            quantity,
            f"quantity {quantity:.10g} is below the minimum amount {instrument.min_amount:.10g}",
        )
    if instrument is not None and instrument.min_notional and notional < instrument.min_notional:
        return (
            "rejected",
            quantity,
            f"notional {notional:.10g} is below the minimum notional "
            f"{instrument.min_notional:.10g}",
        )
    return (
        "open",
        quantity,
        f"{request.side} {quantity:.10g} at about {request.reference_price:.10g}",
    )


def _fill_price(
    side: str,
    quantity: float,
    open_price: float,
    previous: CandleRow | None,
    settings: PaperSettings,
) -> float:
    """The candle's open, moved against the order by half the spread plus market impact."""
    traded = 0.0 if previous is None else previous.volume * previous.close
    notional = quantity * open_price
    participation = min(1.0, notional / traded) if traded > 0.0 else 1.0
    adverse = settings.spread_fraction + settings.impact_coefficient * participation
    return open_price * (1.0 + adverse if side == "buy" else 1.0 - adverse)
