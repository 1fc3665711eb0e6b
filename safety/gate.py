"""The pre-trade gate: deterministic checks that approve, reduce or block a proposal.

No model or LLM is consulted here; every check says pass or fail and why (DESIGN §6). The
checks run in this order (GATE_CHECKS), all of them every time (none short-circuits):

1. control_state, data_freshness, data_gaps, indicators, min_confidence;
2. sizing, each on the size the one before it left: max_position, max_total_exposure,
   live_order_cap, live_daily_cap. A buy larger than a check's room is reduced to it and the
   check's detail records "clamped from X to Y by <check>"; no room left fails the check;
3. the auto-pause triggers, as safety.triggers ruled them: consecutive_losses,
   daily_loss, api_error_burst, sentiment_collapse, circuit_breaker, slippage. A failed one
   stops new entries (buys) in this decision; exits and holds go through.

Any failed check blocks (hold, size 0); otherwise a size below the proposal's is "reduced".

``rule_gate`` rules on numbers alone (GateFigures and the triggers' passes), building no
text and no model object, so a backtest can rule bar after bar; ``evaluate`` is that
ruling with each check's words, the SafetyReport a decision records.
"""

from dataclasses import dataclass
from typing import Literal, NamedTuple

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
from safety.triggers import TRIGGER_NAMES, TriggerReport

# GATE_CHECKS: these, the sizing checks, then the trigger checks.
FIRST_CHECKS = ("control_state", "data_freshness", "data_gaps", "indicators", "min_confidence")
SIZING_CHECKS = ("max_position", "max_total_exposure", "live_order_cap", "live_daily_cap")
GATE_CHECKS = (*FIRST_CHECKS, *SIZING_CHECKS, *TRIGGER_NAMES)
_TRIGGERS_START = len(FIRST_CHECKS) + len(SIZING_CHECKS)


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


class GateFigures(NamedTuple):
    """The numbers the gate rules on: GateInputs without its words and its trigger report."""

    action: Action
    size: float
    confidence: float
    control_state: ControlStateName
    as_of: int
    timeframe_ms: int
    last_close_time: int | None
    missing_bars: int
    indicators_computed: bool
    position_fraction: float
    exposure_fraction: float
    equity: float
    mode: Mode
    live_notional_today: float
    real_money: bool


def gate_figures(inputs: GateInputs) -> GateFigures:
    """The numbers of the inputs, as a caller holding no proposal or report gives them."""
    proposal, data = inputs.proposal, inputs.data
    return GateFigures(
        proposal.action,
        proposal.size,
        proposal.confidence,
        inputs.control_state,
        data.as_of,
        data.timeframe_ms,
        data.last_close_time,
        data.missing_bars,
        data.snapshot_error is None,
        inputs.position_fraction,
        inputs.exposure_fraction,
        inputs.equity,
        inputs.mode,
        inputs.live_notional_today,
        inputs.real_money,
    )


# How a sizing check treated the size it was given.
SizeOutcome = Literal[
    "not_a_buy",  # exits and holds are not limited
    "not_live",  # the live caps apply to a live decision or a real-money broker only
    "no_equity",  # a live buy cannot be sized without equity (fails)
    "no_room",  # nothing left below the limit (fails)
    "clamped",  # larger than the room: reduced to it
    "within",
]


class SizeStep(NamedTuple):
    """One sizing check: what it did to the size before it (``size``), leaving ``left``."""

    passed: bool
    outcome: SizeOutcome
    size: float
    # The room the limit leaves, a fraction of equity; NaN where the check does not limit.
    room: float
    left: float


class GateRuling(NamedTuple):
    """Each check's pass in GATE_CHECKS order, the verdict and what stands after it, and
    the numbers the checks' words describe."""

    passed: tuple[bool, ...]
    verdict: Verdict
    action: Action
    size: float
    data_age_ms: int | None  # as_of - the newest close; None without a closed candle
    data_age_limit_ms: int
    sizing: tuple[SizeStep, SizeStep, SizeStep, SizeStep]  # in SIZING_CHECKS order


_NOT_LIMITED = float("nan")
_NO_TRIGGER_STOPS = (True,) * len(TRIGGER_NAMES)


