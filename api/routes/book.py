"""The paper book and the safety log: positions, orders, portfolio, safety events."""

import math
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from api.auth import require
from api.examples import (
    ORDER_PAGE_EXAMPLE,
    PORTFOLIO_EXAMPLE,
    POSITION_EXAMPLE,
    SAFETY_EVENT_PAGE_EXAMPLE,
)
from api.routes.common import (
    CursorQuery,
    ServiceDep,
    SymbolQuery,
    cursor_value,
    errors,
    next_cursor,
    query_symbol,
)
from api.schemas import CurrencyBook, Order, Page, Portfolio, Position
from core.timeframes import format_timestamp
from core.trading import HoldingView, OrderStatus
from storage import orders
from storage.models import OrderRow
from storage.safety_events import SafetyEvent

router = APIRouter(tags=["book"], dependencies=[Depends(require("read"))])


@router.get(
    "/safety/events",
    response_model=Page[SafetyEvent],
    summary="Safety events, newest first",
    description="Every gate trigger and safety action: blocked entries, auto-pauses, control "
    "changes, panic reports. Filter by `kind` (e.g. `control_halted`) and `symbol`.",
    responses={
        200: {"content": {"application/json": {"example": SAFETY_EVENT_PAGE_EXAMPLE}}},
        **errors(401, 403, 422),
    },
)
async def safety_events(
    service: ServiceDep,
    kind: Annotated[str | None, Query(max_length=64)] = None,
    symbol: SymbolQuery = None,
    cursor: CursorQuery = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Page[SafetyEvent]:
    items = await service.read(
        service.safety_events.list, limit, cursor_value(cursor), kind, query_symbol(symbol)
    )
    return Page(items=items, next_cursor=next_cursor([item.id for item in items], limit))


@router.get(
    "/positions",
    response_model=list[Position],
    summary="Open positions",
    description="The paper book's positions, marked at the last close on the market clock.",
    responses={
        200: {"content": {"application/json": {"example": [POSITION_EXAMPLE]}}},
        **errors(401, 403),
    },
)
def positions(service: ServiceDep) -> list[Position]:
    portfolio = service.engine.broker.portfolio(service.clock.now_ms())
    return [_position(holding) for holding in portfolio.holdings.values()]


@router.get(
    "/portfolio",
    response_model=Portfolio,
    summary="The book per quote currency",
    description="Cash, equity, equity at 00:00 UTC, today's profit and exposure per quote "
    "currency, and the positions.",
    responses={
        200: {"content": {"application/json": {"example": PORTFOLIO_EXAMPLE}}},
        **errors(401, 403),
    },
)
def portfolio(service: ServiceDep) -> Portfolio:
    now = service.clock.now_ms()
    book = service.engine.broker.portfolio(now)
    return Portfolio(
        as_of=format_timestamp(now),
        currencies=[
            CurrencyBook(
                quote=view.quote,
                cash=view.cash,
                equity=view.equity,
                day_start_equity=view.day_start_equity,
                today_pnl=view.today_pnl,
                exposure_fraction=_finite(view.exposure_fraction),
            )
            for view in book.currencies.values()
        ],
        positions=[_position(holding) for holding in book.holdings.values()],
    )


@router.get(
    "/orders",
    response_model=Page[Order],
    summary="Orders, newest first",
    description="Every order the broker (paper or exchange) stored, with its status; "
    "filter by `status` and `symbol`.",
    responses={
        200: {"content": {"application/json": {"example": ORDER_PAGE_EXAMPLE}}},
        **errors(401, 403, 422),
    },
)
async def list_orders(
    service: ServiceDep,
    status: OrderStatus | None = None,
    symbol: SymbolQuery = None,
    cursor: CursorQuery = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Page[Order]:
    def read() -> list[Order]:
        with service.database.session_factory() as session:
            rows = orders.list_orders(
                session,
                service.engine.broker.name,
                status=status,
                symbol=query_symbol(symbol),
                before_seq=cursor_value(cursor),
                limit=limit,
            )
            return [_order(row) for row in rows]

    items = await service.read(read)
    return Page(items=items, next_cursor=next_cursor([item.journal_seq for item in items], limit))


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _position(holding: HoldingView) -> Position:
    return Position(
        symbol=holding.symbol,
        timeframe=holding.timeframe,
        quantity=holding.quantity,
        cost=holding.cost,
        mark_price=holding.mark_price,
        value=holding.value,
        unrealised_pnl=holding.unrealised_pnl,
        fraction=_finite(holding.fraction),
    )


def _order(row: OrderRow) -> Order:
    return Order.model_validate(
        {
            "id": row.id,
            "client_order_id": row.client_order_id,
            "decision_id": row.decision_id,
            "broker": row.broker,
            "symbol": row.symbol,
            "timeframe": row.timeframe,
            "side": row.side,
            "quantity": row.quantity,
            "reference_price": row.reference_price,
            "reduce_only": row.reduce_only,
            "status": row.status,
            "reason": row.reason,
            "not_before": format_timestamp(row.not_before),
            "created_at": format_timestamp(row.created_at),
            "updated_at": format_timestamp(row.updated_at),
            "journal_seq": row.journal_seq,
        }
    )
