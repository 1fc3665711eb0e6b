"""What model-backed agents cost the decision path itself, apart from the model's own time.

All four roles (bull, bear, researcher, judge) are backed by the tests' scripted chat model,
which answers at once through real tool calls: what is measured is prompt building, the
replay-cache look-up and write, the budget reads, parsing and conversion. Three passes over
the same symbols at one instant, each one decision per symbol, decide-only:

- fresh: every prompt new (a request per role, stored);
- replay: the same decisions again on the same database (every answer from the cache:
  what a rerun or a backtest pays per decision);
- anchor: the same decisions with the rule agents (the default).

    .venv/bin/python -m bench.llm            # 100 symbols, ~30 s
    .venv/bin/python -m bench.llm --quick    # 20 symbols

It measures, it does not judge: the exit status is 0 whatever the figures.
"""

import argparse
import itertools
import statistics
import sys
import tempfile
import time
from pathlib import Path

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage

from core.settings import MODEL_ROLES, ModelRole, Settings
from core.timeframes import format_timestamp, parse_timestamp
from graph.engine import DecisionEngine
from ingestion.sim_feed import extend_simulation
from storage.candles import CandleStore
from storage.engine import Database, open_database

# The scripted chat model lives with the tests; the benchmark drives the same one.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from chat_models import ScriptedChatModel, tool_answer

AS_OF = parse_timestamp("2024-01-02T09:20:00Z")
BACKENDS = dict.fromkeys(MODEL_ROLES, "openai:bench")
ARGUMENT = {
    "category": "trend",
    "claim": "close against EMA(50)",
    "evidence": ["close_vs_ema_50", "atr_pct"],
    "strength": 0.4,
}
ANSWERS: dict[ModelRole, AIMessage] = {
    "bull": tool_answer("SideArguments", {"arguments": [ARGUMENT]}),
    "bear": tool_answer("SideArguments", {"arguments": [ARGUMENT]}),
    "researcher": tool_answer("ResearchContext", {"items": [], "confidence_factor": 0.9}),
    "judge": tool_answer("JudgeRuling", {"score": 0.1, "confidence": 0.2, "reason": "close"}),
}


def _models() -> dict[ModelRole, BaseChatModel]:
    return {
        role: ScriptedChatModel(messages=itertools.repeat(answer))
        for role, answer in ANSWERS.items()
    }


def _pass(engine: DecisionEngine, symbols: list[str]) -> list[float]:
    """Milliseconds per decision, one per symbol."""
    timings = []
    for symbol in symbols:
        started = time.perf_counter()
        engine.decide(symbol, "5m", AS_OF, place_orders=False)
        timings.append((time.perf_counter() - started) * 1000.0)
    return timings


def _line(name: str, timings: list[float]) -> str:
    ordered = sorted(timings)
    p95 = ordered[int(0.95 * (len(ordered) - 1))]
    return f"  {name:<34} p50 {statistics.median(timings):7.2f} ms   p95 {p95:7.2f} ms"


def _prepare(home: Path, symbols: list[str]) -> Database:
    database = open_database(f"sqlite:///{home / 'sigmax.db'}")
    store = CandleStore(database.session_factory)
    for index, symbol in enumerate(symbols):
        extend_simulation(store, symbol, "5m", AS_OF, 400, seed=42 + index)
    return database


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 symbols instead of 100")
    count = 20 if parser.parse_args().quick else 100
    symbols = [f"SIM{index:03d}/USDT" for index in range(count)]
    warm = "WARM/USDT"  # each path's first decision, left out of the figures
    with tempfile.TemporaryDirectory(prefix="sigmax-bench-llm-") as folder:
        home = Path(folder)
        database = _prepare(home, [warm, *symbols])
        with_models = Settings(home=home, symbols=(warm, *symbols), llm=BACKENDS)
        fresh_engine = DecisionEngine(with_models, database, chat_models=_models())
        replay_engine = DecisionEngine(with_models, database, chat_models=_models())
        rules_engine = DecisionEngine(Settings(home=home, symbols=(warm, *symbols)), database)
        for engine in (fresh_engine, replay_engine, rules_engine):
            _pass(engine, [warm])
        fresh = _pass(fresh_engine, symbols)
        replay = _pass(replay_engine, symbols)
        rules = _pass(rules_engine, symbols)
        database.dispose()
    print(f"{count} symbols, one decision each at {format_timestamp(AS_OF)}, decide-only")
    print(_line("fresh (4 model-backed roles)", fresh))
    print(_line("replay (all 4 answers cached)", replay))
    print(_line("anchor: rule agents", rules))
    print(
        f"  model path overhead per decision: fresh "
        f"{statistics.median(fresh) - statistics.median(rules):+.2f} ms, replay "
        f"{statistics.median(replay) - statistics.median(rules):+.2f} ms"
    )


if __name__ == "__main__":
    main()
