"""The order book from the exchange: a REST depth snapshot through the real ccxt `binance`
client against the loopback Binance, then a replay of Binance-shaped diff-depth events with
gaps of 5, 50 and 500 (the tiers: ignored, fresh snapshot, reconnect); crossed books
refused. Its summary is agent evidence read through MarketView(as_of); a poison test."""

import random
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from binance_server import Binance, Depth, binance_server

from core.market_view import BookSummary
from core.settings import Settings
from core.timeframes import parse_timestamp
from graph.engine import DecisionEngine
from ingestion.exchange_book import DiffEvent, ExchangeBook
from ingestion.exchange_candles import public_client
from ingestion.feeds import FeedError
from ingestion.sim import simulate_candles
from storage.book_summaries import BookSummaryStore
from storage.candles import CandleStore
from storage.engine import Database
from storage.market_view import StoredMarketView

START = parse_timestamp("2026-11-20T00:00:00Z")
STEP = 300_000
AS_OF = START + 300 * STEP
SNAPSHOT_ID = 1_000


def depth(last_update_id: int, mid: float = 37_000.0) -> Depth:
    bids = [(mid - 0.5 - level, 1.0 + level / 10) for level in range(50)]
    asks = [(mid + 0.5 + level, 0.5 + level / 10) for level in range(50)]
    return Depth(last_update_id, bids, asks)


def diff_events(first_id: int, count: int, seed: int) -> list[DiffEvent]:
    """Binance diff-depth events as the stream sends them: consecutive ids (sometimes a few
    per event), text prices away from the touch (so no update crosses), zero to remove."""
    rng = random.Random(seed)
    events: list[DiffEvent] = []
    next_id = first_id
    for _ in range(count):
        last = next_id + rng.randrange(3)
        bids = [[f"{36_999.5 - rng.randrange(40):.2f}", f"{rng.choice([0, 0.3, 2.0]):.8f}"]]
        asks = [[f"{37_000.5 + rng.randrange(40):.2f}", f"{rng.choice([0, 0.4, 1.5]):.8f}"]]
        events.append({"U": next_id, "u": last, "b": bids, "a": asks})
        next_id = last + 1
    return events


class ReplayUpdates:
    """The update source of a test: recorded events handed over in order; a reconnect is
    counted, and the stream then carries on from where the replay has got to."""

    def __init__(self, events: list[DiffEvent]) -> None:
        self._events = events
        self.reconnects = 0

    def events(self) -> Iterable[DiffEvent]:
        pending, self._events = self._events, []
        return pending

    def reconnect(self) -> None:
        self.reconnects += 1


@pytest.fixture
def exchange() -> Iterator[Binance]:
    with binance_server(simulate_candles("BTC/USDT", "5m", START, 400, seed=3), AS_OF) as server:
        server.books["BTCUSDT"] = depth(SNAPSHOT_ID)
        yield server


def exchange_book(exchange: Binance) -> ExchangeBook:
    client = public_client("binance", 5.0, rest_base=exchange.base_url)
    return ExchangeBook(client, "BTC/USDT", snapshot_levels=100)


def test_the_snapshot_comes_through_ccxt_with_its_last_update_id(exchange: Binance) -> None:
    book = exchange_book(exchange)
    book.snapshot()
    assert book.book.last_update_id == SNAPSHOT_ID
    summary = book.summary(AS_OF, band_fraction=0.0005)
    assert summary is not None
    assert (summary.best_bid, summary.best_ask) == (36_999.5, 37_000.5)
    assert summary.spread_fraction == pytest.approx(1.0 / 37_000.0)
    # ±0.05% of 37,000 is ±18.5: levels 0..18 on each side, bids 1.0.. and asks 0.5.. in size.
    bids = sum(1.0 + level / 10 for level in range(19))
    asks = sum(0.5 + level / 10 for level in range(19))
    assert summary.imbalance == pytest.approx((bids - asks) / (bids + asks))
    assert summary.source == "exchange:binance"


@pytest.mark.parametrize(
    ("gap", "action", "snapshots", "reconnects"),
    [(5, "gap_ignored", 1, 0), (50, "needs_snapshot", 2, 0), (500, "needs_reconnect", 2, 1)],
)
def test_gaps_in_the_stream_take_their_tier_through_the_exchange(
    exchange: Binance, gap: int, action: str, snapshots: int, reconnects: int
) -> None:
    book = exchange_book(exchange)
    book.snapshot()
    before = diff_events(SNAPSHOT_ID - 3, 20, seed=1)  # the first ones overlap the snapshot
    resume = before[-1]["u"] + 1 + gap
    after = diff_events(resume, 20, seed=2)
    # The repair's snapshot is the exchange's book as of the last event before the gap ends.
    exchange.books["BTCUSDT"] = depth(resume - 1, mid=37_000.0)
    source = ReplayUpdates([*before, *after])
    book.apply(source)
    assert action in book.counts.actions_seen
    assert exchange.depth_requests == snapshots
    assert (book.counts.snapshots, source.reconnects) == (snapshots, reconnects)
    assert book.book.needs is None, "repaired"
    assert book.book.last_update_id == after[-1]["u"]
    if gap == 5:
        assert book.counts.gaps_ignored == 1
    else:
        # Updates after the repair were applied on the fresh snapshot.
        assert book.counts.applied >= len(after) - 1


