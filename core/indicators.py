"""Causal technical indicators over closed candles.

Every function returns a float64 array as long as its input, NaN during the warm-up, and
the value at index i depends only on inputs[0..i] (DESIGN §3: no look-ahead). Definitions
follow TA-Lib's (seeds included), so TA-Lib serves as an independent check in the tests.

The recursions (EMA, Wilder) run as plain Python loops over floats: for the ~250 bars of
one decision that beats numpy's per-call overhead, and it stays O(n) for long backtests.
Seeds are summed with math.fsum (correctly rounded), so a value does not depend on the
Python version's ``sum`` algorithm.

Every function also takes a 2-d array, one window per row (a backtest's windows, one per
bar), and computes each row exactly as it would the row alone: the recursions step through
the columns with the same float operations, so a row's values are bitwise those of its
1-d call (tests/test_indicators.py).
"""

import math
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from core.candles import FloatArray


def ema(values: FloatArray, period: int) -> FloatArray:
    """Exponential moving average, alpha = 2/(period+1), seeded with the SMA of the first
    ``period`` values (defined from index period-1)."""
    _check_period(period)
    return _ema_seeded(_as_floats(values), period, seed_index=period - 1)


def rsi(close: FloatArray, period: int = 14) -> FloatArray:
    """Wilder's RSI, seeded by the simple means of the first ``period`` gains and losses
    (defined from index ``period``).

    NaN where the averages of gains and losses are both 0 (nothing moved): 0/0 is
    undefined. TA-Lib reports 0 there, which would read as "maximally oversold".
    """
    _check_period(period)
    change = np.diff(_as_floats(close))
    gain = _wilder(np.maximum(change, 0.0), period)
    loss = _wilder(np.maximum(-change, 0.0), period)
    total = gain + loss
    # 100 * (gain / total) in TA-Lib's operation order; left NaN where total is 0 or NaN.
    share = np.divide(gain, total, out=_nan_like(total), where=total > 0.0)
    return _pad_front(100.0 * share)


