"""The seeded simulated market: reproducible in any process, valid candles, and the
stylised facts it promises (volatility clustering, regimes, volume with moves)."""

import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO_ROOT

from core.candles import FloatArray
from core.market_features import market_snapshot
from ingestion.sim import (
    Regime,
    SimulatedMarket,
    default_start_price,
    simulate_candles,
    simulate_market,
)

START = 1_672_531_200_000  # 2023-01-01T00:00:00Z
LONG_RUN = 20_000


@pytest.fixture(scope="module")
def long_market() -> SimulatedMarket:
    return simulate_market("ETH/USDT", "1h", START, LONG_RUN, seed=11)


def log_returns(market: SimulatedMarket) -> FloatArray:
    candles = market.candles
    return np.log(candles.close / candles.open)


def autocorrelation(series: FloatArray, lag: int = 1) -> float:
    centred = series - series.mean()
    return float((centred[:-lag] * centred[lag:]).sum() / (centred * centred).sum())


def test_same_arguments_give_identical_candles() -> None:
    first = simulate_market("BTC/USDT", "5m", START, 500, seed=7)
    second = simulate_market("BTC/USDT", "5m", START, 500, seed=7)
    for column in ("open_time", "open", "high", "low", "close", "volume"):
        assert getattr(first.candles, column).tobytes() == getattr(second.candles, column).tobytes()
    assert first.regimes.tobytes() == second.regimes.tobytes()


@pytest.mark.parametrize("symbol", ["BTC/USDT", "ZZTOP/QQQ"])
def test_identical_in_another_process(symbol: str) -> None:
    """Another interpreter with another hash salt must produce the same bytes."""
    script = (
        "from ingestion.sim import simulate_market\n"
        f"market = simulate_market({symbol!r}, '5m', {START}, 500, seed=7)\n"
        "print(market.candles.content_hash(), market.regimes.tobytes().hex())\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PYTHONHASHSEED": "987654"}
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        check=True,
        timeout=60,
    )
    here = simulate_market(symbol, "5m", START, 500, seed=7)
    assert result.stdout.split() == [here.candles.content_hash(), here.regimes.tobytes().hex()]


@pytest.mark.parametrize(
    "changed",
    [
        ("BTC/USDT", "5m", START, 300, 8),
        ("ETH/USDT", "5m", START, 300, 7),
        ("BTC/USDT", "15m", START, 300, 7),
        ("BTC/USDT", "5m", START + 900_000, 300, 7),
    ],
)
def test_any_argument_changes_the_market(changed: tuple[str, str, int, int, int]) -> None:
    base = simulate_candles("BTC/USDT", "5m", START, 300, 7)
    assert not np.array_equal(base.close, simulate_candles(*changed).close)


def test_candles_are_valid_over_a_long_run(long_market: SimulatedMarket) -> None:
    candles = long_market.candles
    assert len(candles) == LONG_RUN
    assert candles.sources == ("sim",)
    assert (np.diff(candles.open_time) == 3_600_000).all()
    assert candles.open_time[0] == START
    assert candles.missing_bars() == 0
    columns = (candles.open, candles.high, candles.low, candles.close, candles.volume)
    assert all(np.isfinite(column).all() and column.dtype == np.float64 for column in columns)
    assert (candles.high >= np.maximum(candles.open, candles.close)).all()
    assert (candles.low <= np.minimum(candles.open, candles.close)).all()
    assert (candles.low > 0).all()
    assert (candles.volume > 0).all()
    assert (candles.open[1:] == candles.close[:-1]).all()


def test_volatility_clusters_while_returns_stay_unpredictable(
    long_market: SimulatedMarket,
) -> None:
    returns = log_returns(long_market)
    # 20,000 bars: the standard error of an autocorrelation is ~0.007.
    assert autocorrelation(np.abs(returns)) > 0.1
    assert abs(autocorrelation(returns)) < 0.05


def test_all_regimes_visited_and_sticky(long_market: SimulatedMarket) -> None:
    regimes = long_market.regimes
    assert set(np.unique(regimes).tolist()) == {int(regime) for regime in Regime}
    switches = np.count_nonzero(np.diff(regimes))
    assert len(regimes) / (switches + 1) > 20  # mean regime length, ~50 by design
    returns = log_returns(long_market)
    up = returns[regimes == Regime.UPTREND].mean()
    down = returns[regimes == Regime.DOWNTREND].mean()
    assert up > 0 > down


def test_volume_rises_with_the_size_of_the_move(long_market: SimulatedMarket) -> None:
    returns = log_returns(long_market)
    assert np.corrcoef(long_market.candles.volume, np.abs(returns))[0, 1] > 0.5


def test_default_start_prices() -> None:
    assert default_start_price("BTC/USDT") == 30_000.0
    assert default_start_price("ETH/BTC") == pytest.approx(2_000 / 30_000)
    unknown = default_start_price("ZZTOP/USDT")
    assert 0.05 <= unknown <= 500.0
    assert default_start_price("ZZTOP/USDT") == unknown
    assert simulate_candles("BTC/USDT", "5m", START, 3, seed=1).open[0] == 30_000.0


def test_start_price_is_honoured() -> None:
    candles = simulate_candles("BTC/USDT", "1m", START, 10, seed=1, start_price=123.5)
    assert candles.open[0] == 123.5


def test_zero_candles_is_an_empty_window() -> None:
    market = simulate_market("BTC/USDT", "5m", START, 0, seed=1)
    assert len(market.candles) == 0
    assert len(market.regimes) == 0


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("BTC/USDT", "7m", START, 10, 1, None), "unknown timeframe"),
        (("btc-usdt", "5m", START, 10, 1, None), "BASE/QUOTE"),
        (("BTC/USDT", "5m", START + 1, 10, 1, None), "multiple of"),
        (("BTC/USDT", "5m", START, -1, 1, None), "count"),
        (("BTC/USDT", "5m", START, 10, -1, None), "seed"),
        (("BTC/USDT", "5m", START, 10, 1, 0.0), "start_price"),
        (("BTC/USDT", "5m", START, 10, 1, float("nan")), "start_price"),
    ],
)
def test_bad_arguments_are_refused(
    arguments: tuple[str, str, int, int, int, float | None], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        simulate_candles(*arguments)


def test_simulated_candles_feed_the_snapshot() -> None:
    candles = simulate_candles("SOL/USDT", "15m", START, 250, seed=3)
    assert candles.last_close_time is not None
    snapshot = market_snapshot(candles, candles.last_close_time)
    assert snapshot.value("close") == float(candles.close[-1])
    assert 0.0 < snapshot.value("atr_pct_rank") <= 1.0
