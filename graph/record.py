"""Turn a finished graph state into the immutable decision record of DESIGN §4."""

from core.decision import (
    DebateTurn,
    Decision,
    Execution,
    InputHashes,
    Mode,
    SafetyReport,
    Signals,
)
from core.hashing import hash_json
from core.timeframes import format_timestamp
from core.version import ENGINE_VERSION
from graph.state import DecisionState, MarketInputs


def mode_for(market: MarketInputs) -> Mode:
    """Simulated candles make a `sim` decision; anything else decided here is a replay."""
    sources = market.window.sources
    return "sim" if sources and all(source == "sim" for source in sources) else "replay"


def input_hashes(market: MarketInputs) -> InputHashes:
    return InputHashes(
        candles=market.window.content_hash(),
        news=hash_json([item.model_dump() for item in market.news]),
        research=hash_json([item.model_dump() for item in market.research]),
    )


def execution_for(safety: SafetyReport) -> Execution:
    """What happened after the gate. This engine version has no broker, and says so."""
    if safety.verdict == "blocked":
        failed = ", ".join(check.name for check in safety.checks if not check.passed)
        return Execution(status="not_executed", reason=f"blocked by the gate: {failed}")
    if safety.action == "hold":
        return Execution(status="not_executed", reason="hold: nothing to execute")
    return Execution(
        status="not_executed", reason="decide-only run: no broker attached, no order sent"
    )


def build_decision(
    state: DecisionState,
    *,
    decision_id: str,
    created_at: int,
    mode: Mode | None,
    config_hash: str,
) -> Decision:
    request, market = state["request"], state["market"]
    outcome = state.get("debate")
    turns: tuple[DebateTurn, ...] = outcome.turns if outcome is not None else ()
    return Decision(
        id=decision_id,
        symbol=request.symbol,
        timeframe=request.timeframe,
        as_of=format_timestamp(request.as_of),
        created_at=format_timestamp(created_at),
        mode=mode or mode_for(market),
        engine_version=ENGINE_VERSION,
        config_hash=config_hash,
        inputs=input_hashes(market),
        evidence=market.snapshot.evidence() if market.snapshot else (),
        proposal=state["proposal"],
        signals=Signals(
            debate=state["debate_signal"], rl=state["rl"], sentiment=state["sentiment"]
        ),
        debate=turns,
        safety=state["safety"],
        execution=execution_for(state["safety"]),
        timings_ms=dict(sorted(state["timings_ms"].items())),
    )