def rule_gate(
    figures: GateFigures,
    trigger_passed: tuple[bool, ...],
    limits: RiskLimits,
    safety: SafetySettings,
) -> GateRuling:
    """Rule every check in GATE_CHECKS order; ``trigger_passed`` in TRIGGER_NAMES order."""
    if len(trigger_passed) != len(TRIGGER_NAMES):
        raise ValueError(f"{len(trigger_passed)} trigger passes given, {len(TRIGGER_NAMES)} due")
    action, state, size = figures.action, figures.control_state, figures.size
    buy = action == "buy"
    # PAUSED lets exits (sell) out but no new entries; HALTED lets nothing out.
    control = state == "ACTIVE" or (state == "PAUSED" and not buy)
    # The newest closed candle must be the one that closed most recently before as_of.
    age_limit_ms = int(limits.freshness_bars * figures.timeframe_ms)
    last_close = figures.last_close_time
    age_ms = None if last_close is None else figures.as_of - last_close
    # A buy may fill the position and the quote currency's exposure up to their maximums.
    if buy:
        position = _clamp(size, limits.max_position_fraction - figures.position_fraction)
        exposure_room = limits.max_total_exposure_fraction - figures.exposure_fraction
        exposure = _clamp(position.left, exposure_room)
    else:
        position = exposure = SizeStep(True, "not_a_buy", size, _NOT_LIMITED, size)
    # The live caps limit a live buy's notional (mode live, or any buy of a real-money
    # broker). Exits are not capped: holding one back would keep risk on, not take it off
    # (and a sell is bounded by the position).
    if figures.mode != "live" and not figures.real_money:
        order_cap = daily_cap = SizeStep(
            True, "not_live", exposure.left, _NOT_LIMITED, exposure.left
        )
    elif not buy:
        order_cap = daily_cap = exposure  # not a buy, as the exposure check found
    elif figures.equity <= 0.0:
        order_cap = SizeStep(False, "no_equity", exposure.left, _NOT_LIMITED, 0.0)
        daily_cap = SizeStep(False, "no_equity", 0.0, _NOT_LIMITED, 0.0)
    else:
        order_cap = _clamp(exposure.left, safety.live_max_order_notional / figures.equity)
        daily_room = safety.live_max_daily_notional - figures.live_notional_today
        daily_cap = _clamp(order_cap.left, daily_room / figures.equity)
    passed = (
        control,
        age_ms is not None and age_ms < age_limit_ms,
        figures.missing_bars <= limits.max_missing_bars,
        figures.indicators_computed,
        action == "hold" or figures.confidence >= limits.min_confidence,
        position.passed,
        exposure.passed,
        order_cap.passed,
        daily_cap.passed,
        # A failed trigger stops new entries; an exit or a hold goes through.
        *(trigger_passed if buy else _NO_TRIGGER_STOPS),
    )
    verdict: Verdict
    size_left = daily_cap.left
    if not all(passed):
        verdict, action, size_left = "blocked", "hold", 0.0
    elif size_left < size:
        verdict = "reduced"
    else:
        verdict = "approved"
    sizing = (position, exposure, order_cap, daily_cap)
    return GateRuling(passed, verdict, action, size_left, age_ms, age_limit_ms, sizing)


def _clamp(size: float, room: float) -> SizeStep:
    """Let a buy through up to ``room`` (a fraction of equity): reduced to it when larger;
    blocked when no room is left."""
    if room <= 0.0:
        return SizeStep(False, "no_room", size, room, 0.0)
    if size > room:
        return SizeStep(True, "clamped", size, room, room)
    return SizeStep(True, "within", size, room, size)


def evaluate(inputs: GateInputs, limits: RiskLimits, safety: SafetySettings) -> SafetyReport:
    """Rule every check in the order the module describes, and say why each passed or
    failed."""
    if inputs.triggers.as_of != inputs.data.as_of:
        raise ValueError(
            f"trigger report of {format_timestamp(inputs.triggers.as_of)} given to a decision "
            f"as of {format_timestamp(inputs.data.as_of)}"
        )
    triggers = inputs.triggers.checks
    trigger_passed = tuple([check.passed for check in triggers])
    ruling = rule_gate(gate_figures(inputs), trigger_passed, limits, safety)
    passed = ruling.passed
    position_step, exposure_step, order_cap_step, daily_cap_step = ruling.sizing
    data, proposal = inputs.data, inputs.proposal
    details = (
        _control_words(inputs, passed[0]),
        _freshness_words(data, ruling),
        f"{data.missing_bars} missing candles in the window (limit {limits.max_missing_bars})",
        _indicators_words(data),
        _confidence_words(proposal, limits),
        _position_words(inputs, limits, position_step),
        _exposure_words(inputs, limits, exposure_step),
        _order_cap_words(inputs, safety, order_cap_step),
        _daily_cap_words(inputs, safety, daily_cap_step),
    )
    own = zip(GATE_CHECKS[:_TRIGGERS_START], passed[:_TRIGGERS_START], details, strict=True)
    checks = (
        *[SafetyCheck(name=name, passed=ok, detail=detail) for name, ok, detail in own],
        *[
            _entry_check(trigger, entry, proposal.action)
            for trigger, entry in zip(triggers, passed[_TRIGGERS_START:], strict=True)
        ],
    )
    return SafetyReport(
        verdict=ruling.verdict,
        control_state=inputs.control_state,
        checks=checks,
        action=ruling.action,
        size=ruling.size,
    )


