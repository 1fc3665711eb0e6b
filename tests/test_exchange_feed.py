"""The exchange feed behind the scheduler: the real ccxt `binance` client against the
loopback Binance, judged by what a user sees — rows stored, the decision's mode and gate
verdict, /health — and a real `sigmax serve --exchange` deciding on the loopback's data."""

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import astuple
from pathlib import Path
from typing import Any

import pytest
from binance_server import Binance, Depth, Fault, binance_server
from click.testing import CliRunner
from server_helpers import SIGMAX, create_key, running_server

from api.cli import cli
from api.health import HealthProbe
from core.clock import PacedClock
from core.settings import Settings
from core.timeframes import now_ms, parse_timestamp
from graph.engine import DecisionEngine
from ingestion.exchange_candles import MAX_RETRIES, CandleFetcher, candle_client, public_client
from ingestion.exchange_feed import ExchangeFeed
from ingestion.feeds import FeedError, Series
from ingestion.sim import simulate_candles
from ingestion.symbols import check_listed
from storage.api_errors import ApiErrorStore
from storage.book_summaries import BookSummaryStore
from storage.candles import CandleStore
from storage.decisions import DecisionFilters, DecisionStore
from storage.engine import Database, open_database

START = parse_timestamp("2026-11-20T00:00:00Z")
STEP = 300_000
CLOSE = START + 400 * STEP  # the close the scheduler decides first
SERIES = Series("BTC/USDT", "5m")


@pytest.fixture
def exchange() -> Iterator[Binance]:
    with binance_server(simulate_candles("BTC/USDT", "5m", START, 500, seed=3), CLOSE) as server:
        yield server


MakeFeed = Callable[..., ExchangeFeed]


@pytest.fixture
def make_feed(database: Database, exchange: Binance) -> Iterator[MakeFeed]:
    """Exchange feeds on the loopback Binance, closed after the test; their back-off waits
    go into the list given, not slept."""
    made: list[ExchangeFeed] = []

    def make(waits: list[float], series: tuple[Series, ...] = (SERIES,)) -> ExchangeFeed:
        async def wait(seconds: float) -> None:
            waits.append(seconds)

        store = CandleStore(database.session_factory)
        fetcher = CandleFetcher(
            candle_client("binance", 5.0, rest_base=exchange.base_url),
            CandleStore(database.guarded_session_factory),  # the service's writer
            ApiErrorStore(database.session_factory),
            250,
            sleep=wait,
        )
        made.append(ExchangeFeed("binance", store, fetcher, series))
        return made[-1]

    yield make
    for feed in made:
        feed.close()


def newest_open(database: Database) -> int | None:
    return CandleStore(database.session_factory).latest_open_time("BTC/USDT", "5m")


def test_backfill_on_start_refresh_when_due_and_a_live_decision(
    database: Database, exchange: Binance, make_feed: MakeFeed, tmp_path: Path
) -> None:
    feed = make_feed([])
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


def test_the_first_series_asked_at_a_close_brings_its_whole_timeframe(
    database: Database, exchange: Binance, make_feed: MakeFeed
) -> None:
    other = Series("ETH/USDT", "5m")
    exchange.more_symbols = (other.symbol,)
    feed = make_feed([], (SERIES, other))
    feed.prepare(SERIES, CLOSE)
    asked = len(exchange.kline_requests)
    assert asked == 2, "one request per series"
    assert CandleStore(database.session_factory).latest_open_time(*astuple(other)) == CLOSE - STEP
    feed.prepare(other, CLOSE)  # the scheduler's next series at the same close
    assert len(exchange.kline_requests) == asked, "already stored: nothing asked again"
    assert {state.added for state in feed.states().values()} == {250}


def test_closing_the_feed_cancels_a_refresh_under_way_and_its_caller_is_told(
    exchange: Binance, make_feed: MakeFeed
) -> None:
    exchange.faults.append(Fault(delay_seconds=3.0))  # a slow answer, still on its way
    feed = make_feed([])
    failures: list[Exception] = []

    def decide_thread() -> None:
        try:
            feed.prepare(SERIES, CLOSE)
        except FeedError as error:
            failures.append(error)

    worker = threading.Thread(target=decide_thread)
    worker.start()
    while exchange.klines_in_flight == 0:
        time.sleep(0.01)
    feed.close()  # the service stopping: does not wait for the exchange's answer
    worker.join(timeout=2.0)
    assert not worker.is_alive(), "the caller was released, not left waiting"
    assert [str(error) for error in failures] == ["BTC/USDT 5m: cancelled: the loop was closed"]
    with pytest.raises(FeedError, match="the loop is closed"):
        feed.prepare(SERIES, CLOSE)


def test_a_refresh_that_gives_up_is_in_health_and_the_gate_holds_on_stale_data(
    database: Database, exchange: Binance, make_feed: MakeFeed, tmp_path: Path
) -> None:
    waits: list[float] = []
    feed = make_feed(waits)
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
    database: Database, exchange: Binance, make_feed: MakeFeed
) -> None:
    exchange.now_ms = CLOSE + 100_000  # the next candle is forming and sent
    exchange.faults.append(Fault(shuffle=True, duplicate=True))
    feed = make_feed([])
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


