"""The service's scheduler: at each candle close of each configured series, run the decision
path on what the feed has made available.

It decides the newest closed candle at start, then each close as the market clock reaches
it. When it falls behind (a decision slower than the pace), it decides the newest close and
counts the candles skipped rather than building a backlog. Decisions run in a worker
thread, one at a time; on stop, the one in flight finishes (its record is one transaction:
stored whole or not at all) and no new one starts.
"""

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from core.clock import PacedClock
from core.decision import Decision, Mode
from core.timeframes import floor_to, format_timestamp, now_ms, timeframe_ms
from graph.engine import DecisionEngine
from ingestion.feeds import CandleFeed, FeedError, Series

log = logging.getLogger("sigmax.scheduler")

# How often a waiting scheduler looks at the stop flag.
STOP_POLL_SECONDS = 0.1


@dataclass
class SchedulerStatus:
    """What /health and /metrics report of the scheduler; written by its task only."""

    mode: Mode
    speed: float
    running: bool = False
    finished: bool = False
    last_run_at: int | None = None  # wall clock, epoch ms
    last_as_of: int | None = None  # market clock
    decisions: int = 0
    errors: int = 0
    skipped_candles: int = 0
    last_error: str | None = None
    series_errors: dict[str, str] = field(default_factory=dict)


class Scheduler:
    def __init__(
        self,
        engine: DecisionEngine,
        feed: CandleFeed,
        clock: PacedClock,
        stopping: threading.Event,
        on_decision: Callable[[Decision], None],
    ) -> None:
        self._engine = engine
        self._feed = feed
        self._clock = clock
        self._stopping = stopping
        self._on_decision = on_decision
        self.status = SchedulerStatus(mode=feed.mode, speed=clock.speed)

    async def run(self) -> None:
        self.status.running = True
        try:
            await self._loop()
        finally:
            self.status.running = False

    async def _loop(self) -> None:
        steps = {item.timeframe: timeframe_ms(item.timeframe) for item in self._feed.series}
        # From where the market clock started: a late start shows as skipped candles.
        start = self._clock.market_start_ms
        due = {tf: floor_to(start, step) for tf, step in steps.items()}
        end = self._feed.end_ms()
        while not self._stopping.is_set():
            timeframe, as_of = min(due.items(), key=lambda item: (item[1], item[0]))
            if end is not None and as_of > end:
                self.status.finished = True
                log.info("replay finished at %s", format_timestamp(end))
                return
            if not await self._wait_until(as_of):
                return
            step = steps[timeframe]
            newest = floor_to(self._clock.now_ms(), step)
            if end is not None:
                newest = min(newest, floor_to(end, step))
            if newest > as_of:
                self.status.skipped_candles += (newest - as_of) // step
                as_of = newest
            for series in self._feed.series:
                if series.timeframe == timeframe and not self._stopping.is_set():
                    await asyncio.to_thread(self._decide, series, as_of)
            due[timeframe] = as_of + step

    async def _wait_until(self, as_of: int) -> bool:
        """Sleep until the market clock reaches ``as_of``; False when asked to stop first."""
        while (wait := self._clock.wall_seconds_until(as_of)) > 0:
            if self._stopping.is_set():
                return False
            await asyncio.sleep(min(wait, STOP_POLL_SECONDS))
        return not self._stopping.is_set()

    def _decide(self, series: Series, as_of: int) -> None:
        key = f"{series.symbol} {series.timeframe}"
        try:
            self._feed.prepare(series, as_of)
            decision = self._engine.decide(
                series.symbol, series.timeframe, as_of, mode=self._feed.mode
            )
        except FeedError as error:
            self._failed(key, f"feed: {error}")
            return
        except Exception as error:  # reported in /health; the next candle is tried again
            log.exception("decision for %s at %s failed", key, format_timestamp(as_of))
            self._failed(key, f"{type(error).__name__}: {error}")
            return
        if key in self.status.series_errors:
            # A new dict, never one changed in place: /health copies it from another thread.
            errors = self.status.series_errors
            self.status.series_errors = {
                name: error for name, error in errors.items() if name != key
            }
        self.status.decisions += 1
        self.status.last_run_at = now_ms()
        self.status.last_as_of = as_of
        self._on_decision(decision)

    def _failed(self, key: str, message: str) -> None:
        self.status.errors += 1
        self.status.last_error = f"{key}: {message}"
        self.status.series_errors = {**self.status.series_errors, key: message}
        self.status.last_run_at = now_ms()


async def stop(task: asyncio.Task[None], stopping: threading.Event, grace_seconds: float) -> bool:
    """Ask the scheduler to stop and wait for the decision in flight; True when it ended in
    time. Past the grace the service stops waiting; the worker thread still finishes or fails
    its one transaction before the process exits, so nothing partial is stored."""
    stopping.set()
    started = time.monotonic()
    try:
        await asyncio.wait_for(asyncio.shield(task), grace_seconds)
    except TimeoutError:
        log.warning(
            "stopped waiting for the decision in flight after %.1f s", time.monotonic() - started
        )
        return False
    return True
