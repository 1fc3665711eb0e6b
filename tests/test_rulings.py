"""The rulings (numbers only) agree with the explained reports a decision records.

A backtest decides its bars with fuse_opinions, rule_triggers and rule_gate alone; a bar it
decides must come out as the explained path (fuse, evaluate_triggers, evaluate) would have
it: same verdict, action and size to the bit, same passes, same trips. Each case below is
drawn at random (fixed seeds) over the inputs that move a check: sizes and clamps, the
control states, stale and gapped data, every mode with and without a real-money broker,
losing streaks, the day's loss, API errors, news, slippage, real candles with injected
shocks and windows too short to measure. Every case's inputs are also checked to reach
each outcome at least once, so a generator gone flat cannot pass for agreement.
"""

import random
import struct
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from typing import NamedTuple

import numpy as np
import pytest
from conftest import shared_csv
from pydantic import BaseModel

from core.candles import CandleWindow
from core.decision import (
    Abstained,
    Action,
    ControlStateName,
    DebateSignal,
    DebateVerdict,
    Mode,
    Proposal,
    RLOpinion,
    RLSignal,
    SafetyCheck,
    SentimentReading,
    SentimentSignal,
)
from core.market_view import NewsItem
from core.settings import RISK_PROFILES, FusionWeights, RiskLimits, SafetySettings
from core.trading import ClosedTrade, FillView
from graph.fusion import fuse, fuse_opinions, opinions_from, rl_score, signal_opinions
from ingestion.candle_file import parse_candle_file
from safety.gate import GATE_CHECKS, GateInputs, MarketDataStatus, evaluate, gate_figures, rule_gate
from safety.triggers import (
    CIRCUIT_BREAKER_MIN_CANDLES,
    TRIGGER_NAMES,
    DailyEquity,
    TriggerInputs,
    TriggerReport,
    circuit_reading,
    evaluate_triggers,
    rule_triggers,
)

SAFETY = SafetySettings()
PROFILES = tuple(RISK_PROFILES.values())
STEP = 300_000
AS_OF = 1_674_216_000_000
MINUTE = 60_000
HOUR = 3_600_000
CASES = 600


def bits(value: float) -> bytes:
    """The float's bytes: equal bits, not merely equal values (0.0 and -0.0 differ)."""
    return struct.pack("<d", value)


def holds_no_model(value: object) -> bool:
    """Nothing in the ruling is a pydantic model (a backtest builds none per bar)."""
    if isinstance(value, BaseModel):
        return False
    if isinstance(value, tuple | list):
        return all(holds_no_model(item) for item in value)
    if isinstance(value, dict):
        return all(holds_no_model(item) for item in value.values())
    return True


# --- fusion -----------------------------------------------------------------------------------


class Signals(NamedTuple):
    debate: DebateSignal
    rl: RLSignal
    sentiment: SentimentSignal


def random_signals(rng: random.Random) -> Signals:
    abstain = Abstained(reason="test")
    score = rng.choice([rng.uniform(-1.0, 1.0), 0.0, 0.2, -0.2, 1.0, -1.0])
    debate: DebateSignal = abstain
    if rng.random() < 0.7:
        debate = DebateVerdict(
            score=score,
            confidence=rng.random(),
            rounds_run=1,
            stopped_early=False,
            bull_strength=max(score, 0.0),
            bear_strength=max(-score, 0.0),
        )
    rl: RLSignal = abstain
    if rng.random() < 0.6:
        buy, sell = rng.random(), rng.random()
        probabilities = {"buy": buy / 2, "hold": 1 - (buy + sell) / 2, "sell": sell / 2}
        rl = RLOpinion(
            action="buy", probabilities=probabilities, confidence=rng.random(), model_id="m"
        )
    sentiment: SentimentSignal = abstain
    if rng.random() < 0.6:
        sentiment = SentimentReading(score=rng.uniform(-1.0, 1.0), item_count=3)
    return Signals(debate, rl, sentiment)


def random_weights(rng: random.Random) -> FusionWeights:
    def weight() -> float:
        return rng.choice([0.0, 1.0, 0.5, 0.3, rng.uniform(0.0, 2.0)])

    return FusionWeights(debate=weight(), rl=weight(), sentiment=weight())


