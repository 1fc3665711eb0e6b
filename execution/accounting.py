"""Positions, cash and closed trades, replayed from fills (the database is the book).

Spot, long-only, average cost: a buy adds to the position and its cost (fee included), a
sell realises its share of the cost. A trade is closed when the position returns to zero;
its profit is everything realised since it opened. Fees are paid in the quote currency.
"""

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from core.trading import ClosedTrade, quote_of

# Below this many base units a position counts as closed (float dust after sells).
DUST = 1e-12


@dataclass(frozen=True)
class FillRecord:
    symbol: str
    side: Literal["buy", "sell"]
    quantity: float
    price: float
    fee: float
    filled_at: int


@dataclass(frozen=True)
class Position:
    symbol: str
    quantity: float
    cost: float  # quote currency paid for what is still held, fees included
    opened_at: int

    def value(self, mark_price: float) -> float:
        return self.quantity * mark_price


@dataclass
class Ledger:
    """Cash flow per quote currency, open positions and closed trades, oldest first."""

    cash_flow: dict[str, float] = field(default_factory=dict)
    positions: dict[str, Position] = field(default_factory=dict)
    # A tuple, grown by one per close: the book's readers take it as it is, never a copy.
    closed_trades: tuple[ClosedTrade, ...] = ()
    _open_pnl: dict[str, float] = field(default_factory=dict)

    def apply(self, fill: FillRecord) -> None:
        quote = quote_of(fill.symbol)
        notional = fill.quantity * fill.price
        held = self.positions.get(fill.symbol)
        if fill.side == "buy":
            self.cash_flow[quote] = self.cash_flow.get(quote, 0.0) - notional - fill.fee
            if held is None:
                held = Position(fill.symbol, 0.0, 0.0, fill.filled_at)
                self._open_pnl[fill.symbol] = 0.0
            self.positions[fill.symbol] = Position(
                fill.symbol, held.quantity + fill.quantity, held.cost + notional + fill.fee,
                held.opened_at,
            )  # fmt: skip
            return
        if held is None or fill.quantity > held.quantity * (1 + 1e-9):
            raise ValueError(
                f"sell of {fill.quantity} {fill.symbol} exceeds the position held "
                f"({0.0 if held is None else held.quantity}): spot positions cannot go short"
            )
        self.cash_flow[quote] = self.cash_flow.get(quote, 0.0) + notional - fill.fee
        released = held.cost * min(1.0, fill.quantity / held.quantity)
        self._open_pnl[fill.symbol] += notional - fill.fee - released
        remaining = held.quantity - fill.quantity
        if remaining <= DUST:
            del self.positions[fill.symbol]
            pnl = self._open_pnl.pop(fill.symbol)
            closed = ClosedTrade(fill.symbol, held.opened_at, fill.filled_at, pnl)
            self.closed_trades = (*self.closed_trades, closed)
        else:
            self.positions[fill.symbol] = Position(
                fill.symbol, remaining, held.cost - released, held.opened_at
            )

    def cash(self, quote: str, starting_balance: float) -> float:
        """The starting balance plus the cash flow of the fills, in ``quote``."""
        return starting_balance + self.cash_flow.get(quote, 0.0)

    def held_values(self, mark_prices: Mapping[str, float]) -> dict[str, float]:
        """Per quote currency, the value of its positions, each marked at its given price."""
        values: dict[str, float] = {}
        for symbol, position in self.positions.items():
            quote = quote_of(symbol)
            values[quote] = values.get(quote, 0.0) + position.value(mark_prices[symbol])
        return values

    def equity(
        self, quote: str, starting_balance: float, mark_prices: Mapping[str, float]
    ) -> float:
        """Cash plus positions quoted in ``quote``, each marked at its given price."""
        return equity_of(self.cash(quote, starting_balance), self.held_values(mark_prices), quote)


def equity_of(cash: float, held_values: Mapping[str, float], quote: str) -> float:
    """A currency's cash plus the value of the positions quoted in it (``held_values``)."""
    return cash + held_values.get(quote, 0.0)


def equity_fraction(value: float, equity: float) -> float:
    """``value`` as a fraction of ``equity``; infinite when something is held on no equity."""
    if equity > 0.0:
        return value / equity
    return math.inf if value > 0.0 else 0.0


def replay(fills: Iterable[FillRecord]) -> Ledger:
    """The ledger after ``fills``, applied in the order given (the fills' id order)."""
    ledger = Ledger()
    for fill in fills:
        ledger.apply(fill)
    return ledger


def replay_adopting(fills: Iterable[FillRecord]) -> Ledger:
    """``replay`` for an exchange account, which may hold coins from before its first stored
    fill: a sell of more than the stored position first adopts the shortfall as bought at the
    sell's price, fee-free (no profit or loss is made up for it), and the cash flow shows it."""
    ledger = Ledger()
    for fill in fills:
        held = ledger.positions.get(fill.symbol)
        shortfall = fill.quantity - (0.0 if held is None else held.quantity)
        if fill.side == "sell" and shortfall > DUST:
            ledger.apply(FillRecord(fill.symbol, "buy", shortfall, fill.price, 0.0, fill.filled_at))
        ledger.apply(fill)
    return ledger
