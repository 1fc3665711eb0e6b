"""`lookahead`: the future poisoned at sampled bars changes no decision of our pipeline, and a
step that peeks at the next candle is caught, named, with the steps downstream of it — the
execute step and the broker's fills included, on a twin of the book the run never sees."""

from pathlib import Path

from conftest import shared_csv

from backtest.lookahead import lookahead, poisoned_twin
from backtest.market import POISON_PRICE_FACTOR
from backtest.run import Backtest, decided_indices
from core.decision import SentimentReading
from core.settings import Settings
from graph.builder import STEPS
from graph.nodes import execute
from graph.state import DecisionServices, DecisionState
from ingestion.candle_file import parse_candle_file
from rl.registry import MODELS_FOLDER, ModelRegistry


def _series(bars: int):  # type: ignore[no-untyped-def]
    path = shared_csv("XRP_USDT-5m.csv")
    return parse_candle_file(path.read_bytes(), "XRP/USDT", "5m", "import").candles.part(0, bars)


def peeking_sentiment(state: DecisionState, services: DecisionServices) -> DecisionState:
    """A leak on purpose: "sentiment" from the next candle's close, which as_of cannot know."""
    request = state["request"]
    ahead = services.market_view(request.as_of + request.timeframe_ms).candles(
        request.symbol, request.timeframe, 2
    )
    move = float(ahead.close[-1] / ahead.close[-2] - 1.0)
    return {"sentiment": SentimentReading(score=max(-1.0, min(1.0, move * 100)), item_count=1)}


def booking_execute(state: DecisionState, services: DecisionServices) -> DecisionState:
    """A leak on purpose: the order placed is booked at once, at the open of a candle that has
    not closed by as_of, and its fill price reported."""
    update = execute(state, services)
    request = state["request"]
    fills = services.broker.process_fills(request.as_of + request.timeframe_ms)
    if not fills:
        return update
    execution = update["execution"]
    reason = f"{execution.reason}; filled at {fills[0].price!r}"
    return {"execution": execution.model_copy(update={"reason": reason})}


def _leaking(name: str, step):  # type: ignore[no-untyped-def]
    return tuple((each, step if each == name else original) for each, original in STEPS)


def test_our_pipeline_changes_nothing_when_the_future_is_poisoned(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    rl_model = ModelRegistry(settings.home / MODELS_FOLDER).load_active()
    report = lookahead(_series(700), settings, rl_model, samples=60, seed=3)
    assert len(report.sampled) == 60
    assert report.ordered  # the execute step placed orders on the twin's book too
    assert report.changed == ()
    assert set(report.changes_by_node().values()) == {0}
    assert report.nodes == ("plan", *(name for name, _ in STEPS))


def test_a_step_reading_the_next_candle_is_caught_by_node(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    rl_model = ModelRegistry(settings.home / MODELS_FOLDER).load_active()
    leaking = _leaking("sentiment", peeking_sentiment)
    report = lookahead(_series(700), settings, rl_model, samples=60, seed=3, steps=leaking)
    assert len(report.changed) == 60  # every sampled decision: the poison is absurd
    by_node = report.changes_by_node()
    assert by_node["sentiment"] == 60
    # Upstream of the leak nothing changed; the fused proposal downstream did.
    for clean in ("gather", "bull", "bear", "researcher", "debate", "rl"):
        assert by_node[clean] == 0, clean
    assert by_node["fuse"] == 60
    assert all(change.nodes[0] == "sentiment" for change in report.changed)


def test_a_fill_booked_before_its_candle_closed_is_caught_at_execute(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    rl_model = ModelRegistry(settings.home / MODELS_FOLDER).load_active()
    leaking = _leaking("execute", booking_execute)
    report = lookahead(_series(420), settings, rl_model, samples=400, seed=3, steps=leaking)
    assert len(report.sampled) == 361  # every bar decided
    # Every decision that placed an order changed, at execute alone (the last step); no other.
    assert len(report.ordered) > 0
    assert [change.as_of for change in report.changed] == list(report.ordered)
    assert {change.nodes for change in report.changed} == {("execute",)}


def test_the_twin_trades_on_its_own_book_over_the_poisoned_candles(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    rl_model = ModelRegistry(settings.home / MODELS_FOLDER).load_active()
    series = _series(420)
    backtest = Backtest(series, settings, rl_model)
    for index in decided_indices(series, None, None):
        as_of = backtest.as_of(index)
        twin = poisoned_twin(backtest, as_of)
        backtest.prepare(as_of)
        twin.prepare(as_of)
        twin_state = twin.run_steps(as_of, twin.services)
        if twin_state["execution"].status == "executed":
            break
        backtest.decide(index)
    # The twin decided as the run would and placed its order, on its own book only.
    assert [order.id for order in twin.broker.open_orders()] == [f"{backtest.run_id}-{as_of}"]
    assert backtest.broker.open_orders() == []
    fills_before = backtest.broker.booked_fills
    assert backtest.decide(index)["execution"] == twin_state["execution"]

    # One bar on, each books its order's fill at the next open: the twin's is poisoned.
    after = as_of + series.timeframe_ms
    twin.prepare(after)
    assert backtest.broker.booked_fills == fills_before  # the twin's fill is not the run's
    backtest.prepare(after)
    (real_fill,) = backtest.broker.booked_fills[len(fills_before) :]
    (twin_fill,) = twin.broker.booked_fills[len(fills_before) :]
    assert real_fill.filled_at == twin_fill.filled_at == after
    assert twin_fill.price / real_fill.price > POISON_PRICE_FACTOR / 2
