"""The historical loop: the decision path over one candle series, bar by bar.

Each bar is decided as ``DecisionEngine.decide`` decides it — fills due are booked and ended
cool-downs lifted at the bar's close, then graph.builder.STEPS run in their order (gather,
bull, bear, researcher, debate, rl, sentiment, fuse, gate, execute), then tripped triggers
pause their scope — with three differences that change no decision: the steps are called
in a plain loop instead of through the compiled LangGraph (which would cost ≈ 2.5 ms a bar),
the market is the series in memory (backtest.market.SeriesView) and the broker and control
state are the in-memory ones (execution.backtest, backtest.control), and the record is built
in full only for the bars asked for (the rest keep the figures the metrics need).

Most bars are decided without the words: their market-only stages come from the plan
(graph.market_plan: indicators, arguments, debate, circuit-breaker reading, RL features, a
block of bars at a time, through the functions the steps call), and the book-dependent ones
are the steps' own rulings (rl_unusable and the policy's reading, fuse_opinions,
rule_triggers, rule_gate, send_order) without their record; a tripped trigger's pause takes
its words from evaluate_triggers on the bar's window. A bar goes through the steps
themselves when its full record is kept and when it is not planned (a window short of the
lookback, an undefined indicator); a kept bar is checked against its rulings, so the two
ways cannot drift apart unnoticed.
"""

import contextlib
import copy
import gc
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, cast, get_type_hints

from agents.chat_backend import ChatBackend
from backtest.control import BacktestControl
from backtest.market import SeriesView
from core.candles import CandleWindow
from core.decision import Abstained, Decision, Mode
from core.market_features import MIN_BARS, SnapshotBatch, market_snapshot
from core.settings import ModelRole, Settings
from core.timeframes import now_ms
from core.trading import FillView, quote_of
from execution.backtest import BacktestBroker
from graph.builder import STEPS, NodeFunction
from graph.engine import after_steps, before_steps, config_hash
from graph.fusion import Fused, fuse_opinions, opinions_from, rl_score
from graph.market_plan import MarketPlan, PlannedBlock
from graph.nodes import daily_equity, not_sent, policy_observation, rl_unusable, send_order
from graph.record import build_decision
from graph.state import BookInputs, ControlView, DecisionRequest, DecisionServices, DecisionState
from rl.registry import ActiveModel
from safety.gate import GATE_CHECKS, GateFigures, GateRuling, rule_gate
from safety.triggers import (
    TRIGGER_NAMES,
    CircuitReading,
    TriggerFacts,
    Trip,
    evaluate_triggers,
    newest_candle_reading,
    rule_triggers,
    with_candles,
)

MODE: Mode = "backtest"
Steps = tuple[tuple[str, NodeFunction], ...]
# The state keys the graph merges with a reducer (Annotated[..., reducer]) instead of
# replacing: a step's update of one is merged the same way here.
REDUCERS: dict[str, Callable[[Any, Any], Any]] = {
    key: hint.__metadata__[-1]
    for key, hint in get_type_hints(DecisionState, include_extras=True).items()
    if callable(getattr(hint, "__metadata__", (None,))[-1])
}


class BarRecord(NamedTuple):
    """One decided bar: what was proposed, what the gate let through, the book after it.
    (A named tuple: a backtest makes one a bar, and a frozen dataclass costs 3 µs to make.)
    """

    position: int  # the bar's index in the series
    as_of: int  # its close: the decision's instant
    close: float
    proposal_action: str
    score: float
    confidence: float
    verdict: str
    action: str
    size: float
    failed_checks: tuple[str, ...]
    trips: tuple[str, ...]
    execution: str  # executed | not_executed
    execution_reason: str
    order_id: str | None  # the order placed, if any (its fill names it)
    exit_signal: str | None  # for a sell: the signal that pushed the score down most
    equity: float  # the quote currency's equity at as_of, before this bar's order fills
    holding: bool  # a position was held at as_of


