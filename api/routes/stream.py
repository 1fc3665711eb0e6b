"""GET /stream: server-sent events of new decisions, safety events and control changes."""

import asyncio
from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse

from api.auth import require
from api.routes.common import ServiceDep, errors
from api.service import Service

router = APIRouter(tags=["stream"])
# A comment line this often keeps proxies from closing a quiet stream.
KEEPALIVE_SECONDS = 15.0
# How often a quiet stream checks whether the server is stopping.
STOP_CHECK_SECONDS = 0.5


@router.get(
    "/stream",
    summary="Live events (server-sent events)",
    description="`event: decision` (the decision's summary; `GET /decisions/{id}` has it "
    "whole), `event: safety_event`, `event: control` (a control state change, from any "
    "process). Each has an `id`. Events stored after the connection opened are sent.",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {
                "text/event-stream": {
                    "schema": {"type": "string"},
                    "example": 'id: decision-1042\nevent: decision\ndata: {"id": "…"}\n\n',
                }
            },
            "description": "An endless event stream",
        },
        **errors(401, 403),
    },
    dependencies=[Depends(require("read"))],
)
async def stream(service: ServiceDep) -> StreamingResponse:
    return StreamingResponse(
        _frames(service),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _frames(service: Service) -> AsyncIterator[bytes]:
    queue = service.events.subscribe()
    try:
        yield b"retry: 2000\n: connected\n\n"
        quiet = 0.0
        while not service.stopping.is_set():
            try:
                event = await asyncio.wait_for(queue.get(), STOP_CHECK_SECONDS)
            except TimeoutError:
                quiet += STOP_CHECK_SECONDS
                if quiet >= KEEPALIVE_SECONDS:
                    quiet = 0.0
                    yield b": keep-alive\n\n"
                continue
            if event is None:
                return
            quiet = 0.0
            yield event.encode()
    finally:
        service.events.unsubscribe(queue)
