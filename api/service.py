"""What the routes share: built once per app from the settings, handed to every request."""

import asyncio
import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fastapi import Request

from api.events import EventFeed
from api.health import HealthProbe, HealthReport
from api.metrics import ServiceMetrics
from api.rate_limit import RateLimiter
from api.scheduler import Scheduler, SchedulerStatus
from api.workers import Workers
from core.clock import PacedClock
from core.decision import Decision
from core.settings import Settings
from core.timeframes import now_ms
from execution.exchange import ExchangeBroker
from execution.factory import build_broker
from graph.engine import DecisionEngine
from ingestion.exchange_feed import ExchangeFeed
from ingestion.feeds import CandleFeed
from safety.control import PanicReport
from storage.api_keys import ApiKeyStore
from storage.candles import CandleStore
from storage.decisions import DecisionStore
from storage.engine import Database
from storage.safety_events import SafetyEventStore

Result = TypeVar("Result")
# How long a read waits for a panic in flight before it goes ahead anyway.
PANIC_FIRST_SECONDS = 0.25


@dataclass
class Service:
    settings: Settings
    database: Database
    feed: CandleFeed
    clock: PacedClock
    engine: DecisionEngine
    candles: CandleStore
    decisions: DecisionStore
    safety_events: SafetyEventStore
    api_keys: ApiKeyStore
    rate_limiter: RateLimiter
    health: HealthProbe
    events: EventFeed
    metrics: ServiceMetrics
    scheduler: Scheduler | None
    # Background ingestion (news, research, order books) when deciding on exchange data.
    workers: Workers | None
    # Set when the server is told to stop (SIGTERM): streams end, the scheduler winds down.
    stopping: threading.Event
    _panics_running: int = field(default=0, init=False)
    _no_panic: asyncio.Event = field(default_factory=asyncio.Event, init=False)

    def __post_init__(self) -> None:
        self._no_panic.set()

    async def read(self, function: Callable[..., Result], *args: Any) -> Result:
        """Run a short database read for a route on the event loop.

        Inline on SQLite: a local read of well under a millisecond, for which a worker thread
        cost more in waiting for the GIL than the read itself (see api/app.py). In a worker
        thread on a database across the network, whose round trip must not hold the loop.
        While a panic runs, a read first gives it up to ``PANIC_FIRST_SECONDS``.
        """
        if self._panics_running:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._no_panic.wait(), PANIC_FIRST_SECONDS)
        if self.database.engine.dialect.name == "sqlite":
            return function(*args)
        return await asyncio.to_thread(function, *args)

    async def panic(self, actor: str, reason: str, close_positions: bool) -> PanicReport:
        """The panic, in a worker thread — waiting on the database's write lock, it must not
        hold up the loop — with the reads held back meanwhile: the interpreter is the panic's
        first (under load its p99 fell from about 300 to about 50 ms, bench/api.py)."""
        self._panics_running += 1
        self._no_panic.clear()
        try:
            return await asyncio.to_thread(
                self.engine.control.panic,
                actor,
                reason,
                self.clock.now_ms(),
                close_positions=close_positions,
            )
        finally:
            self._panics_running -= 1
            if not self._panics_running:
                self._no_panic.set()

    def health_report(self) -> HealthReport:
        return self.health.report(self.scheduler_status())

    def scheduler_status(self) -> SchedulerStatus | None:
        return None if self.scheduler is None else self.scheduler.status

    def decided(self, decision: Decision) -> None:
        """Every decision this process makes passes here (for its node latencies)."""
        self.metrics.observe(decision)


def build_service(
    settings: Settings,
    database: Database,
    feed: CandleFeed,
    *,
    run_scheduler: bool = True,
    speed: float | None = None,
    workers: Workers | None = None,
) -> Service:
    """Wire the service: the market clock starts where the feed says, at the feed's pace
    (an exchange's is real time)."""
    pace = (
        1.0
        if isinstance(feed, ExchangeFeed)
        else speed
        or (settings.service.replay_speed if feed.mode == "replay" else settings.service.sim_speed)
    )
    clock = PacedClock(feed.start_ms(now_ms()), pace)
    stopping = threading.Event()
    broker = build_broker(settings, database)
    if isinstance(broker, ExchangeBroker):
        # Start from the exchange's truth: open orders and balances against the stored ones.
        broker.reconcile(now_ms())
    engine = DecisionEngine(settings, database, broker)
    metrics = ServiceMetrics()
    scheduler = (
        Scheduler(engine, feed, clock, stopping, on_decision=metrics.observe)
        if run_scheduler
        else None
    )
    service = Service(
        settings=settings,
        database=database,
        feed=feed,
        clock=clock,
        engine=engine,
        candles=CandleStore(database.session_factory),
        decisions=DecisionStore(database),
        safety_events=SafetyEventStore(database.session_factory),
        api_keys=ApiKeyStore(database),
        rate_limiter=RateLimiter(settings.api),
        health=HealthProbe(
            database,
            feed.series,
            clock,
            settings.limits.freshness_bars,
            exchange_states=feed.states if isinstance(feed, ExchangeFeed) else None,
            workers=workers,
        ),
        events=EventFeed(database, settings.service.stream_poll_ms / 1000.0, stopping),
        metrics=metrics,
        scheduler=scheduler,
        workers=workers,
        stopping=stopping,
    )
    metrics.watch(service.decisions, service.health_report)
    return service


def service_of(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


async def get_service(request: Request) -> Service:
    """The dependency. Async on purpose: a plain function dependency costs a thread-pool hop."""
    return service_of(request)