def test_fused_numbers_are_the_proposal_s_to_the_bit() -> None:
    rng = random.Random(11)
    actions: Counter[str] = Counter()
    for _ in range(CASES):
        signals, weights, limits = random_signals(rng), random_weights(rng), rng.choice(PROFILES)
        proposal = fuse(*signals, weights, limits)
        fused = fuse_opinions(signal_opinions(*signals), weights, limits)
        if fused is None:
            assert proposal.reason == "every signal abstained: no opinion to act on"
            assert (proposal.action, proposal.size, proposal.contributions) == ("hold", 0.0, {})
            actions["none"] += 1
            continue
        assert fused.action == proposal.action
        for ruled, explained in [
            (fused.size, proposal.size),
            (fused.confidence, proposal.confidence),
            (fused.score, proposal.score),
        ]:
            assert bits(ruled) == bits(explained)
        assert list(fused.contributions.items()) == list(proposal.contributions.items())
        assert holds_no_model(fused)
        actions[fused.action] += 1
    assert set(actions) == {"buy", "sell", "hold", "none"}, actions


def test_opinions_from_numbers_are_the_signals_opinions_in_the_same_order() -> None:
    rng = random.Random(12)
    for _ in range(CASES):
        signals = random_signals(rng)
        debate, rl, sentiment = signals
        from_numbers = opinions_from(
            (debate.score, debate.confidence) if isinstance(debate, DebateVerdict) else None,
            (rl_score(rl.probabilities), rl.confidence) if isinstance(rl, RLOpinion) else None,
            sentiment.score if isinstance(sentiment, SentimentReading) else None,
        )
        from_signals = signal_opinions(*signals)
        assert list(from_numbers.items()) == list(from_signals.items())


# --- the triggers -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def btc() -> CandleWindow:
    path = shared_csv("BTC_USDT-5m.csv")
    return parse_candle_file(path.read_bytes(), "BTC/USDT", "5m", "import").candles


def with_shock(window: CandleWindow, change: float) -> CandleWindow:
    """The window with its newest candle replaced by a jump of ``change`` from the close
    before it: a move the circuit breaker must catch."""
    previous = float(window.close[-2])
    jumped = previous * (1.0 + change)
    columns = {}
    for name, value in [
        ("open", previous),
        ("high", max(previous, jumped)),
        ("low", min(previous, jumped)),
        ("close", jumped),
    ]:
        column = getattr(window, name).copy()
        column[-1] = value
        columns[name] = column
    return replace(window, **columns)


def random_window(rng: random.Random, btc: CandleWindow) -> CandleWindow:
    count = rng.choice([250, 250, 250, 60, CIRCUIT_BREAKER_MIN_CANDLES, 15, 3])
    last = rng.randrange(count, len(btc))
    window = btc.part(last + 1 - count, last + 1)
    if count >= 2 and rng.random() < 0.3:
        window = with_shock(window, rng.choice([0.004, -0.01, 0.03, -0.12, 0.12]))
    return window