@dataclass
class BacktestResult:
    run_id: str
    series: CandleWindow
    bars: list[BarRecord]
    fills: tuple[FillView, ...]
    broker: BacktestBroker
    control: BacktestControl
    starting_equity: float
    config_hash: str
    triggers_enabled: bool
    seconds: float
    node_seconds: dict[str, float]  # each step, over the bars decided through the steps
    stage_seconds: dict[str, float]  # PLANNED_STAGES, over the bars decided from the plan
    records: dict[int, Decision] = field(default_factory=dict)  # as_of → full record
    planned_bars: int = 0  # decided from the plan and the rulings, not through the steps

    @property
    def bars_per_second(self) -> float:
        return len(self.bars) / self.seconds if self.seconds > 0 else 0.0

    def profile_us_per_bar(self) -> dict[str, float]:
        """Mean microseconds a bar in each planned stage, in each step (over the bars the
        steps decided, spread over all bars), and in everything around them."""
        bars = len(self.bars) or 1
        stages = {name: seconds / bars * 1e6 for name, seconds in self.stage_seconds.items()}
        steps = {
            f"step {name}": seconds / bars * 1e6 for name, seconds in self.node_seconds.items()
        }
        around = self.seconds / bars * 1e6 - sum(stages.values()) - sum(steps.values())
        return {**stages, **steps, "around": around}


class _Prices(NamedTuple):
    """The series' columns a bar reads one value at a time, as Python numbers."""

    open_time: list[int]
    high: list[float]
    low: list[float]
    close: list[float]

    @classmethod
    def of(cls, series: CandleWindow) -> "_Prices":
        columns = (series.open_time, series.high, series.low, series.close)
        return cls(*(column.tolist() for column in columns))


class Ruled(NamedTuple):
    """A planned bar's rulings and the book figures its bar record keeps."""

    proposal: Fused
    trips: tuple[str, ...]  # the triggers that trip
    facts: TriggerFacts | None  # what the triggers judged (None: switched off)
    gate: GateRuling
    equity: float
    holding: bool


# The stages of a bar decided from the plan: the market-only results (a block of bars at a
# time, the block's cost falling on the bar that needs it), the rulings, the order and record.
PLANNED_STAGES = ("plan", "rulings", "orders and bar record")
# What fusion proposes when every signal abstained (graph.fusion.fuse's hold), and the
# triggers' passes when a research run switches them off (safety.triggers.triggers_off).
HOLD = Fused("hold", 0.0, 0.0, 0.0, {})
TRIGGERS_PASS = (True,) * len(TRIGGER_NAMES)


