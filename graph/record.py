"""Turn a finished graph state into the immutable decision record of DESIGN §4."""

from core.decision import (
    DebateTurn,
    Decision,
    InputHashes,
    Signals,
)
from core.hashing import hash_json
from core.timeframes import format_timestamp
from core.version import ENGINE_VERSION
from graph.state import DecisionState, MarketInputs


def input_hashes(market: MarketInputs) -> InputHashes:
    return InputHashes(
        candles=market.window.content_hash(),
        news=hash_json([item.model_dump() for item in market.news]),
        research=hash_json([item.model_dump() for item in market.research]),
    )


def build_decision(
    state: DecisionState,
    *,
    created_at: int,
    config_hash: str,
    broker: str,
) -> Decision:
    request, market = state["request"], state["market"]
    outcome = state.get("debate")
    turns: tuple[DebateTurn, ...] = outcome.turns if outcome is not None else ()
    return Decision(
        id=request.decision_id,
        symbol=request.symbol,
        timeframe=request.timeframe,
        as_of=format_timestamp(request.as_of),
        created_at=format_timestamp(created_at),
        mode=market.mode,
        broker=broker,
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
        execution=state["execution"],
        timings_ms=dict(sorted(state["timings_ms"].items())),
    )
