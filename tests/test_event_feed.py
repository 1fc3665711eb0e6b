"""The event stream's source: every stored row reaches the stream once, even when
PostgreSQL commits a lower id after a higher one (two writers side by side)."""

import threading

import pytest
import sqlalchemy as sa

from api.events import EventFeed
from storage.engine import Database
from storage.models import SafetyEventRow
from storage.safety_events import SafetyEventDraft, SafetyEventStore, event_values


def test_a_row_committed_late_under_a_lower_id_is_still_sent(database: Database) -> None:
    if database.engine.dialect.name == "sqlite":
        pytest.skip("SQLite has one writer at a time: ids commit in order")
    feed = EventFeed(database, poll_seconds=0.05, stopping=threading.Event())
    feed._start_at_newest()
    store = SafetyEventStore(database.session_factory)
    with database.engine.connect() as slow_writer:
        transaction = slow_writer.begin()
        slow_writer.execute(
            sa.insert(SafetyEventRow),
            event_values(SafetyEventDraft("slow_writer", None, {"n": 1}, 1_000)),
        )
        store.record("fast_writer", None, {"n": 2}, at_ms=2_000)
        first = feed._new_events()
        transaction.commit()
    second = feed._new_events()
    third = feed._new_events()
    assert [event.data["kind"] for event in first] == ["fast_writer"]
    assert [event.data["kind"] for event in second] == ["slow_writer"]
    assert int(second[0].id.removeprefix("safety-")) < int(first[0].id.removeprefix("safety-"))
    assert third == []


def test_each_row_is_sent_once_in_order(database: Database) -> None:
    feed = EventFeed(database, poll_seconds=0.05, stopping=threading.Event())
    store = SafetyEventStore(database.session_factory)
    store.record("before_the_stream", None, {}, at_ms=1)
    feed._start_at_newest()
    for number in range(3):
        store.record("during", None, {"n": number}, at_ms=10 + number)
    sent = feed._new_events() + feed._new_events()
    assert [event.data["detail"]["n"] for event in sent] == [0, 1, 2]
