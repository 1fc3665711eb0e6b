"""The backtest broker's book reads: a backtest reads the book every bar, and those reads
(kept from one bar to the next while nothing moves them) show what a single read shows.

Also: the backtest's control state follows the stored control state's rules."""

from pathlib import Path

import pytest
from conftest import shared_csv

from backtest.control import BacktestControl
from core.candles import CandleWindow
from core.settings import SafetySettings, Settings
from core.trading import OrderRequest, Side
from execution.backtest import BacktestBroker
from execution.paper import PaperBroker
from ingestion.candle_file import parse_candle_file
from safety.control import ControlService
from storage.control import NEVER_CHANGED, ControlState, ControlStore
from storage.engine import Database

SYMBOL = "BTC/USDT"
DAY_BARS = 288  # five-minute candles a day


@pytest.fixture(scope="module")
def series() -> CandleWindow:
    path = shared_csv("BTC_USDT-5m.csv")
    return parse_candle_file(path.read_bytes(), SYMBOL, "5m", "import").candles.part(0, 3000)


def as_of(series: CandleWindow, index: int) -> int:
    return int(series.open_time[index]) + series.timeframe_ms


def broker_over(series: CandleWindow, settings: Settings) -> BacktestBroker:
    return BacktestBroker(series, settings.paper, lambda _symbol: NEVER_CHANGED)


def submit(
    broker: BacktestBroker, series: CandleWindow, index: int, side: Side, not_before: int
) -> None:
    request = OrderRequest(
        client_order_id=f"{side}-{index}",
        symbol=SYMBOL,
        timeframe="5m",
        side=side,
        size_fraction=0.05 if side == "buy" else 1.0,
        reference_price=float(series.close[index]),
        not_before=not_before,
    )
    outcome = broker.submit(request, as_of(series, index))
    assert outcome.status == "accepted", outcome.reason


def trade_bar(broker: BacktestBroker, series: CandleWindow, index: int) -> None:
    """Book what is due at the bar's close; buy every 150 bars, sell 60 bars after."""
    broker.process_fills(as_of(series, index))
    if index % 150 == 0:
        submit(broker, series, index, "buy", as_of(series, index))
    elif index % 150 == 60:
        submit(broker, series, index, "sell", as_of(series, index))


def test_a_read_every_bar_shows_what_a_single_read_shows(
    series: CandleWindow, settings: Settings
) -> None:
    every_bar, now_and_then = broker_over(series, settings), broker_over(series, settings)
    previous: int | None = None
    compared = 0
    for index in range(len(series)):
        trade_bar(every_bar, series, index)
        trade_bar(now_and_then, series, index)
        now = as_of(series, index)
        read = every_bar.portfolio(now)
        new_fills = every_bar.fills(previous, now)
        assert new_fills == [
            fill
            for fill in every_bar.booked_fills
            if (previous is None or fill.filled_at > previous) and fill.filled_at <= now
        ]
        previous = now
        # Days apart, with fills and the day's turn between, and as a buy is placed and filled.
        if index % 397 in (0, 1) or index % 300 in (0, 1):
            assert read == now_and_then.portfolio(now), index
            compared += 1
    assert compared > 10
    trades = every_bar.portfolio(as_of(series, len(series) - 1)).closed_trades
    assert len(trades) == len(series) // 150
    assert trades == every_bar.ledger().closed_trades


def test_reads_of_a_held_position_follow_the_closes(
    series: CandleWindow, settings: Settings
) -> None:
    broker = broker_over(series, settings)
    submit(broker, series, 300, "buy", as_of(series, 300))
    broker.process_fills(as_of(series, 301))
    marks, equities = [], []
    for index in range(302, 302 + DAY_BARS):
        holding = broker.portfolio(as_of(series, index)).holdings[SYMBOL]
        assert holding.mark_price == float(series.close[index])
        marks.append(holding.mark_price)
        equities.append(broker.portfolio(as_of(series, index)).currencies["USDT"].equity)
    # Each bar's own close, so the equity moves as the closes do.
    assert len(set(marks)) > 50
    assert len(set(equities)) == len(set(marks))


def test_a_fill_before_the_fills_booked_takes_its_place_in_time(
    series: CandleWindow, settings: Settings
) -> None:
    broker = broker_over(series, settings)
    submit(broker, series, 500, "buy", as_of(series, 500))
    broker.process_fills(as_of(series, 501))
    # Placed later, to fill no earlier than a candle before the first fill's.
    submit(broker, series, 600, "buy", as_of(series, 400))
    [late] = broker.process_fills(as_of(series, 601))
    first, second = broker.booked_fills
    assert first == late
    assert first.filled_at < second.filled_at
    assert broker.fills(None, as_of(series, 450)) == [late]
    between = broker.portfolio(as_of(series, 450))
    assert between.holdings[SYMBOL].quantity == late.quantity
    after = broker.portfolio(as_of(series, 601))
    assert after.holdings[SYMBOL].quantity == pytest.approx(first.quantity + second.quantity)


def _state(state: ControlState) -> tuple[object, ...]:
    return (state.state, state.reason, state.actor, state.since, state.symbol)


def test_the_backtests_control_state_follows_the_stored_rules(
    database: Database, tmp_path: Path
) -> None:
    settings = Settings(home=tmp_path / "home", safety=SafetySettings(auto_resume=True))
    stored = ControlService(database, PaperBroker(database, settings.paper), settings)
    in_memory = BacktestControl(settings)
    store = ControlStore(database)
    steps = [
        ("gate", "slippage", 1_000, "BTC/USDT", 5_000),
        ("operator", "looking into it", 2_000, "ETH/USDT", None),
        ("gate", "losses", 3_000, "ETH/USDT", 9_000),  # a person's pause stands
        ("gate", "drawdown", 4_000, None, 6_000),
    ]
    for actor, reason, at, symbol, until in steps:
        paused = stored.pause(actor, reason, at, symbol, until)
        assert _state(in_memory.pause(actor, reason, at, symbol, until)) == _state(paused)
    for at in (4_999, 5_000, 6_000, 9_000):
        resumed = stored.auto_resume_due(at)
        assert [_state(s) for s in in_memory.auto_resume_due(at)] == [_state(s) for s in resumed]
        for symbol in (None, "BTC/USDT", "ETH/USDT", "XRP/USDT"):
            assert _state(in_memory.current(symbol)) == _state(store.current(symbol)), at
    assert store.current("ETH/USDT").state == "PAUSED"
