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
1-d call (tests/test_indicators.py, tests/test_snapshot_batch.py). For rows the recursions
work time-major: each step reads and writes one contiguous vector (a column of the rows),
and the 2-d results are laid out so (Fortran order: shape (rows, bars), memory bar by bar).

Rows that are consecutive windows of one series (a sliding_window_view: row r is
series[r : r + width]) are recognised by their layout and computed from the series where
the value of a bar does not depend on the window: element-wise inputs (changes, gains,
true ranges) once per bar instead of once per window and bar, and the seeds' fsums as
sums of runs of the series: in exact integer arithmetic where that provably gives fsum's
correctly rounded result (_exact_run_sums), else fsum over slices of one list. Same
numbers, same operations (or the same correctly rounded sums), so the same floats.
"""

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided, sliding_window_view

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
    prices = _as_floats(close)
    change = _elementwise(np.subtract, prices[..., 1:], prices[..., :-1])
    gain = _wilder(_elementwise(_gains, change), period)
    loss = _wilder(_elementwise(_losses, change), period)
    total = np.add(gain, loss, out=loss)  # (the losses are not read again)
    out = _nan_like(prices)  # the first bar has no change: NaN there
    share = out[..., 1:]
    # 100 * (gain / total) in TA-Lib's operation order, in place (for rows of windows each
    # full-size array is a cost); left NaN where total is 0 or NaN.
    np.divide(gain, total, out=share, where=total > 0.0)
    np.multiply(share, 100.0, out=share)
    return out


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
    prices = _bars_contiguous(_as_floats(close))
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
    true_range = _elementwise(_true_range, highs[..., 1:], lows[..., 1:], closes[..., :-1])
    out = _nan_like(highs)  # the first bar has no true range: NaN there
    _wilder(true_range, period, out=out[..., 1:])
    return out


def volume_zscore(volume: FloatArray, period: int = 20) -> FloatArray:
    """Each bar's volume as a z-score against the mean and population standard deviation
    of the ``period`` bars before it (the bar itself excluded, so a spike is measured
    against what came before). Defined from index ``period``."""
    _check_period(period)
    volumes = _bars_contiguous(_as_floats(volume))
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


def _bars_contiguous(values: FloatArray) -> FloatArray:
    """``values`` with each window's bars adjacent in memory (copied if they are not): a
    window's sum then runs in the order it runs for the window alone (numpy sums pairwise
    along a contiguous axis, one by one along a strided one: not the same floats)."""
    if values.strides[-1] == values.itemsize:
        return values
    return np.ascontiguousarray(values)


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
    levels = _levels(out, seed_index)
    levels.append(level)
    for item in _steps(values[..., seed_index + 1 :]):
        # Same operation order as TA-Lib: ((x - prev) * k) + prev.
        level = (item - level) * alpha + level
        levels.append(level)
    _store(out, seed_index, levels)
    return out


def _wilder(values: FloatArray, period: int, out: FloatArray | None = None) -> FloatArray:
    """Wilder's smoothing (alpha = 1/period) seeded by the mean of the first ``period``
    values: defined from index period-1 of ``values``. Written into ``out`` when given
    (NaN, the shape of ``values``: a view into a longer output saves copying into it)."""
    if out is None:
        out = _nan_like(values)
    if values.shape[-1] < period:
        return out
    level = _seed_mean(values[..., :period], period)
    levels = _levels(out, period - 1)
    levels.append(level)
    keep = period - 1
    for item in _steps(values[..., period:]):
        # TA-Lib's order: (prev * (n-1) + x) / n.
        level = (level * keep + item) / period
        levels.append(level)
    _store(out, period - 1, levels)
    return out


def _gains(change: FloatArray) -> FloatArray:
    return np.maximum(change, 0.0)


def _losses(change: FloatArray) -> FloatArray:
    return np.maximum(-change, 0.0)


def _true_range(high: FloatArray, low: FloatArray, previous_close: FloatArray) -> FloatArray:
    return np.maximum(
        high - low, np.maximum(np.abs(high - previous_close), np.abs(low - previous_close))
    )


def _elementwise(function: Callable[..., FloatArray], *arrays: FloatArray) -> FloatArray:
    """``function`` (element-wise) of ``arrays``; for rows that are all windows of their
    series, applied once to the series and windowed again, so the result is such rows too."""
    series = [_windowed_series(array) for array in arrays]
    if not all(one is not None for one in series):
        return function(*arrays)
    return sliding_window_view(function(*series), arrays[0].shape[-1])


def _windowed_series(values: FloatArray) -> FloatArray | None:
    """The series whose consecutive windows the rows are (row r = series[r : r + width]),
    or None when ``values`` is not laid out so.

    That layout is one element's step along both axes: element [r, t] sits at series
    position r + t, and the series spans exactly the memory the rows address, so the 1-d
    view reads nothing outside them.
    """
    if values.ndim != 2 or 0 in values.shape:
        return None
    if values.strides != (values.itemsize, values.itemsize):
        return None
    rows, width = values.shape
    return as_strided(
        values, shape=(rows + width - 1,), strides=(values.itemsize,), writeable=False
    )


# One step of a recursion: a float for a series, a column of floats for rows of windows.
Step = Any


def _steps(values: FloatArray) -> list[Step]:
    """The values a recursion steps through: Python floats for one series (for ~250 bars a
    float loop beats numpy's per-call overhead), the columns for rows of windows, each one
    contiguous vector (the rows transposed once unless their columns already are)."""
    if values.ndim == 1:
        items: list[Step] = values.tolist()
        return items
    if values.strides[0] != values.itemsize:
        values = np.ascontiguousarray(values.T).T
    return list(values.T)


def _seed_mean(values: FloatArray, period: int) -> Step:
    """The correctly rounded mean of each window's seed values (math.fsum, then / period).
    Windows of one series are summed as runs of that series (_run_sums)."""
    if values.ndim == 1:
        return math.fsum(values.tolist()) / period
    series = _windowed_series(values)
    if series is None:
        return np.array([math.fsum(row) for row in values.tolist()]) / period
    return _run_sums(series, values.shape[-1]) / period


def _run_sums(series: FloatArray, width: int) -> FloatArray:
    """math.fsum of every run of ``width`` consecutive values of ``series``: by integer
    arithmetic where that is exact (_exact_run_sums), else fsum over slices of one list."""
    sums = _exact_run_sums(series, width)
    if sums is None:
        bars = series.tolist()
        return np.array(
            [math.fsum(bars[start : start + width]) for start in range(len(bars) - width + 1)]
        )
    # A zero sum is left to fsum itself: its sign of zero is fsum's convention, not the
    # integers' (which have no -0).
    for start in np.flatnonzero(sums == 0.0).tolist():
        sums[start] = math.fsum(series[start : start + width].tolist())
    return sums


# Past these binary exponents a scaled part could leave the normal floats, where scaling by
# a power of two is no longer exact.
_LOWEST_EXPONENT = -1000
_HIGHEST_EXPONENT = 1000


def _exact_run_sums(series: FloatArray, width: int) -> FloatArray | None:
    """The correctly rounded sum of every run of ``width`` values (what fsum gives), or
    None where this integer route cannot guarantee it.

    Every finite float is an integer multiple of 2**low, the last bit of the smallest
    nonzero |value|. Each value is split exactly into a high part, an integer multiple of
    2**(low + cut), and a low part in [0, 2**(low + cut)). Summed as int64 integers the
    parts' run sums are exact and, with ``cut`` chosen so, each below 2**53: each then a
    float exactly, and one float addition of the two gives the exact sum rounded once, to
    nearest even: fsum's result. That needs the values to span at most 53 - 2 *
    log2(width) binades (prices span a few; gains or true ranges ~20-45); past that, None.
    """
    if len(series) < width or not np.isfinite(series).all():
        return None
    mantissa, exponent = np.frexp(series)  # series = mantissa * 2**exponent, 0.5 ≤ |m| < 1
    nonzero = mantissa != 0.0
    if not nonzero.any():
        return None
    exponent = exponent[nonzero].astype(np.int64)  # (frexp gives 0 the exponent 0)
    low = int(exponent.min()) - 53  # every value is an integer times 2**low
    span = int(exponent.max()) - 53 - low  # |value| < 2**(53 + span + low)
    run_bits = math.ceil(math.log2(width))  # a run sum is below width * its largest part
    cut = 53 - run_bits  # low parts below 2**cut units: their run sums below 2**53
    if span + run_bits > cut or low < _LOWEST_EXPONENT or span + low + 53 > _HIGHEST_EXPONENT:
        return None  # high parts of 2**(53 + span - cut) units would not sum below 2**53
    high = np.floor(np.ldexp(series, -(low + cut)))  # exact: |high| ≤ 2**(53 + span - cut)
    rest = series - np.ldexp(high, low + cut)  # exact: a multiple of 2**low below 2**(low+cut)
    high_sums = sliding_window_view(high.astype(np.int64), width).sum(axis=-1)
    low_sums = sliding_window_view(np.ldexp(rest, -low).astype(np.int64), width).sum(axis=-1)
    sums: FloatArray = np.ldexp(high_sums.astype(np.float64), low + cut) + np.ldexp(
        low_sums.astype(np.float64), low
    )
    return sums


class _Columns:
    """The time-major rows (the columns of the windows) of a 2-d output from one index on,
    written in order as a recursion appends its levels: no step's vector is kept past the
    next step, so a recursion holds its output and not a second copy of it."""

    def __init__(self, out: FloatArray, start: int) -> None:
        self._next = iter(out.T[start:]).__next__

    def append(self, level: FloatArray) -> None:
        self._next()[...] = level


def _levels(out: FloatArray, start: int) -> "list[float] | _Columns":
    """Where a recursion's levels go: a list of floats for one series (stored at the end),
    ``out``'s columns themselves for rows of windows."""
    if out.ndim == 1:
        return []
    return _Columns(out, start)


def _store(out: FloatArray, start: int, levels: "list[float] | _Columns") -> None:
    """A series' levels into ``out`` from index ``start`` on (columns are written already)."""
    if isinstance(levels, list):
        out[start:] = levels


def _as_floats(values: FloatArray) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim not in (1, 2):
        raise ValueError(f"expected a 1-d series or rows of windows, got shape {array.shape}")
    return array


def _nan_like(values: FloatArray) -> FloatArray:
    """NaN in ``values``' shape; rows of windows laid out time-major (see the module)."""
    return np.full(values.shape, np.nan, order="F")


def _check_period(period: int) -> None:
    if period < 1:
        raise ValueError(f"period must be at least 1, got {period}")