# Sources that refuse at once (nothing listens on port 9): their failures must show, not crash.
DEAD = "http://127.0.0.1:9"
OFFLINE_SOURCES = {
    "SIGMAX_NEWS__FEEDS": f"{DEAD}/rss",
    "SIGMAX_RESEARCH__FEAR_GREED_URL": f"{DEAD}/fng/",
    "SIGMAX_RESEARCH__COINGECKO_URL": f"{DEAD}/api/v3",
    "SIGMAX_RESEARCH__REDDIT_URL": DEAD,
    "SIGMAX_BOOK__POLL_SECONDS": "1",
    "SIGMAX_SYMBOLS": "BTC/USDT",
}


def recent_exchange() -> tuple[int, AbstractContextManager[Binance]]:
    wall = now_ms()
    recent = simulate_candles("BTC/USDT", "5m", wall - wall % STEP - 300 * STEP, 310, seed=5)
    return wall, binance_server(recent, wall + 3_600_000)


def test_sigmax_serve_exchange_decides_live_and_runs_the_workers(tmp_path: Path) -> None:
    token = create_key(tmp_path, "read")
    _, serving = recent_exchange()
    with (
        serving as exchange,
        running_server(
            tmp_path, "--exchange", "binance", "--rest-url", exchange.base_url, **OFFLINE_SOURCES
        ) as server,
        server.client(token) as client,
    ):
        exchange.books["BTCUSDT"] = Depth(5, [(100.0, 2.0), (99.9, 1.0)], [(100.1, 1.0)])
        health: dict[str, Any] = {}
        for _ in range(150):
            health = client.get("/health").json()
            workers = {w["name"]: w for w in health["components"]["workers"] or []}
            if (
                client.get("/decisions").json()["items"]
                and all(workers.get(name, {}).get("runs") for name in ("news", "order_books"))
                and health["components"]["tickers"]
            ):
                break
            time.sleep(0.1)
        rows = client.get("/decisions").json()["items"]
        assert rows, server.output
        record = client.get(f"/decisions/{rows[0]['id']}").json()
        assert (record["mode"], record["broker"], record["symbol"]) == ("live", "paper", "BTC/USDT")
        components = health["components"]
        assert components["scheduler"]["mode"] == "live"
        refresh = components["exchange"][0]
        assert (refresh["symbol"], refresh["error"], refresh["added"]) == ("BTC/USDT", None, 250)
        assert not components["feeds"][0]["stale"]
        workers = {w["name"]: w for w in components["workers"]}
        assert workers["order_books"]["last_error"] is None
        assert workers["order_books"]["last_detail"].startswith("1 book summaries stored")
        assert "every source failed" in workers["news"]["last_error"], "visible, not fatal"
        assert any(p.startswith("worker news: ") for p in health["problems"])
        ticker = components["tickers"][0]
        assert (ticker["symbol"], ticker["bid"], ticker["ask"]) == ("BTC/USDT", 100.0, 100.1)
        server.stop_cleanly()


def test_sigmax_ingest_stores_candles_and_books_without_deciding(tmp_path: Path) -> None:
    _, serving = recent_exchange()
    with serving as exchange:
        exchange.books["BTCUSDT"] = Depth(5, [(100.0, 2.0)], [(100.1, 1.0)])
        process = subprocess.Popen(
            [str(SIGMAX), "ingest", "--rest-url", exchange.base_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "SIGMAX_HOME": str(tmp_path), **OFFLINE_SOURCES},
        )
        lines: list[str] = []
        assert process.stdout is not None
        reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)  # type: ignore[arg-type]
        reader.start()
        try:
            for _ in range(300):
                seen = "".join(lines)
                if process.poll() is not None or (
                    "candles run 1" in seen and "order_books run 1" in seen
                ):
                    break
                time.sleep(0.1)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(30)
            reader.join(5)
        output = "".join(lines)
        assert "ingest stopped" in output, output
        assert "candles run 1: BTC/USDT 5m: +250" in output
        assert "news run 1: HTTPError" in output or "news run 1: WorkFailedError" in output
        database = open_database(f"sqlite:///{tmp_path / 'sigmax.db'}")
        assert _ingested(database)
        decisions = DecisionStore(database).list(DecisionFilters(), limit=10)
        assert decisions == [], "ingest decides nothing"


def _ingested(database: Database) -> bool:
    candles = CandleStore(database.session_factory).latest_open_time("BTC/USDT", "5m")
    book = BookSummaryStore(database.session_factory).latest("BTC/USDT", 0, now_ms() + 1)
    return candles is not None and book is not None


def test_serve_exchange_refuses_a_symbol_the_exchange_does_not_list(
    exchange: Binance, tmp_path: Path
) -> None:
    env = {"SIGMAX_HOME": str(tmp_path), "SIGMAX_SYMBOLS": "BTC/USDT,DOGE/EUR"}
    args = ["serve", "--exchange", "binance", "--rest-url", exchange.base_url]
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code != 0
    assert "BadSymbol: binance does not have market symbol DOGE/EUR" in result.output
    assert exchange.kline_requests == [], "nothing fetched, nothing decided"
