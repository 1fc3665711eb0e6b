"""Look-ahead analysis: decide again at sampled bars with the future poisoned, and report
every decision that changed and the steps (nodes) whose output changed.

At each sampled bar the decision is taken twice before the backtest goes on, both without
placing an order and on the same book: once over the series, once over its poisoned twin
(backtest.market.poisoned: every candle not closed by as_of absurd). A step that reads
only what as_of may know writes the same output both times; one that peeks ahead does not,
and so does every step downstream of it. The first changed step is where the leak is.
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


@dataclass(frozen=True)
class ChangedDecision:
    as_of: int
    nodes: tuple[str, ...]  # the steps whose output changed, in step order
    action: str  # the action the gate let through, with the true future
    poisoned_action: str  # and with the future poisoned


@dataclass(frozen=True)
class LookaheadReport:
    symbol: str
    timeframe: str
    sampled: tuple[int, ...]  # the as_of instants decided twice
    changed: tuple[ChangedDecision, ...]
    nodes: tuple[str, ...]  # every step, in order

    def changes_by_node(self) -> dict[str, int]:
        """How many sampled decisions each step's output changed in (0 for a clean step)."""
        return {node: sum(node in change.nodes for change in self.changed) for node in self.nodes}

    def as_dict(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "timeframe": self.timeframe,
            "sampled": len(self.sampled),
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
    # The live path's own per-window indicators, so the poisoned series is what they read.
    backtest = Backtest(
        series, settings, rl_model, triggers=triggers, steps=steps, batched=False, chat=chat
    )
    indices = decided_indices(series, start_ms, end_ms)
    if not indices:
        raise ValueError("no bar to decide within --from/--to")
    drawn = np.random.default_rng(seed).choice(
        len(indices), size=min(samples, len(indices)), replace=False
    )
    chosen = {indices[int(position)] for position in drawn}
    sampled: list[int] = []
    changed: list[ChangedDecision] = []
    for index in indices:
        as_of = backtest.as_of(index)
        backtest.prepare(as_of)
        if index in chosen:
            sampled.append(as_of)
            change = _compare(backtest, as_of, series)
            if change is not None:
                changed.append(change)
        backtest.decide(index)
        if progress is not None:
            progress(1)
    return LookaheadReport(
        symbol=series.symbol,
        timeframe=series.timeframe,
        sampled=tuple(sampled),
        changed=tuple(changed),
        nodes=tuple(name for name, _ in steps),
    )


def _compare(backtest: Backtest, as_of: int, series: CandleWindow) -> ChangedDecision | None:
    true_updates: dict[str, DecisionState] = {}
    poisoned_updates: dict[str, DecisionState] = {}
    true_state = backtest.run_steps(as_of, backtest.services, False, true_updates)
    spoiled = backtest.services_over(poisoned(series, as_of))
    poisoned_state = backtest.run_steps(as_of, spoiled, False, poisoned_updates)
    nodes = tuple(
        name
        for name, _ in backtest.steps
        if fingerprint(true_updates[name]) != fingerprint(poisoned_updates[name])
    )
    if not nodes:
        return None
    return ChangedDecision(
        as_of=as_of,
        nodes=nodes,
        action=true_state["safety"].action,
        poisoned_action=poisoned_state["safety"].action,
    )


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
