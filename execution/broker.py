"""What every broker (paper, exchange, backtest) offers the decision path and the panic."""

from dataclasses import dataclass
from typing import Literal, Protocol

from execution.accounting import Ledger

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
    filled_at: int


class Broker(Protocol):
    name: str

    def submit(self, request: OrderRequest, now_ms: int) -> OrderOutcome:
        """Check the control state and store the order in one guarded transaction."""
        ...

    def process_fills(self, now_ms: int) -> list[FillView]:
        """Fill what can be filled by ``now_ms``; returns the new fills."""
        ...

    def cancel_all(self, reason: str, now_ms: int) -> list[OrderView]:
        """Cancel every open order; returns those cancelled."""
        ...

    def open_orders(self) -> list[OrderView]: ...

    def ledger(self, until_ms: int | None = None) -> Ledger:
        """Positions, cash flow and closed trades from the stored fills (up to ``until_ms``)."""
        ...
