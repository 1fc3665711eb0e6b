"""The gate on its own: each check passes and fails where it should, and every one is listed."""

from dataclasses import replace

import pytest

from core.decision import Action, ControlStateName, Mode, Proposal, SafetyCheck, SafetyReport
from core.settings import RISK_PROFILES, SafetySettings
from safety.gate import GateInputs, MarketDataStatus, evaluate
from safety.triggers import TRIGGER_NAMES, TriggerReport

LIMITS = RISK_PROFILES["balanced"]
SAFETY = SafetySettings()
STEP = 300_000
AS_OF = 1_674_216_000_000
EQUITY = 10_000.0
CHECK_NAMES = [
    "control_state",
    "data_freshness",
    "data_gaps",
    "indicators",
    "min_confidence",
    "max_position",
    "max_total_exposure",
    "live_order_cap",
    "live_daily_cap",
    "consecutive_losses",
    "daily_loss",
    "api_error_burst",
    "sentiment_collapse",
    "circuit_breaker",
    "slippage",
]


def proposal(action: Action = "buy", size: float = 0.05, confidence: float = 0.6) -> Proposal:
    score = {"buy": 0.6, "sell": -0.6, "hold": 0.0}[action]
    return Proposal(
        action=action,
        size=size if action != "hold" else 0.0,
        confidence=confidence,
        score=score,
        contributions={"debate": score},
        reason="test",
    )


def inputs(
    offer: Proposal | None = None,
    state: ControlStateName = "ACTIVE",
    last_close: int | None = AS_OF,
    missing: int = 0,
    snapshot_error: str | None = None,
    held: float = 0.0,
    exposure: float | None = None,
    mode: Mode = "sim",
    live_today: float = 0.0,
    equity: float = EQUITY,
    failing_trigger: str | None = None,
    real_money: bool = False,
) -> GateInputs:
    return GateInputs(
        proposal=offer or proposal(),
        control_state=state,
        control_reason="operator",
        data=MarketDataStatus(
            as_of=AS_OF,
            timeframe_ms=STEP,
            last_close_time=last_close,
            missing_bars=missing,
            snapshot_error=snapshot_error,
        ),
        position_fraction=held,
        position_source="test",
        exposure_fraction=held if exposure is None else exposure,
        equity=equity,
        mode=mode,
        live_notional_today=live_today,
        triggers=triggers(failing_trigger),
        real_money=real_money,
    )


def triggers(failing: str | None = None) -> TriggerReport:
    """A trigger report where every check passes but ``failing``."""
    checks = tuple(
        SafetyCheck(name=name, passed=name != failing, detail=f"{name} test")
        for name in TRIGGER_NAMES
    )
    return TriggerReport(symbol="BTC/USDT", as_of=AS_OF, checks=checks, trips=())


def judge(gate_inputs: GateInputs) -> SafetyReport:
    return evaluate(gate_inputs, LIMITS, SAFETY)


def detail(report: SafetyReport, name: str) -> str:
    return next(check.detail for check in report.checks if check.name == name)


def failed(gate_inputs: GateInputs) -> list[str]:
    report = judge(gate_inputs)
    assert [check.name for check in report.checks] == CHECK_NAMES
    return [check.name for check in report.checks if not check.passed]


def test_a_sound_proposal_is_approved_unchanged() -> None:
    report = judge(inputs())
    assert report.verdict == "approved"
    assert (report.action, report.size) == ("buy", 0.05)


@pytest.mark.parametrize(
    ("state", "action", "allowed"),
    [
        ("PAUSED", "buy", False),
        ("PAUSED", "sell", True),
        ("HALTED", "buy", False),
        ("HALTED", "sell", False),
        ("ACTIVE", "sell", True),
    ],
)
def test_control_state_pauses_entries_and_halts_everything(
    state: ControlStateName, action: Action, allowed: bool
) -> None:
    report = judge(inputs(proposal(action), state=state))
    assert (report.verdict != "blocked") is allowed
    if not allowed:
        assert report.action == "hold"
        assert report.size == 0.0


def test_a_candle_older_than_one_bar_is_stale() -> None:
    assert failed(inputs(last_close=AS_OF - STEP + 1)) == []
    assert failed(inputs(last_close=AS_OF - STEP)) == ["data_freshness"]
    assert failed(inputs(last_close=None)) == ["data_freshness"]


def test_gaps_beyond_the_profile_limit_block() -> None:
    assert failed(inputs(missing=LIMITS.max_missing_bars)) == []
    assert failed(inputs(missing=LIMITS.max_missing_bars + 1)) == ["data_gaps"]


def test_missing_indicators_block_even_a_hold() -> None:
    report = judge(inputs(proposal("hold"), snapshot_error="need 60 candles"))
    assert report.verdict == "blocked"
    assert [c.detail for c in report.checks if not c.passed] == ["need 60 candles"]


def test_low_confidence_blocks_a_trade_but_not_a_hold() -> None:
    assert failed(inputs(proposal(confidence=LIMITS.min_confidence - 0.01))) == ["min_confidence"]
    assert failed(inputs(proposal("hold", confidence=0.0))) == []


def test_an_oversized_buy_is_reduced_to_the_room_left() -> None:
    report = judge(inputs(proposal(size=0.08), held=0.04))
    assert report.verdict == "reduced"
    assert report.size == pytest.approx(LIMITS.max_position_fraction - 0.04)
    assert "clamped from 0.0800 to 0.0600 by max_position" in detail(report, "max_position")


