"""Decision latency: one decision (graph + persistence) and a 100-symbol cycle.

Beside every figure stands the plain-Python anchor: the same node functions
(graph.builder.STEPS) called in order on a dict, then the same record building and the
same transaction. The difference between the two is what the LangGraph machinery costs.

Offline and self-contained: a temporary SQLite database (the embedded default, WAL) is
filled with simulated 5m candles for 100 symbols; every decision is taken at the last
close and persisted like any other, with the book read and every gate check run, but
decide-only (no order sent): deciding again and again at one instant would pile up orders
no later bar ever fills. Order placement is timed under load by bench/panic.py.

    .venv/bin/python -m bench.decide            # full run (~1 min)
    .venv/bin/python -m bench.decide --quick    # fewer repetitions
    .venv/bin/python -m bench.decide --json     # machine-readable

It measures, it does not judge: the exit status is 0 whether a target is met or not.
"""

import argparse
import asyncio
import gc
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

from core.decision import Decision
from core.settings import Settings
from core.timeframes import format_timestamp, parse_timestamp, timeframe_ms
from graph.builder import STEPS
from graph.engine import DecisionEngine
from graph.state import DecisionState
from ingestion.sim import simulate_candles
from storage.candles import CandleStore
from storage.engine import Database, open_database

TIMEFRAME = "5m"
START = parse_timestamp("2024-01-01T00:00:00Z")
SEED = 42

# The issue's targets, on the 2-core reference machine.
TARGET_P50_MS = 5.0
TARGET_CYCLE_S = 0.5


@dataclass(frozen=True)
class RunConfig:
    symbols: int
    bars: int
    warmup: int  # decisions per path before any sample is kept
    repetitions: int  # single decisions sampled per path
    rounds: int  # the samples are taken in this many blocks, the paths taking turns
    cycles: int  # 100-symbol cycles per path; the median is reported


FULL = RunConfig(symbols=100, bars=400, warmup=100, repetitions=500, rounds=5, cycles=5)
QUICK = RunConfig(symbols=100, bars=300, warmup=30, repetitions=100, rounds=2, cycles=2)


@dataclass(frozen=True)
class Stats:
    n: int
    p50: float
    p99: float
    mean: float
    min: float
    max: float

    @classmethod
    def of(cls, samples: Sequence[float]) -> "Stats":
        values = np.asarray(samples, dtype=np.float64)
        p50, p99 = np.percentile(values, [50, 99])
        return cls(
            n=len(values),
            p50=float(p50),
            p99=float(p99),
            mean=float(values.mean()),
            min=float(values.min()),
            max=float(values.max()),
        )


@dataclass
class Samples:
    """Wall times of one path, and the per-node timings its decisions recorded."""

    total_ms: list[float] = field(default_factory=list)
    nodes_ms: dict[str, list[float]] = field(default_factory=dict)

    def add(self, total_ms: float, decision: Decision) -> None:
        self.total_ms.append(total_ms)
        for name, value in decision.timings_ms.items():
            self.nodes_ms.setdefault(name, []).append(value)

    def median_node(self, name: str) -> float:
        return statistics.median(self.nodes_ms[name])


class PlainDecider(DecisionEngine):
    """DecisionEngine with the same STEPS called in order on a dict, each timed like
    TimedNode does, instead of the LangGraph graph: everything around them is the same."""

    async def run_steps(self, state: DecisionState) -> DecisionState:
        timings = state["timings_ms"]
        for name, step in STEPS:
            step_started = time.perf_counter()
            update = step(state, self.services)
            timings[name] = (time.perf_counter() - step_started) * 1000.0
            state.update(update)
        return state


@dataclass(frozen=True)
class Bench:
    settings: Settings
    database: Database
    engine: DecisionEngine
    plain: PlainDecider
    symbols: tuple[str, ...]
    as_of: int


def symbol_names(count: int) -> tuple[str, ...]:
    return tuple(f"SIM{index:03d}/USDT" for index in range(count))