def random_trigger_inputs(
    rng: random.Random, btc: CandleWindow, limits: RiskLimits
) -> TriggerInputs:
    window = random_window(rng, btc)
    as_of = window.last_close_time
    assert as_of is not None
    previous = rng.choice([None, as_of - STEP, as_of - 20 * MINUTE])
    # A run of trades a minute apart, the newest around the previous check or after as_of.
    newest = as_of - rng.choice([-MINUTE, 0, 2 * MINUTE, 10 * MINUTE, 30 * MINUTE])
    pnls = [rng.choice([-1.0, -1.0, 2.0]) for _ in range(rng.randrange(0, 7))]
    trades = tuple(
        ClosedTrade("BTC/USDT", at - MINUTE, at, pnl)
        for at, pnl in zip(
            [newest - (len(pnls) - 1 - index) * MINUTE for index in range(len(pnls))],
            pnls,
            strict=True,
        )
    )
    start = rng.choice([10_000.0, 10_000.0, 0.0])
    equity = DailyEquity("USDT", start, 10_000.0 * (1.0 + rng.uniform(-0.12, 0.05)))
    window_ms = SAFETY.api_error_window_seconds * 1000
    burst = rng.choice([0, 2, limits.api_error_burst + 1, limits.api_error_burst + 4])
    errors = tuple(sorted(as_of - rng.randrange(-window_ms, 2 * window_ms) for _ in range(burst)))
    news = tuple(
        NewsItem(
            source="test",
            title=f"item {index}",
            url=f"https://example.com/{index}",
            published_at=as_of - rng.randrange(-HOUR, 30 * HOUR),
            sentiment=rng.choice([None, rng.uniform(-1.0, 1.0), 0.6]),
            symbols=("BTC/USDT",),
        )
        for index in range(rng.choice([0, 0, 3, 8]))
    )
    if rng.random() < 0.25:  # bad news within the hour: a collapse, by level or by drop
        news += tuple(
            NewsItem(
                source="test",
                title=f"crash {index}",
                url=f"https://example.com/crash/{index}",
                published_at=as_of - rng.randrange(0, 40 * MINUTE),
                sentiment=-0.95,
                symbols=("BTC/USDT",),
            )
            for index in range(rng.randrange(1, 6))
        )
    fills = tuple(
        FillView(
            f"order-{index}",
            "ETH/BTC",
            rng.choice(["buy", "sell"]),
            1.0,
            0.07,
            0.0,
            rng.choice([0.0, -0.01, limits.max_slippage_fraction, 0.02, rng.uniform(0, 0.01)]),
            as_of - rng.randrange(-MINUTE, 40 * MINUTE),
        )
        for index in range(rng.choice([0, 0, 1, 3]))
    )
    return TriggerInputs(
        symbol="BTC/USDT",
        as_of=as_of,
        previous_check_ms=previous,
        closed_trades=trades,
        equity=equity,
        api_error_times=errors,
        news=news,
        candles=window,
        fills=fills,
    )


def trigger_cases(btc: CandleWindow, seed: int) -> Iterator[tuple[TriggerInputs, RiskLimits]]:
    rng = random.Random(seed)
    for _ in range(CASES):
        limits = rng.choice(PROFILES)
        yield random_trigger_inputs(rng, btc, limits), limits


def test_the_trigger_ruling_passes_and_trips_as_the_report_does(btc: CandleWindow) -> None:
    outcomes: Counter[tuple[str, bool]] = Counter()
    tripped: Counter[str] = Counter()
    for inputs, limits in trigger_cases(btc, 21):
        report = evaluate_triggers(inputs, limits, SAFETY)
        ruling = rule_triggers(inputs, limits, SAFETY, circuit_reading(inputs.candles))
        assert ruling.passed == tuple(check.passed for check in report.checks)
        assert ruling.trips == tuple(trip.name for trip in report.trips)
        assert holds_no_model(ruling)
        outcomes.update(zip(TRIGGER_NAMES, ruling.passed, strict=True))
        tripped.update(ruling.trips)
    assert set(outcomes) == {(name, passed) for name in TRIGGER_NAMES for passed in (True, False)}
    # Every trigger but the daily loss, which stops entries without pausing, tripped.
    assert set(tripped) == set(TRIGGER_NAMES) - {"daily_loss"}, tripped


def test_a_short_window_fails_the_circuit_breaker_without_a_pause(btc: CandleWindow) -> None:
    for count in (CIRCUIT_BREAKER_MIN_CANDLES - 1, 2, 0):
        window = btc.part(1000 - count, 1000)
        assert circuit_reading(window) is None
    base = next(trigger_cases(btc, 22))[0]
    short = replace(base, candles=btc.part(990, 1000))
    assert short.candles.last_close_time is not None
    short = replace(short, as_of=short.candles.last_close_time, closed_trades=(), fills=())
    ruling = rule_triggers(short, RISK_PROFILES["balanced"], SAFETY, None)
    assert not ruling.passed[TRIGGER_NAMES.index("circuit_breaker")]
    assert "circuit_breaker" not in ruling.trips


