"""Indicators and the market snapshot, checked on real candles against two independent
implementations: TA-Lib (C) and a pure-Python reference written here from the textbook
definitions (loops over floats, no numpy).

Tolerances (|ours - theirs| ≤ atol + rtol·|theirs|, NaN positions identical):
- vs the pure-Python reference: rtol 1e-12; for series that cross zero (MACD line, signal,
  histogram) atol 1e-12 × the largest close instead, and atol 1e-12 for volume z-scores
  (dimensionless, O(1)). The two differ only in operation order (fsum vs sum seeds,
  (x - prev)·k + prev vs k·x + (1 - k)·prev, RSI as 100·g/(g+l) vs 100 - 100/(1+g/l)):
  observed ≤ 2e-15 relative, 8e-16 × price for MACD, 1.5e-14 absolute for z-scores.
- vs TA-Lib: rtol 1e-12 for EMA, RSI, ATR and the bands, atol 1e-12 × the largest close
  for the MACD series. Observed ≤ 2e-15 relative for EMA, RSI, ATR, ≤ 5e-14 for the
  bands (TA-Lib takes the variance as E[x²] - E[x]² from running sums and so loses digits
  when the spread is small against the price) and ≤ 5e-17 × price for MACD. Volume
  z-scores against TA-Lib's SMA/STDDEV: atol 1e-9 (observed 3e-11, the same running-sum
  cancellation).
"""

import csv
import json
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
import talib
from conftest import shared_csv
from hypothesis import given, settings
from hypothesis import strategies as st
from snapshot_reference import expected_snapshot

from core import indicators
from core.candles import CandleWindow, FloatArray
from core.market_features import MIN_BARS, market_snapshot
from core.snapshot import InsufficientDataError
from core.timeframes import format_timestamp, parse_timestamp, timeframe_ms

REAL_FILES = ["BTC_USDT-5m.csv", "ETH_BTC-5m.csv"]
TIGHT = 1e-12
TALIB_Z_ATOL = 1e-9
SNAPSHOT_NAMES = {
    "close",
    "return_1",
    "momentum_20",
    "rsi_14",
    "macd",
    "macd_signal",
    "macd_hist",
    "macd_hist_prev",
    "bb_upper",
    "bb_middle",
    "bb_lower",
    "bb_percent_b",
    "bb_bandwidth",
    "atr_14",
    "atr_pct",
    "atr_pct_rank",
    "volume_z_20",
    "ema_50",
    "ema_50_slope_5",
    "close_vs_ema_50",
}
NAN = math.nan


@dataclass(frozen=True)
class Candles:
    """One CSV as Python lists (for the reference) and as a CandleWindow (for ours)."""

    open_time: list[int]
    high: list[float]
    low: list[float]
    close: list[float]
    volume: list[float]
    window: CandleWindow

    @property
    def price_scale(self) -> float:
        return max(abs(value) for value in self.close)


def load_candles(name: str, symbol: str = "X/Y", timeframe: str = "5m") -> Candles:
    """Parsed with the csv module, independently of the project's importer."""
    with shared_csv(name).open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    columns = {key: [float(row[key]) for row in rows] for key in ("open", "high", "low")}
    close = [float(row["close"]) for row in rows]
    volume = [float(row["volume"]) for row in rows]
    open_time = [parse_timestamp(row["timestamp"]) for row in rows]
    window = CandleWindow(
        symbol=symbol,
        timeframe=timeframe,
        timeframe_ms=timeframe_ms(timeframe),
        open_time=np.array(open_time, dtype=np.int64),
        open=np.array(columns["open"]),
        high=np.array(columns["high"]),
        low=np.array(columns["low"]),
        close=np.array(close),
        volume=np.array(volume),
        sources=("import",),
    )
    return Candles(open_time, columns["high"], columns["low"], close, volume, window)


@pytest.fixture(scope="module", params=REAL_FILES)
def real(request: pytest.FixtureRequest) -> Candles:
    name: str = request.param
    return load_candles(name)


