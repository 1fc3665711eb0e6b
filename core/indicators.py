"""Causal technical indicators over closed candles.

Every function returns a float64 array as long as its input, NaN during the warm-up, and
the value at index i depends only on inputs[0..i] (DESIGN §3: no look-ahead). Definitions
follow TA-Lib's (seeds included), so TA-Lib serves as an independent check in the tests.

The recursions (EMA, Wilder) run as plain Python loops over floats: for the ~250 bars of
one decision that beats numpy's per-call overhead, and it stays O(n) for long backtests.
Seeds are summed with math.fsum (correctly rounded), so a value does not depend on the
Python version's ``sum`` algorithm.
"""

import math

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
    return np.concatenate(([np.nan], 100.0 * share))


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
    if len(prices) >= period:
        mean, std = _rolling_mean_std(sliding_window_view(prices, period))
        middle[period - 1 :] = mean
        spread[period - 1 :] = num_std * std
    return middle + spread, middle, middle - spread


def atr(high: FloatArray, low: FloatArray, close: FloatArray, period: int = 14) -> FloatArray:
    """Wilder's average true range, seeded by the mean of the first ``period`` true ranges.

    A true range needs the previous close, so the first one is at index 1 and the ATR is
    defined from index ``period``.
    """
    _check_period(period)
    highs, lows, closes = _as_floats(high), _as_floats(low), _as_floats(close)
    if not len(highs) == len(lows) == len(closes):
        raise ValueError("high, low and close must have the same length")
    previous = closes[:-1]
    true_range = np.maximum(
        highs[1:] - lows[1:],
        np.maximum(np.abs(highs[1:] - previous), np.abs(lows[1:] - previous)),
    )
    return np.concatenate(([np.nan], _wilder(true_range, period)))


def volume_zscore(volume: FloatArray, period: int = 20) -> FloatArray:
    """Each bar's volume as a z-score against the mean and population standard deviation
    of the ``period`` bars before it (the bar itself excluded, so a spike is measured
    against what came before). Defined from index ``period``."""
    _check_period(period)
    volumes = _as_floats(volume)
    out = _nan_like(volumes)
    if len(volumes) <= period:
        return out
    history = sliding_window_view(volumes[:-1], period)
    mean, std = _rolling_mean_std(history)
    # A history without any variation gives no scale to measure against: the z-score is
    # undefined. It is reported as 0 (no evidence of unusual volume) rather than ±inf,
    # which would be infinitely strong evidence out of a dead or constant-volume market.
    # Flatness is tested exactly (all equal to the first), since the std of equal values
    # can come out as a rounding residue instead of 0.
    varied = (history != history[:, :1]).any(axis=1)
    out[period:] = np.divide(volumes[period:] - mean, std, out=np.zeros_like(mean), where=varied)
    return out


def _rolling_mean_std(windows: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Mean and population standard deviation of each row (one window per row).

    Two-pass (deviations from the mean), not sum-of-squares: no cancellation when the
    spread is tiny against the level, as for prices. Same arithmetic as ``np.mean`` and
    ``np.std`` (bitwise), without their per-call overhead, which dominates at ~250 rows.
    """
    count = windows.shape[1]
    mean = windows.sum(axis=1) / count
    deviation = windows - mean[:, np.newaxis]
    return mean, np.sqrt((deviation * deviation).sum(axis=1) / count)


def _ema_seeded(values: FloatArray, period: int, seed_index: int) -> FloatArray:
    """EMA whose first value, at ``seed_index``, is the mean of the ``period`` values
    ending there; NaN before it."""
    out = _nan_like(values)
    if seed_index >= len(values):
        return out
    alpha = 2.0 / (period + 1)
    items: list[float] = values.tolist()
    level = math.fsum(items[seed_index - period + 1 : seed_index + 1]) / period
    levels = [level]
    for item in items[seed_index + 1 :]:
        # Same operation order as TA-Lib: ((x - prev) * k) + prev.
        level = (item - level) * alpha + level
        levels.append(level)
    out[seed_index:] = levels
    return out


def _wilder(values: FloatArray, period: int) -> FloatArray:
    """Wilder's smoothing (alpha = 1/period) seeded by the mean of the first ``period``
    values: defined from index period-1 of ``values``."""
    out = _nan_like(values)
    if len(values) < period:
        return out
    items: list[float] = values.tolist()
    level = math.fsum(items[:period]) / period
    levels = [level]
    keep = period - 1
    for item in items[period:]:
        # TA-Lib's order: (prev * (n-1) + x) / n.
        level = (level * keep + item) / period
        levels.append(level)
    out[period - 1 :] = levels
    return out


def _as_floats(values: FloatArray) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"expected a 1-d series, got shape {array.shape}")
    return array


def _nan_like(values: FloatArray) -> FloatArray:
    return np.full(len(values), np.nan)


def _check_period(period: int) -> None:
    if period < 1:
        raise ValueError(f"period must be at least 1, got {period}")
