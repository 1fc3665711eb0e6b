"""``decide(symbol, as_of)``: the one decision path live trading, replay and backtest share."""

import asyncio
import time
import uuid

from core.decision import Decision, Mode
from core.hashing import hash_json
from core.settings import Settings
from core.timeframes import now_ms, timeframe_ms
from graph.builder import build_graph
from graph.record import build_decision
from graph.state import ControlView, DecisionRequest, DecisionServices, PositionView
from safety.events import gate_events
from storage.control import ControlStore
from storage.decisions import DecisionStore
from storage.engine import Database
from storage.market_view import StoredMarketView

# No broker is attached in this engine version, so nothing is ever held.
FLAT = PositionView(fraction=0.0, source="no broker attached: nothing held")


class DecisionEngine:
    """Builds the graph once; each call reads through MarketView(as_of), decides, persists."""

    def __init__(self, settings: Settings, database: Database) -> None:
        self._settings = settings
        self._decisions = DecisionStore(database.session_factory)
        control = ControlStore(database)

        def control_view(symbol: str) -> ControlView:
            current = control.current(symbol)
            return ControlView(state=current.state, reason=current.reason)

        services = DecisionServices(
            settings=settings,
            market_view=lambda as_of: StoredMarketView(database.session_factory, as_of),
            control=control_view,
            position=lambda _symbol: FLAT,
        )
        self.services = services
        self._graph = build_graph(services)
        self._config_hash = hash_json(settings.decision_config())

    async def decide_async(
        self, symbol: str, timeframe: str, as_of: int, mode: Mode | None = None
    ) -> Decision:
        request = DecisionRequest(
            symbol=symbol, timeframe=timeframe, timeframe_ms=timeframe_ms(timeframe), as_of=as_of
        )
        started = time.perf_counter()
        state = await self._graph.ainvoke({"request": request, "timings_ms": {}})
        state["timings_ms"]["graph"] = (time.perf_counter() - started) * 1000.0
        created_at = now_ms()
        decision = build_decision(
            state,
            decision_id=str(uuid.uuid4()),
            created_at=created_at,
            mode=mode,
            config_hash=self._config_hash,
        )
        events = gate_events(symbol, decision.proposal, decision.safety, created_at)
        self._decisions.save(decision, events)
        return decision

    def decide(self, symbol: str, timeframe: str, as_of: int, mode: Mode | None = None) -> Decision:
        """Synchronous entry point for the CLI and scripts (runs its own event loop)."""
        return asyncio.run(self.decide_async(symbol, timeframe, as_of, mode))
