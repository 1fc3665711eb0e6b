"""Background workers of the service and of `sigmax ingest`: one job run again and again
(a news poll, a research poll, order-book snapshots, a candle refresh), each in a worker
thread so the event loop never waits on the network. A failing run is logged and counted in
the worker's status (shown in /health); it never stops the worker or the service."""

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

from core.timeframes import now_ms

log = logging.getLogger("sigmax.workers")

# How often a waiting worker looks at the stop flag.
STOP_POLL_SECONDS = 0.1


class WorkFailedError(Exception):
    """A run that did nothing useful (every source failed): counted as a failure."""


@dataclass(frozen=True)
class WorkerStatus:
    name: str
    runs: int = 0
    failures: int = 0
    last_run_at: int | None = None  # wall clock, epoch ms
    last_ok_at: int | None = None
    last_detail: str | None = None  # what the last run that worked did
    last_error: str | None = None  # why the last run failed; None once one works again


class Worker:
    """Runs ``work(now_ms) -> what it did`` now and then after ``delay(now_ms)`` seconds."""

    def __init__(
        self, name: str, work: Callable[[int], str], delay: Callable[[int], float]
    ) -> None:
        self.name = name
        self._work = work
        self._delay = delay
        self.status = WorkerStatus(name)

    def run_once(self) -> None:
        started = now_ms()
        try:
            detail = self._work(started)
        except Exception as error:  # any failure: counted and shown, the next run tries again
            log.warning("%s failed: %s: %s", self.name, type(error).__name__, error)
            message = f"{type(error).__name__}: {str(error)[:300]}"
            self.status = replace(
                self.status,
                runs=self.status.runs + 1,
                failures=self.status.failures + 1,
                last_run_at=started,
                last_error=message,
            )
            return
        self.status = replace(
            self.status,
            runs=self.status.runs + 1,
            last_run_at=started,
            last_ok_at=now_ms(),
            last_detail=detail,
            last_error=None,
        )

    async def run(self, stopping: threading.Event) -> None:
        while not stopping.is_set():
            await asyncio.to_thread(self.run_once)
            wait = self._delay(now_ms())
            while wait > 0 and not stopping.is_set():
                await asyncio.sleep(min(wait, STOP_POLL_SECONDS))
                wait -= STOP_POLL_SECONDS


def every(seconds: float) -> Callable[[int], float]:
    return lambda _now: seconds


def outcome_summary(outcomes: list[tuple[str, str, str]]) -> str:
    """One line of (name, outcome, detail) results; WorkFailedError when every one failed."""
    line = "; ".join(f"{name}: {outcome}" for name, outcome, _ in outcomes)
    if outcomes and all(outcome == "failed" for _, outcome, _ in outcomes):
        details = "; ".join(f"{name}: {detail}" for name, _, detail in outcomes)
        raise WorkFailedError(f"every source failed: {details}")
    return line or "nothing to poll"
