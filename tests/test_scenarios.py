"""The safety scenarios end to end: real candles, real paper fills, the full decision path.

Nothing here sets a counter: losses are real round trips, slippage a real oversized fill,
the abnormal candle a real one, errors and headlines arrive the way their sources store
them. Each scenario runs `DecisionEngine.decide` and checks what a user would see: the
gate's checks, the control state, the safety events.
"""

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import talib
from conftest import shared_csv
from decision_helpers import Loaded, load

from core.decision import Decision
from core.settings import PaperSettings, SafetySettings, Settings
from core.timeframes import parse_timestamp
from core.trading import OrderRequest, Side
from graph.engine import DecisionEngine
from safety.control import CoolDownError
from storage.api_errors import ApiErrorStore
from storage.control import ControlStore
from storage.models import NewsItemRow
from storage.safety_events import SafetyEventStore

STEP = 300_000
DAY = 86_400_000
HOUR = 3_600_000
COOL_DOWN = 30 * 60_000  # the balanced profile's


@dataclass(frozen=True)
class Bar:
    open_time: int
    open: float
    high: float
    low: float
    close: float
    volume: float

    @property
    def close_time(self) -> int:
        return self.open_time + STEP


@pytest.fixture(scope="module")
def candles() -> list[Bar]:
    """BTC/USDT 5m as the file says, read with the csv module alone."""
    with shared_csv("BTC_USDT-5m.csv").open(newline="") as handle:
        return [
            Bar(
                parse_timestamp(row["timestamp"]),
                float(row["open"]),
                float(row["high"]),
                float(row["low"]),
                float(row["close"]),
                float(row["volume"]),
            )
            for row in csv.DictReader(handle)
        ]


def btc(tmp_path: Path, settings: Settings | None = None) -> Loaded:
    loaded = load(tmp_path, {"BTC/USDT": shared_csv("BTC_USDT-5m.csv")}, "5m")
    if settings is None:
        return loaded
    return Loaded(settings, loaded.database, DecisionEngine(settings, loaded.database))


_order_numbers = iter(range(1_000_000))


def trade(loaded: Loaded, side: Side, at: Bar, size: float) -> None:
    """An order sent at ``at``'s close; it fills at the next open, booked a bar later."""
    broker = loaded.engine.broker
    outcome = broker.submit(
        OrderRequest(
            client_order_id=f"scenario-{next(_order_numbers)}",
            symbol="BTC/USDT",
            timeframe="5m",
            side=side,
            size_fraction=size,
            reference_price=at.close,
            not_before=at.close_time,
        ),
        at.close_time,
    )
    assert outcome.status == "accepted", outcome.reason
    assert broker.process_fills(at.close_time + STEP), "the order should have filled"


def decide(loaded: Loaded, moment: int, place_orders: bool = False) -> Decision:
    return loaded.engine.decide("BTC/USDT", "5m", moment, place_orders=place_orders)


def check(decision: Decision, name: str) -> tuple[bool, str]:
    found = next(c for c in decision.safety.checks if c.name == name)
    return found.passed, found.detail


def control(loaded: Loaded, symbol: str | None = None) -> tuple[str, str]:
    current = ControlStore(loaded.database).current(symbol)
    return current.state, current.actor


def event_kinds(loaded: Loaded) -> list[str]:
    return [event.kind for event in SafetyEventStore(loaded.database.session_factory).list()]


def first_buy_proposal(loaded: Loaded, start: int, end: int) -> Decision:
    """The first buy the agents propose with enough confidence for the gate to consider."""
    minimum = loaded.settings.limits.min_confidence
    for moment in range(start, end, STEP):
        decision = decide(loaded, moment)
        if decision.proposal.action == "buy" and decision.proposal.confidence >= minimum:
            return decision
    pytest.fail("no buy proposal in the span: the scenario needs one")


def test_three_consecutive_losing_trades_pause_trading(tmp_path: Path, candles: list[Bar]) -> None:
    loaded = btc(tmp_path)
    losers: list[tuple[Bar, Bar]] = []
    index = 300
    while len(losers) < 3:  # round trips whose exit filled clearly below the entry
        if candles[index + 7].open < candles[index + 1].open * 0.995:
            losers.append((candles[index], candles[index + 6]))
            index += 8
        else:
            index += 1
    for entry, exit_ in losers:
        # A decision at each order's instant, as the live loop takes one every bar: the loss
        # it books later must still count as new at the next decision.
        decide(loaded, entry.close_time)
        trade(loaded, "buy", entry, 0.05)
        decide(loaded, exit_.close_time)
        trade(loaded, "sell", exit_, 1.0)
    after = losers[-1][1].close_time + STEP
    trades = loaded.engine.broker.portfolio(after).closed_trades
    assert [trade.is_loss for trade in trades] == [True, True, True]

    decision = decide(loaded, after)

    assert "3" in check(decision, "consecutive_losses")[1]
    assert control(loaded) == ("PAUSED", "trigger:consecutive_losses")
    assert "control_paused" in event_kinds(loaded)
    refused = loaded.engine.broker.submit(
        OrderRequest("after-pause", "BTC/USDT", "5m", "buy", 0.05, candles[0].close, after),
        after,
    )
    assert refused.status == "refused"
    assert "PAUSED" in refused.reason


