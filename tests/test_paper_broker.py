"""The paper broker on real candles, SQLite and PostgreSQL: fills at the next open with fee and
slippage, booked once that candle has closed, precision and minimums, sells capped,
idempotence, restarts, the control state."""

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from broker_helpers import (
    CsvCandle,
    import_real_candles,
    order,
    order_rows,
    set_instrument_rules,
)

from core.settings import PaperSettings
from core.trading import OrderRequest
from execution.paper import PaperBroker
from execution.paper_rules import DAY_MS
from storage import orders
from storage.control import ControlStore
from storage.engine import Database, open_database
from storage.journal import guarded_transaction
from storage.models import FillRow

FIVE_MINUTES = 300_000
SETTINGS = PaperSettings()  # 10 000 USDT; fee 0.1 %; half-spread 0.02 %; impact 0.1


@pytest.fixture
def btc(database: Database, tmp_path: Path) -> list[CsvCandle]:
    """The first 120 candles of the real BTC/USDT 5m file (they cross a UTC midnight)."""
    return import_real_candles(database, tmp_path, "BTC_USDT-5m.csv", "BTC/USDT", "5m", 120)


@pytest.fixture
def broker(database: Database) -> PaperBroker:
    return PaperBroker(database, SETTINGS)


def closes_at(candle: CsvCandle) -> int:
    return candle.open_time + FIVE_MINUTES


def buy_and_book(broker: PaperBroker, btc: list[CsvCandle]) -> int:
    """A buy decided at btc[0]'s close, filled at btc[1]'s open; returns when it is booked."""
    as_of = closes_at(btc[0])
    broker.submit(order(reference_price=btc[0].close, not_before=as_of), as_of)
    booked = closes_at(btc[1])
    assert len(broker.process_fills(booked)) == 1
    return booked


def test_a_buy_fills_at_the_next_open_with_fee_and_slippage(
    broker: PaperBroker, btc: list[CsvCandle]
) -> None:
    # Decided at the close of the first candle (16:50), on its close of 16726.1.
    as_of = closes_at(btc[0])
    outcome = broker.submit(order(reference_price=btc[0].close, not_before=as_of), as_of)
    assert outcome.status == "accepted"
    # 10 % of 10 000 USDT at the reference price.
    assert outcome.quantity == pytest.approx(1000 / 16726.1, rel=1e-12)

    # It fills at the open of the next candle, btc[1], booked once that candle has closed.
    assert broker.process_fills(as_of - 1) == []
    assert broker.process_fills(closes_at(btc[1]) - 1) == []
    [fill] = broker.process_fills(closes_at(btc[1]))
    # By hand: the next candle opens at 16726.0; the candle before it traded 691.508 BTC at
    # a close of 16726.1, so the order's share is 0.0597868 × 16726.0 / (691.508 × 16726.1)
    # = 8.6458e-5 and the adverse move 0.0002 + 0.1 × 8.6458e-5 = 0.00020865.
    assert btc[1].open_time == as_of
    assert fill.filled_at == closes_at(btc[1])  # booked at the close of the candle it priced at
    assert fill.price == pytest.approx(16726.0 * 1.00020864580638606, rel=1e-12)
    assert fill.price == pytest.approx(16729.4898097576, rel=1e-12)
    assert fill.fee == pytest.approx(0.001 * outcome.quantity * fill.price, rel=1e-12)
    assert fill.fee == pytest.approx(1.00020266587893, rel=1e-12)
    # Against the price the decision saw: the gap to the next open is in it too.
    assert fill.slippage_fraction == pytest.approx(16729.4898097576 / 16726.1 - 1, rel=1e-9)
    assert broker.open_orders() == []
    assert broker.process_fills(as_of + DAY_MS) == []


def test_an_order_never_fills_before_not_before(broker: PaperBroker, btc: list[CsvCandle]) -> None:
    # not_before one millisecond after an open: that candle has begun, the next one fills it.
    not_before = btc[10].open_time + 1
    broker.submit(order(reference_price=btc[9].close, not_before=not_before), not_before)
    # btc[10] has closed by then, but it opened before not_before: it never fills the order.
    assert broker.process_fills(closes_at(btc[10])) == []
    assert broker.process_fills(closes_at(btc[11]) - 1) == []
    [fill] = broker.process_fills(btc[30].open_time)
    assert fill.filled_at == closes_at(btc[11])
    assert fill.price > btc[11].open