def test_the_reading_is_the_report_s_numbers(btc: CandleWindow) -> None:
    """The reading a backtest hands in is what the report prints of the newest candle."""
    window = with_shock(btc.part(750, 1000), 0.12)
    reading = circuit_reading(window)
    assert reading is not None
    assert reading.close_time == window.last_close_time
    assert (reading.close, reading.previous_close) == (window.close[-1], window.close[-2])
    assert reading.true_range == pytest.approx(0.12 * float(window.close[-2]))
    inputs = replace(next(trigger_cases(btc, 23))[0], candles=window, as_of=reading.close_time)
    detail = evaluate_triggers(inputs, RISK_PROFILES["balanced"], SAFETY).checks[4].detail
    assert f"true range {reading.true_range:.6g}" in detail
    assert f"ATR(14) {reading.atr:.6g}" in detail


# --- the gate ---------------------------------------------------------------------------------


def random_proposal(rng: random.Random, limits: RiskLimits) -> Proposal:
    action: Action = rng.choice(["buy", "buy", "sell", "hold"])
    size = rng.choice([0.0, 1e-4, 0.01, 0.05, 0.08, limits.max_position_fraction, rng.random()])
    minimum = limits.min_confidence
    confidence = rng.choice([0.0, minimum - 0.01, minimum, 0.9, rng.random()])
    return Proposal(
        action=action,
        size=0.0 if action == "hold" else size,
        confidence=confidence,
        score=0.0,
        contributions={},
        reason="test",
    )


def random_trigger_report(rng: random.Random, as_of: int) -> TriggerReport:
    checks = tuple(
        SafetyCheck(name=name, passed=rng.random() < 0.85, detail=f"{name} test")
        for name in TRIGGER_NAMES
    )
    return TriggerReport(symbol="BTC/USDT", as_of=as_of, checks=checks, trips=())


def random_gate_inputs(
    rng: random.Random, limits: RiskLimits, triggers: TriggerReport
) -> GateInputs:
    as_of = triggers.as_of
    state: ControlStateName = rng.choice(["ACTIVE", "ACTIVE", "ACTIVE", "PAUSED", "HALTED"])
    last_close = rng.choice([as_of, as_of, as_of - 1, as_of - STEP + 1, as_of - STEP, None])
    missing = rng.choice([0, 0, limits.max_missing_bars, limits.max_missing_bars + 1])
    held = rng.choice([0.0, 0.0, 0.04, limits.max_position_fraction, rng.uniform(0.0, 0.15)])
    exposure_room = limits.max_total_exposure_fraction - held
    exposure = held + rng.choice([0.0, 0.2, exposure_room, exposure_room - 0.01, rng.random()])
    mode: Mode = rng.choice(["sim", "replay", "backtest", "live"])
    cap = SAFETY.live_max_daily_notional
    return GateInputs(
        proposal=random_proposal(rng, limits),
        control_state=state,
        control_reason="test",
        data=MarketDataStatus(
            as_of=as_of,
            timeframe_ms=STEP,
            last_close_time=last_close,
            missing_bars=missing,
            snapshot_error=rng.choice([None, None, None, "indicators unavailable: test"]),
        ),
        position_fraction=held,
        position_source="test",
        exposure_fraction=exposure,
        equity=rng.choice([10_000.0, 10_000.0, 500.0, 0.0, rng.uniform(1.0, 1e6)]),
        mode=mode,
        live_notional_today=rng.choice([0.0, cap - 5.0, cap, cap + 1.0, rng.uniform(0.0, cap)]),
        triggers=triggers,
        real_money=rng.random() < 0.25,
    )


def assert_rulings_agree(inputs: GateInputs, limits: RiskLimits) -> tuple[str, tuple[bool, ...]]:
    report = evaluate(inputs, limits, SAFETY)
    trigger_passed = tuple(check.passed for check in inputs.triggers.checks)
    ruling = rule_gate(gate_figures(inputs), trigger_passed, limits, SAFETY)
    assert tuple(check.name for check in report.checks) == GATE_CHECKS
    assert ruling.passed == tuple(check.passed for check in report.checks)
    assert (ruling.verdict, ruling.action) == (report.verdict, report.action)
    assert bits(ruling.size) == bits(report.size)
    assert holds_no_model(ruling)
    return ruling.verdict, ruling.passed