def assert_series(
    actual: FloatArray, expected: FloatArray | list[float], rtol: float, atol: float = 0.0
) -> None:
    np.testing.assert_allclose(
        actual, np.asarray(expected, dtype=np.float64), rtol=rtol, atol=atol, equal_nan=True
    )


def warm_up(series: FloatArray) -> int:
    """How many leading values are NaN; after them none may be."""
    defined = np.flatnonzero(~np.isnan(series))
    start = int(defined[0]) if len(defined) else len(series)
    assert not np.isnan(series[start:]).any()
    return start


# --- the pure-Python reference: textbook definitions, loops over floats ---


def ref_ema(values: list[float], period: int, seed_index: int | None = None) -> list[float]:
    """EMA with alpha 2/(n+1), first value = SMA of the ``period`` values ending at the seed."""
    seed = period - 1 if seed_index is None else seed_index
    out = [NAN] * len(values)
    if seed >= len(values):
        return out
    level = sum(values[seed - period + 1 : seed + 1]) / period
    out[seed] = level
    alpha = 2 / (period + 1)
    for i in range(seed + 1, len(values)):
        level = alpha * values[i] + (1 - alpha) * level
        out[i] = level
    return out


def ref_rsi(close: list[float], period: int = 14) -> list[float]:
    """RSI = 100 - 100 / (1 + RS), RS = Wilder-averaged gain / loss."""
    out = [NAN] * len(close)
    changes = [close[i] - close[i - 1] for i in range(1, len(close))]
    if len(changes) < period:
        return out
    gain = sum(max(change, 0.0) for change in changes[:period]) / period
    loss = sum(max(-change, 0.0) for change in changes[:period]) / period
    for i in range(period, len(close)):
        if i > period:
            change = changes[i - 1]
            gain = (gain * (period - 1) + max(change, 0.0)) / period
            loss = (loss * (period - 1) + max(-change, 0.0)) / period
        if loss == 0.0:
            out[i] = NAN if gain == 0.0 else 100.0
        else:
            out[i] = 100.0 - 100.0 / (1.0 + gain / loss)
    return out


def ref_macd(close: list[float]) -> tuple[list[float], list[float], list[float]]:
    """MACD(12, 26, 9), both EMAs seeded at bar 26 (TA-Lib's alignment, as documented)."""
    fast = ref_ema(close, 12, seed_index=25)
    slow = ref_ema(close, 26)
    line = [f - s for f, s in zip(fast, slow, strict=True)]
    signal = [NAN] * 25 + ref_ema(line[25:], 9)
    hist = [m - s for m, s in zip(line, signal, strict=True)]
    return line, signal, hist


def ref_bollinger(close: list[float]) -> tuple[list[float], list[float], list[float]]:
    upper, middle, lower = ([NAN] * len(close) for _ in range(3))
    for i in range(19, len(close)):
        window = close[i - 19 : i + 1]
        mean = sum(window) / 20
        std = math.sqrt(sum((value - mean) ** 2 for value in window) / 20)
        upper[i], middle[i], lower[i] = mean + 2 * std, mean, mean - 2 * std
    return upper, middle, lower


def ref_atr(high: list[float], low: list[float], close: list[float]) -> list[float]:
    out = [NAN] * len(close)
    true_ranges = [
        max(high[i] - low[i], abs(high[i] - close[i - 1]), abs(low[i] - close[i - 1]))
        for i in range(1, len(close))
    ]
    if len(true_ranges) < 14:
        return out
    level = sum(true_ranges[:14]) / 14
    out[14] = level
    for i in range(15, len(close)):
        level = (level * 13 + true_ranges[i - 1]) / 14
        out[i] = level
    return out


def ref_volume_z(volume: list[float]) -> list[float]:
    out = [NAN] * len(volume)
    for i in range(20, len(volume)):
        before = volume[i - 20 : i]
        mean = sum(before) / 20
        std = math.sqrt(sum((value - mean) ** 2 for value in before) / 20)
        out[i] = 0.0 if std == 0.0 else (volume[i] - mean) / std
    return out


# --- indicator series vs both references, over whole real files ---


