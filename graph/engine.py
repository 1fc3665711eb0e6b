"""``decide(symbol, as_of)``: the one decision path live trading, replay and backtest share.

Around the graph, at the decision's own clock (as_of): fills due by then are booked and
ended cool-downs lifted before it runs; after it, the record and the safety events it
raised are stored in one transaction, then any tripped trigger pauses its scope.
"""

import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Protocol

from langchain_core.language_models import BaseChatModel

from agents.providers import chat_backends
from core.decision import Abstained, Decision, Mode
from core.hashing import hash_json
from core.settings import ModelRole, Settings
from core.timeframes import now_ms, timeframe_ms
from execution.broker import BookKeepingBroker, Broker
from execution.paper import PaperBroker
from graph.builder import build_graph
from graph.record import build_decision
from graph.state import (
    BookInputs,
    ControlView,
    DecisionRequest,
    DecisionServices,
    DecisionState,
)
from rl.registry import MODELS_FOLDER, ActiveModel, ModelRegistry
from safety.control import ControlError, ControlService
from safety.events import gate_events
from safety.triggers import Trip
from storage.api_errors import ApiErrorStore
from storage.control import ControlStore
from storage.decisions import DecisionStore
from storage.engine import Database
from storage.market_view import StoredMarketView
from storage.model_replies import ModelReplyStore

MINUTE_MS = 60_000


class DecisionEngine:
    """Builds the graph once; each call reads through MarketView(as_of), decides, persists."""

    def __init__(
        self,
        settings: Settings,
        database: Database,
        broker: BookKeepingBroker | None = None,
        chat_models: Mapping[ModelRole, BaseChatModel] | None = None,
    ) -> None:
        """``chat_models``: a ready chat model for a model-backed role, used instead of
        building the provider's from its spec (which stays what the config hash names)."""
        self._settings = settings
        self._decisions = DecisionStore(database)
        self.broker: BookKeepingBroker = broker or PaperBroker(database, settings.paper)
        self.control = ControlService(database, self.broker, settings)
        control = ControlStore(database)
        api_errors = ApiErrorStore(database.session_factory)
        window_ms = settings.safety.api_error_window_seconds * 1000

        def control_view(symbol: str) -> ControlView:
            current = control.current(symbol)
            return ControlView(state=current.state, reason=current.reason)

        def book(request: DecisionRequest) -> BookInputs:
            previous = self._decisions.previous_as_of(
                request.symbol, request.timeframe, request.as_of
            )
            return BookInputs(
                portfolio=self.broker.portfolio(request.as_of),
                new_fills=tuple(self.broker.fills(previous, request.as_of)),
                previous_decision_at=previous,
                api_error_times=tuple(
                    api_errors.times_since(request.as_of - window_ms, request.as_of)
                ),
            )

        self.services = DecisionServices(
            settings=settings,
            market_view=lambda as_of: StoredMarketView(
                database.session_factory, as_of, settings.book.staleness_seconds * 1000
            ),
            control=control_view,
            book=book,
            broker=self.broker,
            rl_model=ModelRegistry(settings.home / MODELS_FOLDER).load_active(),
            chat=chat_backends(settings.llm, ModelReplyStore(database), chat_models),
        )
        self._graph = build_graph(self.services)
        self._config_hash = config_hash(settings, self.services.rl_model)

    async def decide_async(
        self,
        symbol: str,
        timeframe: str,
        as_of: int,
        mode: Mode | None = None,
        place_orders: bool = True,
    ) -> Decision:
        before_steps(self.broker, self.control, as_of)
        request = DecisionRequest(
            decision_id=str(uuid.uuid4()),
            symbol=symbol,
            timeframe=timeframe,
            timeframe_ms=timeframe_ms(timeframe),
            as_of=as_of,
            mode=mode,
            place_orders=place_orders,
        )
        started = time.perf_counter()
        state = await self.run_steps({"request": request, "timings_ms": {}})
        state["timings_ms"]["graph"] = (time.perf_counter() - started) * 1000.0
        created_at = now_ms()
        decision = build_decision(
            state, created_at=created_at, config_hash=self._config_hash, broker=self.broker.name
        )
        events = gate_events(symbol, decision.proposal, decision.safety, created_at)
        self._decisions.save(decision, events)
        after_steps(self.control, state["triggers"].trips, as_of, self._settings)
        return decision

    async def run_steps(self, state: DecisionState) -> DecisionState:
        """The decision's steps: the compiled graph (the benchmark swaps in a plain loop)."""
        result: DecisionState = await self._graph.ainvoke(state)
        return result

    def decide(
        self,
        symbol: str,
        timeframe: str,
        as_of: int,
        mode: Mode | None = None,
        place_orders: bool = True,
    ) -> Decision:
        """Synchronous entry point for the CLI and scripts (runs its own event loop)."""
        return asyncio.run(self.decide_async(symbol, timeframe, as_of, mode, place_orders))


class Pausing(Protocol):
    """What a tripped trigger pauses: the stored control state, or a backtest's own."""

    def pause(
        self,
        actor: str,
        reason: str,
        now_ms: int,
        symbol: str | None = None,
        cool_down_until: int | None = None,
    ) -> object: ...


class Resuming(Pausing, Protocol):
    """A control state that also lifts the pauses whose cool-down has ended."""

    def auto_resume_due(self, now_ms: int) -> object: ...


def before_steps(broker: Broker, control: Resuming, as_of: int) -> None:
    """What comes before a decision's steps: the fills due booked (the book the decision
    reads holds them) and the pauses whose cool-down has ended lifted."""
    broker.process_fills(as_of)
    control.auto_resume_due(as_of)


def after_steps(control: Pausing, trips: Iterable[Trip], as_of: int, settings: Settings) -> None:
    """What comes after them: each tripped trigger pauses its scope."""
    for trip in trips:
        pause_for(control, trip, as_of, settings)


def pause_for(control: Pausing, trip: Trip, as_of: int, settings: Settings) -> None:
    """A tripped trigger pauses its scope until its cool-down ends (HALTED stays HALTED)."""
    cool_down_ms = settings.limits.cool_down_minutes * MINUTE_MS
    # Under HALTED the pause is refused: HALTED is stricter, and a pause would lift it.
    with contextlib.suppress(ControlError):
        control.pause(
            actor=f"trigger:{trip.name}",
            reason=trip.reason,
            now_ms=as_of,
            symbol=trip.symbol if trip.scope == "symbol" else None,
            cool_down_until=as_of + cool_down_ms,
        )


def config_hash(settings: Settings, rl_model: ActiveModel | Abstained) -> str:
    """The hash of everything configured that changes what a decision says; the active RL
    model changes it as much as any setting does."""
    active = rl_model.policy.model_id if isinstance(rl_model, ActiveModel) else None
    return hash_json({**settings.decision_config(), "rl_model": active})