class Backtest:
    """One run's broker, control state and services; ``decide`` takes one bar."""

    def __init__(
        self,
        series: CandleWindow,
        settings: Settings,
        rl_model: ActiveModel | Abstained,
        *,
        triggers: bool = True,
        steps: Steps = STEPS,
        run_id: str | None = None,
        batched: bool = True,
        chat: Mapping[ModelRole, ChatBackend] | None = None,
        first_index: int = 0,
    ) -> None:
        """``chat``: the model-backed roles' backends, as DecisionEngine builds them (their
        replay cache makes a rerun free and equal); none, and the rules speak.
        ``first_index``: the first bar to be decided (no indicators are computed for the
        windows of the bars before it)."""
        self.series = series
        self._prices = _Prices.of(series)
        self.chat = dict(chat or {})
        self.batched = batched
        self.settings = settings
        self.rl_model = rl_model
        self.triggers = triggers
        self.steps = steps
        self.run_id = run_id or str(uuid.uuid4())
        self.control = BacktestControl(settings)
        self.broker = BacktestBroker(series, settings.paper, self.control.current)
        self.config_hash = config_hash(settings, rl_model)
        self._first_row = first_index + 1 - settings.lookback_bars
        self.services, self.plan = self._market_over(series, SnapshotBatch.BLOCK)
        self.node_seconds = dict.fromkeys((name for name, _ in steps), 0.0)
        # The planned bars' stages (the steps' own times are in node_seconds).
        self.stage_seconds = dict.fromkeys(PLANNED_STAGES, 0.0)
        self._previous: int | None = None
        self.planned_bars = 0

    def _market_over(
        self, series: CandleWindow, block: int
    ) -> tuple[DecisionServices, MarketPlan | None]:
        """The services and the plan over ``series``, one block of indicators serving both.
        The plan computes what graph.builder.STEPS compute: there is none for other steps (a
        test's leaking node), for model-backed agents (asked bar by bar, their replies cached
        for replays), nor unbatched."""
        batch = SnapshotBatch(series, self.settings.lookback_bars, block, self._first_row)
        plan = (
            MarketPlan(series, self.settings, batch, not isinstance(self.rl_model, Abstained))
            if self.batched and not self.chat and self.steps == STEPS
            else None
        )
        return self.services_over(series, batch), plan

    def twin_over(self, series: CandleWindow, block: int) -> "Backtest":
        """A copy of this run as it stands — its broker's orders and fills, its control state,
        its previous decision — deciding over ``series`` (the look-ahead analysis hands in
        the poisoned twin of the run's own series), with indicators ``block`` windows at a
        time; what the copy books and orders leaves this run untouched."""
        twin = copy.copy(self)
        # deepcopy's memo maps an object to its copy: wherever the broker holds the candles
        # it gets ``series``, and its control callable (the control's bound method) is bound
        # to the control's copy.
        memo: dict[int, Any] = {id(self.series): series}
        twin.broker, twin.control = copy.deepcopy((self.broker, self.control), memo)
        twin.series = series
        twin._prices = _Prices.of(series)
        twin.node_seconds = dict.fromkeys(self.node_seconds, 0.0)  # the twin's time is its own
        twin.stage_seconds = dict.fromkeys(self.stage_seconds, 0.0)
        twin.services, twin.plan = twin._market_over(series, block)
        return twin

    def services_over(
        self, series: CandleWindow, batch: SnapshotBatch | None = None
    ) -> DecisionServices:
        """The decision path's services with the market read from ``series`` (the lookahead
        analysis hands in a poisoned twin) and this run's book and control state; batched,
        the indicators of the series' windows are computed a block at a time (by ``batch``,
        one over ``series``, when given)."""
        if self.batched:
            snapshot = (batch or SnapshotBatch(series, self.settings.lookback_bars)).snapshot
        else:
            snapshot = market_snapshot
        return DecisionServices(
            settings=self.settings,
            market_view=lambda as_of: SeriesView(series, as_of),
            control=self._control_view,
            book=self._book,
            broker=self.broker,
            rl_model=self.rl_model,
            chat=self.chat,
            triggers_enabled=self.triggers,
            snapshot=snapshot,
        )

    def as_of(self, index: int) -> int:
        return self._prices.open_time[index] + self.series.timeframe_ms

    def prepare(self, as_of: int) -> None:
        """What DecisionEngine does before the graph: book due fills, lift ended cool-downs."""
        before_steps(self.broker, self.control, as_of)

    def request(self, as_of: int, place_orders: bool = True) -> DecisionRequest:
        """The request DecisionEngine would make at ``as_of``, in mode backtest."""
        return DecisionRequest(
            decision_id=f"{self.run_id}-{as_of}",
            symbol=self.series.symbol,
            timeframe=self.series.timeframe,
            timeframe_ms=self.series.timeframe_ms,
            as_of=as_of,
            mode=MODE,
            place_orders=place_orders,
        )

    def run_steps(
        self,
        as_of: int,
        services: DecisionServices,
        place_orders: bool = True,
        updates: dict[str, DecisionState] | None = None,
    ) -> DecisionState:
        """Every step in order on one state, each timed as graph.builder.TimedNode times it;
        ``updates`` receives what each step wrote (the lookahead analysis compares them)."""
        state: DecisionState = {"request": self.request(as_of, place_orders)}
        values = cast(dict[str, Any], state)
        timings: dict[str, float] = {}
        for name, step in self.steps:
            started = time.perf_counter()
            update = step(state, services)
            elapsed = time.perf_counter() - started
            for key, value in update.items():
                merge = REDUCERS.get(key)
                values[key] = merge(values[key], value) if merge and key in values else value
            if updates is not None:
                updates[name] = update
            timings[name] = elapsed * 1000.0
            self.node_seconds[name] += elapsed
        state["timings_ms"] = timings
        return state

    def decide(self, index: int) -> DecisionState:
        """Decide bar ``index`` at its close, with orders, and let tripped triggers pause."""
        state = self.run_steps(self.as_of(index), self.services)
        self.note_decided(state)
        return state

    def note_decided(self, state: DecisionState) -> None:
        """What DecisionEngine does after the graph: tripped triggers pause their scope, and
        the decision becomes the symbol's previous one."""
        self._close_bar(state["request"].as_of, state["triggers"].trips)

    def _close_bar(self, as_of: int, trips: tuple[Trip, ...]) -> None:
        """The bar's tripped triggers pause their scope; the bar becomes the previous decision."""
        after_steps(self.control, trips, as_of, self.settings)
        self._previous = as_of

    def record(self, state: DecisionState) -> Decision:
        """The full decision record of a decided state, as DecisionEngine stores it."""
        return build_decision(
            state, created_at=now_ms(), config_hash=self.config_hash, broker=self.broker.name
        )

    def bar_record(self, index: int, state: DecisionState) -> BarRecord:
        proposal, safety, execution = state["proposal"], state["safety"], state["execution"]
        portfolio = state["book"].portfolio
        currency = portfolio.currencies.get(quote_of(self.series.symbol))
        executed = execution.status == "executed"
        return BarRecord(
            position=index,
            as_of=state["request"].as_of,
            close=self._prices.close[index],
            proposal_action=proposal.action,
            score=proposal.score,
            confidence=proposal.confidence,
            verdict=safety.verdict,
            action=safety.action,
            size=safety.size,
            failed_checks=tuple(check.name for check in safety.checks if not check.passed),
            trips=tuple(trip.name for trip in state["triggers"].trips),
            execution=execution.status,
            execution_reason=execution.reason,
            order_id=state["request"].decision_id if executed else None,
            exit_signal=_exit_signal(proposal.contributions) if safety.action == "sell" else None,
            equity=currency.equity if currency else 0.0,
            holding=self.series.symbol in portfolio.holdings,
        )

    def decide_bar(self, index: int, keep_record: bool) -> tuple[BarRecord, Decision | None]:
        """Decide bar ``index`` at its close (fills due booked first): a planned bar from its
        plan and rulings, unless its full record is kept (``keep_record``); any other bar
        through the steps, a planned one then checked against its rulings."""
        as_of = self.as_of(index)
        self.prepare(as_of)
        started = time.perf_counter()
        located = None if self.plan is None else self.plan.locate(index)
        planned = time.perf_counter()
        ruled = None if located is None else self._rule(index, as_of, *located)
        ruled_at = time.perf_counter()
        self.stage_seconds["plan"] += planned - started
        self.stage_seconds["rulings"] += ruled_at - planned
        if ruled is not None and not keep_record:
            self.planned_bars += 1
            bar = self._carry_out(index, as_of, ruled)
            self.stage_seconds["orders and bar record"] += time.perf_counter() - ruled_at
            return bar, None
        state = self.decide(index)
        bar = self.bar_record(index, state)
        if ruled is not None:
            _check_agrees(ruled, bar)
        return bar, self.record(state) if keep_record else None

    def rulings(self, index: int) -> Ruled | None:
        """The planned bar's rulings at its close on the book as it stands (fills due
        booked), or None when the bar is not planned; nothing is sent."""
        located = None if self.plan is None else self.plan.locate(index)
        return None if located is None else self._rule(index, self.as_of(index), *located)

    def _rule(self, index: int, as_of: int, block: PlannedBlock, row: int) -> Ruled:
        """A planned bar's rulings, from its plan and the book at as_of; nothing sent."""
        settings, symbol = self.settings, self.series.symbol
        portfolio = self.broker.portfolio(as_of)
        opinion = None
        if block.features is not None:
            unusable = rl_unusable(
                self.rl_model, self.series.timeframe, as_of, settings.lookback_bars, None
            )
            if unusable is None:
                assert not isinstance(self.rl_model, Abstained)  # rl_unusable answers for it
                shown = policy_observation(
                    self.rl_model, block.features[row], portfolio, symbol, settings
                )
                _, probabilities, confidence = self.rl_model.policy.reading(shown)
                opinion = (rl_score(probabilities), confidence)
        debate = (block.score[row], block.confidence[row])
        # A candle file carries no news: the sentiment abstains at every bar.
        fused = fuse_opinions(
            opinions_from(debate, opinion, None), settings.fusion, settings.limits
        )
        quote = quote_of(symbol)
        equity = daily_equity(portfolio, quote)
        facts = (
            TriggerFacts(
                symbol=symbol,
                as_of=as_of,
                previous_check_ms=self._previous,
                closed_trades=portfolio.closed_trades,
                equity=equity,
                api_error_times=(),
                news=(),
                fills=tuple(self.broker.fills(self._previous, as_of)),
            )
            if self.triggers
            else None
        )
        triggers = (
            None
            if facts is None
            else rule_triggers(
                facts,
                settings.limits,
                settings.safety,
                self._circuit_reading(index, block.breaker_atr[row]),
            )
        )
        trigger_passed = TRIGGERS_PASS if triggers is None else triggers.passed
        proposal = fused or HOLD
        gate = rule_gate(
            GateFigures(
                action=proposal.action,
                size=proposal.size,
                confidence=proposal.confidence,
                control_state=self.control.current(symbol).state,
                as_of=as_of,
                timeframe_ms=self.series.timeframe_ms,
                last_close_time=as_of,
                missing_bars=block.missing_bars[row],
                indicators_computed=True,
                position_fraction=portfolio.position_fraction(symbol),
                exposure_fraction=portfolio.exposure_fraction(quote),
                equity=equity.now,
                mode=MODE,
                live_notional_today=self.broker.real_notional_today(as_of),
                real_money=self.broker.real_money,
            ),
            trigger_passed,
            settings.limits,
            settings.safety,
        )
        trips = () if triggers is None else triggers.trips
        return Ruled(proposal, trips, facts, gate, equity.now, symbol in portfolio.holdings)

    def _circuit_reading(self, index: int, atr_before: float) -> CircuitReading:
        """The circuit breaker's reading of the bar's candle, with the ATR from the plan."""
        prices = self._prices
        return newest_candle_reading(
            prices.high[index],
            prices.low[index],
            prices.close[index],
            prices.close[index - 1],
            self.as_of(index),
            atr_before,
        )

    def _carry_out(self, index: int, as_of: int, ruled: Ruled) -> BarRecord:
        """Carry out a planned bar's ruling: the order (if any) sent, the tripped triggers'
        pauses (their words, the pause's reason, from evaluate_triggers on the bar's window:
        the report the gate step would give), the bar recorded."""
        gate, proposal = ruled.gate, ruled.proposal
        failed = _failed(gate)
        request = None
        if gate.verdict == "blocked" or gate.action == "hold":
            sent = not_sent(gate.verdict, failed)
        else:
            request = self.request(as_of)
            close = self._prices.close[index]
            sent = send_order(
                request, gate.verdict, gate.action, gate.size, failed, close, self.broker
            )
        trips: tuple[Trip, ...] = ()
        if ruled.trips:
            assert ruled.facts is not None  # trips come from the triggers' facts
            settings = self.settings
            window = self.series.part(index + 1 - settings.lookback_bars, index + 1)
            trips = evaluate_triggers(
                with_candles(ruled.facts, window), settings.limits, settings.safety
            ).trips
        self._close_bar(as_of, trips)
        executed = sent.status == "executed"
        return BarRecord(
            position=index,
            as_of=as_of,
            close=self._prices.close[index],
            proposal_action=proposal.action,
            score=proposal.score,
            confidence=proposal.confidence,
            verdict=gate.verdict,
            action=gate.action,
            size=gate.size,
            failed_checks=failed,
            trips=ruled.trips,
            execution=sent.status,
            execution_reason=sent.reason,
            order_id=request.decision_id if executed and request else None,
            exit_signal=_exit_signal(proposal.contributions) if gate.action == "sell" else None,
            equity=ruled.equity,
            holding=ruled.holding,
        )

    def _control_view(self, symbol: str) -> ControlView:
        current = self.control.current(symbol)
        return ControlView(state=current.state, reason=current.reason)

    def _book(self, request: DecisionRequest) -> BookInputs:
        """What DecisionEngine's book reads, from this run: no API errors in a backtest."""
        return BookInputs(
            portfolio=self.broker.portfolio(request.as_of),
            new_fills=tuple(self.broker.fills(self._previous, request.as_of)),
            previous_decision_at=self._previous,
            api_error_times=(),
        )


