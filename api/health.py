"""/health: each component's state, and the data age of every configured series."""

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field

from api.scheduler import SchedulerStatus
from api.workers import Workers
from core.clock import PacedClock
from core.decision import ControlStateName, Mode
from core.timeframes import format_timestamp, timeframe_ms
from ingestion.exchange_feed import RefreshState
from ingestion.feeds import Series
from storage.candles import CandleStore
from storage.control import scopes_in
from storage.engine import Database

HealthStatus = Literal["ok", "degraded", "failing"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class DatabaseHealth(_Model):
    ok: bool
    dialect: str
    latency_ms: float | None
    error: str | None = None


class FeedHealth(_Model):
    symbol: str
    timeframe: str
    last_close: str | None = Field(description="Close time of the newest stored candle")
    age_seconds: float | None = Field(description="Market-clock seconds since that close")
    stale: bool = Field(description="Older than the gate accepts: decisions would hold")


class ExchangeRefreshHealth(_Model):
    symbol: str
    timeframe: str
    refreshed_at: str | None = Field(description="Wall clock of the last refresh that worked")
    added: int = Field(description="Candles that refresh stored")
    error: str | None = Field(
        description="Why the latest refresh failed (the ccxt error class and message: "
        "ExchangeError, RateLimitExceeded after the retries, …); null once one works again"
    )
    failed_at: str | None


class WorkerHealth(_Model):
    name: str = Field(description="news, research, order_books or candles")
    runs: int
    failures: int
    last_run_at: str | None
    last_ok_at: str | None
    last_detail: str | None = Field(description="What the last run that worked did")
    last_error: str | None = Field(description="Why the last run failed; null once one works")


class TickerHealth(_Model):
    symbol: str
    taken_at: str
    last: float | None
    bid: float | None
    ask: float | None
    change_percent_24h: float | None


class SchedulerHealth(_Model):
    running: bool
    finished: bool = Field(description="A replay that reached the end of its data")
    mode: Mode
    speed: float = Field(description="Market seconds per wall-clock second")
    market_now: str
    last_run_at: str | None
    last_as_of: str | None
    decisions: int
    errors: int
    skipped_candles: int
    last_error: str | None
    series_errors: dict[str, str]


class ControlScope(_Model):
    symbol: str | None
    state: ControlStateName
    reason: str
    actor: str
    since: str | None


class ControlHealth(_Model):
    state: ControlStateName = Field(description="The global state")
    scopes: list[ControlScope] = Field(description="The global scope and each symbol's own")


class Components(_Model):
    database: DatabaseHealth
    feeds: list[FeedHealth]
    scheduler: SchedulerHealth | None
    control: ControlHealth
    exchange: list[ExchangeRefreshHealth] | None = Field(
        default=None, description="Each series' last refresh from the exchange (--exchange)"
    )
    workers: list[WorkerHealth] | None = Field(
        default=None, description="The background workers (--exchange, sigmax ingest)"
    )
    tickers: list[TickerHealth] | None = Field(
        default=None, description="Each symbol's latest 24 h ticker from the exchange"
    )


class HealthReport(_Model):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "ok",
                    "problems": [],
                    "components": {
                        "database": {"ok": True, "dialect": "sqlite", "latency_ms": 0.2},
                        "feeds": [
                            {
                                "symbol": "BTC/USDT",
                                "timeframe": "5m",
                                "last_close": "2026-11-24T16:55:00Z",
                                "age_seconds": 42.0,
                                "stale": False,
                            }
                        ],
                        "scheduler": None,
                        "control": {"state": "ACTIVE", "scopes": []},
                    },
                }
            ]
        },
    )

    status: HealthStatus = Field(
        description="failing: the database does not answer; degraded: stale data, a "
        "scheduler error or a stopped scheduler; ok otherwise"
    )
    problems: list[str]
    components: Components