def test_a_fill_is_booked_only_once_its_candle_has_closed(
    broker: PaperBroker, btc: list[CsvCandle]
) -> None:
    # The fill candle, btc[6], is stored (and btc[7] after it) long before the order is due.
    fill_candle, before = btc[6], btc[5]
    as_of = closes_at(before)
    placed = broker.submit(order(reference_price=before.close, not_before=as_of), as_of)
    assert fill_candle.open_time == as_of

    # Open, or open for all but a millisecond: the candle is still forming, so no decision
    # at that time may read it, and the book at that time must not depend on it either.
    assert broker.process_fills(fill_candle.open_time) == []
    assert broker.process_fills(closes_at(fill_candle) - 1) == []
    assert [row.id for row in broker.open_orders()] == [placed.order_id]
    assert broker.ledger().positions == {}

    [fill] = broker.process_fills(closes_at(fill_candle))
    assert fill.order_id == placed.order_id
    # Still at that candle's open, moved by the half-spread and the impact on the candle before.
    assert fill.filled_at == closes_at(fill_candle)
    participation = placed.quantity * fill_candle.open / (before.volume * before.close)
    assert fill.price == pytest.approx(fill_candle.open * (1 + 0.0002 + 0.1 * participation))
    assert broker.open_orders() == []
    assert broker.process_fills(closes_at(fill_candle) + DAY_MS) == []


def test_a_sell_fills_below_the_open_and_closes_the_trade(
    broker: PaperBroker, btc: list[CsvCandle]
) -> None:
    as_of = closes_at(btc[20])
    bought = broker.submit(order(reference_price=btc[20].close, not_before=as_of), as_of)
    [buy] = broker.process_fills(closes_at(btc[21]))
    later = closes_at(btc[40])
    sold = broker.submit(
        order(side="sell", size=1.0, reference_price=btc[40].close, not_before=later), later
    )
    # Capped at the position held, whatever the fraction asked.
    assert sold.quantity == bought.quantity
    [sell] = broker.process_fills(closes_at(btc[41]))

    participation = sold.quantity * btc[41].open / (btc[40].volume * btc[40].close)
    assert sell.price == pytest.approx(btc[41].open * (1 - 0.0002 - 0.1 * participation))
    assert sell.slippage_fraction == pytest.approx(1 - sell.price / btc[40].close)
    ledger = broker.ledger()
    assert ledger.positions == {}
    [trade] = ledger.closed_trades
    expected = sold.quantity * (sell.price - buy.price) - buy.fee - sell.fee
    assert trade.pnl == pytest.approx(expected, rel=1e-9)
    assert ledger.cash_flow["USDT"] == pytest.approx(expected, rel=1e-9)


def test_impact_is_capped_when_the_order_outweighs_the_candle_before(
    database: Database, broker: PaperBroker, tmp_path: Path
) -> None:
    # XRP/ETH 1m has gaps: nothing traded 00:03, so the candle before the 00:04 open is 00:02's,
    # which traded 163 XRP (0.23 ETH). The order of 1 ETH is far more: its share counts as 1.
    xrp = import_real_candles(database, tmp_path, "XRP_ETH-1m.csv", "XRP/ETH", "1m", 10)
    decided = xrp[2].open_time + 60_000  # 00:03, at the close of 00:02
    broker.submit(
        order("XRP/ETH", reference_price=xrp[2].close, not_before=decided, timeframe="1m"), decided
    )
    assert broker.process_fills(xrp[3].open_time) == []
    [fill] = broker.process_fills(xrp[3].open_time + 60_000)
    assert xrp[3].open_time == decided + 60_000
    assert fill.filled_at == xrp[3].open_time + 60_000
    assert fill.price == pytest.approx(xrp[3].open * (1 + 0.0002 + 0.1))


