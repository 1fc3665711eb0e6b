"""The exchange broker through the real ccxt `binance` client against a loopback server
answering Binance's signed endpoints (tests/binance_orders.py): place, poll, cancel; each
rejection mapped; a lost answer retried without doubling the order; panic cancelling every
open exchange order and nothing sent after HALTED; start-up reconciliation; live refused
unless enabled; the sandbox's URLs."""

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from binance_orders import API_KEY, API_SECRET, INSUFFICIENT, OrderDesk, binance_order_server
from click.testing import CliRunner
from pydantic import SecretStr

from api.cli import cli
from core.settings import BrokerSettings, Settings
from core.timeframes import floor_to, now_ms
from core.trading import OrderOutcome, OrderRequest
from execution.exchange import ExchangeBroker
from execution.exchange_client import ExchangeConfigError, exchange_client_id, trading_client
from graph.engine import DecisionEngine
from ingestion.sim import simulate_candles
from safety.control import ControlService
from storage.candles import CandleStore
from storage.engine import Database
from storage.models import OrderRow, SafetyEventRow

PRICE = 50_000.0


@pytest.fixture
def desk() -> OrderDesk:
    return OrderDesk(prices={"BTCUSDT": PRICE}, balances={"USDT": [10_000.0, 0.0]})


@pytest.fixture
def base_url(desk: OrderDesk) -> Iterator[str]:
    with binance_order_server(desk, ["BTC/USDT"]) as server:
        yield server.base_url


def settings_for(base_url: str | None, **broker: Any) -> Settings:
    values: dict[str, Any] = {
        "kind": "exchange",
        "api_key": SecretStr(API_KEY),
        "api_secret": SecretStr(API_SECRET),
        "rest_base_url": base_url,
        "timeout_seconds": 3.0,
    } | broker
    return Settings(symbols=("BTC/USDT",), broker=BrokerSettings(**values))


def buy(client_id: str, size: float = 0.1, price: float = PRICE, **extra: Any) -> OrderRequest:
    return OrderRequest(client_id, "BTC/USDT", "5m", "buy", size, price, now_ms(), **extra)


def server_orders(desk: OrderDesk) -> list[dict[str, Any]]:
    return list(desk.orders.values())


def test_a_market_buy_is_stored_sent_with_its_client_id_and_booked_from_its_trades(
    database: Database, desk: OrderDesk, base_url: str
) -> None:
    broker = ExchangeBroker(database, settings_for(base_url))
    outcome = broker.submit(buy("decision-1"), now_ms())
    assert outcome.status == "accepted", outcome.reason
    (sent,) = server_orders(desk)
    assert sent["clientOrderId"] == "decision-1"
    assert sent["type"] == "MARKET"
    # 10 % of 10 000 USDT at 50 000, rounded to the 0.00001 step.
    assert float(sent["origQty"]) == pytest.approx(0.02)
    (fill,) = broker.process_fills(now_ms())
    # The commission is taken from the BTC bought; the book shows it in USDT.
    assert fill.quantity == pytest.approx(0.02 * 0.999)
    assert fill.price == PRICE
    assert fill.fee == pytest.approx(0.02 * 0.001 * PRICE)
    assert fill.quantity * fill.price + fill.fee == pytest.approx(1000.0)  # what was debited
    assert broker.process_fills(now_ms()) == []  # a trade polled twice is booked once
    with database.session_factory() as session:
        row = session.get(OrderRow, outcome.order_id)
        assert row is not None
        assert row.status == "filled"
        assert row.exchange_order_id == str(sent["orderId"])
    holding = broker.portfolio(now_ms()).holdings["BTC/USDT"]
    assert holding.quantity == pytest.approx(0.02 * 0.999)
    assert broker.submit(buy("decision-1"), now_ms()).reason.startswith("already submitted")
    assert len(desk.new_orders()) == 1