def _control_words(inputs: GateInputs, passed: bool) -> str:
    state, action = inputs.control_state, inputs.proposal.action
    if state == "ACTIVE":
        return "ACTIVE"
    allowed = "allowed" if passed else "not allowed"
    return f"{state} ({inputs.control_reason}); {action} {allowed}"


def _freshness_words(data: MarketDataStatus, ruling: GateRuling) -> str:
    if data.last_close_time is None or ruling.data_age_ms is None:
        return "no closed candles stored"
    return (
        f"newest candle closed {format_timestamp(data.last_close_time)}, "
        f"{ruling.data_age_ms // 1000} s before as_of "
        f"(must be < {ruling.data_age_limit_ms // 1000} s)"
    )


def _indicators_words(data: MarketDataStatus) -> str:
    return "all indicators computed" if data.snapshot_error is None else data.snapshot_error


def _confidence_words(proposal: Proposal, limits: RiskLimits) -> str:
    if proposal.action == "hold":
        return "hold: nothing to trade"
    return f"confidence {proposal.confidence:.3f} vs minimum {limits.min_confidence:.3f}"


def _position_words(inputs: GateInputs, limits: RiskLimits, step: SizeStep) -> str:
    held = f"held {inputs.position_fraction:.4f} of equity ({inputs.position_source})"
    if step.outcome == "not_a_buy":
        return held
    context = f"{held}, maximum {limits.max_position_fraction:.4f}"
    return _clamp_words("max_position", step, context)


def _exposure_words(inputs: GateInputs, limits: RiskLimits, step: SizeStep) -> str:
    held = f"positions in this quote currency hold {inputs.exposure_fraction:.4f} of equity"
    if step.outcome == "not_a_buy":
        return held
    context = f"{held}, maximum {limits.max_total_exposure_fraction:.4f}"
    return _clamp_words("max_total_exposure", step, context)


def _order_cap_words(inputs: GateInputs, safety: SafetySettings, step: SizeStep) -> str:
    cap = safety.live_max_order_notional
    return _live_cap_words("live_order_cap", inputs, step, f"per-order cap {cap:.6g}")


def _daily_cap_words(inputs: GateInputs, safety: SafetySettings, step: SizeStep) -> str:
    cap = safety.live_max_daily_notional
    context = f"{inputs.live_notional_today:.6g} bought live today, daily cap {cap:.6g}"
    return _live_cap_words("live_daily_cap", inputs, step, context)


def _live_cap_words(name: str, inputs: GateInputs, step: SizeStep, context: str) -> str:
    equity = inputs.equity
    if step.outcome == "not_live":
        return f"mode {inputs.mode}: no live caps"
    if step.outcome == "not_a_buy":
        return f"{inputs.proposal.action}: not capped"
    if step.outcome == "no_equity":
        return f"{context}; equity {equity:.6g}: a live order cannot be sized"
    context += f"; notional {step.size * equity:.6g} of equity {equity:.6g}"
    return _clamp_words(name, step, context)


def _clamp_words(name: str, step: SizeStep, context: str) -> str:
    if step.outcome == "no_room":
        return f"{context}; no room left"
    if step.outcome == "clamped":
        return f"{context}; clamped from {step.size:.4f} to {step.room:.4f} by {name}"
    return f"{context}; size {step.size:.4f} within the room of {step.room:.4f}"


def _entry_check(trigger: SafetyCheck, entry_passed: bool, action: Action) -> SafetyCheck:
    """The trigger's check as the gate counts it: a failed one that does not stop this
    decision (an exit or a hold) goes through, saying so."""
    if entry_passed == trigger.passed:
        return trigger
    return SafetyCheck(name=trigger.name, passed=True, detail=f"{trigger.detail}; {action} allowed")
