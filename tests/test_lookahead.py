"""`lookahead`: the future poisoned at sampled bars changes no decision of our pipeline, and a
step that peeks at the next candle is caught, named, with the steps downstream of it."""

from pathlib import Path

from conftest import shared_csv

from backtest.lookahead import lookahead
from core.decision import SentimentReading
from core.settings import Settings
from graph.builder import STEPS
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


def test_our_pipeline_changes_nothing_when_the_future_is_poisoned(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    rl_model = ModelRegistry(settings.home / MODELS_FOLDER).load_active()
    report = lookahead(_series(700), settings, rl_model, samples=60, seed=3)
    assert len(report.sampled) == 60
    assert report.changed == ()
    assert set(report.changes_by_node().values()) == {0}
    assert report.nodes == tuple(name for name, _ in STEPS)


def test_a_step_reading_the_next_candle_is_caught_by_node(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    rl_model = ModelRegistry(settings.home / MODELS_FOLDER).load_active()
    leaking = tuple(
        (name, peeking_sentiment if name == "sentiment" else step) for name, step in STEPS
    )
    report = lookahead(_series(700), settings, rl_model, samples=60, seed=3, steps=leaking)
    assert len(report.changed) == 60  # every sampled decision: the poison is absurd
    by_node = report.changes_by_node()
    assert by_node["sentiment"] == 60
    # Upstream of the leak nothing changed; the fused proposal downstream did.
    for clean in ("gather", "bull", "bear", "researcher", "debate", "rl"):
        assert by_node[clean] == 0, clean
    assert by_node["fuse"] == 60
    assert all(change.nodes[0] == "sentiment" for change in report.changed)