def prepare(home: Path, config: RunConfig) -> tuple[Bench, float]:
    """Migrate a fresh SQLite database under ``home`` and store the simulated candles."""
    started = time.perf_counter()
    symbols = symbol_names(config.symbols)
    settings = Settings(home=home, symbols=symbols, timeframes=(TIMEFRAME,), seed=SEED)
    database = open_database(settings.resolved_database_url)
    store = CandleStore(database.session_factory)
    for symbol in symbols:
        store.insert_candles(simulate_candles(symbol, TIMEFRAME, START, config.bars, SEED))
    as_of = START + config.bars * timeframe_ms(TIMEFRAME)  # the close of the last bar
    engine = DecisionEngine(settings, database)
    plain = PlainDecider(settings, database)
    bench = Bench(settings, database, engine, plain, symbols, as_of)
    return bench, time.perf_counter() - started


def check_anchor(bench: Bench, config: RunConfig) -> tuple[bool, dict[str, int]]:
    """The anchor must decide exactly what the graph decides, or the comparison is void.

    Each decides on a database of its own: a decision may pause a symbol (a tripped
    trigger), and the other path deciding after it on the same database would see that.
    """
    same = True
    actions: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="sigmax-anchor-") as home:
        twin, _ = prepare(Path(home), config)
        try:
            for symbol in bench.symbols:
                graph = bench.engine.decide(symbol, TIMEFRAME, bench.as_of, place_orders=False)
                plain = twin.plain.decide(symbol, TIMEFRAME, bench.as_of, place_orders=False)
                same = same and graph.deterministic_json() == plain.deterministic_json()
                label = f"{graph.action}/{graph.safety.verdict}"
                actions[label] = actions.get(label, 0) + 1
        finally:
            twin.database.dispose()
    return same, dict(sorted(actions.items()))


