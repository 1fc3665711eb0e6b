"""The pre-trade gate: deterministic checks that approve, reduce or block a proposal.

No model or LLM is consulted here; every check says pass or fail and why (DESIGN §6). The
checks run in this order, all of them every time (none short-circuits):

1. control_state, data_freshness, data_gaps, indicators, min_confidence;
2. sizing, each on the size the one before it left: max_position, max_total_exposure,
   live_order_cap, live_daily_cap. A buy larger than a check's room is reduced to it and the
   check's detail records "clamped from X to Y by <check>"; no room left fails the check;
3. the auto-pause triggers, as safety.triggers reported them: consecutive_losses,
   daily_loss, api_error_burst, sentiment_collapse, circuit_breaker, slippage. A failed one
   stops new entries (buys) in this decision; exits and holds go through.

Any failed check blocks (hold, size 0); otherwise a size below the proposal's is "reduced".
"""

from dataclasses import dataclass

from core.decision import (
    Action,
    ControlStateName,
    Mode,
    Proposal,
    SafetyCheck,
    SafetyReport,
    Verdict,
)
from core.settings import RiskLimits, SafetySettings
from core.timeframes import format_timestamp
from safety.triggers import TriggerReport


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
    # Every open position quoted in the symbol's quote currency, this symbol's included, as
    # a fraction of that currency's equity.
    exposure_fraction: float
    # The quote currency's equity now: turns a size into the notional the live caps limit.
    equity: float
    mode: Mode
    # Real money committed to buys since 00:00 UTC, from the broker's stored orders and fills.
    live_notional_today: float
    triggers: TriggerReport
    # Whether the broker sends real-money orders (a live exchange): the live caps apply then,
    # whatever the mode, as they do to a decision in mode live.
    real_money: bool = False


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


def position_room(inputs: GateInputs, limits: RiskLimits, size: float) -> tuple[SafetyCheck, float]:
    """A buy may fill this symbol's position up to the maximum position, no further."""
    maximum = limits.max_position_fraction
    held = f"held {inputs.position_fraction:.4f} of equity ({inputs.position_source})"
    if inputs.proposal.action != "buy":
        return SafetyCheck(name="max_position", passed=True, detail=held), size
    context = f"{held}, maximum {maximum:.4f}"
    return _clamp("max_position", size, maximum - inputs.position_fraction, context)


def exposure_room(inputs: GateInputs, limits: RiskLimits, size: float) -> tuple[SafetyCheck, float]:
    """A buy may fill the quote currency's total exposure up to its maximum, no further."""
    maximum = limits.max_total_exposure_fraction
    held = f"positions in this quote currency hold {inputs.exposure_fraction:.4f} of equity"
    if inputs.proposal.action != "buy":
        return SafetyCheck(name="max_total_exposure", passed=True, detail=held), size
    context = f"{held}, maximum {maximum:.4f}"
    return _clamp("max_total_exposure", size, maximum - inputs.exposure_fraction, context)


def live_order_cap(
    inputs: GateInputs, safety: SafetySettings, size: float
) -> tuple[SafetyCheck, float]:
    """A live buy's notional (mode live, or any buy of a real-money broker) may not exceed
    the per-order cap."""
    cap = safety.live_max_order_notional
    return _live_cap("live_order_cap", inputs, size, cap, f"per-order cap {cap:.6g}")


def live_daily_cap(
    inputs: GateInputs, safety: SafetySettings, size: float
) -> tuple[SafetyCheck, float]:
    """Today's live buys, this one included, may not exceed the daily cap."""
    cap = safety.live_max_daily_notional
    left = cap - inputs.live_notional_today
    context = f"{inputs.live_notional_today:.6g} bought live today, daily cap {cap:.6g}"
    return _live_cap("live_daily_cap", inputs, size, left, context)


def _live_cap(
    name: str, inputs: GateInputs, size: float, notional_room: float, context: str
) -> tuple[SafetyCheck, float]:
    """Clamp a live buy to ``notional_room`` (quote currency). Exits are not capped: holding
    one back would keep risk on, not take it off (and a sell is bounded by the position)."""
    action, mode = inputs.proposal.action, inputs.mode
    if mode != "live" and not inputs.real_money:
        return SafetyCheck(name=name, passed=True, detail=f"mode {mode}: no live caps"), size
    if action != "buy":
        return SafetyCheck(name=name, passed=True, detail=f"{action}: not capped"), size
    if inputs.equity <= 0.0:
        detail = f"{context}; equity {inputs.equity:.6g}: a live order cannot be sized"
        return SafetyCheck(name=name, passed=False, detail=detail), 0.0
    context += f"; notional {size * inputs.equity:.6g} of equity {inputs.equity:.6g}"
    return _clamp(name, size, notional_room / inputs.equity, context)


def _clamp(name: str, size: float, room: float, context: str) -> tuple[SafetyCheck, float]:
    """Let a buy through up to ``room`` (a fraction of equity): reduced to it when larger,
    with the clamp recorded in the detail; blocked when no room is left."""
    if room <= 0.0:
        return SafetyCheck(name=name, passed=False, detail=f"{context}; no room left"), 0.0
    if size > room:
        detail = f"{context}; clamped from {size:.4f} to {room:.4f} by {name}"
        return SafetyCheck(name=name, passed=True, detail=detail), room
    detail = f"{context}; size {size:.4f} within the room of {room:.4f}"
    return SafetyCheck(name=name, passed=True, detail=detail), size


def entry_check(trigger: SafetyCheck, action: Action) -> SafetyCheck:
    """A failed trigger check stops new entries; an exit or a hold goes through, saying so."""
    if trigger.passed or action == "buy":
        return trigger
    return SafetyCheck(name=trigger.name, passed=True, detail=f"{trigger.detail}; {action} allowed")


def evaluate(inputs: GateInputs, limits: RiskLimits, safety: SafetySettings) -> SafetyReport:
    """Run every check in the order the module describes and rule."""
    proposal = inputs.proposal
    if inputs.triggers.as_of != inputs.data.as_of:
        raise ValueError(
            f"trigger report of {format_timestamp(inputs.triggers.as_of)} given to a decision "
            f"as of {format_timestamp(inputs.data.as_of)}"
        )
    size = proposal.size
    position, size = position_room(inputs, limits, size)
    exposure, size = exposure_room(inputs, limits, size)
    order_cap, size = live_order_cap(inputs, safety, size)
    daily_cap, size = live_daily_cap(inputs, safety, size)
    checks = (
        check_control_state(proposal.action, inputs.control_state, inputs.control_reason),
        check_freshness(inputs.data, limits),
        check_gaps(inputs.data, limits),
        check_snapshot(inputs.data),
        check_confidence(proposal, limits),
        position,
        exposure,
        order_cap,
        daily_cap,
        *(entry_check(trigger, proposal.action) for trigger in inputs.triggers.checks),
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
