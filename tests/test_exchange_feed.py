"""The exchange feed behind the scheduler: the real ccxt `binance` client against the
loopback Binance, judged by what a user sees — rows stored, the decision's mode and gate
verdict, /health — and a real `sigmax serve --exchange` deciding on the loopback's data."""

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from binance_server import Binance, Fault, binance_server
from server_helpers import create_key, running_server

from api.health import HealthProbe
from core.clock import PacedClock
from core.settings import Settings
from core.timeframes import now_ms, parse_timestamp
from graph.engine import DecisionEngine
from ingestion.exchange_candles import MAX_RETRIES, CandleFetcher, public_client
from ingestion.exchange_feed import ExchangeFeed
from ingestion.feeds import FeedError, Series
from ingestion.sim import simulate_candles
from ingestion.symbols import check_listed
from storage.api_errors import ApiErrorStore
from storage.candles import CandleStore
from storage.engine import Database

START = parse_timestamp("2026-11-20T00:00:00Z")
STEP = 300_000
CLOSE = START + 400 * STEP  # the close the scheduler decides first
SERIES = Series("BTC/USDT", "5m")


@pytest.fixture
def exchange() -> Iterator[Binance]:
    with binance_server(simulate_candles("BTC/USDT", "5m", START, 500, seed=3), CLOSE) as server:
        yield server


def exchange_feed(database: Database, exchange: Binance, waits: list[float]) -> ExchangeFeed:
    client = public_client("binance", 5.0, rest_base=exchange.base_url)
    store = CandleStore(database.session_factory)
    fetcher = CandleFetcher(
        client, store, ApiErrorStore(database.session_factory), 250, sleep=waits.append
    )
    return ExchangeFeed("binance", store, fetcher, (SERIES,))


def newest_open(database: Database) -> int | None:
    return CandleStore(database.session_factory).latest_open_time("BTC/USDT", "5m")


def test_backfill_on_start_refresh_when_due_and_a_live_decision(
    database: Database, exchange: Binance, tmp_path: Path
) -> None:
    feed = exchange_feed(database, exchange, [])
    feed.prepare(SERIES, CLOSE)
    assert newest_open(database) == CLOSE - STEP, "the candle closing at as_of, not the forming"
    assert feed.states()["BTC/USDT 5m"].added == 250
    decision = DecisionEngine(Settings(home=tmp_path), database).decide(
        "BTC/USDT", "5m", CLOSE, mode=feed.mode, place_orders=False
    )
    assert (decision.mode, decision.broker) == ("live", "paper")
    freshness = next(c for c in decision.safety.checks if c.name == "data_freshness")
    assert freshness.passed, freshness.detail
    # Two candles later, the next refresh asks only for what closed since.
    exchange.now_ms = CLOSE + 2 * STEP + 10_000
    feed.prepare(SERIES, CLOSE + 2 * STEP)
    assert exchange.kline_requests[-1]["startTime"] == str(CLOSE)
    assert newest_open(database) == CLOSE + STEP
    assert feed.states()["BTC/USDT 5m"].added == 2


def test_a_refresh_that_gives_up_is_in_health_and_the_gate_holds_on_stale_data(
    database: Database, exchange: Binance, tmp_path: Path
) -> None:
    waits: list[float] = []
    feed = exchange_feed(database, exchange, waits)
    feed.prepare(SERIES, CLOSE)
    later = CLOSE + 3 * STEP
    exchange.now_ms = later
    exchange.faults.extend(Fault(status=502) for _ in range(MAX_RETRIES + 1))
    feed.prepare(SERIES, later)  # does not raise: the decision still runs, and holds
    state = feed.states()["BTC/USDT 5m"]
    assert state.error is not None
    assert f"gave up after {MAX_RETRIES + 1} tries" in state.error
    assert len(waits) == MAX_RETRIES, "backed off between the tries"
    assert newest_open(database) == CLOSE - STEP, "nothing made up for the missing candles"

    settings = Settings(home=tmp_path)
    decision = DecisionEngine(settings, database).decide(
        "BTC/USDT", "5m", later, mode=feed.mode, place_orders=False
    )
    assert decision.safety.verdict == "blocked"
    assert decision.action == "hold"
    freshness = next(c for c in decision.safety.checks if c.name == "data_freshness")
    assert not freshness.passed

    clock = PacedClock(later + 60_000, 1.0)
    probe = HealthProbe(
        database, (SERIES,), clock, settings.limits.freshness_bars, exchange_states=feed.states
    )
    report = probe.report(None)
    assert report.status == "degraded"
    assert report.components.feeds[0].stale
    assert report.components.exchange is not None
    assert report.components.exchange[0].error == state.error
    assert f"BTC/USDT 5m: exchange: {state.error}" in report.problems

    # The exchange answers again: the gap is backfilled and the error cleared.
    feed.prepare(SERIES, later)
    assert newest_open(database) == later - STEP
    assert feed.states()["BTC/USDT 5m"].error is None
    assert probe.report(None).components.exchange[0].error is None  # type: ignore[index]


def test_out_of_order_duplicate_and_forming_klines_through_the_feed(
    database: Database, exchange: Binance
) -> None:
    exchange.now_ms = CLOSE + 100_000  # the next candle is forming and sent
    exchange.faults.append(Fault(shuffle=True, duplicate=True))
    feed = exchange_feed(database, exchange, [])
    feed.prepare(SERIES, CLOSE)
    window = CandleStore(database.session_factory).window("BTC/USDT", "5m", CLOSE + STEP, 1000)
    times = [int(t) for t in window.open_time]
    assert times == sorted(set(times))
    assert len(times) == 250
    assert times[-1] == CLOSE - STEP


def test_an_unlisted_symbol_is_refused_by_the_exchange_markets(exchange: Binance) -> None:
    client = public_client("binance", 5.0, rest_base=exchange.base_url)
    check_listed(client, ["BTC/USDT"])
    with pytest.raises(FeedError, match="BadSymbol: binance does not have market symbol DOGE/EUR"):
        check_listed(client, ["BTC/USDT", "DOGE/EUR"])


def test_sigmax_serve_exchange_decides_live_on_the_loopback_data(tmp_path: Path) -> None:
    wall = now_ms()
    recent = simulate_candles("BTC/USDT", "5m", wall - wall % STEP - 300 * STEP, 310, seed=5)
    token = create_key(tmp_path, "read")
    with (
        binance_server(recent, wall + 3_600_000) as exchange,
        running_server(
            tmp_path,
            "--exchange",
            "binance",
            "--rest-url",
            exchange.base_url,
            SIGMAX_SYMBOLS="BTC/USDT",
        ) as server,
        server.client(token) as client,
    ):
        rows: list[dict[str, object]] = []
        for _ in range(100):
            rows = client.get("/decisions").json()["items"]
            if rows:
                break
            time.sleep(0.1)
        assert rows, server.output
        record = client.get(f"/decisions/{rows[0]['id']}").json()
        assert (record["mode"], record["broker"], record["symbol"]) == ("live", "paper", "BTC/USDT")
        health = client.get("/health").json()
        assert health["components"]["scheduler"]["mode"] == "live"
        refresh = health["components"]["exchange"][0]
        assert (refresh["symbol"], refresh["error"], refresh["added"]) == ("BTC/USDT", None, 250)
        assert not health["components"]["feeds"][0]["stale"]
        server.stop_cleanly()
