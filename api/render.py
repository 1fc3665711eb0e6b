"""Human-readable text for decisions, imports and listings (the CLI's output)."""

from collections.abc import Sequence

from core.decision import DebateTurn, Decision, ModelCall

STRONGEST_PER_SIDE = 3


def _strongest(turns: Sequence[DebateTurn], speaker: str) -> list[DebateTurn]:
    own = [turn for turn in turns if turn.speaker == speaker and turn.kind == "argument"]
    return sorted(own, key=lambda turn: (-turn.strength, turn.index))[:STRONGEST_PER_SIDE]


def render_decision(decision: Decision) -> str:
    proposal, safety = decision.proposal, decision.safety
    lines = [
        f"{decision.symbol} {decision.timeframe} as of {decision.as_of}  [{decision.mode}]  "
        f"id {decision.id}",
        f"  decision: {safety.action.upper()} size {safety.size:.4f} of equity  "
        f"(gate: {safety.verdict}, control {safety.control_state})",
        f"  proposal: {proposal.action} size {proposal.size:.4f}  score {proposal.score:+.3f}  "
        f"confidence {proposal.confidence:.3f}",
        f"            {proposal.reason}",
    ]
    signals = decision.signals
    for name, signal in (("debate", signals.debate), ("rl", signals.rl)):
        lines.append(f"  {name:<9} {_signal_text(signal.model_dump())}")
    lines.append(f"  {'sentiment':<9} {_signal_text(signals.sentiment.model_dump())}")
    for speaker in ("bull", "bear"):
        strongest = _strongest(decision.debate, speaker)
        lines.append(f"  {speaker}:")
        if not strongest:
            lines.append("    (no debate took place)")
        for turn in strongest:
            lines.append(f"    [{turn.strength:.2f}] {turn.claim}")
    lines.extend(_model_lines(decision.debate))
    lines.append("  gate checks:")
    for check in safety.checks:
        mark = "pass" if check.passed else "FAIL"
        lines.append(f"    {mark}  {check.name}: {check.detail}")
    lines.append(f"  execution: {decision.execution.status} ({decision.execution.reason})")
    return "\n".join(lines)


def _model_lines(turns: Sequence[DebateTurn]) -> list[str]:
    """One line per model-backed speaker: its backend, whether its answer stood, the cost."""
    calls: dict[str, ModelCall] = {}
    for turn in turns:
        if turn.model is not None:
            calls.setdefault(turn.speaker, turn.model)
    if not calls:
        return []
    lines = ["  models:"]
    for speaker, call in calls.items():
        outcome = f"fell back to the rules: {call.reason}" if call.fallback else "answered"
        lines.append(
            f"    {speaker}: {call.backend} {outcome} ({call.input_tokens}+{call.output_tokens} "
            f"tokens, {call.latency_ms:.0f} ms)"
        )
    return lines


def _signal_text(fields: dict[str, object]) -> str:
    if fields.get("status") == "abstained":
        return f"abstained: {fields['reason']}"
    shown = {key: value for key, value in fields.items() if key != "status"}
    return ", ".join(
        f"{key} {value:.3f}" if isinstance(value, float) else f"{key} {value}"
        for key, value in shown.items()
    )
