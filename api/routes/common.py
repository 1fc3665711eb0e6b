"""What several routers share: documented error responses, cursors, timestamp parameters."""

from typing import Annotated, Any

from fastapi import Depends, Query

from api.errors import ErrorResponse, field_error
from api.service import Service, get_service
from core.settings import validate_symbol
from core.timeframes import parse_timestamp

ServiceDep = Annotated[Service, Depends(get_service)]
SymbolQuery = Annotated[str | None, Query(description="BASE/QUOTE, e.g. BTC/USDT", max_length=40)]
CursorQuery = Annotated[str | None, Query(description="`next_cursor` of the previous page")]

_DESCRIPTIONS = {
    400: "The body could not be read (not UTF-8 JSON)",
    401: "No key, or an unknown or revoked one",
    403: "The key's scope is too narrow",
    404: "No such record",
    409: "Refused as things stand (see the message)",
    422: "A parameter or field is invalid; `details` names each",
    429: "Too many changes from this key; see Retry-After",
    503: "The database does not answer (code `database_unavailable`), or for the panic: HALTED "
    "could not be persisted (`halt_failed`)",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses a route may answer, all in the error shape;
    every route that reads the database may answer 503."""
    return {
        status: {"model": ErrorResponse, "description": _DESCRIPTIONS[status]}
        for status in sorted({*statuses, 503})
    }


def cursor_value(cursor: str | None) -> int | None:
    """A page cursor is the number the previous page ended at."""
    if cursor is None:
        return None
    if not cursor.isdigit() or len(cursor) > 18:
        raise field_error("query.cursor", "not a cursor this API gave out")
    return int(cursor)


def instant(name: str, value: str | None) -> int | None:
    """An ISO-8601 UTC or epoch-ms query parameter."""
    if value is None:
        return None
    try:
        return parse_timestamp(value)
    except ValueError as error:
        raise field_error(f"query.{name}", str(error)) from None


def next_cursor(numbers: list[int], limit: int) -> str | None:
    """A full page may have more after it; a short one is the last."""
    return str(numbers[-1]) if len(numbers) == limit and numbers else None


def query_symbol(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return validate_symbol(value)
    except ValueError as error:
        raise field_error("query.symbol", str(error)) from None
