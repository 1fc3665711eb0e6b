"""Orders, fills and the book as every layer sees them: the broker's vocabulary.

The brokers (execution/), the gate's triggers and the control service (safety/) and the
graph all speak these types; only core defines them, so dependencies keep flowing one way.
"""

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

Side = Literal["buy", "sell"]
OrderStatus = Literal["open", "filled", "cancelled", "rejected"]


@dataclass(frozen=True)
class OrderRequest:
    """An order a decision (or the panic) asks for.

    ``size_fraction`` is of the quote currency's equity (a sell is capped at the position
    held); ``reference_price`` is the price the decision saw (the last close), against which
    slippage is measured; the order may fill no earlier than ``not_before`` (the as_of).
    """

    client_order_id: str
    symbol: str
    timeframe: str
    side: Side
    size_fraction: float
    reference_price: float
    not_before: int
    decision_id: str | None = None
    reduce_only: bool = False


@dataclass(frozen=True)
class OrderOutcome:
    """``accepted``: an order row exists (open). ``refused``: the control state or the book
    said no and nothing was stored. ``rejected``: stored as rejected (size, minimums)."""

    status: Literal["accepted", "refused", "rejected"]
    reason: str
    order_id: str | None = None
    quantity: float = 0.0
    journal_seq: int | None = None


@dataclass(frozen=True)
class OrderView:
    id: str
    client_order_id: str
    symbol: str
    side: Side
    quantity: float
    status: OrderStatus
    reduce_only: bool
    journal_seq: int
    reason: str


@dataclass(frozen=True)
class FillView:
    order_id: str
    symbol: str
    side: Side
    quantity: float
    price: float
    fee: float
    slippage_fraction: float
    # When the fill is booked: the close of the candle at whose open it was priced.
    filled_at: int


@dataclass(frozen=True)
class ClosedTrade:
    symbol: str
    opened_at: int
    closed_at: int
    pnl: float  # quote currency, fees included

    @property
    def is_loss(self) -> bool:
        return self.pnl < 0.0


@dataclass(frozen=True)
class HoldingView:
    """An open position, marked at the last close of its series (the newest fill's timeframe)."""

    symbol: str
    timeframe: str
    quantity: float
    cost: float  # quote currency paid for what is held, fees included
    mark_price: float
    fraction: float  # value / the quote currency's equity; inf when that equity is ≤ 0

    @property
    def value(self) -> float:
        return self.quantity * self.mark_price

    @property
    def unrealised_pnl(self) -> float:
        return self.value - self.cost


@dataclass(frozen=True)
class CurrencyView:
    """One quote currency's book now and at 00:00 UTC (fills before it, marked at closes ≤ it)."""

    quote: str
    cash: float
    equity: float
    day_start_equity: float
    exposure_fraction: float  # all its positions' value / equity; inf when equity is ≤ 0

    @property
    def today_pnl(self) -> float:
        """Realised plus unrealised profit since 00:00 UTC, fees included."""
        return self.equity - self.day_start_equity


@dataclass(frozen=True)
class PortfolioView:
    """What the gate and ``sigmax status`` need of the book at ``as_of``.

    The fractions count open buy orders as if filled: a buy sent this bar and not yet filled
    is exposure all the same, or the limits could be passed one order at a time.
    """

    as_of: int
    day_start: int
    currencies: Mapping[str, CurrencyView]
    holdings: Mapping[str, HoldingView]
    closed_trades: tuple[ClosedTrade, ...]  # oldest first
    open_buy_notional: Mapping[str, float]  # per symbol, at the orders' reference prices

    def position_fraction(self, symbol: str) -> float:
        """The symbol's position and open buys as a fraction of its quote's equity."""
        holding = self.holdings.get(symbol)
        held = 0.0 if holding is None else holding.fraction
        return held + self._fraction(quote_of(symbol), self.open_buy_notional.get(symbol, 0.0))

    def exposure_fraction(self, quote: str) -> float:
        """All positions and open buys quoted in ``quote``, as a fraction of its equity."""
        currency = self.currencies.get(quote)
        held = 0.0 if currency is None else currency.exposure_fraction
        pending = sum(
            notional
            for symbol, notional in self.open_buy_notional.items()
            if quote_of(symbol) == quote
        )
        return held + self._fraction(quote, pending)

    def _fraction(self, quote: str, notional: float) -> float:
        if notional <= 0.0:
            return 0.0
        currency = self.currencies.get(quote)
        if currency is None or currency.equity <= 0.0:
            return math.inf
        return notional / currency.equity


def quote_of(symbol: str) -> str:
    return symbol.partition("/")[2]


def consecutive_losses(trades: Iterable[ClosedTrade]) -> int:
    """How many of the most recent closed trades in a row lost money."""
    count = 0
    for trade in reversed(list(trades)):
        if not trade.is_loss:
            break
        count += 1
    return count
