"""Candles from the real ccxt `binance` client against a loopback server answering like
Binance from simulated candles: backfill, refresh, 429 with Retry-After, bursts of 5xx,
timeouts, out-of-order and duplicate klines, the candle still forming — each judged by what
the worker visibly does: rows stored, API errors recorded, the gate's verdict."""

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from binance_server import Binance, Fault, binance_server
from click.testing import CliRunner

from api.cli import cli
from core.settings import Settings
from core.timeframes import now_ms, parse_timestamp
from graph.engine import DecisionEngine
from ingestion.exchange_candles import (
    MAX_RETRIES,
    CandleFetcher,
    RefreshReport,
    candle_client,
    public_client,
)
from ingestion.feeds import FeedError, Series
from ingestion.loop_thread import LoopThread
from ingestion.sim import simulate_candles
from storage.api_errors import ApiErrorStore
from storage.candles import CandleStore
from storage.control import ControlStore
from storage.engine import Database

START = parse_timestamp("2026-11-20T00:00:00Z")
STEP = 300_000
NOW = START + 400 * STEP + 123_000  # 2 min into the candle that opened at bar 400


@pytest.fixture
def exchange() -> Iterator[Binance]:
    with binance_server(simulate_candles("BTC/USDT", "5m", START, 500, seed=3), NOW) as server:
        yield server


# One loop for the module's async clients, as the exchange feed keeps one for its own.
LOOP = LoopThread("test-candles")

MakeFetcher = Callable[..., CandleFetcher]


@pytest.fixture
def make_fetcher(database: Database, exchange: Binance) -> Iterator[MakeFetcher]:
    """Fetchers on the loopback Binance; their back-off waits go into the list given, not
    slept. Closed on their loop after the test."""
    made: list[CandleFetcher] = []

    def make(waits: list[float], timeout: float = 5.0) -> CandleFetcher:
        async def wait(seconds: float) -> None:
            waits.append(seconds)

        fetcher = CandleFetcher(
            candle_client("binance", timeout, rest_base=exchange.base_url),
            # As the service writes: the write lock taken at BEGIN, so side-by-side inserts
            # wait for each other instead of failing "locked" (SQLite).
            CandleStore(database.guarded_session_factory),
            ApiErrorStore(database.session_factory),
            backfill_bars=300,
            sleep=wait,
        )
        made.append(fetcher)
        return fetcher

    yield make
    for fetcher in made:
        LOOP.run(fetcher.close())


def refresh(fetcher: CandleFetcher, now: int) -> RefreshReport:
    return LOOP.run(fetcher.refresh("BTC/USDT", "5m", now))


def stored(database: Database) -> list[int]:
    window = CandleStore(database.session_factory).window("BTC/USDT", "5m", NOW + 10 * STEP, 10_000)
    return [int(opened) for opened in window.open_time]


def test_backfill_then_refresh_store_closed_candles_only(
    database: Database, exchange: Binance, make_fetcher: MakeFetcher
) -> None:
    waits: list[float] = []
    worker = make_fetcher(waits)
    report = refresh(worker, NOW)
    assert report.added == 300
    assert report.dropped == ("2026-11-21T09:20:00Z: still forming",)
    assert stored(database) == [START + bar * STEP for bar in range(100, 400)]
    window = CandleStore(database.session_factory).window("BTC/USDT", "5m", NOW, 1)
    assert window.sources == ("exchange:binance",)
    assert float(window.close[-1]) == pytest.approx(float(exchange.candles.close[399]))

    exchange.now_ms = NOW + 3 * STEP
    again = refresh(worker, NOW + 3 * STEP)
    assert (again.added, again.already_present) == (3, 0)
    assert exchange.kline_requests[-1]["startTime"] == str(START + 400 * STEP)
    assert stored(database)[-1] == START + 402 * STEP
    assert waits == []


def test_a_429_is_waited_out_as_retry_after_says(
    database: Database, exchange: Binance, make_fetcher: MakeFetcher
) -> None:
    exchange.faults.append(Fault(status=429, retry_after="2"))
    waits: list[float] = []
    report = refresh(make_fetcher(waits), NOW)
    assert (report.added, report.retries) == (300, 1)
    assert waits == [pytest.approx(2.0, abs=0.05)]
    errors = ApiErrorStore(database.session_factory).times_since(0, NOW)
    assert len(errors) == 1


def test_a_burst_of_5xx_is_retried_with_back_off(
    exchange: Binance, make_fetcher: MakeFetcher
) -> None:
    exchange.faults.extend(Fault(status=503) for _ in range(3))
    waits: list[float] = []
    report = refresh(make_fetcher(waits), NOW)
    assert (report.added, report.retries) == (300, 3)
    assert waits == [pytest.approx(wait, abs=0.05) for wait in (0.5, 1.0, 2.0)]


def test_a_429_heard_while_others_are_in_flight_holds_every_series_as_long_as_it_asks(
    exchange: Binance, make_fetcher: MakeFetcher
) -> None:
    exchange.more_symbols = ("C00/USDT", "C01/USDT")
    # The first request is refused at once with a Retry-After; the other two fail slowly,
    # after it: their own back-off (0.5 s) would send them again too early.
    exchange.faults.extend(
        [Fault(status=429, retry_after="2"), *(Fault(status=503, delay_seconds=0.3),) * 2]
    )
    waits: list[float] = []
    series = [Series(symbol, "5m") for symbol in ("BTC/USDT", *exchange.more_symbols)]
    outcomes = LOOP.run(make_fetcher(waits).refresh_all(series, NOW))
    assert all(isinstance(outcome, RefreshReport) for outcome in outcomes), outcomes
    assert len(waits) == 3
    assert min(waits) > 1.5, f"every retry waited for the Retry-After: {waits}"


