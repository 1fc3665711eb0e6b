"""The auto-pause triggers on their own: real candles, real closed trades, a real database."""

from dataclasses import replace

import numpy as np
import pytest
from conftest import shared_csv

from core.candles import CandleWindow
from core.decision import Action, Proposal, SafetyReport
from core.indicators import atr
from core.market_view import NewsItem
from core.sentiment import decayed_sentiment
from core.settings import RISK_PROFILES, SafetySettings
from core.trading import ClosedTrade, FillView
from execution.accounting import FillRecord, replay
from ingestion.candle_file import parse_candle_file
from safety.gate import GateInputs, MarketDataStatus, evaluate
from safety.triggers import (
    CIRCUIT_BREAKER_ATR_PERIOD,
    TRIGGER_NAMES,
    DailyEquity,
    TriggerInputs,
    TriggerReport,
    check_api_error_burst,
    check_circuit_breaker,
    check_consecutive_losses,
    check_daily_loss,
    check_sentiment_collapse,
    check_slippage,
    evaluate_triggers,
)
from storage.api_errors import ApiErrorStore
from storage.engine import Database

LIMITS = RISK_PROFILES["balanced"]
SAFETY = SafetySettings()
WINDOW_MS = SAFETY.api_error_window_seconds * 1000
AS_OF = 1_674_216_000_000
MINUTE = 60_000
HOUR = 3_600_000
LOOKBACK = 250


# --- circuit breaker --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def btc() -> CandleWindow:
    path = shared_csv("BTC_USDT-5m.csv")
    return parse_candle_file(path.read_bytes(), "BTC/USDT", "5m", "import").candles


def window_ending(candles: CandleWindow, last: int, count: int = LOOKBACK) -> CandleWindow:
    """The ``count`` candles ending with the one at index ``last``: what a decision sees."""
    picked = slice(max(0, last + 1 - count), last + 1)
    return replace(
        candles,
        open_time=candles.open_time[picked],
        open=candles.open[picked],
        high=candles.high[picked],
        low=candles.low[picked],
        close=candles.close[picked],
        volume=candles.volume[picked],
    )


def range_over_prior_atr(candles: CandleWindow) -> np.ndarray:
    """For each candle, its true range over the ATR of the candles before it (NaN in the
    warm-up). The ATR is causal, so its value at i - 1 stands on candles 0..i-1 alone."""
    previous = candles.close[:-1]
    true_range = np.maximum(
        candles.high[1:] - candles.low[1:],
        np.maximum(np.abs(candles.high[1:] - previous), np.abs(candles.low[1:] - previous)),
    )
    prior = atr(candles.high, candles.low, candles.close, CIRCUIT_BREAKER_ATR_PERIOD)[:-1]
    return np.concatenate(([np.nan], true_range / prior))


def test_the_most_abnormal_real_candle_trips_and_an_ordinary_one_does_not(
    btc: CandleWindow,
) -> None:
    ratio = range_over_prior_atr(btc)
    ratio[:LOOKBACK] = np.nan  # judge only candles with a full decision window behind them
    worst = int(np.nanargmax(ratio))
    ordinary = int(np.nanargmin(np.abs(ratio - np.nanmedian(ratio))))
    assert ratio[worst] > LIMITS.circuit_breaker_atr_multiple > ratio[ordinary]

    tripped = check_circuit_breaker("BTC/USDT", window_ending(btc, worst), LIMITS)
    assert not tripped.check.passed
    assert tripped.trip is not None
    assert (tripped.trip.scope, tripped.trip.symbol) == ("symbol", "BTC/USDT")
    assert f"{ratio[worst]:.2f} × ATR(14)" in tripped.check.detail

    calm = check_circuit_breaker("BTC/USDT", window_ending(btc, ordinary), LIMITS)
    assert calm.check.passed
    assert calm.trip is None


