"""The live event stream's source: new decisions, safety events and control changes.

One task follows the database (the source of truth, shared with the CLI and other
processes) and fans each new row out to every subscriber: a panic from `sigmax panic` in
another terminal reaches the stream as surely as one through the API.
"""

import asyncio
import json
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from storage.control import changes_after, newest_change_seq
from storage.decisions import DecisionStore
from storage.engine import Database
from storage.safety_events import SafetyEventStore

log = logging.getLogger("sigmax.events")

EventName = Literal["decision", "safety_event", "control"]
# A subscriber further behind than this is dropped (its stream ends) rather than holding
# memory for a reader that does not read.
SUBSCRIBER_QUEUE = 1000
REREAD_ROWS = 200
# Rows read per table and poll: the look-back and then some.
FETCH_ROWS = REREAD_ROWS + 300
Row = TypeVar("Row")


@dataclass(frozen=True)
class StreamEvent:
    name: EventName
    id: str
    data: dict[str, Any]

    def encode(self) -> bytes:
        """The server-sent-events frame."""
        payload = json.dumps(self.data, separators=(",", ":"))
        return f"id: {self.id}\nevent: {self.name}\ndata: {payload}\n\n".encode()


class EventFeed:
    def __init__(self, database: Database, poll_seconds: float, stopping: threading.Event):
        self._database = database
        self._decisions = DecisionStore(database)
        self._events = SafetyEventStore(database.session_factory)
        self._poll_seconds = poll_seconds
        self._stopping = stopping
        self._subscribers: set[asyncio.Queue[StreamEvent | None]] = set()
        # PostgreSQL numbers rows at insert, and writers side by side can commit a lower
        # number after a higher one: each poll looks back this far again, skipping what was
        # sent. SQLite commits one writer at a time, in number order.
        reread = 0 if database.engine.dialect.name == "sqlite" else REREAD_ROWS
        self._decisions_seen = _Follower(reread)
        self._events_seen = _Follower(reread)
        # Control changes are numbered under the exclusive control guard: in commit order.
        self._control_seen = _Follower(0)

    def subscribe(self) -> "asyncio.Queue[StreamEvent | None]":
        queue: asyncio.Queue[StreamEvent | None] = asyncio.Queue(SUBSCRIBER_QUEUE)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: "asyncio.Queue[StreamEvent | None]") -> None:
        self._subscribers.discard(queue)

    async def run(self) -> None:
        started = False
        while not self._stopping.is_set():
            try:
                if started:
                    for event in await asyncio.to_thread(self._new_events):
                        self._publish(event)
                else:
                    await asyncio.to_thread(self._start_at_newest)
                    started = True
            except Exception:  # the database may be back next time; the stream goes on
                log.exception("reading new events failed")
            await asyncio.sleep(self._poll_seconds)
        for queue in list(self._subscribers):
            self._close(queue)

    def _publish(self, event: StreamEvent) -> None:
        for queue in list(self._subscribers):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                log.warning("dropping a stream subscriber %d events behind", queue.qsize())
                self.unsubscribe(queue)
                self._close(queue)

    @staticmethod
    def _close(queue: "asyncio.Queue[StreamEvent | None]") -> None:
        """Tell the subscriber its stream ends (making room for the signal if needed)."""
        while True:
            try:
                queue.put_nowait(None)
                return
            except asyncio.QueueFull:
                queue.get_nowait()

    def _start_at_newest(self) -> None:
        with self._database.session_factory() as session:
            self._control_seen.start_at(newest_change_seq(session))
        self._decisions_seen.start_at(self._decisions.newest_seq())
        self._events_seen.start_at(self._events.newest_id())

    def _new_events(self) -> list[StreamEvent]:
        decisions = self._decisions_seen.fresh(
            self._decisions.after(self._decisions_seen.since(), FETCH_ROWS),
            lambda summary: summary.seq,
        )
        safety = self._events_seen.fresh(
            self._events.after(self._events_seen.since(), FETCH_ROWS), lambda event: event.id
        )
        with self._database.session_factory() as session:
            changes = self._control_seen.fresh(
                changes_after(session, self._control_seen.since(), FETCH_ROWS),
                lambda change: change.journal_seq or 0,
            )
        return [
            *(
                StreamEvent("control", f"control-{change.journal_seq}", change.model_dump())
                for change in changes
            ),
            *(
                StreamEvent("safety_event", f"safety-{event.id}", event.model_dump())
                for event in safety
            ),
            *(
                StreamEvent("decision", f"decision-{summary.seq}", summary.model_dump())
                for summary in decisions
            ),
        ]


class _Follower:
    """Where one table's stream stands: the highest number sent, and the recent ones."""

    def __init__(self, reread: int) -> None:
        self.cursor = 0
        self._start = 0
        self._reread = reread
        self._sent: deque[int] = deque(maxlen=max(reread, 1) * 4)
        self._sent_set: set[int] = set()

    def start_at(self, newest: int) -> None:
        """Follow from here: what was stored before the stream started is not sent."""
        self.cursor = self._start = newest

    def since(self) -> int:
        return max(self._start, self.cursor - self._reread)

    def fresh(self, rows: list[Row], number: Callable[[Row], int]) -> list[Row]:
        """The rows not sent yet; they are sent from now on."""
        new = [row for row in rows if number(row) not in self._sent_set]
        for row in new:
            if len(self._sent) == self._sent.maxlen:
                self._sent_set.discard(self._sent[0])
            self._sent.append(number(row))
            self._sent_set.add(number(row))
            self.cursor = max(self.cursor, number(row))
        return new