def test_quantities_floor_to_the_amount_step_and_minimums_reject(
    database: Database, broker: PaperBroker, btc: list[CsvCandle]
) -> None:
    set_instrument_rules(database, "BTC/USDT", amount_step=0.001, min_notional=10.0)
    as_of = closes_at(btc[0])
    floored = broker.submit(order(reference_price=btc[0].close, not_before=as_of), as_of)
    assert floored.status == "accepted"
    assert floored.quantity == pytest.approx(0.059)

    nothing = broker.submit(order(size=1e-5, reference_price=btc[0].close, not_before=as_of), as_of)
    assert nothing.status == "rejected"
    assert "comes to nothing (amount step 0.001)" in nothing.reason

    set_instrument_rules(database, "BTC/USDT", amount_step=0.00001, min_amount=0.0001)
    small = broker.submit(order(size=1e-4, reference_price=btc[0].close, not_before=as_of), as_of)
    assert small.status == "rejected"
    assert small.quantity == pytest.approx(0.00005)
    assert "below the minimum amount 0.0001" in small.reason
    set_instrument_rules(database, "BTC/USDT", min_amount=None)
    small = broker.submit(order(size=1e-4, reference_price=btc[0].close, not_before=as_of), as_of)
    assert "notional 0.836305 is below the minimum notional 10" in small.reason

    rows = order_rows(database)
    assert [row.status for row in rows] == ["open", "rejected", "rejected", "rejected"]
    assert [row.journal_seq for row in rows] == sorted({row.journal_seq for row in rows})
    # Rejected orders never fill.
    assert len(broker.process_fills(closes_at(btc[5]))) == 1


def test_a_sell_is_refused_when_flat_and_capped_by_open_sells(
    database: Database, broker: PaperBroker, btc: list[CsvCandle]
) -> None:
    as_of = closes_at(btc[0])
    flat = broker.submit(order(side="sell", reference_price=btc[0].close, not_before=as_of), as_of)
    assert (flat.status, flat.order_id) == ("refused", None)
    assert flat.reason.startswith("nothing to sell")
    assert order_rows(database) == []

    bought = broker.submit(order(reference_price=btc[0].close, not_before=as_of), as_of)
    assert len(broker.process_fills(closes_at(btc[1]))) == 1
    later = closes_at(btc[3])
    half = broker.submit(
        order(side="sell", size=0.05, reference_price=btc[3].close, not_before=later), later
    )
    assert half.quantity == pytest.approx(500 / btc[3].close, rel=1e-3)
    rest = broker.submit(
        order(side="sell", size=1.0, reference_price=btc[3].close, not_before=later), later
    )
    assert rest.quantity == pytest.approx(bought.quantity - half.quantity)
    more = broker.submit(
        order(side="sell", size=1.0, reference_price=btc[3].close, not_before=later), later
    )
    assert more.status == "refused"
    assert "beyond the open sell orders" in more.reason
    assert len(broker.process_fills(closes_at(btc[4]))) == 2
    assert broker.ledger().positions == {}


def test_a_client_order_id_is_submitted_once(
    database: Database, broker: PaperBroker, btc: list[CsvCandle]
) -> None:
    as_of = closes_at(btc[0])
    request = order(reference_price=btc[0].close, not_before=as_of, client_order_id="decision-1")
    first = broker.submit(request, as_of)
    again = broker.submit(request, as_of + 1)
    assert (again.status, again.order_id, again.journal_seq) == (
        "accepted",
        first.order_id,
        first.journal_seq,
    )
    assert "already submitted" in again.reason
    booked = closes_at(btc[1])
    assert len(broker.process_fills(booked)) == 1
    # Still one order and one fill, even after it filled.
    assert broker.submit(request, booked + 1).order_id == first.order_id
    assert len(order_rows(database)) == 1
    assert len(broker.ledger().positions) == 1


def test_a_new_broker_on_the_same_database_sees_the_same_book(
    database_url: str, broker: PaperBroker, btc: list[CsvCandle]
) -> None:
    booked = buy_and_book(broker, btc)
    broker.submit(order(reference_price=btc[1].close, not_before=closes_at(btc[5])), booked)
    before = (broker.ledger(), broker.open_orders(), broker.portfolio(closes_at(btc[9])))

    reopened = open_database(database_url)
    try:
        restarted = PaperBroker(reopened, SETTINGS)
        after = (
            restarted.ledger(),
            restarted.open_orders(),
            restarted.portfolio(closes_at(btc[9])),
        )
    finally:
        reopened.dispose()
    assert after == before
    assert len(after[0].positions) == len(after[1]) == 1