def test_a_crossed_snapshot_and_a_crossing_update_are_refused(exchange: Binance) -> None:
    exchange.books["BTCUSDT"] = Depth(7, [(37_001.0, 1.0)], [(37_000.0, 1.0)])
    book = exchange_book(exchange)
    with pytest.raises(FeedError, match="crossed"):
        book.snapshot()
    assert book.summary(AS_OF, 0.01) is None, "no book, no summary"
    exchange.books["BTCUSDT"] = depth(SNAPSHOT_ID)
    book.snapshot()
    crossing: DiffEvent = {
        "U": SNAPSHOT_ID + 1,
        "u": SNAPSHOT_ID + 1,
        "b": [["37001", "1"]],
        "a": [],
    }
    garbage: DiffEvent = {"U": SNAPSHOT_ID + 1, "u": SNAPSHOT_ID + 1, "b": [["x", "1"]], "a": []}
    book.apply(ReplayUpdates([crossing, garbage]))
    assert book.counts.rejected == 3, "the crossed snapshot and both updates"
    top = book.book.top()
    assert top is not None
    assert (top.best_bid, top.best_ask) == (36_999.5, 37_000.5), "left as it was"


def summary_at(taken_at: int, imbalance: float, spread: float = 0.0001) -> BookSummary:
    return BookSummary(
        symbol="BTC/USDT",
        taken_at=taken_at,
        best_bid=37_000.0,
        best_ask=37_000.0 * (1 + spread),
        spread_fraction=spread,
        imbalance=imbalance,
        band_fraction=0.01,
        source="exchange:binance",
    )


def test_the_view_reads_the_newest_summary_within_the_staleness_bound(database: Database) -> None:
    store = BookSummaryStore(database.session_factory)
    store.add(summary_at(AS_OF - 200_000, 0.1))
    store.add(summary_at(AS_OF - 30_000, 0.5))
    store.add(summary_at(AS_OF + 1, -0.9))
    view = StoredMarketView(database.session_factory, AS_OF, book_staleness_ms=120_000)
    seen = view.book("BTC/USDT")
    assert seen is not None
    assert (seen.taken_at, seen.imbalance) == (AS_OF - 30_000, 0.5)
    later = StoredMarketView(database.session_factory, AS_OF + 100_000, 120_000)
    assert later.book("BTC/USDT") == summary_at(AS_OF + 1, -0.9)
    stale = StoredMarketView(database.session_factory, AS_OF + 500_000, 120_000)
    assert stale.book("BTC/USDT") is None
    assert view.book("ETH/USDT") is None


def _engine(database: Database, tmp_path: Path) -> DecisionEngine:
    candles = simulate_candles("BTC/USDT", "5m", START, 300, seed=11)
    CandleStore(database.session_factory).insert_candles(candles)
    return DecisionEngine(Settings(home=tmp_path), database)


def test_bull_cites_the_book_and_without_one_the_researcher_says_it_is_missing(
    database: Database, tmp_path: Path
) -> None:
    engine = _engine(database, tmp_path)
    without = engine.decide("BTC/USDT", "5m", AS_OF, place_orders=False)
    claims = [turn.claim for turn in without.debate]
    assert not any("[order_book]" in claim for claim in claims)
    assert any(claim.startswith("order book: no recent summary up to") for claim in claims)
    assert "book_imbalance" not in {item.name for item in without.evidence}

    BookSummaryStore(database.session_factory).add(summary_at(AS_OF - 10_000, 0.6))
    cited = engine.decide("BTC/USDT", "5m", AS_OF, place_orders=False)
    evidence = {item.name: item.value for item in cited.evidence}
    assert (evidence["book_imbalance"], evidence["book_spread"]) == (0.6, 0.0001)
    bull = [t for t in cited.debate if t.speaker == "bull" and "[order_book]" in t.claim]
    assert len(bull) == 1
    assert "imbalance +0.60 leans to the bids" in bull[0].claim
    assert {e.name for e in bull[0].evidence} == {"book_imbalance", "book_spread"}
    assert not any(t.claim.startswith("order book: no recent") for t in cited.debate)

    BookSummaryStore(database.session_factory).add(summary_at(AS_OF - 5_000, -0.6))
    bear = engine.decide("BTC/USDT", "5m", AS_OF, place_orders=False)
    assert any(t.speaker == "bear" and "leans to the asks" in t.claim for t in bear.debate)


def test_poisoned_book_summaries_after_as_of_change_no_decision(
    database: Database, tmp_path: Path
) -> None:
    engine = _engine(database, tmp_path)
    store = BookSummaryStore(database.session_factory)
    store.add(summary_at(AS_OF - 20_000, 0.45))
    points = [AS_OF - STEP, AS_OF]
    clean = [engine.decide("BTC/USDT", "5m", p, place_orders=False) for p in points]
    for offset in (1, 1_000, 60_000):
        store.add(summary_at(AS_OF + offset, -1.0, spread=0.9))
    again = [engine.decide("BTC/USDT", "5m", p, place_orders=False) for p in points]
    assert [d.deterministic_json() for d in again] == [d.deterministic_json() for d in clean]
    assert "book_imbalance" in {item.name for item in clean[1].evidence}