def test_a_resting_limit_order_fills_partly_then_is_cancelled(
    database: Database, desk: OrderDesk, base_url: str
) -> None:
    broker = ExchangeBroker(database, settings_for(base_url, order_type="limit"))
    outcome = broker.submit(buy("limit-1", price=49_000.0), now_ms())
    assert outcome.status == "accepted"
    assert broker.process_fills(now_ms()) == []
    assert [order.status for order in broker.open_orders()] == ["open"]
    desk.trade("BTCUSDT", 48_900.0, max_quantity=0.005)
    (part,) = broker.process_fills(now_ms())
    assert part.quantity == pytest.approx(0.005 * 0.999)
    assert part.price == 49_000.0
    (view,) = broker.open_orders()
    assert view.reason.endswith("0.005 of 0.0204 filled, open")
    (cancelled,) = broker.cancel_all("test", now_ms())
    assert cancelled.id == outcome.order_id
    assert cancelled.status == "cancelled"
    assert cancelled.reason.startswith("test: binance-test order")
    assert server_orders(desk)[0]["status"] == "CANCELED"
    assert desk.balances["USDT"][1] == pytest.approx(0.0)  # nothing left locked


@pytest.mark.parametrize(
    ("fault", "said"),
    [
        ("funds", "refused it for insufficient funds"),
        ("notional", "refused it as invalid: size, precision or a minimum"),
        ("closed", "rejected it"),
    ],
)
def test_exchange_refusals_are_stored_as_rejected_with_the_reason(
    database: Database, desk: OrderDesk, base_url: str, fault: str, said: str
) -> None:
    if fault == "funds":
        desk.reject_next = INSUFFICIENT
    elif fault == "notional":
        desk.min_notional = 1_000_000.0  # the filter tightened since the markets were loaded
    else:
        desk.reject_next = (-2010, "Market is closed.")
    broker = ExchangeBroker(database, settings_for(base_url))
    outcome = broker.submit(buy(f"refused-{fault}"), now_ms())
    assert outcome.status == "rejected"
    assert said in outcome.reason
    assert broker.open_orders() == []
    with database.session_factory() as session:
        row = session.get(OrderRow, outcome.order_id)
        assert row is not None
        assert row.status == "rejected"
        assert said in row.reason


def test_an_order_below_the_market_minimum_is_rejected_without_being_sent(
    database: Database, desk: OrderDesk, base_url: str
) -> None:
    broker = ExchangeBroker(database, settings_for(base_url))
    outcome = broker.submit(buy("tiny", size=0.0001), now_ms())  # 1 USDT against a 5 USDT minimum
    assert outcome.status == "rejected"
    assert "below binance-test's minimum 5" in outcome.reason
    assert desk.new_orders() == []


def test_a_lost_answer_is_looked_up_by_client_id_and_the_order_not_doubled(
    database: Database, desk: OrderDesk, base_url: str
) -> None:
    desk.drop_after_accept = 1
    broker = ExchangeBroker(database, settings_for(base_url))
    outcome = broker.submit(buy("lost-answer"), now_ms())
    assert outcome.status == "accepted", outcome.reason
    assert "found" in outcome.reason
    assert len(server_orders(desk)) == 1
    assert len(desk.new_orders()) == 1
    lookups = [query for method, path, query in desk.requests if method == "GET"]
    assert {"origClientOrderId": "lost-answer"}.items() <= lookups[-1].items()


def test_a_request_lost_before_the_exchange_took_it_is_sent_again_once(
    database: Database, desk: OrderDesk, base_url: str
) -> None:
    desk.drop_before_accept = 1
    broker = ExchangeBroker(database, settings_for(base_url))
    outcome = broker.submit(buy("lost-request"), now_ms())
    assert outcome.status == "accepted"
    assert len(desk.new_orders()) == 2
    assert len(server_orders(desk)) == 1


def test_an_order_never_answered_stays_unconfirmed_until_a_poll_finds_it_never_arrived(
    database: Database, desk: OrderDesk, base_url: str
) -> None:
    desk.drop_before_accept = 2
    broker = ExchangeBroker(database, settings_for(base_url, send_attempts=2))
    outcome = broker.submit(buy("never"), now_ms())
    assert outcome.status == "accepted"
    assert outcome.reason.startswith("unconfirmed")
    assert [view.status for view in broker.open_orders()] == ["open"]
    broker.process_fills(now_ms())
    with database.session_factory() as session:
        row = session.get(OrderRow, outcome.order_id)
        assert row is not None
        assert row.status == "rejected"
        assert "never reached" in row.reason


