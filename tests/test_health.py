"""/health's data age is read on the market clock: in a replay the database already holds
the candles still to come, and they must not count."""

from api.health import HealthProbe
from core.clock import PacedClock
from core.timeframes import format_timestamp, parse_timestamp
from ingestion.feeds import Series
from ingestion.sim import simulate_candles
from storage.candles import CandleStore
from storage.engine import Database

START = parse_timestamp("2025-03-01T00:00:00Z")
STEP = 300_000


def test_the_age_is_that_of_the_newest_candle_closed_by_the_market_clock(
    database: Database,
) -> None:
    CandleStore(database.session_factory).insert_candles(
        simulate_candles("SOL/USDT", "5m", START, 300, seed=7)
    )
    middle = START + 100 * STEP + 42_000  # 42 s after the 100th close
    probe = HealthProbe(
        database, [Series("SOL/USDT", "5m")], PacedClock(middle, speed=1e-9), freshness_bars=1.0
    )
    (feed,) = probe.report(None).components.feeds
    assert feed.last_close == format_timestamp(START + 100 * STEP)
    assert feed.age_seconds is not None
    assert 42.0 <= feed.age_seconds < 43.0
    assert feed.stale is False
