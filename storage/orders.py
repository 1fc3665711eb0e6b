"""Orders and fills, written inside the caller's transaction; rows are never deleted.

An order is numbered from the journal in the same guarded transaction that read the control
state (see storage.journal), so its number orders it against every control change. An order
leaves ``open`` only through ``close_order``, which changes it only while it is still open:
a fill and a cancellation racing for the same order cannot both win.

Also here: the candle prices the paper book fills and is marked at.
"""

import hashlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from core.timeframes import timeframe_ms
from storage.journal import next_journal_seq
from storage.models import CandleRow, FillRow, InstrumentRow, OrderRow


@dataclass(frozen=True)
class NewOrder:
    """An order to store: ``open``, or ``rejected`` with the reason (sizes, minimums)."""

    id: str
    client_order_id: str
    decision_id: str | None
    broker: str
    symbol: str
    timeframe: str
    side: Literal["buy", "sell"]
    quantity: float
    reference_price: float
    reduce_only: bool
    status: Literal["open", "rejected"]
    reason: str
    not_before: int
    exchange_order_id: str | None = None


@dataclass(frozen=True)
class StoredFill:
    """A fill, with the timeframe of its order: the candle series its position is marked on."""

    id: int
    order_id: str
    symbol: str
    timeframe: str
    side: str
    quantity: float
    price: float
    fee: float
    slippage_fraction: float
    filled_at: int


def add_order(session: Session, order: NewOrder, at_ms: int) -> OrderRow:
    """Store ``order`` with the next journal number. The caller holds the control guard."""
    row = OrderRow(
        **asdict(order),
        journal_seq=next_journal_seq(session, "order", at_ms),
        created_at=at_ms,
        updated_at=at_ms,
    )
    session.add(row)
    session.flush()
    return row


def order_by_client_id(session: Session, client_order_id: str) -> OrderRow | None:
    return session.scalar(sa.select(OrderRow).where(OrderRow.client_order_id == client_order_id))


def open_orders(session: Session, broker: str) -> list[OrderRow]:
    """The broker's open orders, in journal order."""
    return list(
        session.scalars(
            sa.select(OrderRow)
            .where(OrderRow.broker == broker, OrderRow.status == "open")
            .order_by(OrderRow.journal_seq)
        )
    )


@dataclass(frozen=True)
class Promised:
    """What the open orders of one symbol and side add up to."""

    symbol: str
    side: str
    quantity: float
    notional: float  # at their reference prices


class OpenAmount(Protocol):
    """What an open order adds to what is promised: a stored row or a backtest's order."""

    @property
    def symbol(self) -> str: ...
    @property
    def side(self) -> str: ...
    @property
    def quantity(self) -> float: ...
    @property
    def reference_price(self) -> float: ...
    @property
    def not_before(self) -> int: ...


def promised_of(open_orders: Iterable[OpenAmount], placed_by: int | None = None) -> list[Promised]:
    """Open orders summed per symbol and side, in their order, listed by symbol and side; with
    ``placed_by``, only those placed by then (a replay of an earlier instant must not see
    later orders). The paper and the backtest brokers both sum theirs here."""
    sums: dict[tuple[str, str], tuple[float, float]] = {}
    for order in open_orders:
        if placed_by is not None and order.not_before > placed_by:
            continue
        key = (order.symbol, order.side)
        quantity, notional = sums.get(key, (0.0, 0.0))
        sums[key] = (quantity + order.quantity, notional + order.quantity * order.reference_price)
    return [Promised(symbol, side, *totals) for (symbol, side), totals in sorted(sums.items())]


def promised(session: Session, broker: str, placed_by: int | None = None) -> list[Promised]:
    """The broker's open orders summed per symbol and side (``promised_of``), oldest first."""
    rows = session.scalars(
        sa.select(OrderRow)
        .where(OrderRow.broker == broker, OrderRow.status == "open")
        .order_by(OrderRow.journal_seq)
    )
    return promised_of(rows, placed_by)


