"""The pre-trade gate: deterministic checks that approve, reduce or block a proposal.

No model or LLM is consulted here; every check says pass or fail and why (DESIGN §6).
"""

from dataclasses import dataclass

from core.decision import (
    Action,
    ControlStateName,
    Proposal,
    SafetyCheck,
    SafetyReport,
    Verdict,
)
from core.settings import RiskLimits
from core.timeframes import format_timestamp


@dataclass(frozen=True)
class MarketDataStatus:
    """What the gate needs to know about the candles a decision stood on."""

    as_of: int
    timeframe_ms: int
    last_close_time: int | None
    missing_bars: int
    snapshot_error: str | None


@dataclass(frozen=True)
class GateInputs:
    proposal: Proposal
    control_state: ControlStateName
    control_reason: str
    data: MarketDataStatus
    position_fraction: float
    position_source: str


def check_control_state(action: Action, state: ControlStateName, reason: str) -> SafetyCheck:
    """PAUSED lets exits (sell) out but no new entries; HALTED lets nothing out."""
    if state == "ACTIVE":
        return SafetyCheck(name="control_state", passed=True, detail="ACTIVE")
    if state == "PAUSED" and action in ("sell", "hold"):
        return SafetyCheck(
            name="control_state", passed=True, detail=f"PAUSED ({reason}); {action} allowed"
        )
    return SafetyCheck(
        name="control_state", passed=False, detail=f"{state} ({reason}); {action} not allowed"
    )


def check_freshness(data: MarketDataStatus, limits: RiskLimits) -> SafetyCheck:
    """The newest closed candle must be the one that closed most recently before as_of."""
    limit_ms = int(limits.freshness_bars * data.timeframe_ms)
    if data.last_close_time is None:
        return SafetyCheck(name="data_freshness", passed=False, detail="no closed candles stored")
    age_ms = data.as_of - data.last_close_time
    detail = (
        f"newest candle closed {format_timestamp(data.last_close_time)}, "
        f"{age_ms // 1000} s before as_of (must be < {limit_ms // 1000} s)"
    )
    return SafetyCheck(name="data_freshness", passed=age_ms < limit_ms, detail=detail)


def check_gaps(data: MarketDataStatus, limits: RiskLimits) -> SafetyCheck:
    detail = f"{data.missing_bars} missing candles in the window (limit {limits.max_missing_bars})"
    return SafetyCheck(
        name="data_gaps", passed=data.missing_bars <= limits.max_missing_bars, detail=detail
    )


def check_snapshot(data: MarketDataStatus) -> SafetyCheck:
    if data.snapshot_error is None:
        return SafetyCheck(name="indicators", passed=True, detail="all indicators computed")
    return SafetyCheck(name="indicators", passed=False, detail=data.snapshot_error)


def check_confidence(proposal: Proposal, limits: RiskLimits) -> SafetyCheck:
    if proposal.action == "hold":
        return SafetyCheck(name="min_confidence", passed=True, detail="hold: nothing to trade")
    detail = f"confidence {proposal.confidence:.3f} vs minimum {limits.min_confidence:.3f}"
    return SafetyCheck(
        name="min_confidence",
        passed=proposal.confidence >= limits.min_confidence,
        detail=detail,
    )


def position_room(inputs: GateInputs, limits: RiskLimits) -> tuple[SafetyCheck, float]:
    """Clamp a buy to the room left under the maximum position; returns the check and size."""
    proposal = inputs.proposal
    held = f"held {inputs.position_fraction:.4f} of equity ({inputs.position_source})"
    if proposal.action != "buy":
        return SafetyCheck(name="max_position", passed=True, detail=held), proposal.size
    room = max(0.0, limits.max_position_fraction - inputs.position_fraction)
    if room <= 0.0:
        detail = f"{held}; maximum {limits.max_position_fraction:.4f} reached"
        return SafetyCheck(name="max_position", passed=False, detail=detail), 0.0
    if proposal.size > room:
        detail = f"{held}; size {proposal.size:.4f} reduced to {room:.4f} (clamped to maximum)"
        return SafetyCheck(name="max_position", passed=True, detail=detail), room
    detail = f"{held}; size {proposal.size:.4f} within maximum {limits.max_position_fraction:.4f}"
    return SafetyCheck(name="max_position", passed=True, detail=detail), proposal.size


def evaluate(inputs: GateInputs, limits: RiskLimits) -> SafetyReport:
    """Run every check (none short-circuits, so the record lists them all) and rule."""
    proposal = inputs.proposal
    sizing, size = position_room(inputs, limits)
    checks = (
        check_control_state(proposal.action, inputs.control_state, inputs.control_reason),
        check_freshness(inputs.data, limits),
        check_gaps(inputs.data, limits),
        check_snapshot(inputs.data),
        check_confidence(proposal, limits),
        sizing,
    )
    verdict: Verdict
    if not all(check.passed for check in checks):
        verdict, action, size = "blocked", "hold", 0.0
    elif size < proposal.size:
        verdict, action = "reduced", proposal.action
    else:
        verdict, action = "approved", proposal.action
    return SafetyReport(
        verdict=verdict,
        control_state=inputs.control_state,
        checks=checks,
        action=action,
        size=size,
    )