def test_ema_matches_references(real: Candles) -> None:
    for period in (9, 12, 26, 50):
        ours = indicators.ema(real.window.close, period)
        assert warm_up(ours) == period - 1
        assert_series(ours, ref_ema(real.close, period), rtol=TIGHT)
        assert_series(ours, talib.EMA(real.window.close, period), rtol=TIGHT)


def test_rsi_matches_references(real: Candles) -> None:
    ours = indicators.rsi(real.window.close, 14)
    assert warm_up(ours) == 14
    assert_series(ours, ref_rsi(real.close), rtol=TIGHT)
    assert_series(ours, talib.RSI(real.window.close, 14), rtol=TIGHT)


def test_macd_matches_references(real: Candles) -> None:
    scale = TIGHT * real.price_scale
    ours = indicators.macd(real.window.close, 12, 26, 9)
    assert [warm_up(series) for series in ours] == [25, 33, 33]
    for mine, reference in zip(ours, ref_macd(real.close), strict=True):
        assert_series(mine, reference, rtol=0.0, atol=scale)
    # TA-Lib leaves the line NaN until the signal exists (bar 34); compare from there.
    for mine, theirs in zip(ours, talib.MACD(real.window.close, 12, 26, 9), strict=True):
        assert_series(mine[33:], theirs[33:], rtol=0.0, atol=scale)


def test_bollinger_matches_references(real: Candles) -> None:
    ours = indicators.bollinger(real.window.close, 20, 2.0)
    assert [warm_up(series) for series in ours] == [19, 19, 19]
    for mine, reference in zip(ours, ref_bollinger(real.close), strict=True):
        assert_series(mine, reference, rtol=TIGHT)
    theirs = talib.BBANDS(real.window.close, 20, 2.0, 2.0)  # default matype: SMA
    for mine, other in zip(ours, theirs, strict=True):
        assert_series(mine, other, rtol=TIGHT)


def test_atr_matches_references(real: Candles) -> None:
    window = real.window
    ours = indicators.atr(window.high, window.low, window.close, 14)
    assert warm_up(ours) == 14
    assert_series(ours, ref_atr(real.high, real.low, real.close), rtol=TIGHT)
    assert_series(ours, talib.ATR(window.high, window.low, window.close, 14), rtol=TIGHT)


def test_volume_zscore_matches_references(real: Candles) -> None:
    volume = real.window.volume
    ours = indicators.volume_zscore(volume, 20)
    assert warm_up(ours) == 20
    assert_series(ours, ref_volume_z(real.volume), rtol=TIGHT, atol=TIGHT)
    # TA-Lib's SMA and STDDEV at bar i-1 describe the 20 bars before bar i.
    mean, std = talib.SMA(volume, 20), talib.STDDEV(volume, 20, 1.0)
    expected = np.full(len(volume), np.nan)
    expected[20:] = (volume[20:] - mean[19:-1]) / std[19:-1]
    assert_series(ours, expected, rtol=0.0, atol=TALIB_Z_ATOL)


def test_volume_zscore_is_zero_after_a_flat_history() -> None:
    volume = np.array([5.0] * 20 + [9.0, 5.0])
    z = indicators.volume_zscore(volume, 20)
    assert z[20] == 0.0  # nothing varied before: no scale, reported as no evidence
    assert z[21] < 0.0


def test_rsi_is_nan_where_nothing_moved() -> None:
    assert np.isnan(indicators.rsi(np.full(30, 7.0), 14)).all()


def test_short_inputs_are_all_warm_up() -> None:
    short = np.arange(1.0, 11.0)
    assert np.isnan(indicators.ema(short, 50)).all()
    assert np.isnan(indicators.rsi(short, 14)).all()
    assert all(np.isnan(series).all() for series in indicators.macd(short))
    assert all(np.isnan(series).all() for series in indicators.bollinger(short, 20))
    assert np.isnan(indicators.atr(short, short, short, 14)).all()
    assert np.isnan(indicators.volume_zscore(short, 20)).all()


