"""Look-ahead analysis: decide again at sampled bars with the future poisoned, and report
every decision that changed and the steps (nodes) whose output changed.

The analysis is a backtest — the batched services, orders placed, fills booked — and at each
sampled bar, before the run books that bar's fills, it takes a twin of the run as it stands
(poisoned_twin: a copy of the broker's orders and fills, the control state and the previous
decision) whose market and broker read the poisoned series instead (backtest.market.poisoned:
every candle not closed by as_of absurd). The twin books its fills and decides the bar with
orders on its own copy of the book; the run decides it through the steps, every other bar
as any backtest does (from its plan). A step that reads only what as_of may know writes the
same output both times — the book with the fills just booked, the order the execute step
placed — and one that peeks ahead does not, nor does every step downstream of it. The first
changed step is where the leak is. The bar's plan and rulings (graph.market_plan: what most
bars of a backtest are decided from) are compared too, as the node "plan": the twin's plan
is computed over the poisoned series. The twin is then dropped: the run's own book never
sees its orders.
"""

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel

from agents.chat_backend import ChatBackend
from backtest.market import poisoned
from backtest.run import Backtest, Steps, decided_indices
from core.candles import CandleWindow
from core.decision import Abstained
from core.hashing import hash_json, sha256_hex
from core.settings import ModelRole, Settings
from graph.builder import STEPS
from graph.state import DecisionState
from rl.registry import ActiveModel

# The pseudo-node of a bar's plan and rulings (Backtest.rulings), compared before the steps.
PLAN = "plan"


@dataclass(frozen=True)
class ChangedDecision:
    as_of: int
    nodes: tuple[str, ...]  # the plan and the steps whose output changed, in step order
    action: str  # the action the gate let through, with the true future
    poisoned_action: str  # and with the future poisoned


@dataclass(frozen=True)
class LookaheadReport:
    symbol: str
    timeframe: str
    sampled: tuple[int, ...]  # the as_of instants decided twice
    ordered: tuple[int, ...]  # those of them at which the run placed an order
    changed: tuple[ChangedDecision, ...]
    nodes: tuple[str, ...]  # the plan, then every step in order

    def changes_by_node(self) -> dict[str, int]:
        """How many sampled decisions each step's output changed in (0 for a clean step)."""
        return {node: sum(node in change.nodes for change in self.changed) for node in self.nodes}

    def as_dict(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "timeframe": self.timeframe,
            "sampled": len(self.sampled),
            "ordered": len(self.ordered),
            "changed": [dataclasses.asdict(change) for change in self.changed],
            "changes_by_node": self.changes_by_node(),
        }


def lookahead(
    series: CandleWindow,
    settings: Settings,
    rl_model: ActiveModel | Abstained,
    *,
    samples: int,
    seed: int,
    start_ms: int | None = None,
    end_ms: int | None = None,
    triggers: bool = True,
    steps: Steps = STEPS,
    progress: Callable[[int], None] | None = None,
    chat: Mapping[ModelRole, ChatBackend] | None = None,
) -> LookaheadReport:
    """Backtest ``series`` with ``steps``, poisoning the future at ``samples`` bars drawn
    with ``seed`` (all bars when there are fewer). ``chat``: model-backed roles, as in
    a backtest (a prompt that changes with the future is asked afresh and shows)."""
    backtest = Backtest(series, settings, rl_model, triggers=triggers, steps=steps, chat=chat)
    indices = decided_indices(series, start_ms, end_ms)
    if not indices:
        raise ValueError("no bar to decide within --from/--to")
    drawn = np.random.default_rng(seed).choice(
        len(indices), size=min(samples, len(indices)), replace=False
    )
    chosen = {indices[int(position)] for position in drawn}
    sampled: list[int] = []
    ordered: list[int] = []
    changed: list[ChangedDecision] = []
    for index in indices:
        if progress is not None:
            progress(1)
        if index not in chosen:
            backtest.decide_bar(index, keep_record=False)
            continue
        as_of = backtest.as_of(index)
        # Taken before the run books this bar's fills, so the twin books them over the poison.
        twin = poisoned_twin(backtest, as_of)
        backtest.prepare(as_of)
        true_plan = backtest.rulings(index)
        true_updates: dict[str, DecisionState] = {}
        # decide's own steps, with what each step wrote kept for the comparison.
        state = backtest.run_steps(as_of, backtest.services, True, true_updates)
        backtest.note_decided(state)
        sampled.append(as_of)
        if state["execution"].status == "executed":
            ordered.append(as_of)
        change = _compare(twin, index, state, fingerprints(true_plan, true_updates))
        if change is not None:
            changed.append(change)
    return LookaheadReport(
        symbol=series.symbol,
        timeframe=series.timeframe,
        sampled=tuple(sampled),
        ordered=tuple(ordered),
        changed=tuple(changed),
        nodes=(PLAN, *(name for name, _ in steps)),
    )


def poisoned_twin(backtest: Backtest, as_of: int) -> Backtest:
    """A copy of ``backtest`` as it stands — its broker's orders and fills, its control state,
    its previous decision — whose market, indicators and broker read the series poisoned
    after ``as_of``; what it books and orders leaves ``backtest`` untouched."""
    # One window at a time: the twin decides one bar (tests/test_lookahead.py checks it
    # fills at the poison).
    return backtest.twin_over(poisoned(backtest.series, as_of), block=1)


def _compare(
    twin: Backtest, index: int, true_state: DecisionState, true_prints: dict[str, str]
) -> ChangedDecision | None:
    as_of = twin.as_of(index)
    twin.prepare(as_of)
    poisoned_plan = twin.rulings(index)
    poisoned_updates: dict[str, DecisionState] = {}
    poisoned_state = twin.run_steps(as_of, twin.services, True, poisoned_updates)
    poisoned_prints = fingerprints(poisoned_plan, poisoned_updates)
    nodes = tuple(name for name in true_prints if true_prints[name] != poisoned_prints[name])
    if not nodes:
        return None
    return ChangedDecision(
        as_of=as_of,
        nodes=nodes,
        action=true_state["safety"].action,
        poisoned_action=poisoned_state["safety"].action,
    )


def fingerprints(plan: object, updates: Mapping[str, DecisionState]) -> dict[str, str]:
    """The plan's and each step's fingerprint, the plan first, the steps in their order."""
    return {
        PLAN: fingerprint(plan),
        **{name: fingerprint(update) for name, update in updates.items()},
    }


def fingerprint(value: object) -> str:
    """A hash of everything ``value`` holds, the exact bytes of its floats and arrays included."""
    return hash_json(_plain(value))


def _plain(value: object) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            field.name: _plain(getattr(value, field.name)) for field in dataclasses.fields(value)
        }
    if isinstance(value, np.ndarray):
        return sha256_hex(np.ascontiguousarray(value).tobytes())
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    if isinstance(value, float):
        return value.hex()  # exact, and JSON has no NaN
    return value