def cancel_open_orders(session: Session, broker: str, reason: str, at_ms: int) -> list[OrderRow]:
    """Cancel every open order of the broker in one statement; returns them, as cancelled."""
    return list(
        session.scalars(
            sa.update(OrderRow)
            .where(OrderRow.broker == broker, OrderRow.status == "open")
            .values(status="cancelled", reason=reason, updated_at=at_ms)
            .returning(OrderRow)
            .execution_options(synchronize_session=False)
        )
    )


def close_order(
    session: Session,
    order_id: str,
    status: Literal["filled", "cancelled", "rejected"],
    reason: str,
    at_ms: int,
) -> bool:
    """Move an order from open to ``status``; False when it was no longer open.

    One conditional UPDATE: on PostgreSQL it waits for a concurrent change of the same row
    and then re-reads its status, so exactly one of two racing closes succeeds.
    """
    result = session.execute(
        sa.update(OrderRow)
        .where(OrderRow.id == order_id, OrderRow.status == "open")
        .values(status=status, reason=reason, updated_at=at_ms)
        .execution_options(synchronize_session=False)
    )
    return cast(sa.CursorResult[Any], result).rowcount == 1


def note_exchange_state(
    session: Session,
    order_id: str,
    *,
    reason: str,
    at_ms: int,
    exchange_order_id: str | None = None,
    filled_quantity: float | None = None,
) -> bool:
    """Record what the exchange says of an order still open (its id, how much is filled);
    False when it was no longer open."""
    values: dict[str, object] = {"reason": reason, "updated_at": at_ms}
    if exchange_order_id is not None:
        values["exchange_order_id"] = exchange_order_id
    if filled_quantity is not None:
        values["filled_quantity"] = filled_quantity
    result = session.execute(
        sa.update(OrderRow)
        .where(OrderRow.id == order_id, OrderRow.status == "open")
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return cast(sa.CursorResult[Any], result).rowcount == 1


def orders_by_exchange_id(session: Session, broker: str, exchange_ids: list[str]) -> list[OrderRow]:
    return list(
        session.scalars(
            sa.select(OrderRow).where(
                OrderRow.broker == broker, OrderRow.exchange_order_id.in_(exchange_ids)
            )
        )
    )


def booked_trade_ids(session: Session, order_id: str) -> set[str]:
    """The exchange trade ids already booked as fills of the order."""
    query = sa.select(FillRow.exchange_trade_id).where(
        FillRow.order_id == order_id, FillRow.exchange_trade_id.is_not(None)
    )
    return {trade_id for trade_id in session.scalars(query) if trade_id is not None}


def bought_since(session: Session, broker: str, since_ms: int) -> float:
    """Quote currency the broker's buys committed since ``since_ms``: what filled (at the fill
    prices, fees included) plus what is still open of the buys placed since (at their
    reference prices)."""
    filled = session.scalar(
        sa.select(
            sa.func.coalesce(sa.func.sum(FillRow.quantity * FillRow.price + FillRow.fee), 0.0)
        )
        .join(OrderRow, FillRow.order_id == OrderRow.id)
        .where(OrderRow.broker == broker, FillRow.side == "buy", FillRow.filled_at >= since_ms)
    )
    pending = session.scalar(
        sa.select(
            sa.func.coalesce(
                sa.func.sum(
                    (OrderRow.quantity - OrderRow.filled_quantity) * OrderRow.reference_price
                ),
                0.0,
            )
        ).where(
            OrderRow.broker == broker,
            OrderRow.side == "buy",
            OrderRow.status == "open",
            OrderRow.created_at >= since_ms,
        )
    )
    return float(filled or 0.0) + float(pending or 0.0)


def list_orders(
    session: Session,
    broker: str,
    *,
    status: str | None = None,
    symbol: str | None = None,
    before_seq: int | None = None,
    limit: int = 50,
) -> list[OrderRow]:
    """The broker's orders, newest first (by journal number, the cursor for the next page)."""
    query = (
        sa.select(OrderRow)
        .where(OrderRow.broker == broker)
        .order_by(OrderRow.journal_seq.desc())
        .limit(limit)
    )
    if status is not None:
        query = query.where(OrderRow.status == status)
    if symbol is not None:
        query = query.where(OrderRow.symbol == symbol)
    if before_seq is not None:
        query = query.where(OrderRow.journal_seq < before_seq)
    return list(session.scalars(query))


def add_fill(session: Session, fill: FillRow) -> None:
    session.add(fill)
    session.flush()


def fills(
    session: Session,
    broker: str,
    *,
    symbol: str | None = None,
    after_ms: int | None = None,
    until_ms: int | None = None,
) -> list[StoredFill]:
    """The broker's fills in id order (the order the book replays them in), optionally of one
    symbol and filled after ``after_ms`` and no later than ``until_ms``."""
    query = (
        sa.select(FillRow, OrderRow.timeframe)
        .join(OrderRow, FillRow.order_id == OrderRow.id)
        .where(OrderRow.broker == broker)
        .order_by(FillRow.id)
    )
    if symbol is not None:
        query = query.where(FillRow.symbol == symbol)
    if after_ms is not None:
        query = query.where(FillRow.filled_at > after_ms)
    if until_ms is not None:
        query = query.where(FillRow.filled_at <= until_ms)
    return [
        StoredFill(
            id=fill.id,
            order_id=fill.order_id,
            symbol=fill.symbol,
            timeframe=timeframe,
            side=fill.side,
            quantity=fill.quantity,
            price=fill.price,
            fee=fill.fee,
            slippage_fraction=fill.slippage_fraction,
            filled_at=fill.filled_at,
        )
        for fill, timeframe in session.execute(query)
    ]


# --- instruments and candle prices ----------------------------------------------------------


def lock_quote_currency(session: Session, quote: str) -> None:
    """Serialise, until commit, everything that spends or books one quote currency's cash.

    PostgreSQL runs guarded transactions side by side: without this, two buys of different
    symbols could size against the same free cash. SQLite's guarded transactions are serial
    already. The key is a stable 63-bit number from the currency's name.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    digest = hashlib.sha256(f"sigmax:cash:{quote}".encode()).digest()
    key = int.from_bytes(digest[:8], "big") >> 1
    session.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def instrument(session: Session, symbol: str, *, lock: bool = False) -> InstrumentRow | None:
    """The instrument with its precision and minimums. ``lock`` (PostgreSQL; SQLite's guarded
    transactions are serial already) holds its row until commit, serialising fills of the
    symbol so each one sees the position the previous one left."""
    query = sa.select(InstrumentRow).where(InstrumentRow.symbol == symbol)
    return session.scalar(query.with_for_update() if lock else query)


def _series(symbol: str, timeframe: str) -> sa.ColumnElement[bool]:
    instrument_id = (
        sa.select(InstrumentRow.id).where(InstrumentRow.symbol == symbol).scalar_subquery()
    )
    return sa.and_(CandleRow.instrument_id == instrument_id, CandleRow.timeframe == timeframe)


def first_candle_opening(
    session: Session, symbol: str, timeframe: str, from_ms: int, to_ms: int
) -> CandleRow | None:
    """The first stored candle opening within [from_ms, to_ms]."""
    return session.scalar(
        sa.select(CandleRow)
        .where(_series(symbol, timeframe), CandleRow.open_time.between(from_ms, to_ms))
        .order_by(CandleRow.open_time)
        .limit(1)
    )


def last_closed_candle(
    session: Session, symbol: str, timeframe: str, at_ms: int
) -> CandleRow | None:
    """The newest stored candle closed by ``at_ms`` (open time + timeframe ≤ at_ms)."""
    return session.scalar(
        sa.select(CandleRow)
        .where(_series(symbol, timeframe), CandleRow.open_time <= at_ms - timeframe_ms(timeframe))
        .order_by(CandleRow.open_time.desc())
        .limit(1)
    )
