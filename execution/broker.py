"""What every broker (paper, exchange, backtest) offers the decision path and the panic."""

from typing import Protocol

from core.trading import FillView, OrderOutcome, OrderRequest, OrderView
from execution.accounting import Ledger


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