def _failed(gate: GateRuling) -> tuple[str, ...]:
    """The names of the checks a gate ruling failed, in the gate's order."""
    if all(gate.passed):
        return ()
    return tuple(name for name, ok in zip(GATE_CHECKS, gate.passed, strict=True) if not ok)


def _check_agrees(ruled: Ruled, bar: BarRecord) -> None:
    """A bar decided through the steps must be what its rulings said: a disagreement is a
    defect of the backtest, never something to record."""
    ruling = (
        ruled.proposal.action,
        ruled.proposal.score,
        ruled.gate.verdict,
        ruled.gate.action,
        ruled.gate.size,
        _failed(ruled.gate),
        ruled.trips,
    )
    steps = (
        bar.proposal_action,
        bar.score,
        bar.verdict,
        bar.action,
        bar.size,
        bar.failed_checks,
        bar.trips,
    )
    if ruling != steps:
        raise RuntimeError(
            f"backtest rulings {ruling} disagree with the steps' {steps} at {bar.as_of}"
        )


def _exit_signal(contributions: dict[str, float]) -> str:
    """The signal whose contribution pushed the fused score down the most."""
    return min(sorted(contributions), key=contributions.__getitem__, default="none")


@contextlib.contextmanager
def _collector_skips_what_came_before() -> Iterator[None]:
    """While the loop runs, the garbage collector's full passes skip the objects that existed
    before it (modules, settings, the series: gc.freeze), which a run of thousands of bars
    would otherwise have rescanned every few hundred bars; after it they are ordinary again.
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def decided_indices(series: CandleWindow, start_ms: int | None, end_ms: int | None) -> range:
    """The bars a backtest decides: every one whose window holds enough candles for the
    indicators (earlier ones could only hold), with its close within [start_ms, end_ms]."""
    first = MIN_BARS - 1
    last = len(series) - 1
    tf = series.timeframe_ms
    while first <= last and start_ms is not None and int(series.open_time[first]) + tf < start_ms:
        first += 1
    while last >= first and end_ms is not None and int(series.open_time[last]) + tf > end_ms:
        last -= 1
    return range(first, last + 1)


def run_backtest(
    series: CandleWindow,
    settings: Settings,
    rl_model: ActiveModel | Abstained,
    *,
    start_ms: int | None = None,
    end_ms: int | None = None,
    triggers: bool = True,
    keep: Collection[int] = (),
    progress: Callable[[int], None] | None = None,
    run_id: str | None = None,
    chat: Mapping[ModelRole, ChatBackend] | None = None,
) -> BacktestResult:
    """Decide every bar of ``series`` in [start_ms, end_ms]; ``keep``: the as_of instants
    whose full decision records to keep; ``progress`` is told each bar decided."""
    indices = decided_indices(series, start_ms, end_ms)
    if not indices:
        raise ValueError(
            f"no bar to decide: the series needs {MIN_BARS} candles before the first decision "
            "and at least one more within --from/--to"
        )
    backtest = Backtest(
        series,
        settings,
        rl_model,
        triggers=triggers,
        run_id=run_id,
        chat=chat,
        first_index=indices.start,
    )
    wanted = set(keep)
    bars: list[BarRecord] = []
    records: dict[int, Decision] = {}
    started = time.perf_counter()
    with _collector_skips_what_came_before():
        for index in indices:
            as_of = backtest.as_of(index)
            bar, record = backtest.decide_bar(index, as_of in wanted)
            bars.append(bar)
            if record is not None:
                records[as_of] = record
            if progress is not None:
                progress(1)
    seconds = time.perf_counter() - started
    quote = quote_of(series.symbol)
    return BacktestResult(
        run_id=backtest.run_id,
        series=series,
        bars=bars,
        fills=backtest.broker.booked_fills,
        broker=backtest.broker,
        control=backtest.control,
        starting_equity=settings.paper.starting_balances.get(quote, 0.0),
        config_hash=backtest.config_hash,
        triggers_enabled=triggers,
        seconds=seconds,
        node_seconds=backtest.node_seconds,
        stage_seconds=backtest.stage_seconds,
        records=records,
        planned_bars=backtest.planned_bars,
    )
