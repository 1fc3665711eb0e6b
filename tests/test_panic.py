"""Panic, pause and resume on SQLite and PostgreSQL: HALTED first, then cancellations and
reduce-only close-outs, each step reported; idempotence; cool-downs; a restart stays halted."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from broker_helpers import (
    control_rows,
    event_rows,
    import_real_candles,
    order,
    order_rows,
)
from conftest import REPO_ROOT

from core.settings import SafetySettings, Settings
from core.timeframes import parse_timestamp
from core.trading import OrderView
from execution.paper import PaperBroker
from safety.control import AUTO_RESUME_ACTOR, ControlError, ControlService, CoolDownError
from storage.control import ControlStore
from storage.engine import Database

FIVE_MINUTES = 300_000
NOW = parse_timestamp("2024-03-01T12:00:00Z")


def service_for(database: Database, tmp_path: Path, auto_resume: bool = False) -> ControlService:
    settings = Settings(home=tmp_path / "home", safety=SafetySettings(auto_resume=auto_resume))
    return ControlService(database, PaperBroker(database, settings.paper), settings)


@pytest.fixture
def service(database: Database, tmp_path: Path) -> ControlService:
    return service_for(database, tmp_path)


@pytest.fixture
def broker(database: Database) -> PaperBroker:
    return PaperBroker(database, Settings().paper)


def place_buys(broker: PaperBroker, count: int) -> list[str]:
    ids = []
    for index in range(count):
        outcome = broker.submit(order(f"COIN{index}/USDT", reference_price=10.0, not_before=0), 0)
        assert outcome.order_id is not None
        ids.append(outcome.order_id)
    return ids


def test_panic_persists_halted_before_it_cancels(
    database: Database,
    service: ControlService,
    broker: PaperBroker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    placed = place_buys(broker, 3)
    seen_by_cancel: list[str] = []
    cancel_all = PaperBroker.cancel_all

    def spying_cancel(self: PaperBroker, reason: str, now_ms: int) -> list[OrderView]:
        # What any other process would read at the moment the cancellations start.
        seen_by_cancel.append(ControlStore(database).current().state)
        return cancel_all(self, reason, now_ms)

    monkeypatch.setattr(PaperBroker, "cancel_all", spying_cancel)
    report = service.panic("operator", "exchange outage", NOW)

    assert seen_by_cancel == ["HALTED"]
    assert report.ok
    assert not report.already_halted
    assert [step.name for step in report.steps] == ["halt", "cancel_orders", "record"]
    assert [step.elapsed_ms for step in report.steps] == sorted(s.elapsed_ms for s in report.steps)
    assert sorted(report.cancelled_order_ids) == sorted(placed)
    [halted] = control_rows(database)
    assert (halted.state, halted.journal_seq) == ("HALTED", report.halted_journal_seq)
    rows = order_rows(database)
    assert all(row.status == "cancelled" and row.updated_at == NOW for row in rows)
    assert max(row.journal_seq for row in rows) < halted.journal_seq
    # The HALTED change's event is stored with it, before the report of what followed.
    halted_event, report_event = event_rows(database)
    assert (halted_event.kind, report_event.kind) == ("control_halted", "panic_steps")
    assert json.loads(halted_event.detail) == {
        "actor": "operator",
        "cool_down_until": None,
        "journal_seq": halted.journal_seq,
        "reason": "exchange outage",
    }
    recorded = json.loads(report_event.detail)
    assert recorded["cancelled_order_ids"] == list(report.cancelled_order_ids)
    assert [step["name"] for step in recorded["steps"]] == ["halt", "cancel_orders"]


def test_a_failing_step_is_reported_and_the_next_still_runs(
    database: Database, service: ControlService, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_cancel(*_args: object) -> list[OrderView]:
        raise ConnectionError("exchange unreachable")

    monkeypatch.setattr(PaperBroker, "cancel_all", broken_cancel)
    report = service.panic("operator", "test", NOW, close_positions=True)
    assert not report.ok
    assert report.errors == {"cancel_orders": "ConnectionError: exchange unreachable"}
    assert [step.name for step in report.steps] == [
        "halt",
        "cancel_orders",
        "close_positions",
        "record",
    ]
    assert ControlStore(database).current().state == "HALTED"


def test_panic_closes_positions_with_reduce_only_sells(
    database: Database, service: ControlService, broker: PaperBroker, tmp_path: Path
) -> None:
    eth = import_real_candles(database, tmp_path, "ETH_BTC-5m.csv", "ETH/BTC", "5m", 30)
    ltc = import_real_candles(database, tmp_path, "LTC_BTC-5m.csv", "LTC/BTC", "5m", 30)
    as_of = eth[1].open_time + FIVE_MINUTES
    for symbol, candles in (("ETH/BTC", eth), ("LTC/BTC", ltc)):
        broker.submit(order(symbol, reference_price=candles[1].close, not_before=as_of), as_of)
    # They fill at the open of eth[2] (ltc[2]), booked once it has closed.
    assert len(broker.process_fills(eth[2].open_time + FIVE_MINUTES)) == 2
    held = {symbol: position.quantity for symbol, position in broker.ledger().positions.items()}
    assert set(held) == {"ETH/BTC", "LTC/BTC"}
    panic_at = eth[10].open_time + FIVE_MINUTES

    report = service.panic("operator", "flash crash", panic_at, close_positions=True)
    assert report.ok
    closing = [row for row in order_rows(database) if row.id in report.close_out_order_ids]
    assert {row.symbol: row.quantity for row in closing} == held
    assert all(row.reduce_only and row.side == "sell" for row in closing)
    halted_seq = report.halted_journal_seq
    assert halted_seq is not None
    assert all(row.journal_seq > halted_seq for row in closing)
    assert all(row.not_before == panic_at for row in closing)
    # An ordinary sell is still refused; the close-outs fill at the next open, booked once
    # that candle has closed.
    refused = broker.submit(order("ETH/BTC", "sell", reference_price=1.0, not_before=0), panic_at)
    assert refused.status == "refused"
    assert broker.process_fills(panic_at) == []
    fills = broker.process_fills(eth[11].open_time + FIVE_MINUTES)
    assert {fill.symbol: fill.filled_at for fill in fills} == {
        "ETH/BTC": eth[11].open_time + FIVE_MINUTES,
        "LTC/BTC": ltc[11].open_time + FIVE_MINUTES,
    }
    assert broker.ledger().positions == {}


def test_a_second_panic_is_already_halted_and_still_cancels(
    database: Database, service: ControlService, broker: PaperBroker, tmp_path: Path
) -> None:
    btc = import_real_candles(database, tmp_path, "BTC_USDT-5m.csv", "BTC/USDT", "5m", 10)
    as_of = btc[0].open_time + FIVE_MINUTES
    broker.submit(order(reference_price=btc[0].close, not_before=as_of), as_of)
    booked = btc[1].open_time + FIVE_MINUTES
    assert len(broker.process_fills(booked)) == 1
    first = service.panic("operator", "first", booked, close_positions=True)
    [close_out] = first.close_out_order_ids

    second = service.panic("operator", "second", booked + 1)
    assert second.already_halted
    assert second.halted_journal_seq == first.halted_journal_seq
    assert second.steps[0].detail == f"already HALTED: journal #{first.halted_journal_seq}"
    assert second.cancelled_order_ids == (close_out,)
    assert [row.state for row in control_rows(database)] == ["HALTED"]
    assert ControlStore(database).current().reason == "first"
    # Asked again, the close-out goes out anew.
    third = service.panic("operator", "third", booked + 2, close_positions=True)
    assert third.already_halted
    assert len(third.close_out_order_ids) == 1
    assert third.close_out_order_ids != first.close_out_order_ids


def test_resume_needs_an_actor_and_a_reason(database: Database, service: ControlService) -> None:
    service.panic("operator", "test", NOW)
    with pytest.raises(ValueError, match="actor must not be empty"):
        service.resume("", "all clear", NOW)
    with pytest.raises(ValueError, match="reason must not be empty"):
        service.resume("operator", "  ", NOW)
    with pytest.raises(ValueError, match="actor must be at most 64"):
        service.resume("x" * 65, "all clear", NOW)
    assert ControlStore(database).current().state == "HALTED"
    resumed = service.resume("alice", "all clear", NOW + 1)
    assert (resumed.state, resumed.actor, resumed.reason) == ("ACTIVE", "alice", "all clear")
    assert [event.kind for event in event_rows(database)] == [
        "control_halted",
        "panic_steps",
        "control_resumed",
    ]
    # Resuming what is active records nothing.
    assert service.resume("alice", "again", NOW + 2) == resumed
    assert len(control_rows(database)) == 2


def test_a_pause_cannot_lift_halted(service: ControlService) -> None:
    service.panic("operator", "test", NOW)
    with pytest.raises(ControlError, match="HALTED"):
        service.pause("gate", "three losses", NOW)
    # A symbol may still be paused on its own: it does not touch the global HALTED.
    service.pause("gate", "circuit breaker", NOW, symbol="BTC/USDT")
    status = service.status(NOW)
    assert status.control.state == "HALTED"
    assert [(state.symbol, state.state) for state in status.symbols_not_active] == [
        ("BTC/USDT", "PAUSED")
    ]


def test_a_cool_down_refuses_resume_unless_forced(
    database: Database, service: ControlService
) -> None:
    until = NOW + 30 * 60_000
    service.pause("gate", "three losses in a row", NOW, cool_down_until=until)
    with pytest.raises(CoolDownError, match="cool-down until 2024-03-01T12:30:00Z") as refused:
        service.resume("alice", "looked fine", NOW + 60_000)
    assert refused.value.until == until
    assert ControlStore(database).current().state == "PAUSED"

    forced = service.resume("alice", "looked fine", NOW + 60_000, force=True)
    assert forced.state == "ACTIVE"
    detail = json.loads(event_rows(database)[-1].detail)
    assert (detail["forced"], detail["lifted"]) == (True, "PAUSED")

    service.pause("gate", "again", NOW, cool_down_until=until)
    assert service.resume("alice", "waited", until).state == "ACTIVE"


def test_auto_resume_lifts_ended_cool_downs_only_when_enabled(
    database: Database, tmp_path: Path
) -> None:
    disabled = service_for(database, tmp_path, auto_resume=False)
    enabled = service_for(database, tmp_path, auto_resume=True)
    until = NOW + 60_000
    enabled.pause("gate", "slippage", NOW, symbol="BTC/USDT", cool_down_until=until)
    enabled.pause("operator", "looking into it", NOW, symbol="ETH/USDT")

    assert enabled.auto_resume_due(until - 1) == []
    assert disabled.auto_resume_due(until) == []
    [resumed] = enabled.auto_resume_due(until)
    assert (resumed.symbol, resumed.state, resumed.actor) == (
        "BTC/USDT",
        "ACTIVE",
        AUTO_RESUME_ACTOR,
    )
    assert resumed.reason == "cool-down ended at 2024-03-01T12:01:00Z"
    assert enabled.auto_resume_due(until + 1) == []
    store = ControlStore(database)
    # A manual pause has no cool-down: only a person lifts it.
    assert store.current("ETH/USDT").state == "PAUSED"
    assert store.current("BTC/USDT").state == "ACTIVE"


def test_auto_resume_never_lifts_halted(database: Database, tmp_path: Path) -> None:
    service = service_for(database, tmp_path, auto_resume=True)
    service.pause("gate", "api errors", NOW, symbol="BTC/USDT", cool_down_until=NOW + 1)
    service.panic("operator", "test", NOW)
    [resumed] = service.auto_resume_due(NOW + 1)
    assert resumed.symbol == "BTC/USDT"
    assert ControlStore(database).current("BTC/USDT").state == "HALTED"


def test_status_shows_state_positions_and_todays_pnl(
    database: Database, service: ControlService, broker: PaperBroker, tmp_path: Path
) -> None:
    btc = import_real_candles(database, tmp_path, "BTC_USDT-5m.csv", "BTC/USDT", "5m", 10)
    as_of = btc[0].open_time + FIVE_MINUTES
    broker.submit(order(reference_price=btc[0].close, not_before=as_of), as_of)
    [fill] = broker.process_fills(btc[1].open_time + FIVE_MINUTES)
    later = btc[5].open_time + FIVE_MINUTES
    service.pause("alice", "lunch", later)

    status = service.status(later)
    assert (status.control.state, status.control.reason, status.control.since) == (
        "PAUSED",
        "lunch",
        later,
    )
    [holding] = status.holdings
    assert (holding.symbol, holding.mark_price) == ("BTC/USDT", btc[5].close)
    expected = holding.quantity * (btc[5].close - fill.price) - fill.fee
    assert status.today_pnl["USDT"] == pytest.approx(expected, rel=1e-9)
    assert status.open_orders == 0


_SUBMIT_FROM_A_NEW_PROCESS = textwrap.dedent(
    """
    import sys
    from core.settings import PaperSettings
    from execution.broker import OrderRequest
    from execution.paper import PaperBroker
    from storage.engine import open_database

    broker = PaperBroker(open_database(sys.argv[1]), PaperSettings())
    request = OrderRequest(sys.argv[2], "BTC/USDT", "5m", "buy", 0.01, 20000.0, 0)
    outcome = broker.submit(request, 0)
    print(outcome.status, outcome.reason, sep="|")
    """
)


def submit_in_a_new_process(url: str, client_order_id: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", _SUBMIT_FROM_A_NEW_PROCESS, url, client_order_id],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.strip().split("|")


def test_a_new_process_is_refused_after_a_panic_until_a_resume(
    database_url: str, database: Database, service: ControlService
) -> None:
    service.panic("operator", "breach suspected", NOW)
    assert submit_in_a_new_process(database_url, "after-panic") == [
        "refused",
        "HALTED (breach suspected): no new orders until a resume",
    ]
    assert order_rows(database) == []
    service.resume("alice", "keys rotated", NOW + 1)
    assert submit_in_a_new_process(database_url, "after-resume")[0] == "accepted"
