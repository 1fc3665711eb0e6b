"""What every broker applies alike: the request's sanity, the control state's say, the answer
to a second submission, and the views of stored orders and fills."""

import math
import uuid
from collections.abc import Iterable, Iterator
from typing import Literal, cast

from sqlalchemy.orm import Session

from core.trading import FillView, OrderOutcome, OrderRequest, OrderStatus, OrderView, Side
from execution.accounting import FillRecord
from storage import orders
from storage.control import ControlState, current_in
from storage.engine import Database
from storage.models import OrderRow


def check_request(request: OrderRequest) -> None:
    if not 0.0 < request.size_fraction <= 1.0:
        raise ValueError(f"size_fraction must be in (0, 1], not {request.size_fraction}")
    if not (math.isfinite(request.reference_price) and request.reference_price > 0.0):
        raise ValueError(f"reference_price must be a positive price, not {request.reference_price}")


def control_refusal(request: OrderRequest, control: ControlState) -> str | None:
    """HALTED lets only reduce-only sells out; PAUSED lets exits out but no buys."""
    if control.state == "HALTED" and not request.reduce_only:
        return f"HALTED ({control.reason}): no new orders until a resume"
    if control.state == "PAUSED" and request.side == "buy":
        return f"PAUSED ({control.reason}): exits only, no new buys"
    return None


def answered_already(session: Session, request: OrderRequest) -> OrderOutcome | None:
    """Inside the guard, before sizing: the first outcome of a client order id stored
    already, or the control state's refusal; None when the order may go on."""
    existing = orders.order_by_client_id(session, request.client_order_id)
    if existing is not None:
        return resubmitted(existing)
    refusal = control_refusal(request, current_in(session, request.symbol))
    if refusal is not None:
        return OrderOutcome("refused", refusal)
    return None


class StoredOrderReads:
    """What a broker reads back of its own stored orders and fills, by its name."""

    name: str
    _database: Database

    def open_orders(self) -> list[OrderView]:
        with self._database.session_factory() as session:
            return [order_view(row) for row in orders.open_orders(session, self.name)]

    def fills(self, after_ms: int | None, until_ms: int) -> list[FillView]:
        """The fills booked in (after_ms, until_ms]; all up to until_ms when after_ms is None."""
        with self._database.session_factory() as session:
            return fill_views(session, self.name, after_ms, until_ms)


def resubmitted(row: OrderRow) -> OrderOutcome:
    """The outcome of a submission whose client order id is stored already."""
    if row.status == "rejected":
        return OrderOutcome("rejected", row.reason, row.id, row.quantity, row.journal_seq)
    return OrderOutcome(
        "accepted",
        f"already submitted as order {row.id} ({row.status})",
        row.id,
        row.quantity,
        row.journal_seq,
    )


def new_order(
    request: OrderRequest,
    broker: str,
    quantity: float,
    status: Literal["open", "rejected"],
    reason: str,
) -> orders.NewOrder:
    """The row to store for ``request``, under a new id."""
    return orders.NewOrder(
        id=str(uuid.uuid4()),
        client_order_id=request.client_order_id,
        decision_id=request.decision_id,
        broker=broker,
        symbol=request.symbol,
        timeframe=request.timeframe,
        side=request.side,
        quantity=quantity,
        reference_price=request.reference_price,
        reduce_only=request.reduce_only,
        status=status,
        reason=reason,
        not_before=request.not_before,
    )


def side_of(value: str) -> Side:
    # The orders table's CHECK constraint admits nothing else.
    return cast(Side, value)


def order_view(row: OrderRow) -> OrderView:
    return OrderView(
        id=row.id,
        client_order_id=row.client_order_id,
        symbol=row.symbol,
        side=side_of(row.side),
        quantity=row.quantity,
        status=cast(OrderStatus, row.status),
        reduce_only=row.reduce_only,
        journal_seq=row.journal_seq,
        reason=row.reason,
    )


def fill_records(stored: Iterable[orders.StoredFill]) -> Iterator[FillRecord]:
    """Stored fills as the ledger replays them."""
    for fill in stored:
        yield FillRecord(
            fill.symbol, side_of(fill.side), fill.quantity, fill.price, fill.fee, fill.filled_at
        )


def fill_views(
    session: Session, broker: str, after_ms: int | None, until_ms: int
) -> list[FillView]:
    """The broker's fills booked in (after_ms, until_ms]; all up to until_ms without after_ms."""
    return [
        FillView(
            order_id=fill.order_id,
            symbol=fill.symbol,
            side=side_of(fill.side),
            quantity=fill.quantity,
            price=fill.price,
            fee=fill.fee,
            slippage_fraction=fill.slippage_fraction,
            filled_at=fill.filled_at,
        )
        for fill in orders.fills(session, broker, after_ms=after_ms, until_ms=until_ms)
    ]
