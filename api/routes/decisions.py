"""Decisions and their debates: trigger one, list, read one whole, read the debate history."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from api.auth import limited, require
from api.errors import field_error, not_found
from api.examples import (
    DEBATE_EXAMPLE,
    DEBATE_PAGE_EXAMPLE,
    DECISION_EXAMPLE,
    DECISION_PAGE_EXAMPLE,
)
from api.routes.common import (
    CursorQuery,
    ServiceDep,
    SymbolQuery,
    cursor_value,
    errors,
    instant,
    next_cursor,
    query_symbol,
)
from api.schemas import DebateView, DecisionRequestBody, Page
from core.decision import Action, Decision, Verdict
from core.timeframes import floor_to, format_timestamp, timeframe_ms
from ingestion.feeds import FeedError, Series
from storage.decisions import DecisionFilters, DecisionSummary

router = APIRouter(tags=["decisions"])


@router.post(
    "/decisions",
    status_code=201,
    response_model=Decision,
    summary="Decide now (or at a past instant)",
    description="Runs the whole decision path for one symbol at `as_of` (default: now on the "
    "service's market clock): agents, debate, signals, the risk gate, and — if the gate "
    "approves and `as_of` is within the current candle — a paper order that fills at the "
    "next candle's open. A decision at an earlier instant is stored decide-only: its order "
    "would fill at prices already known. Needs a `trade` key.",
    responses={
        201: {"content": {"application/json": {"example": DECISION_EXAMPLE}}},
        **errors(400, 401, 403, 422, 429),
    },
    dependencies=[Depends(limited("trade"))],
)
def create_decision(body: DecisionRequestBody, service: ServiceDep) -> Decision:
    timeframe = body.timeframe or service.settings.timeframes[0]
    market_now = service.clock.now_ms()
    as_of = body.as_of_ms()
    if as_of is None:
        as_of = market_now
    elif as_of > market_now:
        raise field_error(
            "body.as_of",
            f"{format_timestamp(as_of)} is after now on the market clock "
            f"({format_timestamp(market_now)}): a decision reads only what has happened",
        )
    series = Series(body.symbol, timeframe)
    fed = series in service.feed.series
    if fed:
        try:
            service.feed.prepare(series, as_of)
        except FeedError as error:
            raise field_error("body.symbol", f"the feed cannot serve it: {error}") from None
    if service.candles.coverage(body.symbol, timeframe) is None:
        raise field_error(
            "body.symbol",
            f"no {timeframe} candles stored for {body.symbol}: configure it in SIGMAX_SYMBOLS "
            f"or import some with `sigmax data import`",
        )
    # Orders only in the present: a decision at an earlier instant would fill at opens
    # already known — trading in hindsight. It is decided and stored, decide-only.
    current = as_of >= floor_to(market_now, timeframe_ms(timeframe))
    decision = service.engine.decide(
        body.symbol,
        timeframe,
        as_of,
        mode=service.feed.mode if fed else None,
        place_orders=current,
    )
    service.decided(decision)
    return decision


@router.get(
    "/decisions",
    response_model=Page[DecisionSummary],
    summary="List decisions, newest first",
    description="Filters combine; `since`/`until` bound `as_of` (inclusive, ISO-8601 or epoch "
    "ms). Cursor pagination: pass `next_cursor` back as `cursor` until it is null.",
    responses={
        200: {"content": {"application/json": {"example": DECISION_PAGE_EXAMPLE}}},
        **errors(401, 403, 422),
    },
    dependencies=[Depends(require("read"))],
)
async def list_decisions(
    service: ServiceDep,
    symbol: SymbolQuery = None,
    action: Action | None = None,
    verdict: Verdict | None = None,
    since: Annotated[str | None, Query(description="as_of ≥ this")] = None,
    until: Annotated[str | None, Query(description="as_of ≤ this")] = None,
    cursor: CursorQuery = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Page[DecisionSummary]:
    filters = DecisionFilters(
        symbol=query_symbol(symbol),
        action=action,
        verdict=verdict,
        since=instant("since", since),
        until=instant("until", until),
    )
    items = await service.read(service.decisions.list, filters, limit, cursor_value(cursor))
    return Page(items=items, next_cursor=next_cursor([item.seq for item in items], limit))


@router.get(
    "/decisions/{decision_id}",
    response_model=Decision,
    summary="One decision, whole",
    description="The immutable record: evidence, signals, every debate turn, every gate "
    "check, the orders or why none, timings.",
    responses={
        200: {"content": {"application/json": {"example": DECISION_EXAMPLE}}},
        **errors(401, 403, 404, 422),
    },
    dependencies=[Depends(require("read"))],
)
async def get_decision(
    service: ServiceDep, decision_id: Annotated[str, Path(max_length=64)]
) -> Decision:
    decision = await service.read(service.decisions.get, decision_id)
    if decision is None:
        raise not_found(f"no decision with id {decision_id!r}")
    return decision


@router.get(
    "/decisions/{decision_id}/debate",
    response_model=DebateView,
    summary="One decision's debate",
    description="The judged verdict (or why there was none) and every turn in order: "
    "opening arguments, context, rebuttals.",
    responses={
        200: {"content": {"application/json": {"example": DEBATE_EXAMPLE}}},
        **errors(401, 403, 404, 422),
    },
    dependencies=[Depends(require("read"))],
)
async def get_debate(
    service: ServiceDep, decision_id: Annotated[str, Path(max_length=64)]
) -> DebateView:
    decision = await service.read(service.decisions.get, decision_id)
    if decision is None:
        raise not_found(f"no decision with id {decision_id!r}")
    return _debate(decision)


@router.get(
    "/debates",
    response_model=Page[DebateView],
    summary="Debate history, newest first",
    description="The debates of stored decisions, optionally of one symbol, with every turn.",
    responses={
        200: {"content": {"application/json": {"example": DEBATE_PAGE_EXAMPLE}}},
        **errors(401, 403, 422),
    },
    dependencies=[Depends(require("read"))],
)
async def list_debates(
    service: ServiceDep,
    symbol: SymbolQuery = None,
    cursor: CursorQuery = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Page[DebateView]:
    filters = DecisionFilters(symbol=query_symbol(symbol))
    records = await service.read(service.decisions.records, filters, limit, cursor_value(cursor))
    return Page(
        items=[_debate(decision) for _, decision in records],
        next_cursor=next_cursor([seq for seq, _ in records], limit),
    )


def _debate(decision: Decision) -> DebateView:
    return DebateView(
        decision_id=decision.id,
        symbol=decision.symbol,
        timeframe=decision.timeframe,
        as_of=decision.as_of,
        action=decision.action,
        verdict=decision.signals.debate,
        turns=list(decision.debate),
    )
