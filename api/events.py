"""The live event stream's source: new decisions, safety events and control changes.

One task follows the database (the source of truth, shared with the CLI and other
processes) and fans each new row out to every subscriber: a panic from `sigmax panic` in
another terminal reaches the stream as surely as one through the API.
"""

import asyncio
import json
import logging
import threading
from dataclasses import dataclass
from typing import Any, Literal

from storage.control import changes_after, newest_change_seq
from storage.decisions import DecisionStore
from storage.engine import Database
from storage.safety_events import SafetyEventStore

log = logging.getLogger("sigmax.events")

EventName = Literal["decision", "safety_event", "control"]
# A subscriber further behind than this is dropped (its stream ends) rather than holding
# memory for a reader that does not read.
SUBSCRIBER_QUEUE = 1000


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
        self._cursor = (0, 0, 0)

    def subscribe(self) -> "asyncio.Queue[StreamEvent | None]":
        queue: asyncio.Queue[StreamEvent | None] = asyncio.Queue(SUBSCRIBER_QUEUE)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: "asyncio.Queue[StreamEvent | None]") -> None:
        self._subscribers.discard(queue)

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def run(self) -> None:
        started = False
        while not self._stopping.is_set():
            try:
                if started:
                    for event in await asyncio.to_thread(self._new_events):
                        self._publish(event)
                else:
                    self._cursor = await asyncio.to_thread(self._newest)
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

    def _newest(self) -> tuple[int, int, int]:
        with self._database.session_factory() as session:
            control = newest_change_seq(session)
        return self._decisions.newest_seq(), self._events.newest_id(), control

    def _new_events(self) -> list[StreamEvent]:
        decision_seq, event_id, control_seq = self._cursor
        decisions = self._decisions.after(decision_seq)
        safety = self._events.after(event_id)
        with self._database.session_factory() as session:
            changes = changes_after(session, control_seq)
        self._cursor = (
            decisions[-1].seq if decisions else decision_seq,
            safety[-1].id if safety else event_id,
            changes[-1].journal_seq or control_seq if changes else control_seq,
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