class HealthProbe:
    def __init__(
        self,
        database: Database,
        series: Sequence[Series],
        clock: PacedClock,
        freshness_bars: float,
        exchange_states: Callable[[], Mapping[str, RefreshState]] | None = None,
        workers: Workers | None = None,
    ) -> None:
        self._workers = workers
        self._exchange_states = exchange_states
        self._database = database
        self._candles = CandleStore(database.session_factory)
        self._series = tuple(series)
        self._clock = clock
        self._freshness_bars = freshness_bars

    def report(self, scheduler: SchedulerStatus | None) -> HealthReport:
        market_now = self._clock.now_ms()
        database = self._database_health()
        feeds: list[FeedHealth] = []
        control = ControlHealth(state="ACTIVE", scopes=[])
        problems: list[str] = []
        if database.ok:
            feeds = [self._feed(item, market_now) for item in self._series]
            control = self._control()
        else:
            problems.append(f"database: {database.error}")
        problems += [f"{feed.symbol} {feed.timeframe}: data stale" for feed in feeds if feed.stale]
        scheduler_health = None
        if scheduler is not None:
            scheduler_health = _scheduler(scheduler, market_now)
            if not scheduler.running and not scheduler.finished:
                problems.append("scheduler: not running")
            problems += [f"{key}: {error}" for key, error in scheduler.series_errors.items()]
        exchange = None
        if self._exchange_states is not None:
            states = self._exchange_states()
            exchange = [_refresh(state) for state in states.values()]
            problems += [f"{key}: exchange: {s.error}" for key, s in states.items() if s.error]
        workers, tickers = None, None
        if self._workers is not None:
            statuses = self._workers.statuses()
            workers = [WorkerHealth(**_stamped(vars(status))) for status in statuses]
            problems += [f"worker {s.name}: {s.last_error}" for s in statuses if s.last_error]
            tickers = [
                TickerHealth(**_stamped(vars(ticker)))
                for ticker in self._workers.tickers().values()
            ]
        status: HealthStatus = "failing" if not database.ok else "degraded" if problems else "ok"
        return HealthReport(
            status=status,
            problems=problems,
            components=Components(
                database=database,
                feeds=feeds,
                scheduler=scheduler_health,
                control=control,
                exchange=exchange,
                workers=workers,
                tickers=tickers,
            ),
        )

    def _database_health(self) -> DatabaseHealth:
        dialect = self._database.engine.dialect.name
        started = time.perf_counter()
        try:
            with self._database.engine.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
        except Exception as error:  # reported as the database's state
            return DatabaseHealth(
                ok=False, dialect=dialect, latency_ms=None, error=f"{type(error).__name__}"
            )
        elapsed = (time.perf_counter() - started) * 1000.0
        return DatabaseHealth(ok=True, dialect=dialect, latency_ms=round(elapsed, 3))

    def _feed(self, series: Series, market_now: int) -> FeedHealth:
        step = timeframe_ms(series.timeframe)
        # The newest candle closed by now on the market clock: a replay holds its future too.
        closed = self._candles.window(
            series.symbol, series.timeframe, market_now, 1
        ).last_close_time
        if closed is None:
            return FeedHealth(
                symbol=series.symbol,
                timeframe=series.timeframe,
                last_close=None,
                age_seconds=None,
                stale=True,
            )
        age_ms = market_now - closed
        # Fresh while the newest close is at most the gate's freshness (plus the bar now
        # forming) old: past that, a decision now would fail the freshness check.
        return FeedHealth(
            symbol=series.symbol,
            timeframe=series.timeframe,
            last_close=format_timestamp(closed),
            age_seconds=age_ms / 1000.0,
            stale=age_ms > step * (1.0 + self._freshness_bars),
        )

    def _control(self) -> ControlHealth:
        with self._database.session_factory() as session:
            scopes = scopes_in(session)
        global_state = next((s.state for s in scopes if s.symbol is None), "ACTIVE")
        return ControlHealth(
            state=global_state,
            scopes=[
                ControlScope(
                    symbol=scope.symbol,
                    state=scope.state,
                    reason=scope.reason,
                    actor=scope.actor,
                    since=None if scope.since is None else format_timestamp(scope.since),
                )
                for scope in scopes
            ],
        )


def _stamp(value: int | None) -> str | None:
    return None if value is None else format_timestamp(value)


def _stamped(fields: dict[str, object]) -> dict[str, object]:
    """Epoch-ms fields (``*_at``) as ISO-8601 text."""
    return {
        name: format_timestamp(value) if name.endswith("_at") and isinstance(value, int) else value
        for name, value in fields.items()
    }


def _refresh(state: RefreshState) -> ExchangeRefreshHealth:
    return ExchangeRefreshHealth(
        symbol=state.symbol,
        timeframe=state.timeframe,
        refreshed_at=_stamp(state.refreshed_at),
        added=state.added,
        error=state.error,
        failed_at=_stamp(state.failed_at),
    )


def _scheduler(status: SchedulerStatus, market_now: int) -> SchedulerHealth:
    stamp = _stamp
    return SchedulerHealth(
        running=status.running,
        finished=status.finished,
        mode=status.mode,
        speed=status.speed,
        market_now=format_timestamp(market_now),
        last_run_at=stamp(status.last_run_at),
        last_as_of=stamp(status.last_as_of),
        decisions=status.decisions,
        errors=status.errors,
        skipped_candles=status.skipped_candles,
        last_error=status.last_error,
        series_errors=dict(status.series_errors),
    )