def test_the_daily_loss_limit_stops_entries_until_the_next_day(
    tmp_path: Path, candles: list[Bar]
) -> None:
    loaded = btc(tmp_path)
    by_time = {bar.open_time: bar for bar in candles}
    day = parse_timestamp("2023-01-30T00:00:00Z")
    in_day = [bar for bar in candles if day <= bar.open_time < day + DAY]
    worst = min(in_day, key=lambda bar: bar.close)
    assert worst.close < in_day[1].open * 0.955, "the real day fell more than the limit"
    trade(loaded, "buy", by_time[day], 1.0)  # all in at 00:05
    trade(loaded, "sell", worst, 1.0)  # out at the bottom: a realised loss
    assert (
        loaded.engine.broker.portfolio(worst.close_time + STEP).currencies["USDT"].today_pnl < -400
    )

    blocked = first_buy_proposal(loaded, worst.close_time + STEP, day + DAY)

    passed, detail = check(blocked, "daily_loss")
    assert not passed
    assert "entries stop at -4.00%" in detail
    assert blocked.safety.verdict == "blocked"
    assert "daily_loss" in [c.name for c in blocked.safety.checks if not c.passed]
    next_day = first_buy_proposal(loaded, day + DAY + STEP, day + 2 * DAY)
    assert check(next_day, "daily_loss")[0]


def test_an_api_error_burst_pauses_and_trading_resumes_after_the_cool_down(
    tmp_path: Path, candles: list[Bar]
) -> None:
    settings = Settings(home=tmp_path / "home", safety=SafetySettings(auto_resume=True))
    loaded = btc(tmp_path, settings)
    moment = candles[2000].close_time
    errors = ApiErrorStore(loaded.database.session_factory)
    for second in range(11):  # one more than the balanced profile's 10 in 60 s
        errors.record("binance", "NetworkError", "connection reset", moment - 50_000 + second)

    tripped = decide(loaded, moment)

    assert "11 API errors in the 60 s up to as_of" in check(tripped, "api_error_burst")[1]
    assert control(loaded) == ("PAUSED", "trigger:api_error_burst")
    with pytest.raises(CoolDownError, match="cool-down until"):
        loaded.engine.control.resume("operator", "looks fine", moment + 10 * 60_000)
    still = decide(loaded, moment + COOL_DOWN - STEP)
    assert still.safety.control_state == "PAUSED"
    recovered = decide(loaded, moment + COOL_DOWN)
    assert recovered.safety.control_state == "ACTIVE"
    assert control(loaded) == ("ACTIVE", "auto-resume")
    assert "control_resumed" in event_kinds(loaded)


def test_without_auto_resume_a_pause_waits_for_a_person(tmp_path: Path, candles: list[Bar]) -> None:
    loaded = btc(tmp_path)  # auto_resume is off by default
    moment = candles[2000].close_time
    errors = ApiErrorStore(loaded.database.session_factory)
    for second in range(11):
        errors.record("binance", "RateLimitExceeded", "429", moment - 30_000 + second)
    decide(loaded, moment)
    later = decide(loaded, moment + 2 * COOL_DOWN)
    assert later.safety.control_state == "PAUSED"
    loaded.engine.control.resume("operator", "errors stopped", moment + 2 * COOL_DOWN)
    assert control(loaded) == ("ACTIVE", "operator")


def test_a_sentiment_collapse_pauses_the_symbol(tmp_path: Path, candles: list[Bar]) -> None:
    loaded = btc(tmp_path)
    moment = candles[3000].close_time
    headlines = [(moment - HOUR - 10 * 60_000 + i * 60_000, 0.5) for i in range(4)]
    headlines += [(moment - 20 * 60_000 + i * 60_000, -0.9) for i in range(12)]
    with loaded.database.session_factory.begin() as session:
        session.add_all(
            NewsItemRow(
                source="feed",
                guid=f"item-{index}",
                title=f"headline {index}",
                url=f"http://127.0.0.1/{index}",
                summary="",
                published_at=published,
                fetched_at=published,
                sentiment=score,
                symbols=json.dumps(["BTC/USDT", "BTC"]),
            )
            for index, (published, score) in enumerate(headlines)
        )

    decision = decide(loaded, moment)

    assert decision.signals.sentiment.status == "value"
    assert decision.signals.sentiment.item_count == 16
    assert control(loaded, "BTC/USDT") == ("PAUSED", "trigger:sentiment_collapse")
    assert control(loaded) == ("ACTIVE", "system")  # only the symbol


