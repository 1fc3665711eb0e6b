"""The control state and the panic stop (admin keys only for changes)."""

import contextlib
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends

from api.auth import actor, limited, require
from api.errors import ApiError, ErrorDetail
from api.examples import (
    CONTROL_OVERVIEW_EXAMPLE,
    CONTROL_STATE_EXAMPLE,
    PANIC_REPORT_EXAMPLE,
)
from api.routes.common import ServiceDep, errors
from api.schemas import ControlOverview, PanicBody, PauseBody, ResumeBody
from safety.control import ControlError, PanicReport
from storage.api_keys import ApiKey
from storage.control import NEVER_CHANGED, ControlState, scopes_in

router = APIRouter(prefix="/control", tags=["control"])
_STATE_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/json": {"example": CONTROL_STATE_EXAMPLE}}}
}


@contextlib.contextmanager
def _refusal_is_a_conflict() -> Iterator[None]:
    """A transition refused as things stand (HALTED, a cool-down) answers 409, saying why."""
    try:
        yield
    except ControlError as error:
        raise ApiError(409, "conflict", str(error)) from None


@router.get(
    "/state",
    response_model=ControlOverview,
    summary="The control state",
    description="The global state (ACTIVE, PAUSED or HALTED, since when, why, by whom) and "
    "each symbol's own state where one was set.",
    responses={
        200: {"content": {"application/json": {"example": CONTROL_OVERVIEW_EXAMPLE}}},
        **errors(401, 403),
    },
    dependencies=[Depends(require("read"))],
)
async def control_state(service: ServiceDep) -> ControlOverview:
    def read() -> list[ControlState]:
        with service.database.session_factory() as session:
            return scopes_in(session)

    scopes = await service.read(read)
    return ControlOverview(
        global_state=next((scope for scope in scopes if scope.symbol is None), NEVER_CHANGED),
        symbols=[scope for scope in scopes if scope.symbol is not None],
    )


@router.post(
    "/pause",
    response_model=ControlState,
    summary="Pause: no new entries",
    description="PAUSED blocks new entries; exits are still allowed. For every symbol, or one. "
    "Holds until a resume. Refused (409) under HALTED: a pause would lift the halt.",
    responses={**_STATE_RESPONSE, **errors(400, 401, 403, 409, 422, 429)},
)
def pause(
    body: PauseBody, service: ServiceDep, key: Annotated[ApiKey, Depends(limited("admin"))]
) -> ControlState:
    with _refusal_is_a_conflict():
        return service.engine.control.pause(
            actor(key), body.reason, service.clock.now_ms(), symbol=body.symbol
        )


@router.post(
    "/resume",
    response_model=ControlState,
    summary="Resume: lift a pause or a halt",
    description="Makes the scope ACTIVE, recording who and why. During an auto-pause's "
    "cool-down it is refused (409) unless `force` is true.",
    responses={**_STATE_RESPONSE, **errors(400, 401, 403, 409, 422, 429)},
)
def resume(
    body: ResumeBody, service: ServiceDep, key: Annotated[ApiKey, Depends(limited("admin"))]
) -> ControlState:
    with _refusal_is_a_conflict():
        return service.engine.control.resume(
            actor(key), body.reason, service.clock.now_ms(), force=body.force, symbol=body.symbol
        )


@router.post(
    "/panic",
    response_model=PanicReport,
    summary="PANIC: halt everything now",
    description="Persists HALTED first — from then on no order leaves, from any process — "
    "then cancels open orders and, with `close_positions`, sells every position "
    "reduce-only. Each step is reported. Idempotent. Never rate-limited. 503 when HALTED "
    "could not be persisted: trading is then NOT stopped.",
    responses={
        200: {"content": {"application/json": {"example": PANIC_REPORT_EXAMPLE}}},
        **errors(400, 401, 403, 422, 503),
    },
)
async def panic(
    body: PanicBody, service: ServiceDep, key: Annotated[ApiKey, Depends(require("admin"))]
) -> PanicReport:
    report = await service.panic(actor(key), body.reason, body.close_positions)
    halt = next(step for step in report.steps if step.name == "halt")
    if not halt.ok:
        raise ApiError(
            503,
            "halt_failed",
            "HALTED could not be persisted: trading is NOT stopped; retry, or stop the "
            "service and run `sigmax panic`",
            [
                ErrorDetail(field=None, message=f"{name}: {error}")
                for name, error in report.errors.items()
            ],
        )
    return report
