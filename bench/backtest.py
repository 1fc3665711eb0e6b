"""Backtest speed: bars per second of `sigmax backtest`'s loop over real candles, beside a
plain per-bar loop over the decision path's steps and the compiled LangGraph per bar.

Three paths over the BTC/USDT 5m candles of ../shared/data (or $SIGMAX_TEST_DATA), each the
whole decision path per bar (indicators, bull, bear, researcher, debate, RL, sentiment,
fuse, triggers and gate, orders and paper fills at the next bar's open) on a fresh book:

- backtest: backtest.run.run_backtest, what the command runs (the market-only stages a
  block of bars at a time from graph.market_plan, the book-dependent rulings bar by bar, the
  steps themselves for the bars not planned; a bar record kept per bar), best of three runs
  beside the first (a fresh process's, which pays for fresh memory);
- plain loop (the anchor): the same arithmetic one bar at a time — graph.builder.STEPS in
  order per bar (Backtest.decide: the state merged as the graph merges it), each step
  building its explained output; the bench checks every bar equals the backtest's;
- graph: the compiled StateGraph invoked once per bar (`ainvoke`, one event loop), on the
  first bars only (it is slow); the bench checks it decides those bars as the backtest did.

Each is measured with no RL model active and with one (a small PPO policy trained here on
the first days of the file; the backtest then runs on the days after, out of sample, so the
policy is asked at every bar). It measures, it does not judge: the exit status is 0 whether
the 20,000 bars/s target is met or not.

    .venv/bin/python -m bench.backtest           # ~1 min (as a module: a script named
                                                 # backtest.py would shadow the package)
    .venv/bin/python -m bench.backtest --quick   # fewer bars
    .venv/bin/python -m bench.backtest --json
"""

import argparse
import asyncio
import json
import os
import platform
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from backtest.run import Backtest, BarRecord, decided_indices, run_backtest
from core.candles import CandleWindow
from core.decision import Abstained
from core.settings import RLSettings, Settings
from core.timeframes import format_timestamp, parse_timestamp
from graph.builder import build_graph
from graph.state import DecisionState
from ingestion.candle_file import parse_candle_file
from rl.env import costs_of
from rl.registry import MODELS_FOLDER, ActiveModel, ModelRegistry
from rl.train import TrainingRequest, train_model

DATA = Path(os.environ.get("SIGMAX_TEST_DATA", "../shared/data")) / "BTC_USDT-5m.csv"
TRAIN_UNTIL = "2023-01-09T00:00:00Z"  # the policy's data; the backtests start after it
GRAPH_BARS = 500
RUNS = 3
TARGET = 20_000


def plain_loop(
    series: CandleWindow, settings: Settings, rl_model: Any, bars: range, run_id: str
) -> tuple[float, list[BarRecord]]:
    """The anchor: the steps in order per bar, on the same services; bars/s and the bars
    (under ``run_id``: the orders are named after it)."""
    backtest = Backtest(series, settings, rl_model, run_id=run_id)
    decided: list[BarRecord] = []
    started = time.perf_counter()
    for index in bars:
        backtest.prepare(backtest.as_of(index))
        decided.append(backtest.bar_record(index, backtest.decide(index)))
    return len(bars) / (time.perf_counter() - started), decided


def graph_loop(
    series: CandleWindow, settings: Settings, rl_model: Any, bars: range
) -> tuple[float, list[tuple[str, str, float]]]:
    """The compiled graph once per bar; returns bars/s and each bar's (verdict, action, size)."""
    backtest = Backtest(series, settings, rl_model)
    graph = build_graph(backtest.services)
    outcomes: list[tuple[str, str, float]] = []

    async def run() -> float:
        started = time.perf_counter()
        for index in bars:
            as_of = backtest.as_of(index)
            backtest.prepare(as_of)
            state: DecisionState = await graph.ainvoke(
                {"request": _request(backtest, as_of), "timings_ms": {}}
            )
            backtest.note_decided(state)
            safety = state["safety"]
            outcomes.append((safety.verdict, safety.action, safety.size))
        return len(bars) / (time.perf_counter() - started)

    return asyncio.run(run()), outcomes