def single_decisions(bench: Bench, config: RunConfig) -> dict[str, Samples]:
    """One decision at a time, each path in turn, in ``rounds`` blocks so that any drift
    (a growing decisions table, WAL checkpoints) falls on every path alike."""
    engine, plain, as_of = bench.engine, bench.plain, bench.as_of
    symbols = bench.symbols
    results = {"sync": Samples(), "async": Samples(), "plain": Samples()}
    per_round = -(-config.repetitions // config.rounds)

    def run_sync(count: int, keep: bool) -> None:
        for index in range(count):
            symbol = symbols[index % len(symbols)]
            started = time.perf_counter()
            decision = engine.decide(symbol, TIMEFRAME, as_of, place_orders=False)
            elapsed = (time.perf_counter() - started) * 1000.0
            if keep:
                results["sync"].add(elapsed, decision)

    async def run_in_loop(count: int, keep: bool) -> None:
        # The service's shape: one running loop, decisions awaited one after another. The
        # plain anchor runs in the same loop, alternating with the graph, decision by decision.
        for index in range(count):
            symbol = symbols[index % len(symbols)]
            started = time.perf_counter()
            decision = await engine.decide_async(symbol, TIMEFRAME, as_of, place_orders=False)
            elapsed = (time.perf_counter() - started) * 1000.0
            if keep:
                results["async"].add(elapsed, decision)
            started = time.perf_counter()
            decision = await plain.decide_async(symbol, TIMEFRAME, as_of, place_orders=False)
            elapsed = (time.perf_counter() - started) * 1000.0
            if keep:
                results["plain"].add(elapsed, decision)

    run_sync(config.warmup, keep=False)
    asyncio.run(run_in_loop(config.warmup, keep=False))
    taken = 0
    for _ in range(config.rounds):
        count = min(per_round, config.repetitions - taken)
        taken += count
        run_sync(count, keep=True)
        asyncio.run(run_in_loop(count, keep=True))
    return results


def cycles(bench: Bench, config: RunConfig) -> dict[str, list[float]]:
    """Every symbol decided once at the same as_of, one after another; seconds per cycle."""
    engine, plain, as_of, symbols = bench.engine, bench.plain, bench.as_of, bench.symbols
    results: dict[str, list[float]] = {"sync": [], "async": [], "plain": []}

    def timed(run: Callable[[], object]) -> float:
        started = time.perf_counter()
        run()
        return time.perf_counter() - started

    def sync_cycle() -> None:
        for symbol in symbols:
            engine.decide(symbol, TIMEFRAME, as_of, place_orders=False)

    async def async_cycle() -> None:
        for symbol in symbols:
            await engine.decide_async(symbol, TIMEFRAME, as_of, place_orders=False)

    async def plain_cycle() -> None:
        for symbol in symbols:
            await plain.decide_async(symbol, TIMEFRAME, as_of, place_orders=False)

    async def timed_async(run: Callable[[], Awaitable[None]]) -> float:
        started = time.perf_counter()
        await run()
        return time.perf_counter() - started

    async def in_one_loop() -> None:
        for _ in range(config.cycles):
            results["async"].append(await timed_async(async_cycle))
            results["plain"].append(await timed_async(plain_cycle))

    for _ in range(config.cycles):
        results["sync"].append(timed(sync_cycle))
    asyncio.run(in_one_loop())
    return results


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def code_version() -> str:
    """The commit measured (``-dirty``: with uncommitted changes), when run from a checkout."""
    try:
        described = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return "unknown"
    return described.stdout.strip() if described.returncode == 0 else "unknown (not a checkout)"


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "sqlite": sqlite3.sqlite_version,
        "langgraph": version("langgraph"),
        "sqlalchemy": version("sqlalchemy"),
        "pydantic": version("pydantic"),
        "load_average_1m": os.getloadavg()[0],
        "code": code_version(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report(
    bench: Bench,
    config: RunConfig,
    setup_s: float,
    anchor: tuple[bool, dict[str, int]],
    singles: dict[str, Samples],
    cycle_s: dict[str, list[float]],
) -> dict[str, Any]:
    stats = {name: Stats.of(samples.total_ms) for name, samples in singles.items()}
    node_names = [name for name, _ in STEPS]
    graph_nodes = singles["async"]
    plain_nodes = singles["plain"]
    breakdown = {
        name: {"graph": graph_nodes.median_node(name), "plain": plain_nodes.median_node(name)}
        for name in node_names
    }
    graph_steps = statistics.median(
        sum(values) for values in zip(*(graph_nodes.nodes_ms[n] for n in node_names), strict=True)
    )
    plain_steps = statistics.median(
        sum(values) for values in zip(*(plain_nodes.nodes_ms[n] for n in node_names), strict=True)
    )
    graph_invoke = graph_nodes.median_node("graph")
    outside_graph = statistics.median(
        total - inside
        for total, inside in zip(graph_nodes.total_ms, graph_nodes.nodes_ms["graph"], strict=True)
    )
    cycle = {name: Stats.of(values) for name, values in cycle_s.items()}
    return {
        "machine": machine(),
        "config": asdict(config)
        | {
            "timeframe": TIMEFRAME,
            "as_of": format_timestamp(bench.as_of),
            "lookback_bars": bench.settings.lookback_bars,
            "database": "SQLite file (WAL, synchronous=NORMAL) in a temporary directory",
            "setup_s": setup_s,
        },
        "anchor_identical": anchor[0],
        "decisions_by_outcome": anchor[1],
        "targets": {"p50_ms": TARGET_P50_MS, "cycle_s": TARGET_CYCLE_S},
        "single_ms": {name: asdict(value) for name, value in stats.items()},
        "breakdown_median_ms": {
            "nodes": breakdown,
            "sum_of_nodes": {"graph": graph_steps, "plain": plain_steps},
            "graph_invoke": graph_invoke,
            "langgraph_machinery": graph_invoke - graph_steps,
            "outside_graph": outside_graph,
        },
        "cycle_s": {name: asdict(value) for name, value in cycle.items()},
        "pass": {
            "sync_p50": stats["sync"].p50 <= TARGET_P50_MS,
            "async_p50": stats["async"].p50 <= TARGET_P50_MS,
            "sync_cycle": cycle["sync"].p50 <= TARGET_CYCLE_S,
            "async_cycle": cycle["async"].p50 <= TARGET_CYCLE_S,
        },
    }


def render(result: dict[str, Any]) -> str:
    m, c = result["machine"], result["config"]
    single, cycle, brk = result["single_ms"], result["cycle_s"], result["breakdown_median_ms"]
    passed = result["pass"]
    lines = [
        "SIGMAX decision latency (bench/decide.py)",
        f"machine   {m['cpus']} CPUs ({m['cpus_usable']} usable), {m['cpu_model']}, "
        f"Python {m['python']}, {m['date']}",
        f"code      {m['code']}; load average (1 min) at the end {m['load_average_1m']:.2f}",
        f"software  langgraph {m['langgraph']}, SQLAlchemy {m['sqlalchemy']}, "
        f"pydantic {m['pydantic']}, SQLite {m['sqlite']}",
        f"data      {c['symbols']} symbols x {c['bars']} simulated {c['timeframe']} bars, "
        f"lookback {c['lookback_bars']}, as_of {c['as_of']}; {c['database']}",
        f"anchor    plain-Python records identical to the graph's: "
        f"{'yes' if result['anchor_identical'] else 'NO - comparison void'}; outcomes "
        + ", ".join(f"{k} x{v}" for k, v in result["decisions_by_outcome"].items()),
        "",
        f"One decision, graph + persistence ({single['async']['n']} samples per path after "
        f"{c['warmup']} warm-up, ms)",
        f"  {'path':<44}{'p50':>8}{'p99':>8}{'mean':>8}{'max':>8}   target",
    ]
    rows = (
        ("engine.decide (asyncio.run per call)", "sync", f"p50 <= {TARGET_P50_MS:g} ms"),
        ("await engine.decide_async (one loop)", "async", f"p50 <= {TARGET_P50_MS:g} ms"),
        ("plain Python: same steps, same engine", "plain", None),
    )
    for label, key, target in rows:
        s = single[key]
        mark = f"{target}  {verdict(passed[key + '_p50'])}" if target else "(anchor)"
        lines.append(
            f"  {label:<44}{s['p50']:>8.2f}{s['p99']:>8.2f}{s['mean']:>8.2f}{s['max']:>8.2f}"
            f"   {mark}"
        )
    overhead = single["async"]["p50"] - single["plain"]["p50"]
    lines += [
        f"  {'LangGraph cost (decide_async - plain, p50)':<44}{overhead:>8.2f}",
        "",
        "Where the time goes (median ms per decision)",
        f"  {'step':<44}{'graph':>8}{'plain':>8}",
    ]
    for name, values in brk["nodes"].items():
        label = name + ("  (DB read + indicators)" if name == "gather" else "")
        lines.append(f"  {label:<44}{values['graph']:>8.3f}{values['plain']:>8.3f}")
    lines += [
        f"  {'sum of the nodes':<44}{brk['sum_of_nodes']['graph']:>8.3f}"
        f"{brk['sum_of_nodes']['plain']:>8.3f}",
        f"  {'graph.ainvoke (timings_ms.graph)':<44}{brk['graph_invoke']:>8.3f}",
        f"  {'LangGraph machinery (ainvoke - nodes)':<44}{brk['langgraph_machinery']:>8.3f}",
        f"  {'fills, cool-downs, record, save, pauses':<44}{brk['outside_graph']:>8.3f}",
        "",
        f"{c['symbols']}-symbol cycle, sequential, same as_of (seconds, {c['cycles']} cycles)",
        f"  {'path':<44}{'median':>8}{'min':>8}{'max':>8}   target",
    ]
    cycle_rows = (
        ("engine.decide per symbol", "sync", True),
        ("await engine.decide_async, one loop", "async", True),
        ("plain Python anchor", "plain", False),
    )
    for label, key, has_target in cycle_rows:
        s = cycle[key]
        mark = (
            f"<= {TARGET_CYCLE_S:g} s  {verdict(passed[key + '_cycle'])}"
            if has_target
            else "(anchor)"
        )
        lines.append(f"  {label:<44}{s['p50']:>8.3f}{s['min']:>8.3f}{s['max']:>8.3f}   {mark}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    config = QUICK if args.quick else FULL
    progress = sys.stderr
    with tempfile.TemporaryDirectory(prefix="sigmax-bench-") as home:
        print(f"preparing {config.symbols} symbols in {home} ...", file=progress)
        bench, setup_s = prepare(Path(home), config)
        try:
            print("checking the plain anchor against the graph ...", file=progress)
            anchor = check_anchor(bench, config)
            gc.collect()
            print(f"{config.repetitions} single decisions per path ...", file=progress)
            singles = single_decisions(bench, config)
            gc.collect()
            print(f"{config.cycles} cycles per path ...", file=progress)
            cycle_s = cycles(bench, config)
        finally:
            bench.database.dispose()
    result = report(bench, config, setup_s, anchor, singles, cycle_s)
    print(json.dumps(result, indent=2) if args.json else render(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