def test_an_oversized_buy_is_reduced_with_a_clamp_record(
    tmp_path: Path, candles: list[Bar]
) -> None:
    loaded = btc(tmp_path)
    proposal = first_buy_proposal(loaded, candles[400].close_time, candles[3000].close_time)
    moment = parse_timestamp(proposal.as_of)
    before = next(bar for bar in candles if bar.close_time == moment - 2 * STEP)
    trade(loaded, "buy", before, 0.09)  # 0.09 held of the 0.10 the profile allows

    decision = decide(loaded, moment)

    assert decision.proposal.action == "buy"
    assert decision.safety.verdict == "reduced"
    passed, detail = check(decision, "max_position")
    assert passed
    assert "clamped from" in detail
    assert decision.safety.size < decision.proposal.size
    assert "gate_reduced" in event_kinds(loaded)


def test_the_circuit_breaker_trips_on_the_most_abnormal_real_candle(
    tmp_path: Path, candles: list[Bar]
) -> None:
    high = np.array([bar.high for bar in candles])
    low = np.array([bar.low for bar in candles])
    close = np.array([bar.close for bar in candles])
    atr = talib.ATR(high, low, close, 14)
    true_range = np.maximum(high[1:], close[:-1]) - np.minimum(low[1:], close[:-1])
    # true_range[i] is bar i + 1's, measured against atr[i], the ATR up to the bar before.
    multiple = true_range[299:] / atr[299:-1]
    abnormal = candles[300 + int(np.nanargmax(multiple))]
    assert np.nanmax(multiple) > 5.0
    loaded = btc(tmp_path)

    decision = decide(loaded, abnormal.close_time)

    passed, detail = check(decision, "circuit_breaker")
    assert "ATR" in detail
    assert control(loaded, "BTC/USDT") == ("PAUSED", "trigger:circuit_breaker")
    ordinary = decide(loaded, candles[600].close_time)
    assert check(ordinary, "circuit_breaker")[0]
    assert passed is (decision.proposal.action != "buy")


def test_an_oversized_fill_is_caught_as_slippage(tmp_path: Path, candles: list[Bar]) -> None:
    at = candles[1500]
    traded = at.volume * at.close  # the value the fill's impact is measured against
    settings = Settings(
        home=tmp_path / "home", paper=PaperSettings(starting_balances={"USDT": 0.2 * traded})
    )
    loaded = btc(tmp_path, settings)
    decide(loaded, at.close_time)  # the decision at the order's instant, as live
    trade(loaded, "buy", at, 1.0)  # a fifth of the market's last candle: ~2 % impact
    moment = at.close_time + STEP

    decision = decide(loaded, moment)

    assert "slippage" in check(decision, "slippage")[1]
    assert control(loaded) == ("PAUSED", "trigger:slippage")


def test_open_orders_count_against_the_position_limit(tmp_path: Path, candles: list[Bar]) -> None:
    """Buys sent but not yet filled are exposure: deciding again at the same bar cannot
    stack them past the profile's maximum position."""
    loaded = btc(tmp_path)
    moment = parse_timestamp(
        first_buy_proposal(loaded, candles[400].close_time, candles[3000].close_time).as_of
    )
    sizes = [decide(loaded, moment, place_orders=True).safety.size for _ in range(12)]
    assert sizes[0] > 0.0
    assert sum(sizes) <= loaded.settings.limits.max_position_fraction + 1e-9
    assert sizes[-1] == 0.0  # the room is used up


def test_a_trigger_never_turns_a_persons_pause_into_one_that_lifts_itself(
    tmp_path: Path, candles: list[Bar]
) -> None:
    settings = Settings(home=tmp_path / "home", safety=SafetySettings(auto_resume=True))
    loaded = btc(tmp_path, settings)
    moment = candles[2000].close_time
    loaded.engine.control.pause("operator", "news pending", moment - STEP)
    errors = ApiErrorStore(loaded.database.session_factory)
    for second in range(11):
        errors.record("binance", "NetworkError", "reset", moment - 30_000 + second)
    decide(loaded, moment)
    later = decide(loaded, moment + 2 * COOL_DOWN)
    assert later.safety.control_state == "PAUSED"
    assert control(loaded) == ("PAUSED", "operator")