@pytest.mark.parametrize(
    "call",
    [
        lambda: indicators.ema(np.ones(5), 0),
        lambda: indicators.macd(np.ones(5), 26, 12, 9),
        lambda: indicators.rsi(np.ones((2, 2, 2)), 14),  # rows of windows at most
        lambda: indicators.atr(np.ones(5), np.ones(4), np.ones(5), 14),
    ],
)
def test_bad_arguments_are_refused(call: Callable[[], object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 (each case has its own message)
        call()


# --- causality: no value depends on anything after its own bar ---


def every_series(
    high: FloatArray, low: FloatArray, close: FloatArray, volume: FloatArray
) -> list[FloatArray]:
    return [
        indicators.ema(close, 9),
        indicators.ema(close, 50),
        indicators.rsi(close, 14),
        *indicators.macd(close, 12, 26, 9),
        *indicators.bollinger(close, 20, 2.0),
        indicators.atr(high, low, close, 14),
        indicators.volume_zscore(volume, 20),
    ]


def test_prefix_gives_the_same_values_bitwise(real: Candles) -> None:
    window = real.window
    full = every_series(window.high, window.low, window.close, window.volume)
    for cut in (1, 35, 251, len(window) // 2):
        prefix = every_series(
            window.high[:cut], window.low[:cut], window.close[:cut], window.volume[:cut]
        )
        for whole, truncated in zip(full, prefix, strict=True):
            assert whole[:cut].tobytes() == truncated.tobytes()


prices = st.floats(min_value=1e-3, max_value=1e6, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_changing_the_future_never_changes_the_past(data: st.DataObject) -> None:
    length = data.draw(st.integers(min_value=1, max_value=90), label="length")
    cut = data.draw(st.integers(min_value=0, max_value=length - 1), label="cut")
    columns = [data.draw(st.lists(prices, min_size=length, max_size=length)) for _ in range(4)]
    future = [
        data.draw(st.lists(prices, min_size=length - cut - 1, max_size=length - cut - 1))
        for _ in range(4)
    ]
    before = every_series(*(np.array(column) for column in columns))
    poisoned = [column[: cut + 1] + tail for column, tail in zip(columns, future, strict=True)]
    after = every_series(*(np.array(column) for column in poisoned))
    for original, changed in zip(before, after, strict=True):
        assert original[: cut + 1].tobytes() == changed[: cut + 1].tobytes()


# --- windows of one series: seeds summed as runs of the series ---


def _fsum_of_runs(series: FloatArray, width: int) -> bytes:
    values = series.tolist()
    runs = [math.fsum(values[start : start + width]) for start in range(len(values) - width + 1)]
    return np.array(runs).tobytes()


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_run_sums_are_fsum_of_every_run(data: st.DataObject) -> None:
    """Bitwise math.fsum of each run: values of 53 significant bits (so runs need rounding,
    ties included) spread over 0 to 60 binades (the integer route and, past its reach,
    fsum), with zeros and cancelling signs."""
    width = data.draw(st.integers(min_value=1, max_value=60), label="width")
    spread = data.draw(st.integers(min_value=0, max_value=60), label="binades")
    value = st.builds(
        lambda sign, integer, power: sign * math.ldexp(integer, power),
        st.sampled_from([1.0, -1.0]),
        st.integers(min_value=2**52, max_value=2**53 - 1),
        st.integers(min_value=-spread // 2, max_value=spread - spread // 2),
    )
    values = data.draw(
        st.lists(value | st.just(0.0), min_size=width, max_size=width + 60), label="values"
    )
    series = np.array(values)
    assert indicators._run_sums(series, width).tobytes() == _fsum_of_runs(series, width)


@pytest.mark.parametrize(
    ("values", "width", "expected"),
    [
        # 2**53 + 3 lies halfway between 2**53 + 2 and 2**53 + 4: to the even one.
        ([2.0**52 + 1, 2.0**52 + 2], 2, 2.0**53 + 4),
        # 2**53 + 1 is halfway between 2**53 and 2**53 + 2: to the even one, 2**53.
        ([2.0**52, 2.0**52 + 1, 0.0], 2, 2.0**53),
        # The same below zero, with parts cancelling: -(2**53 + 1) to -(2**53).
        ([-(2.0**52) - 1, 3.0 - 2.0**50, -(2.0**52) + 2.0**50 - 3], 3, -(2.0**53)),
    ],
)
def test_run_sums_round_the_exact_sum_once_to_even(
    values: list[float], width: int, expected: float
) -> None:
    series = np.array(values)
    exact = indicators._exact_run_sums(series, width)
    assert exact is not None  # the integer route itself, not its fallback
    assert exact[0] == expected
    assert indicators._run_sums(series, width).tobytes() == _fsum_of_runs(series, width)


def test_run_sums_of_real_prices_and_gains_take_the_integer_route(real: Candles) -> None:
    """Where the backtest's speed comes from: a block's closes, gains and true ranges fit."""
    close = real.window.close[:4400]
    gains = np.maximum(np.diff(close), 0.0)
    for series, width in ((close, 50), (close, 26), (gains, 14)):
        exact = indicators._exact_run_sums(series, width)
        assert exact is not None
        assert exact.tobytes() == _fsum_of_runs(series, width)


def test_run_sums_leave_what_the_integers_cannot_hold_to_fsum() -> None:
    spread = np.array([1e300, 1.0, -1e300, 3.0])  # ~1000 binades apart
    poisoned = np.array([1.0, np.nan, 2.0, np.inf, 3.0, 4.0])
    for series, width in ((spread, 2), (spread, 3), (poisoned, 2)):
        assert indicators._exact_run_sums(series, width) is None
        assert indicators._run_sums(series, width).tobytes() == _fsum_of_runs(series, width)


def test_zero_run_sums_carry_fsums_sign_of_zero() -> None:
    series = np.array([-0.0, -0.0, 1.0, -1.0, 0.0])
    assert indicators._run_sums(series, 2).tobytes() == _fsum_of_runs(series, 2)


@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_windows_of_one_series_equal_each_window_alone(data: st.DataObject) -> None:
    """Rows as a backtest hands them in (sliding windows of one series, computed from the
    series) give every indicator bitwise what each window gives alone."""
    width = data.draw(st.integers(min_value=30, max_value=70), label="width")
    bars = data.draw(st.integers(min_value=width, max_value=width + 40), label="bars")
    columns = [
        np.array(
            data.draw(st.lists(prices | st.sampled_from([1.0, 2.5]), min_size=bars, max_size=bars))
        )
        for _ in range(4)
    ]
    rows = every_series(
        *(np.lib.stride_tricks.sliding_window_view(column, width) for column in columns)
    )
    for start in range(bars - width + 1):
        alone = every_series(*(column[start : start + width] for column in columns))
        for one, many in zip(alone, rows, strict=True):
            assert one.tobytes() == np.ascontiguousarray(many[start]).tobytes(), start


# --- the snapshot ---


def test_snapshot_equals_the_series_last_values(real: Candles) -> None:
    window = real.window.tail(250)
    close, high, low = window.close, window.high, window.low
    as_of = window.last_close_time
    assert as_of is not None
    snapshot = market_snapshot(window, as_of)
    values = {name: snapshot.value(name) for name in snapshot.values}
    assert set(values) == SNAPSHOT_NAMES
    assert all(type(value) is float for value in values.values())

    ours = expected_snapshot(
        close,
        volume_z=indicators.volume_zscore(window.volume)[-1],
        rsi=indicators.rsi(close),
        macd=indicators.macd(close),
        bands=indicators.bollinger(close),
        atr=indicators.atr(high, low, close),
        ema50=indicators.ema(close, 50),
    )
    assert values == ours

    # And against TA-Lib on the same 250 bars, within the stated tolerances.
    talib_macd = talib.MACD(close, 12, 26, 9)
    talib_bands = talib.BBANDS(close, 20, 2.0, 2.0)  # default matype: SMA
    independent = {
        "rsi_14": talib.RSI(close, 14)[-1],
        "atr_14": talib.ATR(high, low, close, 14)[-1],
        "ema_50": talib.EMA(close, 50)[-1],
        "bb_upper": talib_bands[0][-1],
        "bb_middle": talib_bands[1][-1],
        "bb_lower": talib_bands[2][-1],
    }
    for name, expected in independent.items():
        assert values[name] == pytest.approx(float(expected), rel=TIGHT), name
    macd_names = ("macd", "macd_signal", "macd_hist")
    for name, series in zip(macd_names, talib_macd, strict=True):
        assert values[name] == pytest.approx(float(series[-1]), abs=TIGHT * real.price_scale)
    assert values["macd_hist_prev"] == pytest.approx(
        float(talib_macd[2][-2]), abs=TIGHT * real.price_scale
    )


def test_snapshot_describes_its_windows(real: Candles) -> None:
    window = real.window.tail(250)
    as_of = int(window.open_time[-1]) + window.timeframe_ms + 1
    snapshot = market_snapshot(window, as_of)
    newest = format_timestamp(int(window.open_time[-1]) + window.timeframe_ms)
    assert snapshot.as_of == as_of
    assert snapshot.last_close_time == window.last_close_time
    assert (snapshot.symbol, snapshot.timeframe) == (window.symbol, window.timeframe)
    for evidence in snapshot.evidence():
        assert evidence.window.endswith(f"to {newest}"), evidence
    assert snapshot["rsi_14"].window == f"14-bar Wilder RSI over 250 bars to {newest}"
    assert snapshot["close"].window == f"last bar to {newest}"


def test_snapshot_is_bitwise_deterministic(real: Candles) -> None:
    window = real.window.tail(250)
    copy = CandleWindow(
        symbol=window.symbol,
        timeframe=window.timeframe,
        timeframe_ms=window.timeframe_ms,
        open_time=window.open_time.copy(),
        open=window.open.copy(),
        high=window.high.copy(),
        low=window.low.copy(),
        close=window.close.copy(),
        volume=window.volume.copy(),
        sources=window.sources,
    )
    as_of = window.last_close_time
    assert as_of is not None

    def dumped(snapshot_window: CandleWindow) -> str:
        evidence = market_snapshot(snapshot_window, as_of).evidence()
        return json.dumps([item.model_dump() for item in evidence], allow_nan=False)

    assert dumped(window) == dumped(copy)


def test_snapshot_needs_min_bars(real: Candles) -> None:
    short = real.window.tail(MIN_BARS - 1)
    as_of = short.last_close_time
    assert as_of is not None
    with pytest.raises(InsufficientDataError) as raised:
        market_snapshot(short, as_of)
    assert (raised.value.needed, raised.value.available) == (MIN_BARS, MIN_BARS - 1)
    enough = real.window.tail(MIN_BARS)
    assert enough.last_close_time is not None
    snapshot = market_snapshot(enough, enough.last_close_time)
    assert all(math.isfinite(item.value) for item in snapshot.evidence())


def test_snapshot_refuses_a_window_past_as_of(real: Candles) -> None:
    window = real.window.tail(100)
    assert window.last_close_time is not None
    with pytest.raises(ValueError, match="after as_of"):
        market_snapshot(window, window.last_close_time - 1)


def flat_window(bars: int, price: float) -> CandleWindow:
    constant = np.full(bars, price)
    return CandleWindow(
        symbol="X/Y",
        timeframe="1m",
        timeframe_ms=60_000,
        open_time=60_000 * np.arange(bars, dtype=np.int64),
        open=constant,
        high=constant,
        low=constant,
        close=constant,
        volume=np.ones(bars),
        sources=("test",),
    )


def test_snapshot_refuses_nan_from_a_flat_series() -> None:
    window = flat_window(120, 100.0)
    with pytest.raises(ValueError, match="undefined"):
        market_snapshot(window, 120 * 60_000)


def test_snapshot_refuses_non_finite_prices(real: Candles) -> None:
    window = real.window.tail(120)
    poisoned = np.array(window.close)
    poisoned[-30] = np.nan
    broken = CandleWindow(
        symbol=window.symbol,
        timeframe=window.timeframe,
        timeframe_ms=window.timeframe_ms,
        open_time=window.open_time,
        open=window.open,
        high=window.high,
        low=window.low,
        close=poisoned,
        volume=window.volume,
        sources=window.sources,
    )
    assert broken.last_close_time is not None
    with pytest.raises(ValueError, match="undefined"):
        market_snapshot(broken, broken.last_close_time)
