"""Liveness, version, health and Prometheus metrics."""

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.auth import require
from api.errors import ErrorResponse
from api.health import HealthReport
from api.routes.common import ServiceDep, errors
from api.schemas import Pong, VersionInfo
from core.version import ENGINE_VERSION

router = APIRouter(tags=["system"])
API_VERSION = "v1"


@router.get(
    "/ping",
    response_model=Pong,
    summary="Liveness",
    description="Answers while the process serves requests. The one route without a key.",
)
async def ping() -> Pong:
    return Pong(ping="pong")


@router.get(
    "/version",
    response_model=VersionInfo,
    summary="Engine and API version",
    description="The engine version stamped on every decision, and the API version.",
    responses=errors(401, 403),
    dependencies=[Depends(require("read"))],
)
async def version() -> VersionInfo:
    return VersionInfo(engine_version=ENGINE_VERSION, api_version=API_VERSION)


@router.get(
    "/health",
    response_model=HealthReport,
    summary="Each component's health",
    description="Database (and its latency), each series' data age on the market clock, the "
    "scheduler's last run, the control state. 200 when ok or degraded (`problems` says "
    "what), 503 when failing.",
    responses={
        **errors(401, 403),
        503: {
            "model": HealthReport | ErrorResponse,
            "description": "The database does not answer: the report says so, or, when the "
            "key could not be checked, the error shape",
        },
    },
    dependencies=[Depends(require("read"))],
)
async def health(service: ServiceDep) -> JSONResponse:
    report = await service.read(service.health_report)
    status = 503 if report.status == "failing" else 200
    return JSONResponse(report.model_dump(mode="json"), status_code=status)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    description="Decisions by action and verdict, node latencies, data age per series, the "
    "control state, the scheduler's counters; text exposition format.",
    response_class=Response,
    responses={
        200: {
            "content": {
                CONTENT_TYPE_LATEST: {
                    "schema": {"type": "string"},
                    "example": 'sigmax_decisions_total{action="hold",verdict="blocked"} 42.0\n',
                }
            },
            "description": "Prometheus text format",
        },
        **errors(401, 403),
    },
    dependencies=[Depends(require("read"))],
)
def metrics(service: ServiceDep) -> Response:
    return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)