def _request(backtest: Backtest, as_of: int) -> Any:
    return backtest.request(as_of, place_orders=True)


def measure(
    series: CandleWindow, settings: Settings, rl_model: Any, start_ms: int
) -> dict[str, Any]:
    bars = decided_indices(series, start_ms, None)
    # The first run is what one `sigmax backtest` process sees (its memory fresh); the best
    # of RUNS is the code's speed with less of the machine's noise in it.
    runs = [run_backtest(series, settings, rl_model, start_ms=start_ms) for _ in range(RUNS)]
    result = max(runs, key=lambda run: run.bars_per_second)
    if any(run.bars != result.bars for run in runs):
        raise SystemExit("two runs of the same backtest decided some bar differently")
    plain_rate, plain_bars = plain_loop(series, settings, rl_model, bars, result.run_id)
    if plain_bars != result.bars:
        raise SystemExit("the plain loop decided some bar differently from the backtest")
    graph_bars = range(bars.start, min(bars.stop, bars.start + GRAPH_BARS))
    graph_rate, graph_outcomes = graph_loop(series, settings, rl_model, graph_bars)
    matched = [(bar.verdict, bar.action, bar.size) for bar in result.bars[: len(graph_bars)]]
    if matched != graph_outcomes:
        raise SystemExit("the graph decided the first bars differently from the backtest")
    return {
        "bars": len(result.bars),
        "span": " → ".join(
            format_timestamp(bar.as_of) for bar in (result.bars[0], result.bars[-1])
        ),
        "backtest_bars_per_second": result.bars_per_second,
        "first_run_bars_per_second": runs[0].bars_per_second,
        "planned_bars": result.planned_bars,
        "plain_loop_bars_per_second": plain_rate,
        "graph_bars_per_second": graph_rate,
        "graph_bars": len(graph_bars),
        "fills": len(result.fills),
        "profile_us_per_bar": result.profile_us_per_bar(),
    }


def trained_model(series: CandleWindow, home: Path, quick: bool) -> ActiveModel:
    """A small PPO policy on the file's first days, registered and active in ``home``."""
    model = train_model(
        TrainingRequest(
            windows=[series],
            train_until=parse_timestamp(TRAIN_UNTIL),
            timesteps=512 if quick else 4096,
            seed=7,
            settings=RLSettings(n_steps=128, batch_size=64),
            costs=costs_of(Settings(home=home)),
        )
    )
    registry = ModelRegistry(home / MODELS_FOLDER)
    registry.add(model.model_id, model.files, model.meta)
    registry.activate(model.model_id)
    active = registry.load_active()
    assert isinstance(active, ActiveModel)
    return active


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="3,000 bars instead of the file")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    series = parse_candle_file(DATA.read_bytes(), "BTC/USDT", "5m", "import").candles
    if args.quick:
        series = series.part(0, 3_000)
    start_ms = parse_timestamp(TRAIN_UNTIL)
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        settings = Settings(home=home)
        figures = {
            "no RL model": measure(
                series, settings, Abstained(reason="no RL model active"), start_ms
            ),
            "RL model active": measure(
                series, settings, trained_model(series, home, args.quick), start_ms
            ),
        }
    figures["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version()}
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    for name in ("no RL model", "RL model active"):
        item = figures[name]
        print(
            f"{name}: {item['bars']} bars {item['span']}, {item['fills']} fills, "
            f"{item['planned_bars']} decided from the plan"
        )
        print(
            f"  backtest     {item['backtest_bars_per_second']:10,.0f} bars/s   (target "
            f"{TARGET:,}; best of {RUNS}, the first {item['first_run_bars_per_second']:,.0f})"
        )
        print(f"  plain loop   {item['plain_loop_bars_per_second']:10,.0f} bars/s   (anchor)")
        print(
            f"  graph        {item['graph_bars_per_second']:10,.0f} bars/s   "
            f"({item['graph_bars']} bars)"
        )
        for stage, micros in item["profile_us_per_bar"].items():
            print(f"    {stage:<24} {micros:8.1f} µs/bar")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
