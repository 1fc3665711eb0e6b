"""The whole decision path on real candles: evidence, determinism, no look-ahead, variety."""

import json
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa
import talib
from click.testing import CliRunner
from conftest import shared_csv
from decision_helpers import Loaded, load, poison_after, read_csv_window
from snapshot_reference import expected_snapshot

from api.cli import cli
from core.settings import SafetySettings, Settings
from core.timeframes import format_timestamp, parse_timestamp, timeframe_ms
from storage.models import CandleRow, FillRow, SafetyEventRow

AS_OF = "2023-01-20T12:00:00Z"
LOOKBACK = 250


@pytest.fixture(scope="module")
def btc(tmp_path_factory: pytest.TempPathFactory) -> Loaded:
    path = shared_csv("BTC_USDT-5m.csv")
    return load(tmp_path_factory.mktemp("btc"), {"BTC/USDT": path}, "5m")


def test_cli_decision_evidence_equals_an_independent_computation(btc: Loaded) -> None:
    """`sigmax decide … --json` cites values TA-Lib computes from the CSV itself."""
    result = CliRunner().invoke(
        cli,
        ["decide", "BTC/USDT", "--timeframe", "5m", "--as-of", AS_OF, "--json"],
        env={"SIGMAX_HOME": str(btc.settings.home)},
    )
    assert result.exit_code == 0, result.output
    record = json.loads(result.output)
    values = {item["name"]: item["value"] for item in record["evidence"]}
    window = read_csv_window(shared_csv("BTC_USDT-5m.csv"), "5m", AS_OF, LOOKBACK)
    high, low, close, volume = window.high, window.low, window.close, window.volume
    previous = volume[-21:-1]
    expected = expected_snapshot(
        close,
        volume_z=(volume[-1] - previous.mean()) / previous.std(),
        rsi=talib.RSI(close, 14),
        macd=talib.MACD(close, 12, 26, 9),
        bands=talib.BBANDS(close, 20, 2.0, 2.0),
        atr=talib.ATR(high, low, close, 14),
        ema50=talib.EMA(close, 50),
    )
    assert set(values) == set(expected)
    for name, value in expected.items():
        # TA-Lib's Bollinger uses running sums of squares: agree to ~1e-12 relative.
        assert values[name] == pytest.approx(float(value), rel=1e-9, abs=1e-12), name
    assert record["as_of"] == AS_OF
    assert record["mode"] == "replay"


def test_the_same_inputs_give_byte_identical_decisions(btc: Loaded, tmp_path: Path) -> None:
    first = btc.decide("BTC/USDT", "5m", AS_OF)
    again = btc.decide("BTC/USDT", "5m", AS_OF)
    elsewhere = load(tmp_path, {"BTC/USDT": shared_csv("BTC_USDT-5m.csv")}, "5m")
    other_database = elsewhere.decide("BTC/USDT", "5m", AS_OF)
    assert first.id != again.id
    assert first.deterministic_json() == again.deterministic_json()
    assert first.deterministic_json() == other_database.deterministic_json()


@pytest.mark.parametrize(
    ("file", "symbol", "points"),
    [
        ("BTC_USDT-5m.csv", "BTC/USDT", ["2023-01-10T08:00:00Z", AS_OF, "2023-02-01T00:05:00Z"]),
        ("ETH_BTC-5m.csv", "ETH/BTC", ["2018-01-15T00:00:00Z", "2018-01-22T13:35:00Z"]),
    ],
)
def test_poisoning_everything_after_as_of_changes_no_decision(
    tmp_path: Path, file: str, symbol: str, points: list[str]
) -> None:
    loaded = load(tmp_path, {symbol: shared_csv(file)}, "5m")
    clean = {point: loaded.decide(symbol, "5m", point) for point in points}
    # Latest point first: each poisoning also covers the later points already decided.
    for point in sorted(points, key=parse_timestamp, reverse=True):
        poison_after(loaded.database, parse_timestamp(point))
        poisoned = loaded.decide(symbol, "5m", point)
        assert poisoned.deterministic_json() == clean[point].deterministic_json(), point
    with loaded.database.session_factory() as session:
        assert session.scalar(sa.select(sa.func.max(CandleRow.close))) == 1.5e9


