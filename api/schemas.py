"""Request and response bodies of the REST API that no lower layer already defines.

Records the lower layers own (the decision, its summary, control states, safety events, the
panic report) are served as those very models.
"""

from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from core.decision import Abstained, DebateTurn, DebateVerdict
from core.settings import validate_symbol
from core.timeframes import parse_timestamp, timeframe_ms
from core.trading import OrderStatus, Side
from storage.control import ControlState

Item = TypeVar("Item")

Reason = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=500),
    Field(description="Why: recorded (blank is refused)"),
]


class _Body(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _symbol(value: str | None) -> str | None:
    return None if value is None else validate_symbol(value)


class DecisionRequestBody(_Body):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"symbol": "BTC/USDT", "timeframe": "5m", "as_of": "2026-11-24T12:00:00Z"}]
        }
    )

    symbol: str = Field(description="BASE/QUOTE, e.g. BTC/USDT", max_length=40)
    timeframe: str | None = Field(default=None, description="Default: the first configured")
    as_of: str | int | None = Field(
        default=None,
        description="ISO-8601 UTC or epoch ms; default: now on the service's market clock",
    )

    _check_symbol = field_validator("symbol")(validate_symbol)

    @field_validator("timeframe")
    @classmethod
    def _check_timeframe(cls, value: str | None) -> str | None:
        if value is not None:
            timeframe_ms(value)
        return value

    @field_validator("as_of")
    @classmethod
    def _check_as_of(cls, value: str | int | None) -> str | int | None:
        if value is not None:
            parse_timestamp(str(value))
        return value

    def as_of_ms(self) -> int | None:
        return None if self.as_of is None else parse_timestamp(str(self.as_of))


class PauseBody(_Body):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"reason": "CPI print in 10 minutes", "symbol": None}]}
    )

    reason: Reason
    symbol: str | None = Field(default=None, description="Only this symbol; default: all")

    _check_symbol = field_validator("symbol")(_symbol)


class ResumeBody(PauseBody):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"reason": "checked positions", "force": False}]}
    )

    force: bool = Field(default=False, description="Resume even during a cool-down")


class PanicBody(_Body):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"reason": "exchange incident", "close_positions": True}]}
    )

    reason: Reason
    close_positions: bool = Field(default=False, description="Also sell every position")


class Page(BaseModel, Generic[Item]):
    """One page, newest first; pass ``next_cursor`` as ``cursor`` for the next (null: done)."""

    items: list[Item]
    next_cursor: str | None


class Pong(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"ping": "pong"}]})

    ping: str


class VersionInfo(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"engine_version": "0.3.0", "api_version": "v1"}]}
    )

    engine_version: str
    api_version: str


class ControlOverview(BaseModel):
    """The global state, and each symbol held back on its own."""

    global_state: ControlState = Field(alias="global")
    symbols: list[ControlState]

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class DebateView(BaseModel):
    """A decision's debate: the judged verdict (or why there was none) and every turn."""

    decision_id: str
    symbol: str
    timeframe: str
    as_of: str
    action: str
    verdict: DebateVerdict | Abstained
    turns: list[DebateTurn]


class Position(BaseModel):
    symbol: str
    timeframe: str
    quantity: float
    cost: float = Field(description="Quote currency paid for what is held, fees included")
    mark_price: float = Field(description="The last close of the position's series")
    value: float
    unrealised_pnl: float
    fraction: float | None = Field(description="Value / the quote's equity; null: equity ≤ 0")


class CurrencyBook(BaseModel):
    quote: str
    cash: float
    equity: float
    day_start_equity: float
    today_pnl: float
    exposure_fraction: float | None = Field(description="Null when equity ≤ 0")


class Portfolio(BaseModel):
    as_of: str = Field(description="The market-clock instant the book is marked at")
    currencies: list[CurrencyBook]
    positions: list[Position]


class Order(BaseModel):
    id: str
    client_order_id: str
    decision_id: str | None
    broker: str
    symbol: str
    timeframe: str
    side: Side
    quantity: float
    reference_price: float
    reduce_only: bool
    status: OrderStatus
    reason: str
    not_before: str = Field(description="The earliest instant it may fill")
    created_at: str
    updated_at: str
    journal_seq: int
