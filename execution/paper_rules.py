"""The paper broker's arithmetic, with no storage: the book, sizing, fill prices, refusals.

PaperBroker (execution/paper.py) applies these rules to the orders and fills it stores;
the backtest broker (execution/backtest.py) to the ones it keeps in memory. One set of
rules, so a backtest trades exactly as paper trading would on the same candles.
"""

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from core.settings import PaperSettings
from core.trading import (
    CurrencyView,
    FillView,
    HoldingView,
    OrderOutcome,
    OrderRequest,
    PortfolioView,
    Side,
    quote_of,
)
from execution.accounting import DUST, Ledger, equity_fraction, equity_of
from storage.control import ControlState
from storage.models import InstrumentRow
from storage.orders import Promised

DAY_MS = 86_400_000
# Floors to an amount step forgive float error: 0.003 / 0.001 is 2.9999999999999996.
_STEP_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Book:
    """The ledger at an instant, each position marked and with the series it is marked on."""

    ledger: Ledger
    marks: dict[str, float]
    timeframes: dict[str, str]

    def equity(self, quote: str, starting_balance: float) -> float:
        return self.ledger.equity(quote, starting_balance, self.marks)

    def held_values(self) -> dict[str, float]:
        """Per quote currency, the marked value of its positions."""
        return self.ledger.held_values(self.marks)


def portfolio_view(
    now_ms: int,
    day_start: int,
    now: Book,
    opening: Book,
    open_buys: Mapping[str, float],
    settings: PaperSettings,
) -> PortfolioView:
    """The book at ``now_ms`` and at the start of its UTC day (``opening``), per currency.

    A currency listed in the settings is shown even when untouched; one dropped from them
    after it was traded counts from a starting balance of zero.
    """
    quotes = set(settings.starting_balances) | set(now.ledger.cash_flow)
    held_now, held_then = now.held_values(), opening.held_values()
    currencies: dict[str, CurrencyView] = {}
    for quote in sorted(quotes):
        start = settings.starting_balances.get(quote, 0.0)
        day_start_equity = equity_of(opening.ledger.cash(quote, start), held_then, quote)
        cash = now.ledger.cash(quote, start)
        currencies[quote] = _currency(quote, cash, held_now, day_start_equity)
    return PortfolioView(
        as_of=now_ms,
        day_start=day_start,
        currencies=currencies,
        holdings=_holdings(now, currencies),
        closed_trades=now.ledger.closed_trades,
        open_buy_notional=dict(open_buys),
    )


def remarked(view: PortfolioView, now_ms: int, now: Book) -> PortfolioView:
    """``view`` (portfolio_view's) read again at ``now_ms`` over the same fills, day and open
    buys, its positions marked as ``now`` marks them: the currencies holding them and the
    holdings are built anew, the rest does not depend on the marks."""
    held_now = now.held_values()
    currencies = dict(view.currencies)
    for quote in held_now:
        shown = currencies[quote]
        currencies[quote] = _currency(quote, shown.cash, held_now, shown.day_start_equity)
    # Positional, here and below: a backtest holding a position remarks its view every bar,
    # and keywords cost a third more.
    holdings = _holdings(now, currencies)
    return PortfolioView(
        now_ms, view.day_start, currencies, holdings, view.closed_trades, view.open_buy_notional
    )


def _currency(
    quote: str, cash: float, held_now: Mapping[str, float], day_start_equity: float
) -> CurrencyView:
    equity = equity_of(cash, held_now, quote)
    exposure = equity_fraction(held_now.get(quote, 0.0), equity)
    return CurrencyView(quote, cash, equity, day_start_equity, exposure)


def _holdings(now: Book, currencies: Mapping[str, CurrencyView]) -> dict[str, HoldingView]:
    holdings: dict[str, HoldingView] = {}
    for symbol, position in sorted(now.ledger.positions.items()):
        mark = now.marks[symbol]
        fraction = equity_fraction(position.value(mark), currencies[quote_of(symbol)].equity)
        holdings[symbol] = HoldingView(
            symbol, now.timeframes[symbol], position.quantity, position.cost, mark, fraction
        )
    return holdings


def starting_balance(symbol: str, settings: PaperSettings) -> float | OrderOutcome:
    """The paper balance the symbol's quote currency starts from, or the refusal without one."""
    quote = quote_of(symbol)
    start = settings.starting_balances.get(quote)
    if start is None:
        return OrderOutcome(
            "refused",
            f"no paper balance in {quote}: add one to paper.starting_balances to trade {symbol}",
        )
    return start


def fill_refusal(side: str, reduce_only: bool, control: ControlState) -> str | None:
    """An open order the control state no longer lets through is cancelled, not filled."""
    if control.state == "HALTED" and not reduce_only:
        return f"HALTED before it filled ({control.reason})"
    if control.state == "PAUSED" and side == "buy":
        return f"PAUSED before it filled ({control.reason}): no new entries"
    return None


def size_order(
    request: OrderRequest,
    book: Book,
    start: float,
    pending: Iterable[Promised],
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


def fit_order(
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


def fill_window(not_before: int, now_ms: int, timeframe_ms: int) -> tuple[int, int]:
    """The open times [earliest, latest] of the candle an open order fills at by ``now_ms``:
    the first of its series opening at or after ``not_before``, never earlier (DESIGN §3),
    among those closed by ``now_ms``, so the book at ``now_ms`` holds only what a decision at
    ``now_ms`` may read, in replay as live."""
    return not_before, now_ms - timeframe_ms


def booked_at(candle_open_time: int, timeframe_ms: int) -> int:
    """When a fill priced at a candle's open is booked: at that candle's close."""
    return candle_open_time + timeframe_ms


def traded_value(volume: float, close: float) -> float:
    """The quote value a candle traded, the market impact's yardstick (``priced_fill``)."""
    return volume * close


@dataclass(frozen=True)
class FillTerms:
    """An open order as its fill needs it."""

    order_id: str
    symbol: str
    side: Side
    reference_price: float


def priced_fill(
    order: FillTerms,
    quantity: float,
    open_price: float,
    traded_before: float,
    filled_at: int,
    settings: PaperSettings,
) -> FillView:
    """The fill at the candle's open, moved against the order by half the spread plus market
    impact (the order's share of ``traded_before``, the quote value traded in the candle
    closed before that open), with the taker fee and the slippage it makes."""
    notional = quantity * open_price
    participation = min(1.0, notional / traded_before) if traded_before > 0.0 else 1.0
    adverse = settings.spread_fraction + settings.impact_coefficient * participation
    price = open_price * (1.0 + adverse if order.side == "buy" else 1.0 - adverse)
    sign = 1.0 if order.side == "buy" else -1.0
    return FillView(
        order_id=order.order_id,
        symbol=order.symbol,
        side=order.side,
        quantity=quantity,
        price=price,
        fee=settings.taker_fee * quantity * price,
        slippage_fraction=sign * (price - order.reference_price) / order.reference_price,
        filled_at=filled_at,
    )


def sellable(quantity: float, held: float) -> float | None:
    """How much of a sell order fills: no more than is held now (None: nothing held), so
    two sells sized side by side never take the book short."""
    if held <= DUST:
        return None
    return min(quantity, held)