def test_without_the_candle_closing_at_as_of_the_decision_holds_on_freshness(
    tmp_path: Path,
) -> None:
    loaded = load(tmp_path, {"BTC/USDT": shared_csv("BTC_USDT-5m.csv")}, "5m")
    as_of = parse_timestamp(AS_OF)
    with loaded.database.session_factory.begin() as session:
        deleted = session.execute(
            sa.delete(CandleRow).where(CandleRow.open_time == as_of - timeframe_ms("5m"))
        )
        assert isinstance(deleted, sa.CursorResult)
        assert deleted.rowcount == 1
    decision = loaded.decide("BTC/USDT", "5m", AS_OF)
    checks = {check.name: check for check in decision.safety.checks}
    assert not checks["data_freshness"].passed
    assert "2023-01-20T11:55:00Z" in checks["data_freshness"].detail
    assert decision.safety.verdict == "blocked"
    assert decision.action == "hold"
    assert "data_freshness" in decision.execution.reason


def test_a_blocked_decision_is_stored_with_its_safety_event(tmp_path: Path) -> None:
    loaded = load(tmp_path, {"BTC/USDT": shared_csv("BTC_USDT-5m.csv")}, "5m")
    decision = loaded.decide("BTC/USDT", "5m", "2024-01-01T00:00:00Z")  # long after the data
    assert decision.safety.verdict == "blocked"
    with loaded.database.session_factory() as session:
        event = session.scalars(sa.select(SafetyEventRow)).one()
    assert event.decision_id == decision.id
    assert event.kind == "gate_blocked"
    assert "data_freshness" in event.detail


def test_deciding_every_12th_bar_gives_buys_sells_and_holds(tmp_path: Path) -> None:
    """Not a constant: the distribution over the whole file (printed for the record).

    Pauses lift after their cool-down here (auto-resume): otherwise the first circuit
    breaker would hold the symbol until a person resumed it, and the rest would be holds.
    """
    settings = Settings(home=tmp_path, safety=SafetySettings(auto_resume=True))
    btc = load(tmp_path, {"BTC/USDT": shared_csv("BTC_USDT-5m.csv")}, "5m", settings)
    step = timeframe_ms("5m")
    with btc.database.session_factory() as session:
        first, last = session.execute(
            sa.select(sa.func.min(CandleRow.open_time), sa.func.max(CandleRow.open_time))
        ).one()
    start = first + (LOOKBACK - 1) * step + step  # the first as_of with a full window
    actions: Counter[str] = Counter()
    proposals: Counter[str] = Counter()
    for as_of in range(start, last + step + 1, 12 * step):
        decision = btc.decide("BTC/USDT", "5m", format_timestamp(as_of))
        actions[decision.action] += 1
        proposals[decision.proposal.action] += 1
    print(f"\nBTC/USDT 5m every 12th bar: final {dict(actions)}; proposed {dict(proposals)}")
    assert actions["buy"] > 0
    assert actions["sell"] > 0
    assert actions["hold"] > 0


def test_a_paper_trading_run_is_untouched_by_a_poisoned_future(tmp_path: Path) -> None:
    """The execution path too: decisions, orders and fills up to T stay the same when every
    input after T is absurd (fills happen only once their candle has closed)."""
    start, end = parse_timestamp("2023-01-25T00:00:00Z"), parse_timestamp("2023-01-25T10:00:00Z")
    runs = []
    for name in ("clean", "poisoned"):
        loaded = load(tmp_path / name, {"BTC/USDT": shared_csv("BTC_USDT-5m.csv")}, "5m")
        if name == "poisoned":
            poison_after(loaded.database, end)
        decisions = [
            loaded.engine.decide("BTC/USDT", "5m", moment).deterministic_json()
            for moment in range(start, end + 1, timeframe_ms("5m"))
        ]
        with loaded.database.session_factory() as session:
            fills = session.execute(
                sa.select(FillRow.side, FillRow.quantity, FillRow.price, FillRow.filled_at)
                .where(FillRow.filled_at <= end)
                .order_by(FillRow.id)
            ).all()
        runs.append((decisions, fills))
    (clean_decisions, clean_fills), (poisoned_decisions, poisoned_fills) = runs
    assert clean_fills, "the run should have traded for this test to mean anything"
    assert clean_decisions == poisoned_decisions
    assert clean_fills == poisoned_fills