def macd(
    close: FloatArray, fast: int = 12, slow: int = 26, signal: int = 9
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """MACD line, signal line and histogram, as TA-Lib computes them.

    Both EMAs are seeded at the slow EMA's first bar (index slow-1): the slow one with the
    SMA of the first ``slow`` closes, the fast one with the SMA of the ``fast`` closes
    ending there. This is TA-Lib's alignment. Seeding the fast EMA at index fast-1 instead
    would differ by the gap between the two seeds times (1 - 2/(fast+1))^k after k bars:
    3e-15 of that gap after 200 bars, so the last values of a 250-bar window do not depend
    on the choice. The line is defined from index slow-1, the signal (an EMA of the line,
    seeded with its first ``signal`` values) and the histogram from slow+signal-2.
    """
    _check_period(fast)
    _check_period(signal)
    if slow <= fast:
        raise ValueError(f"MACD needs fast < slow, got fast={fast}, slow={slow}")
    prices = _as_floats(close)
    start = slow - 1
    line = _ema_seeded(prices, fast, seed_index=start) - _ema_seeded(prices, slow, seed_index=start)
    signal_line = _ema_seeded(line, signal, seed_index=start + signal - 1)
    return line, signal_line, line - signal_line


def bollinger(
    close: FloatArray, period: int = 20, num_std: float = 2.0
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Bollinger bands (upper, middle, lower): SMA ± num_std population standard
    deviations over the last ``period`` closes, defined from index period-1."""
    _check_period(period)
    prices = _as_floats(close)
    middle = _nan_like(prices)
    spread = _nan_like(prices)
    if prices.shape[-1] >= period:
        mean, std = _rolling_mean_std(sliding_window_view(prices, period, axis=-1))
        middle[..., period - 1 :] = mean
        spread[..., period - 1 :] = num_std * std
    return middle + spread, middle, middle - spread


def atr(high: FloatArray, low: FloatArray, close: FloatArray, period: int = 14) -> FloatArray:
    """Wilder's average true range, seeded by the mean of the first ``period`` true ranges.

    A true range needs the previous close, so the first one is at index 1 and the ATR is
    defined from index ``period``.
    """
    _check_period(period)
    highs, lows, closes = _as_floats(high), _as_floats(low), _as_floats(close)
    if not highs.shape == lows.shape == closes.shape:
        raise ValueError("high, low and close must have the same length")
    previous = closes[..., :-1]
    high_now, low_now = highs[..., 1:], lows[..., 1:]
    true_range = np.maximum(
        high_now - low_now,
        np.maximum(np.abs(high_now - previous), np.abs(low_now - previous)),
    )
    return _pad_front(_wilder(true_range, period))


def volume_zscore(volume: FloatArray, period: int = 20) -> FloatArray:
    """Each bar's volume as a z-score against the mean and population standard deviation
    of the ``period`` bars before it (the bar itself excluded, so a spike is measured
    against what came before). Defined from index ``period``."""
    _check_period(period)
    volumes = _as_floats(volume)
    out = _nan_like(volumes)
    if volumes.shape[-1] <= period:
        return out
    history = sliding_window_view(volumes[..., :-1], period, axis=-1)
    mean, std = _rolling_mean_std(history)
    # A history without any variation gives no scale to measure against: the z-score is
    # undefined. It is reported as 0 (no evidence of unusual volume) rather than ±inf,
    # which would be infinitely strong evidence out of a dead or constant-volume market.
    # Flatness is tested exactly (all equal to the first), since the std of equal values
    # can come out as a rounding residue instead of 0.
    varied = (history != history[..., :1]).any(axis=-1)
    now = volumes[..., period:]
    out[..., period:] = np.divide(now - mean, std, out=np.zeros_like(mean), where=varied)
    return out


def _rolling_mean_std(windows: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Mean and population standard deviation of each window (the last axis).

    Two-pass (deviations from the mean), not sum-of-squares: no cancellation when the
    spread is tiny against the level, as for prices. Same arithmetic as ``np.mean`` and
    ``np.std`` (bitwise), without their per-call overhead, which dominates at ~250 rows.
    """
    count = windows.shape[-1]
    mean = windows.sum(axis=-1) / count
    deviation = windows - mean[..., np.newaxis]
    return mean, np.sqrt((deviation * deviation).sum(axis=-1) / count)


def _ema_seeded(values: FloatArray, period: int, seed_index: int) -> FloatArray:
    """EMA whose first value, at ``seed_index``, is the mean of the ``period`` values
    ending there; NaN before it."""
    out = _nan_like(values)
    if seed_index >= values.shape[-1]:
        return out
    alpha = 2.0 / (period + 1)
    level = _seed_mean(values[..., seed_index - period + 1 : seed_index + 1], period)
    levels = [level]
    for item in _steps(values[..., seed_index + 1 :]):
        # Same operation order as TA-Lib: ((x - prev) * k) + prev.
        level = (item - level) * alpha + level
        levels.append(level)
    out[..., seed_index:] = _joined(levels)
    return out


def _wilder(values: FloatArray, period: int) -> FloatArray:
    """Wilder's smoothing (alpha = 1/period) seeded by the mean of the first ``period``
    values: defined from index period-1 of ``values``."""
    out = _nan_like(values)
    if values.shape[-1] < period:
        return out
    level = _seed_mean(values[..., :period], period)
    levels = [level]
    keep = period - 1
    for item in _steps(values[..., period:]):
        # TA-Lib's order: (prev * (n-1) + x) / n.
        level = (level * keep + item) / period
        levels.append(level)
    out[..., period - 1 :] = _joined(levels)
    return out


# One step of a recursion: a float for a series, a column of floats for rows of windows.
Step = Any


def _steps(values: FloatArray) -> list[Step]:
    """The values a recursion steps through: Python floats for one series (for ~250 bars a
    float loop beats numpy's per-call overhead), the columns for rows of windows."""
    if values.ndim == 1:
        items: list[Step] = values.tolist()
        return items
    return list(values.T)


def _seed_mean(values: FloatArray, period: int) -> Step:
    """The correctly rounded mean of each window's seed values (math.fsum, then / period)."""
    if values.ndim == 1:
        return math.fsum(values.tolist()) / period
    return np.array([math.fsum(row) for row in values.tolist()]) / period


def _joined(levels: list[Step]) -> FloatArray | list[float]:
    """A recursion's levels in the layout of its input: a list for one series, a column per
    step for rows of windows."""
    if levels and isinstance(levels[0], np.ndarray):
        return np.stack(levels, axis=-1)
    floats: list[float] = levels
    return floats


def _pad_front(values: FloatArray) -> FloatArray:
    """``values`` one step longer at the front, with NaN there (the first bar has no change)."""
    front = np.full((*values.shape[:-1], 1), np.nan)
    return np.concatenate((front, values), axis=-1)


def _as_floats(values: FloatArray) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim not in (1, 2):
        raise ValueError(f"expected a 1-d series or rows of windows, got shape {array.shape}")
    return array


def _nan_like(values: FloatArray) -> FloatArray:
    return np.full(values.shape, np.nan)


def _check_period(period: int) -> None:
    if period < 1:
        raise ValueError(f"period must be at least 1, got {period}")
