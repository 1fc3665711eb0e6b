"""One JSON error shape for every 4xx and 5xx: ``{"error": {code, message, details}}``.

A validation error names each field (``body.symbol``, ``query.limit``); an unexpected error
answers 500 with a request id the server log carries next to the traceback, and nothing of
the traceback itself.
"""

import logging
import uuid
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("sigmax.api")


class ErrorDetail(BaseModel):
    model_config = ConfigDict(frozen=True)

    field: str | None = Field(description="Where: `body.symbol`, `query.limit`, `path.id`")
    message: str


class ErrorBody(BaseModel):
    model_config = ConfigDict(frozen=True)

    code: str = Field(description="Stable, machine-readable: `not_found`, `validation_error`…")
    message: str
    details: list[ErrorDetail] = Field(default_factory=list)


class ErrorResponse(BaseModel):
    model_config = ConfigDict(
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "error": {
                        "code": "validation_error",
                        "message": "1 field is invalid",
                        "details": [
                            {
                                "field": "body.symbol",
                                "message": "symbol 'btc' must look like BTC/USDT",
                            }
                        ],
                    }
                }
            ]
        },
    )

    error: ErrorBody


class ApiError(Exception):
    """Raised by routes and dependencies; answered in the error shape."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Sequence[ErrorDetail] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = list(details)
        self.headers = dict(headers or {})


def field_error(field: str, message: str) -> ApiError:
    """A 422 about one field."""
    return ApiError(
        422, "validation_error", f"{field}: {message}", [ErrorDetail(field=field, message=message)]
    )


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", what)


def error_json(
    status: int,
    code: str,
    message: str,
    details: Sequence[ErrorDetail] = (),
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = ErrorResponse(error=ErrorBody(code=code, message=message, details=list(details)))
    return JSONResponse(body.model_dump(mode="json"), status_code=status, headers=headers)


# What each status is called in ``code`` when no route gave one.
_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
}


def install_error_handlers(app: FastAPI) -> None:
    async def on_api_error(_request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, ApiError)
        return error_json(error.status, error.code, error.message, error.details, error.headers)

    async def on_http_error(_request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, StarletteHTTPException)
        code = _CODES.get(error.status_code, f"http_{error.status_code}")
        message = error.detail if isinstance(error.detail, str) else _phrase(error.status_code)
        return error_json(error.status_code, code, message, headers=error.headers)

    async def on_validation_error(_request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        details = [_detail(issue) for issue in error.errors()]
        count = len(details)
        fields = ", ".join(sorted({detail.field or "request" for detail in details}))
        message = f"{count} invalid value{'s' if count != 1 else ''}: {fields}"
        return error_json(422, "validation_error", message, details)

    async def on_database_down(_request: Request, error: Exception) -> JSONResponse:
        request_id = uuid.uuid4().hex
        log.error("request %s: the database failed", request_id, exc_info=error)
        return error_json(
            503,
            "database_unavailable",
            f"the database did not answer; see /health (the server log has it as {request_id})",
            headers={"Retry-After": "5"},
        )

    async def on_unexpected(_request: Request, error: Exception) -> JSONResponse:
        request_id = uuid.uuid4().hex
        log.error("request %s failed", request_id, exc_info=error)
        return error_json(
            500, "internal_error", f"internal error; the server log has it as {request_id}"
        )

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    # Cannot connect, locked, disk I/O, no such table: the database's state, not the request's.
    app.add_exception_handler(sqlalchemy.exc.OperationalError, on_database_down)
    app.add_exception_handler(Exception, on_unexpected)


def _detail(issue: Mapping[str, Any]) -> ErrorDetail:
    location = ".".join(str(part) for part in issue.get("loc", ()))
    message = str(issue.get("msg", "invalid")).removeprefix("Value error, ")
    return ErrorDetail(field=location or None, message=message)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "error"