def test_a_full_position_blocks_a_further_buy_but_not_a_sell() -> None:
    assert failed(inputs(held=LIMITS.max_position_fraction)) == ["max_position"]
    assert failed(inputs(proposal("sell"), held=LIMITS.max_position_fraction)) == []


def test_total_exposure_in_the_quote_currency_reduces_a_buy_to_the_room_left() -> None:
    report = judge(inputs(proposal(size=0.08), exposure=0.35))
    assert report.verdict == "reduced"
    assert report.size == pytest.approx(0.05)
    assert "clamped from 0.0800 to 0.0500 by max_total_exposure" in detail(
        report, "max_total_exposure"
    )
    assert "within" in detail(report, "max_position")


def test_clamps_apply_one_after_another_and_each_is_recorded() -> None:
    report = judge(inputs(proposal(size=0.08), held=0.04, exposure=0.37))
    assert report.verdict == "reduced"
    assert report.size == pytest.approx(0.03)
    assert "clamped from 0.0800 to 0.0600 by max_position" in detail(report, "max_position")
    assert "clamped from 0.0600 to 0.0300 by max_total_exposure" in detail(
        report, "max_total_exposure"
    )


def test_full_total_exposure_blocks_a_buy_but_not_a_sell() -> None:
    full = LIMITS.max_total_exposure_fraction
    assert failed(inputs(exposure=full)) == ["max_total_exposure"]
    assert failed(inputs(proposal("sell"), exposure=full)) == []


@pytest.mark.parametrize("mode", ["sim", "replay", "backtest"])
def test_live_caps_do_not_apply_outside_live_mode(mode: Mode) -> None:
    report = judge(inputs(proposal(size=0.05), mode=mode, live_today=1e9))
    assert (report.verdict, report.size) == ("approved", 0.05)
    assert detail(report, "live_order_cap") == f"mode {mode}: no live caps"


@pytest.mark.parametrize("mode", ["sim", "replay", "backtest"])
def test_a_real_money_broker_is_under_the_live_caps_whatever_the_mode(mode: Mode) -> None:
    report = judge(inputs(proposal(size=0.05), mode=mode, real_money=True))
    assert report.verdict == "reduced"
    assert report.size == pytest.approx(SAFETY.live_max_order_notional / EQUITY)
    spent = SAFETY.live_max_daily_notional
    assert failed(inputs(mode=mode, live_today=spent, real_money=True)) == ["live_daily_cap"]


def test_a_live_buy_is_reduced_to_the_per_order_cap() -> None:
    report = judge(inputs(proposal(size=0.05), mode="live"))
    assert report.verdict == "reduced"
    assert report.size == pytest.approx(SAFETY.live_max_order_notional / EQUITY)
    assert "clamped from 0.0500 to 0.0010 by live_order_cap" in detail(report, "live_order_cap")
    within = judge(inputs(proposal(size=5.0 / EQUITY), mode="live"))
    assert (within.verdict, within.size) == ("approved", 5.0 / EQUITY)


def test_a_live_buy_is_reduced_to_what_the_daily_cap_leaves_and_blocked_once_it_is_used() -> None:
    today = SAFETY.live_max_daily_notional - 5.0
    report = judge(inputs(proposal(size=0.05), mode="live", live_today=today))
    assert report.size == pytest.approx(5.0 / EQUITY)
    assert "clamped from 0.0010 to 0.0005 by live_daily_cap" in detail(report, "live_daily_cap")
    for used in (SAFETY.live_max_daily_notional, SAFETY.live_max_daily_notional + 1.0):
        assert failed(inputs(mode="live", live_today=used)) == ["live_daily_cap"]


def test_live_caps_leave_exits_alone_and_refuse_a_buy_without_equity() -> None:
    spent = SAFETY.live_max_daily_notional
    exit_report = judge(inputs(proposal("sell", size=0.5), mode="live", live_today=spent))
    assert (exit_report.verdict, exit_report.size) == ("approved", 0.5)
    assert failed(inputs(mode="live", equity=0.0)) == ["live_order_cap", "live_daily_cap"]


@pytest.mark.parametrize("trigger", TRIGGER_NAMES)
def test_a_failed_trigger_stops_entries_but_lets_exits_and_holds_through(trigger: str) -> None:
    assert failed(inputs(failing_trigger=trigger)) == [trigger]
    for action in ("sell", "hold"):
        report = judge(inputs(proposal(action), failing_trigger=trigger))
        assert report.verdict == "approved"
        assert detail(report, trigger) == f"{trigger} test; {action} allowed"


def test_a_trigger_report_of_another_instant_is_refused() -> None:
    stale = replace(inputs(), triggers=replace(triggers(), as_of=AS_OF - STEP))
    with pytest.raises(ValueError, match="trigger report"):
        judge(stale)


def test_a_blocked_buy_still_lists_every_check_and_its_clamps() -> None:
    report = judge(inputs(proposal(size=0.08), held=0.04, failing_trigger="slippage"))
    assert (report.verdict, report.action, report.size) == ("blocked", "hold", 0.0)
    assert [check.name for check in report.checks] == CHECK_NAMES
    assert "clamped from 0.0800 to 0.0600 by max_position" in detail(report, "max_position")