def test_panic_cancels_every_open_exchange_order_and_nothing_is_sent_after_halted(
    database: Database, desk: OrderDesk, base_url: str
) -> None:
    settings = settings_for(base_url, order_type="limit")
    broker = ExchangeBroker(database, settings)
    ours = broker.submit(buy("ours", price=40_000.0), now_ms())
    outside = trading_client(settings.broker)  # someone else's order, on the same account
    outside.create_order("BTC/USDT", "limit", "buy", 0.01, 41_000.0)
    assert len(desk.open_orders("BTCUSDT")) == 2
    report = ControlService(database, broker, settings).panic("test", "drill", now_ms())
    assert report.ok, report.steps
    assert desk.open_orders("BTCUSDT") == []
    assert ours.order_id in report.cancelled_order_ids
    assert len(report.cancelled_order_ids) == 2  # the outside order is stored, cancelled
    sent = len(desk.new_orders())
    second = ExchangeBroker(database, settings)  # another process on the same database
    refused = second.submit(buy("after-halt", price=40_000.0), now_ms())
    assert refused.status == "refused"
    assert "HALTED" in refused.reason
    assert len(desk.new_orders()) == sent


def test_a_send_under_way_when_panic_starts_goes_first_and_is_then_cancelled(
    database: Database, desk: OrderDesk, base_url: str
) -> None:
    settings = settings_for(base_url, order_type="limit")
    broker = ExchangeBroker(database, settings)
    desk.answer_delay_seconds = 1.0
    outcomes: list[OrderOutcome] = []
    sending = threading.Thread(
        target=lambda: outcomes.append(broker.submit(buy("in-flight", price=40_000.0), now_ms()))
    )
    sending.start()
    deadline = time.monotonic() + 5.0
    while not desk.orders and time.monotonic() < deadline:
        time.sleep(0.01)
    assert desk.orders, "the order never reached the exchange"
    report = ControlService(database, broker, settings).panic("test", "drill", now_ms())
    sending.join(10)
    (outcome,) = outcomes
    # HALTED waited for the send under way; the cancellation after it caught the order.
    assert outcome.status == "accepted"
    assert report.cancelled_order_ids == (outcome.order_id,)
    assert desk.open_orders("BTCUSDT") == []


def test_start_up_reconciliation_adopts_the_exchange_truth_and_reports_it(
    database: Database, desk: OrderDesk, base_url: str
) -> None:
    settings = settings_for(base_url, order_type="limit", send_attempts=1)
    desk.drop_before_accept = 1
    broker = ExchangeBroker(database, settings)
    lost = broker.submit(buy("never-arrived", price=40_000.0), now_ms())
    trading_client(settings.broker).create_order("BTC/USDT", "limit", "buy", 0.01, 41_000.0)
    desk.balances["BTC"] = [0.5, 0.0]  # coins bought before SIGMAX
    report = ExchangeBroker(database, settings).reconcile(now_ms())
    text = "\n".join(report.differences)
    assert f"order {lost.order_id}: now rejected" in text
    assert "adopted (BTC/USDT buy)" in text
    assert "BTC: 0.5 on binance-test, 0 from the stored fills" in text
    (adopted,) = broker.open_orders()
    assert adopted.client_order_id != "never-arrived"
    with database.session_factory() as session:
        kinds = [row.kind for row in session.query(SafetyEventRow)]
    assert "exchange_reconciled" in kinds


def test_real_money_is_refused_unless_enabled_and_the_sandbox_uses_the_test_urls(
    database: Database,
) -> None:
    with pytest.raises(ExchangeConfigError, match="SIGMAX_BROKER__LIVE_TRADING=true"):
        ExchangeBroker(database, settings_for(None, sandbox=False))
    live = ExchangeBroker(database, settings_for(None, sandbox=False, live_trading=True))
    assert (live.name, live.real_money) == ("binance", True)
    sandbox = trading_client(settings_for(None).broker)
    assert sandbox.urls["api"]["private"] == "https://testnet.binance.vision/api/v3"
    real = trading_client(settings_for(None, sandbox=False, live_trading=True).broker)
    assert real.urls["api"]["private"] == "https://api.binance.com/api/v3"
    settings = settings_for(None)
    assert API_SECRET not in repr(settings)
    assert API_SECRET not in str(settings.decision_config())
    with pytest.raises(ExchangeConfigError, match="SIGMAX_BROKER__API_KEY"):
        trading_client(BrokerSettings(kind="exchange"))


