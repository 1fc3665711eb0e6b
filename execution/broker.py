"""What every broker (paper, exchange, backtest) offers the decision path and the panic."""

from typing import Protocol

from core.trading import FillView, OrderOutcome, OrderRequest, OrderView, PortfolioView
from execution.accounting import Ledger


class Broker(Protocol):
    name: str
    # True when its orders spend real money (a live exchange): the gate's live caps apply.
    real_money: bool

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

    def real_notional_today(self, now_ms: int) -> float:
        """Real money committed to buys since 00:00 UTC of ``now_ms`` (0 without real money)."""
        ...


class BookKeepingBroker(Broker, Protocol):
    """A broker the decision engine can run on: it also shows the book and its fills."""

    def portfolio(self, now_ms: int) -> PortfolioView: ...

    def fills(self, after_ms: int | None, until_ms: int) -> list[FillView]: ...
