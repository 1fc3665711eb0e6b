"""The StateGraph: gather → (bull ‖ bear ‖ researcher) → debate → (rl ‖ sentiment) → fuse →
gate → execute.

Nodes are coroutines on purpose: LangGraph runs parallel sync nodes on a thread pool, which
costs about 1 ms per decision here, while the work in each node is a fraction of that.
The nodes never await, so they run one after another on the event loop, in a fixed order.
"""

import time
from collections.abc import Callable
from typing import Any

from langgraph.graph import END, START, StateGraph

from graph import nodes
from graph.state import DecisionServices, DecisionState

NodeFunction = Callable[[DecisionState, DecisionServices], DecisionState]

# name → step, in the order a plain sequential run would call them.
STEPS: tuple[tuple[str, NodeFunction], ...] = (
    ("gather", nodes.gather),
    ("bull", nodes.bull),
    ("bear", nodes.bear),
    ("researcher", nodes.researcher),
    ("debate", nodes.debate),
    ("rl", nodes.rl),
    ("sentiment", nodes.sentiment),
    ("fuse", nodes.fusion),
    ("gate", nodes.gate),
    ("execute", nodes.execute),
)


class TimedNode:
    """One step as a graph node: runs it and records its wall time under its name."""

    def __init__(self, name: str, step: NodeFunction, services: DecisionServices) -> None:
        self.name = name
        self.step = step
        self.services = services

    async def __call__(self, state: DecisionState) -> DecisionState:
        started = time.perf_counter()
        update = self.step(state, self.services)
        update["timings_ms"] = {self.name: (time.perf_counter() - started) * 1000.0}
        return update


def build_graph(services: DecisionServices) -> Any:
    """Compile the decision graph once per process; invoke it once per decision."""
    graph = StateGraph(DecisionState)
    for name, step in STEPS:
        graph.add_node(name, TimedNode(name, step, services))
    graph.add_edge(START, "gather")
    for agent in ("bull", "bear", "researcher"):
        graph.add_edge("gather", agent)
    graph.add_edge(["bull", "bear", "researcher"], "debate")
    graph.add_edge("debate", "rl")
    graph.add_edge("debate", "sentiment")
    graph.add_edge(["rl", "sentiment"], "fuse")
    graph.add_edge("fuse", "gate")
    graph.add_edge("gate", "execute")
    graph.add_edge("execute", END)
    return graph.compile()