def test_a_live_broker_counts_todays_real_buys_for_the_gate(
    database: Database, base_url: str
) -> None:
    live = ExchangeBroker(database, settings_for(base_url, sandbox=False, live_trading=True))
    placed = live.submit(buy("live-1"), now_ms())
    assert placed.status == "accepted", placed.reason
    assert len(live.process_fills(now_ms())) == 1
    assert live.real_notional_today(now_ms()) == pytest.approx(0.02 * PRICE)
    sandbox = ExchangeBroker(database, settings_for(base_url))
    assert sandbox.real_notional_today(now_ms()) == 0.0


def test_long_client_ids_are_shortened_to_what_binance_accepts() -> None:
    panic_id = "panic-" + "f" * 32
    short = exchange_client_id(panic_id)
    assert len(short) <= 36
    assert short == exchange_client_id(panic_id)
    assert exchange_client_id("decision-1") == "decision-1"


def test_sigmax_status_and_panic_show_and_cancel_the_exchange_orders(
    tmp_path: Path, desk: OrderDesk, base_url: str
) -> None:
    env = {
        "SIGMAX_HOME": str(tmp_path),
        "SIGMAX_SYMBOLS": "BTC/USDT",
        "SIGMAX_BROKER__KIND": "exchange",
        "SIGMAX_BROKER__REST_BASE_URL": base_url,
        "SIGMAX_BROKER__API_KEY": API_KEY,
        "SIGMAX_BROKER__API_SECRET": API_SECRET,
    }
    outside = trading_client(settings_for(base_url).broker)
    outside.create_order("BTC/USDT", "limit", "buy", 0.01, 41_000.0)
    runner = CliRunner()
    shown = runner.invoke(cli, ["status"], env=env)
    assert shown.exit_code == 0, shown.output
    assert "binance-test open orders: 1" in shown.output
    assert "USDT: 9590 free, 410 locked" in shown.output
    assert API_SECRET not in shown.output
    panicked = runner.invoke(cli, ["panic", "--reason", "drill"], env=env)
    assert panicked.exit_code == 0, panicked.output
    assert "1 open orders cancelled" in panicked.output
    assert desk.open_orders("BTCUSDT") == []
    assert "binance-test open orders: 0" in runner.invoke(cli, ["status"], env=env).output
    keyless = {name: value for name, value in env.items() if "API_" not in name}
    refused = runner.invoke(cli, ["status"], env=keyless)
    assert refused.exit_code == 1
    assert "needs SIGMAX_BROKER__API_KEY and SIGMAX_BROKER__API_SECRET" in refused.output


def test_decisions_on_a_real_money_broker_run_under_the_live_caps(
    database: Database, base_url: str
) -> None:
    step = 300_000
    newest_close = floor_to(now_ms(), step)
    candles = simulate_candles("BTC/USDT", "5m", newest_close - 300 * step, 300, seed=3)
    CandleStore(database.session_factory).insert_candles(candles)
    live = settings_for(base_url, sandbox=False, live_trading=True)
    engine = DecisionEngine(live, database, ExchangeBroker(database, live))
    decision = engine.decide("BTC/USDT", "5m", newest_close, place_orders=False)
    checks = {check.name: check.detail for check in decision.safety.checks}
    assert "no live caps" not in checks["live_order_cap"]
    assert "no live caps" not in checks["live_daily_cap"]
    paper = DecisionEngine(Settings(symbols=("BTC/USDT",)), database)
    on_paper = paper.decide("BTC/USDT", "5m", newest_close, place_orders=False)
    paper_checks = {check.name: check.detail for check in on_paper.safety.checks}
    assert paper_checks["live_order_cap"] == "mode sim: no live caps"
    assert on_paper.config_hash != decision.config_hash


def test_coins_held_with_no_price_stored_refuse_the_order_saying_what_to_fetch(
    database: Database, desk: OrderDesk, base_url: str
) -> None:
    desk.balances["BTC"] = [0.5, 0.0]
    outcome = ExchangeBroker(database, settings_for(base_url)).submit(buy("unpriced"), now_ms())
    assert outcome.status == "refused"
    assert "no 5m close of BTC/USDT stored to value it: fetch its candles first" in outcome.reason
    assert desk.new_orders() == []