def test_the_gate_ruling_is_the_report_s_verdict_to_the_bit() -> None:
    rng = random.Random(31)
    verdicts: Counter[str] = Counter()
    outcomes: Counter[tuple[str, bool]] = Counter()
    for _ in range(CASES * 3):
        limits = rng.choice(PROFILES)
        inputs = random_gate_inputs(rng, limits, random_trigger_report(rng, AS_OF))
        verdict, passed = assert_rulings_agree(inputs, limits)
        verdicts[verdict] += 1
        outcomes.update(zip(GATE_CHECKS, passed, strict=True))
    assert set(verdicts) == {"approved", "reduced", "blocked"}, verdicts
    assert set(outcomes) == {(name, passed) for name in GATE_CHECKS for passed in (True, False)}


def test_the_gate_on_the_trigger_ruling_is_the_gate_on_the_trigger_report(
    btc: CandleWindow,
) -> None:
    """What a backtest chains (rule_triggers' passes into rule_gate) is what a decision
    records (evaluate_triggers' report into evaluate)."""
    rng = random.Random(41)
    verdicts: Counter[str] = Counter()
    for trigger_inputs, limits in trigger_cases(btc, 42):
        report = evaluate_triggers(trigger_inputs, limits, SAFETY)
        inputs = random_gate_inputs(rng, limits, report)
        explained = evaluate(inputs, limits, SAFETY)
        circuit = circuit_reading(trigger_inputs.candles)
        triggers = rule_triggers(trigger_inputs, limits, SAFETY, circuit)
        ruling = rule_gate(gate_figures(inputs), triggers.passed, limits, SAFETY)
        assert ruling.passed == tuple(check.passed for check in explained.checks)
        assert (ruling.verdict, ruling.action) == (explained.verdict, explained.action)
        assert bits(ruling.size) == bits(explained.size)
        failed = {
            name for name, passed in zip(GATE_CHECKS, ruling.passed, strict=True) if not passed
        }
        verdicts[
            "by triggers alone" if failed and failed <= set(TRIGGER_NAMES) else ruling.verdict
        ] += 1
    assert {"approved", "blocked", "by triggers alone"} <= set(verdicts), verdicts


def test_a_ruling_given_the_wrong_number_of_trigger_passes_is_refused() -> None:
    limits = RISK_PROFILES["balanced"]
    inputs = random_gate_inputs(
        random.Random(51), limits, random_trigger_report(random.Random(52), AS_OF)
    )
    with pytest.raises(ValueError, match="trigger passes"):
        rule_gate(gate_figures(inputs), (True,) * (len(TRIGGER_NAMES) - 1), limits, SAFETY)


def test_sizing_steps_carry_the_clamps_the_words_print() -> None:
    limits = RISK_PROFILES["balanced"]
    triggers = random_trigger_report(random.Random(0), AS_OF)
    triggers = replace(
        triggers,
        checks=tuple(SafetyCheck(name=c.name, passed=True, detail="ok") for c in triggers.checks),
    )
    offer = Proposal(
        action="buy", size=0.08, confidence=0.9, score=0.5, contributions={}, reason="test"
    )
    inputs = replace(
        random_gate_inputs(random.Random(1), limits, triggers),
        proposal=offer,
        control_state="ACTIVE",
        data=MarketDataStatus(AS_OF, STEP, AS_OF, 0, None),
        position_fraction=0.04,
        exposure_fraction=0.37,
        mode="sim",
        real_money=False,
    )
    ruling = rule_gate(gate_figures(inputs), (True,) * len(TRIGGER_NAMES), limits, SAFETY)
    position, exposure, order_cap, _ = ruling.sizing
    assert (position.outcome, exposure.outcome, order_cap.outcome) == (
        "clamped",
        "clamped",
        "not_live",
    )
    assert ruling.size == exposure.left == exposure.room
    report = evaluate(inputs, limits, SAFETY)
    detail = {check.name: check.detail for check in report.checks}
    assert f"clamped from {position.size:.4f} to {position.room:.4f}" in detail["max_position"]
    assert (
        f"clamped from {exposure.size:.4f} to {exposure.room:.4f}" in detail["max_total_exposure"]
    )
    assert np.isnan(order_cap.room)