def test_portfolio_marks_now_and_at_the_start_of_the_utc_day(
    broker: PaperBroker, btc: list[CsvCandle]
) -> None:
    as_of = closes_at(btc[30])
    bought = broker.submit(order(reference_price=btc[30].close, not_before=as_of), as_of)
    [fill] = broker.process_fills(closes_at(btc[31]))
    midnight = next(candle.open_time for candle in btc if candle.open_time % DAY_MS == 0)
    before_midnight = next(candle for candle in btc if closes_at(candle) == midnight)
    now = midnight + 2 * 3_600_000 + 1
    newest = next(candle for candle in btc if closes_at(candle) == now - 1)

    view = broker.portfolio(now)
    cash = 10_000 - bought.quantity * fill.price - fill.fee
    usdt = view.currencies["USDT"]
    assert view.day_start == midnight
    assert usdt.cash == pytest.approx(cash, rel=1e-12)
    assert usdt.equity == pytest.approx(cash + bought.quantity * newest.close, rel=1e-12)
    assert usdt.day_start_equity == pytest.approx(
        cash + bought.quantity * before_midnight.close, rel=1e-12
    )
    assert usdt.today_pnl == pytest.approx(
        bought.quantity * (newest.close - before_midnight.close), rel=1e-9
    )
    holding = view.holdings["BTC/USDT"]
    assert (holding.timeframe, holding.mark_price) == ("5m", newest.close)
    assert view.position_fraction("BTC/USDT") == pytest.approx(holding.value / usdt.equity)
    assert view.exposure_fraction("USDT") == view.position_fraction("BTC/USDT")
    assert view.position_fraction("ETH/USDT") == view.exposure_fraction("BTC") == 0.0
    assert view.currencies["BTC"].equity == 0.5


def test_paused_refuses_buys_and_lets_sells_out(
    database: Database, broker: PaperBroker, btc: list[CsvCandle]
) -> None:
    booked = buy_and_book(broker, btc)
    ControlStore(database).record("PAUSED", "three losses", "gate", booked, symbol="BTC/USDT")

    buy = broker.submit(order(reference_price=btc[1].close, not_before=booked), booked)
    assert (buy.status, buy.reason) == ("refused", "PAUSED (three losses): exits only, no new buys")
    sell = broker.submit(
        order(side="sell", size=1.0, reference_price=btc[1].close, not_before=booked), booked
    )
    assert sell.status == "accepted"


def test_halted_refuses_everything_but_reduce_only_sells(
    database: Database, broker: PaperBroker, btc: list[CsvCandle]
) -> None:
    booked = buy_and_book(broker, btc)
    ControlStore(database).record("HALTED", "panic", "operator", booked)

    for side in ("buy", "sell"):
        refused = broker.submit(
            order(side=side, reference_price=btc[1].close, not_before=booked), booked
        )
        assert (refused.status, refused.reason) == (
            "refused",
            "HALTED (panic): no new orders until a resume",
        )
    close_out = broker.submit(
        order(side="sell", size=1.0, reference_price=btc[1].close, not_before=booked,
              reduce_only=True),
        booked,
    )  # fmt: skip
    assert close_out.status == "accepted"
    reduce_buy = broker.submit(
        order(reference_price=btc[1].close, not_before=booked, reduce_only=True), booked
    )
    assert reduce_buy.status == "refused"
    assert [row.reduce_only for row in order_rows(database)] == [False, True]


def test_a_quote_without_a_starting_balance_is_refused(broker: PaperBroker) -> None:
    outcome = broker.submit(order("BTC/EUR", reference_price=20_000.0, not_before=0), 0)
    assert outcome.status == "refused"
    assert "paper.starting_balances" in outcome.reason
    assert "EUR" in outcome.reason