def test_a_timeout_is_retried(exchange: Binance, make_fetcher: MakeFetcher) -> None:
    exchange.faults.append(Fault(delay_seconds=1.5))
    waits: list[float] = []
    report = refresh(make_fetcher(waits, timeout=0.5), NOW)
    assert (report.added, report.retries) == (300, 1)


def test_giving_up_stores_nothing_records_each_error_and_the_gate_blocks(
    database: Database, exchange: Binance, make_fetcher: MakeFetcher, tmp_path: Path
) -> None:
    waits: list[float] = []
    worker = make_fetcher(waits)
    refresh(worker, NOW - STEP)  # what was fetched while it worked
    exchange.faults.extend(Fault(status=500) for _ in range(2 * (MAX_RETRIES + 1)))
    for _ in range(2):
        with pytest.raises(FeedError, match=f"gave up after {MAX_RETRIES + 1} tries"):
            refresh(worker, NOW)
    assert stored(database)[-1] == START + 398 * STEP, "nothing new, nothing made up"
    assert len(ApiErrorStore(database.session_factory).times_since(NOW - 60_000, NOW)) == 10
    settings = Settings(home=tmp_path, risk_profile="conservative")
    decision = DecisionEngine(settings, database).decide("BTC/USDT", "5m", NOW, place_orders=False)
    failed = {check.name for check in decision.safety.checks if not check.passed}
    assert "data_freshness" in failed, "the stale data holds the decision"
    burst = next(check for check in decision.safety.checks if check.name == "api_error_burst")
    assert burst.detail.startswith("10 API errors in the 60 s up to as_of (pause above 5)")
    control = ControlStore(database).current()
    assert (control.state, control.actor) == ("PAUSED", "trigger:api_error_burst")


def test_out_of_order_and_duplicate_klines_are_stored_once_in_order(
    database: Database, exchange: Binance, make_fetcher: MakeFetcher
) -> None:
    exchange.faults.append(Fault(shuffle=True, duplicate=True))
    report = refresh(make_fetcher([]), NOW)
    assert report.added == 300
    # The last three rows came twice: two closed ones and the one still forming.
    assert sum("sent twice" in reason for reason in report.dropped) == 2
    assert sum("still forming" in reason for reason in report.dropped) == 2
    assert stored(database) == [START + bar * STEP for bar in range(100, 400)]


def test_series_closing_together_are_fetched_side_by_side_and_a_bad_one_fails_alone(
    database: Database, exchange: Binance, make_fetcher: MakeFetcher
) -> None:
    exchange.more_symbols = tuple(f"C{index:02d}/USDT" for index in range(8))
    exchange.faults.extend(Fault(delay_seconds=0.3) for _ in range(8))
    series = [Series(symbol, "5m") for symbol in (*exchange.more_symbols, "NOPE/USDT")]
    outcomes = LOOP.run(make_fetcher([]).refresh_all(series, NOW))
    assert exchange.klines_in_flight_peak > 1, "the requests went out together, not queued"
    reports, failed = outcomes[:-1], outcomes[-1]
    assert all(isinstance(report, RefreshReport) and report.added == 300 for report in reports)
    assert isinstance(failed, FeedError)
    assert "NOPE/USDT: BadSymbol" in str(failed)
    store = CandleStore(database.session_factory)
    assert store.latest_open_time("C07/USDT", "5m") == START + 399 * STEP
    assert store.latest_open_time("NOPE/USDT", "5m") is None


def test_testnet_clients_ask_the_exchange_sandbox() -> None:
    sync = public_client("binance", 5.0, sandbox=True)
    candles = candle_client("binance", 5.0, sandbox=True)
    try:
        for client in (sync, candles):
            assert client.urls["api"]["public"] == "https://testnet.binance.vision/api/v3"
    finally:
        LOOP.run(candles.close())


def test_sigmax_data_fetch_stores_candles_and_refuses_what_it_cannot(tmp_path: Path) -> None:
    wall = now_ms()  # the command fetches up to the wall clock
    recent = simulate_candles("BTC/USDT", "5m", wall - wall % STEP - 100 * STEP, 110, seed=5)
    env = {"SIGMAX_HOME": str(tmp_path)}
    with binance_server(recent, wall + 3_600_000) as exchange:
        fetch = ["data", "fetch", "--bars", "50", "--rest-url", exchange.base_url]
        result = CliRunner().invoke(cli, [*fetch, "BTC/USDT"], env=env)
        assert result.exit_code == 0, result.output
        assert "BTC/USDT 5m from binance: " in result.output
        assert ", 50 added, 0 already present, 0 retries" in result.output
        unknown = CliRunner().invoke(cli, [*fetch, "DOGE/EUR"], env=env)
        assert unknown.exit_code != 0
        assert "BadSymbol" in unknown.output
        assert "binance does not have market symbol DOGE/EUR" in unknown.output
        CliRunner().invoke(
            cli, ["demo", "--bars", "300"], env={**env, "SIGMAX_SYMBOLS": "ETH/USDT"}
        )
        mixed = CliRunner().invoke(cli, [*fetch, "ETH/USDT"], env=env)
        assert mixed.exit_code != 0
        assert "holds simulated candles" in mixed.output
