"""The gate on its own: each check passes and fails where it should, and every one is listed."""

import pytest

from core.decision import Action, ControlStateName, Proposal
from core.settings import RISK_PROFILES
from safety.gate import GateInputs, MarketDataStatus, evaluate

LIMITS = RISK_PROFILES["balanced"]
STEP = 300_000
AS_OF = 1_674_216_000_000
CHECK_NAMES = [
    "control_state",
    "data_freshness",
    "data_gaps",
    "indicators",
    "min_confidence",
    "max_position",
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
    )


def failed(gate_inputs: GateInputs) -> list[str]:
    report = evaluate(gate_inputs, LIMITS)
    assert [check.name for check in report.checks] == CHECK_NAMES
    return [check.name for check in report.checks if not check.passed]


def test_a_sound_proposal_is_approved_unchanged() -> None:
    report = evaluate(inputs(), LIMITS)
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
    report = evaluate(inputs(proposal(action), state=state), LIMITS)
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
    report = evaluate(inputs(proposal("hold"), snapshot_error="need 60 candles"), LIMITS)
    assert report.verdict == "blocked"
    assert [c.detail for c in report.checks if not c.passed] == ["need 60 candles"]


def test_low_confidence_blocks_a_trade_but_not_a_hold() -> None:
    assert failed(inputs(proposal(confidence=LIMITS.min_confidence - 0.01))) == ["min_confidence"]
    assert failed(inputs(proposal("hold", confidence=0.0))) == []


def test_an_oversized_buy_is_reduced_to_the_room_left() -> None:
    report = evaluate(inputs(proposal(size=0.08), held=0.04), LIMITS)
    assert report.verdict == "reduced"
    assert report.size == pytest.approx(LIMITS.max_position_fraction - 0.04)
    sizing = next(check for check in report.checks if check.name == "max_position")
    assert "reduced" in sizing.detail


def test_a_full_position_blocks_a_further_buy_but_not_a_sell() -> None:
    assert failed(inputs(held=LIMITS.max_position_fraction)) == ["max_position"]
    assert failed(inputs(proposal("sell"), held=LIMITS.max_position_fraction)) == []