def test_a_cancelled_order_does_not_fill(broker: PaperBroker, btc: list[CsvCandle]) -> None:
    as_of = closes_at(btc[0])
    placed = broker.submit(order(reference_price=btc[0].close, not_before=as_of), as_of)
    [cancelled] = broker.cancel_all("operator said so", as_of)
    assert (cancelled.id, cancelled.status, cancelled.reason) == (
        placed.order_id,
        "cancelled",
        "operator said so",
    )
    assert broker.cancel_all("again", as_of) == []
    assert broker.process_fills(closes_at(btc[10])) == []
    assert broker.ledger().positions == {}


def test_nonsense_requests_raise(broker: PaperBroker) -> None:
    with pytest.raises(ValueError, match="size_fraction"):
        broker.submit(order(size=0.0, reference_price=1.0, not_before=0), 0)
    with pytest.raises(ValueError, match="reference_price"):
        broker.submit(order(reference_price=float("nan"), not_before=0), 0)


def test_one_client_order_id_submitted_at_once_from_many_threads_stores_one_order(
    database: Database, broker: PaperBroker, btc: list[CsvCandle]
) -> None:
    as_of = closes_at(btc[0])
    threads = 4
    start = threading.Barrier(threads)

    def submit(request: OrderRequest) -> str | None:
        start.wait()
        return broker.submit(request, as_of).order_id

    with ThreadPoolExecutor(max_workers=threads) as pool:
        for attempt in range(25):
            request = order(
                size=1e-4, reference_price=btc[0].close, not_before=as_of,
                client_order_id=f"racing-{attempt}",
            )  # fmt: skip
            ids = set(pool.map(submit, [request] * threads))
            assert len(ids) == 1
    assert len(order_rows(database)) == 25


def test_a_sell_fills_no_more_than_is_held_when_it_fills(
    database: Database, broker: PaperBroker, btc: list[CsvCandle]
) -> None:
    as_of = closes_at(btc[0])
    bought = broker.submit(order(reference_price=btc[0].close, not_before=as_of), as_of)
    assert len(broker.process_fills(closes_at(btc[1]))) == 1
    later = closes_at(btc[2])
    sell = broker.submit(
        order(side="sell", size=1.0, reference_price=btc[2].close, not_before=later), later
    )
    # Meanwhile, as a sell sized side by side elsewhere could, half the position is sold.
    with guarded_transaction(database, exclusive=False) as session:
        sold_elsewhere = orders.add_order(
            session,
            orders.NewOrder(
                id="elsewhere", client_order_id="elsewhere", decision_id=None, broker="paper",
                symbol="BTC/USDT", timeframe="5m", side="sell", quantity=bought.quantity / 2,
                reference_price=btc[2].close, reduce_only=False, status="open", reason="test",
                not_before=later,
            ),
            later,
        )  # fmt: skip
        orders.close_order(session, sold_elsewhere.id, "filled", "test", later)
        orders.add_fill(
            session,
            FillRow(
                order_id="elsewhere", symbol="BTC/USDT", side="sell",
                quantity=bought.quantity / 2, price=btc[2].close, fee=0.0,
                slippage_fraction=0.0, filled_at=later,
            ),
        )  # fmt: skip

    [fill] = broker.process_fills(closes_at(btc[3]))
    assert fill.quantity == pytest.approx(bought.quantity / 2)
    [row] = [row for row in order_rows(database) if row.id == sell.order_id]
    assert (row.status, row.quantity) == ("filled", sell.quantity)
    assert "only that much held" in row.reason
    assert broker.ledger().positions == {}


def test_buys_sent_side_by_side_never_spend_more_cash_than_there_is(
    broker: PaperBroker,
) -> None:
    """Eight all-in buys of eight symbols at once: together they may spend the USDT once."""
    symbols = [f"C{index}/USDT" for index in range(8)]
    start = SETTINGS.starting_balances["USDT"]

    def send(symbol: str) -> float:
        outcome = broker.submit(
            order(symbol, "buy", size=1.0, reference_price=100.0, not_before=0), 0
        )
        return outcome.quantity * 100.0 if outcome.status == "accepted" else 0.0

    with ThreadPoolExecutor(max_workers=8) as pool:
        spent = list(pool.map(send, symbols))
    assert sum(spent) * (1 + SETTINGS.taker_fee) == pytest.approx(start, rel=1e-9)
    assert sum(1 for notional in spent if notional > 0) == 1