def test_an_injected_twelve_percent_candle_trips(btc: CandleWindow) -> None:
    ratio = range_over_prior_atr(btc)
    ratio[:LOOKBACK] = np.nan
    window = window_ending(btc, int(np.nanargmin(np.abs(ratio - np.nanmedian(ratio)))))
    assert check_circuit_breaker("BTC/USDT", window, LIMITS).trip is None

    previous = float(window.close[-2])
    jumped = previous * 1.12

    def with_last(column: np.ndarray, value: float) -> np.ndarray:
        changed = column.copy()
        changed[-1] = value
        return changed

    spiked = replace(
        window,
        open=with_last(window.open, previous),
        high=with_last(window.high, jumped),
        low=with_last(window.low, previous),
        close=with_last(window.close, jumped),
    )
    outcome = check_circuit_breaker("BTC/USDT", spiked, LIMITS)
    assert outcome.trip is not None
    assert "+12.00%" in outcome.check.detail


def test_too_few_candles_stop_entries_without_a_pause(btc: CandleWindow) -> None:
    short = window_ending(btc, 1000, count=CIRCUIT_BREAKER_ATR_PERIOD + 1)
    outcome = check_circuit_breaker("BTC/USDT", short, LIMITS)
    assert not outcome.check.passed
    assert outcome.trip is None
    enough = window_ending(btc, 1000, count=CIRCUIT_BREAKER_ATR_PERIOD + 2)
    assert "need" not in check_circuit_breaker("BTC/USDT", enough, LIMITS).check.detail


# --- consecutive losses (closed trades from fills, as the paper broker's ledger makes them) ---


def closed_trades(*pnls: float) -> tuple[ClosedTrade, ...]:
    """One round trip per profit given, a minute apart, replayed through the ledger."""
    fills: list[FillRecord] = []
    for index, pnl in enumerate(pnls):
        opened = AS_OF - (len(pnls) - index) * MINUTE
        fills.append(FillRecord("BTC/USDT", "buy", 1.0, 100.0, 0.0, opened))
        fills.append(FillRecord("BTC/USDT", "sell", 1.0, 100.0 + pnl, 0.0, opened + 1))
    trades = tuple(replay(fills).closed_trades)
    assert [trade.pnl for trade in trades] == pytest.approx(pnls)
    return trades


def test_three_losses_in_a_row_pause_everything_and_a_win_resets_the_count() -> None:
    two = check_consecutive_losses(closed_trades(-5, -5), AS_OF, None, LIMITS)
    assert two.check.passed
    three = check_consecutive_losses(closed_trades(5, -5, -5, -5), AS_OF, None, LIMITS)
    assert not three.check.passed
    assert three.trip is not None
    assert (three.trip.scope, three.trip.symbol) == ("global", None)
    assert "3 losing trades in a row" in three.check.detail
    reset = check_consecutive_losses(closed_trades(-5, -5, -5, 1, -5, -5), AS_OF, None, LIMITS)
    assert reset.check.passed


def test_a_streak_pauses_once_and_again_only_on_a_further_loss() -> None:
    trades = closed_trades(-5, -5, -5)
    last_closed = trades[-1].closed_at
    acted_on = check_consecutive_losses(trades, AS_OF, last_closed, LIMITS)
    assert acted_on.check.passed  # else the cool-down could never end in trading again
    assert "acted on" in acted_on.check.detail
    fourth = closed_trades(-5, -5, -5, -5)
    assert check_consecutive_losses(fourth, AS_OF, fourth[-2].closed_at, LIMITS).trip is not None


def test_trades_closed_after_as_of_are_not_seen() -> None:
    trades = closed_trades(-5, -5, -5)
    earlier = trades[-1].closed_at - 1
    assert check_consecutive_losses(trades, earlier, None, LIMITS).check.passed


# --- daily loss -------------------------------------------------------------------------------


def test_the_daily_loss_limit_stops_entries_at_its_boundary_without_a_pause() -> None:
    limit = LIMITS.daily_loss_limit_fraction
    start = 10_000.0
    at_limit = check_daily_loss(DailyEquity("USDT", start, start * (1 - limit)), LIMITS)
    assert not at_limit.check.passed
    assert at_limit.trip is None
    assert "-4.00%" in at_limit.check.detail
    inside = check_daily_loss(DailyEquity("USDT", start, start * (1 - limit) + 0.01), LIMITS)
    assert inside.check.passed
    assert not check_daily_loss(DailyEquity("USDT", 0.0, 0.0), LIMITS).check.passed


# --- API error burst (a real database) --------------------------------------------------------


def test_more_api_errors_than_the_limit_within_the_window_pause(database: Database) -> None:
    store = ApiErrorStore(database.session_factory)
    burst = LIMITS.api_error_burst

    def judge() -> tuple[bool, bool]:
        times = tuple(store.times_since(AS_OF - WINDOW_MS, AS_OF))
        outcome = check_api_error_burst(times, AS_OF, WINDOW_MS, LIMITS)
        return outcome.check.passed, outcome.trip is not None

    # Outside the window: exactly one window old, long before, and after as_of.
    for at in (AS_OF - WINDOW_MS, AS_OF - HOUR, AS_OF + 1):
        store.record("exchange:binance", "NetworkError", "timed out", at)
    for index in range(burst):
        store.record("exchange:binance", "RateLimitExceeded", "429", AS_OF - index * 1000)
    assert judge() == (True, False)
    store.record("news:rss", "HTTPError", "503", AS_OF - WINDOW_MS + 1)
    assert judge() == (False, True)

    # The trigger applies the window itself, whatever span it is handed.
    everything = tuple(store.times_since(0, AS_OF + HOUR))
    assert len(everything) == burst + 4
    counted = check_api_error_burst(everything, AS_OF, WINDOW_MS, LIMITS)
    assert f"{burst + 1} API errors" in counted.check.detail


def test_an_over_long_error_kind_is_cut_to_fit_not_refused(database: Database) -> None:
    store = ApiErrorStore(database.session_factory)
    store.record("s" * 200, "K" * 200, "m" * 5000, AS_OF)
    assert store.times_since(AS_OF - 1, AS_OF) == [AS_OF]


# --- sentiment collapse -----------------------------------------------------------------------


def news(*aged_scores: tuple[int, float]) -> tuple[NewsItem, ...]:
    return tuple(
        NewsItem(
            source="test",
            title=f"item {index}",
            url=f"https://example.test/{index}",
            published_at=AS_OF - age,
            sentiment=score,
            symbols=("BTC/USDT",),
        )
        for index, (age, score) in enumerate(aged_scores)
    )


def test_sentiment_below_the_floor_pauses_the_symbol() -> None:
    outcome = check_sentiment_collapse("BTC/USDT", news((10 * MINUTE, -0.8)), AS_OF, LIMITS)
    assert not outcome.check.passed
    assert outcome.trip is not None
    assert (outcome.trip.scope, outcome.trip.symbol) == ("symbol", "BTC/USDT")
    assert "no scored news" in outcome.check.detail  # nothing an hour earlier to compare with


def test_sentiment_falling_faster_than_the_limit_pauses_the_symbol() -> None:
    calm = ((2 * HOUR, 0.5),)
    slide = ((5 * MINUTE, -0.5),) * 3
    outcome = check_sentiment_collapse("BTC/USDT", news(*calm, *slide), AS_OF, LIMITS)
    assert outcome.trip is not None
    # Above the floor: it is the drop since an hour earlier (+0.5 then) that trips.
    now = decayed_sentiment(news(*calm, *slide), AS_OF)
    assert now is not None
    assert now.score > LIMITS.sentiment_floor
    assert "drop" in outcome.check.detail

    gentle = ((5 * MINUTE, 0.2),)
    assert check_sentiment_collapse("BTC/USDT", news(*calm, *gentle), AS_OF, LIMITS).check.passed


def test_no_scored_news_passes_without_a_reading() -> None:
    unscored = (
        NewsItem(source="t", title="x", url="u", published_at=AS_OF, sentiment=None, symbols=()),
    )
    for items in ((), unscored):
        outcome = check_sentiment_collapse("BTC/USDT", items, AS_OF, LIMITS)
        assert (outcome.check.passed, outcome.check.detail) == (True, "no scored news")


# --- slippage ---------------------------------------------------------------------------------


def fill(order_id: str, slippage: float, at: int) -> FillView:
    return FillView(order_id, "ETH/BTC", "buy", 1.0, 0.07, 0.0, slippage, at)


def test_a_fill_slipping_beyond_the_limit_since_the_previous_check_pauses() -> None:
    previous = AS_OF - 5 * MINUTE
    limit = LIMITS.max_slippage_fraction
    fine = (fill("a", limit, AS_OF - MINUTE), fill("b", -0.05, AS_OF - MINUTE))
    assert check_slippage(fine, AS_OF, previous, LIMITS).check.passed

    bad = fill("order-7", 0.015, AS_OF - MINUTE)
    outcome = check_slippage((*fine, bad), AS_OF, previous, LIMITS)
    assert outcome.trip is not None
    assert outcome.trip.scope == "global"
    assert "order-7" not in outcome.check.detail  # ids are random: not in the record
    assert "ETH/BTC buy booked" in outcome.check.detail
    assert "+1.50%" in outcome.check.detail

    # Already judged at the previous check, or not yet happened at as_of: not counted.
    for at in (previous, AS_OF + 1):
        assert check_slippage((fill("old", 0.5, at),), AS_OF, previous, LIMITS).check.passed


# --- the report -------------------------------------------------------------------------------


def tripping_inputs(btc: CandleWindow) -> TriggerInputs:
    """Real candles closing at AS_OF, three losses, a day down 10 %, one bad fill."""
    last = int(np.searchsorted(btc.open_time, AS_OF - btc.timeframe_ms))
    candles = window_ending(btc, last)
    assert candles.last_close_time == AS_OF
    return TriggerInputs(
        symbol="BTC/USDT",
        as_of=AS_OF,
        previous_check_ms=None,
        closed_trades=closed_trades(-1, -1, -1),
        equity=DailyEquity("USDT", 10_000.0, 9_000.0),
        api_error_times=(),
        news=(),
        candles=candles,
        fills=(fill("x", 0.05, AS_OF),),
    )


def test_evaluate_triggers_lists_every_check_in_order_and_collects_the_trips(
    btc: CandleWindow,
) -> None:
    inputs = tripping_inputs(btc)
    report = evaluate_triggers(inputs, LIMITS, SAFETY)
    assert tuple(check.name for check in report.checks) == TRIGGER_NAMES
    assert [trip.name for trip in report.trips] == ["consecutive_losses", "slippage"]
    failed = [check.name for check in report.checks if not check.passed]
    assert failed == ["consecutive_losses", "daily_loss", "slippage"]
    assert report == evaluate_triggers(inputs, LIMITS, SAFETY)


def test_tripped_triggers_stop_entries_in_the_same_decision(btc: CandleWindow) -> None:
    report = evaluate_triggers(tripping_inputs(btc), LIMITS, SAFETY)

    def gate(action: Action) -> SafetyReport:
        offer = Proposal(
            action=action, size=0.05, confidence=0.9, score=0.5, contributions={}, reason="test"
        )
        data = MarketDataStatus(AS_OF, btc.timeframe_ms, AS_OF, 0, None)
        gate_inputs = GateInputs(
            offer, "ACTIVE", "", data, 0.0, "test", 0.0, 10_000.0, "sim", 0.0, report
        )
        return evaluate(gate_inputs, LIMITS, SAFETY)

    blocked = gate("buy")
    assert blocked.verdict == "blocked"
    failed = [check.name for check in blocked.checks if not check.passed]
    assert failed == ["consecutive_losses", "daily_loss", "slippage"]
    assert gate("sell").verdict == "approved"


def test_a_report_missing_a_check_cannot_be_made() -> None:
    with pytest.raises(ValueError, match="trigger checks"):
        TriggerReport(symbol="BTC/USDT", as_of=AS_OF, checks=(), trips=())
