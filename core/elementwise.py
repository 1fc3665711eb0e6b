"""Arithmetic written once for a number or an array of numbers (one per bar).

A decision computes its evidence and its rules' readings for one bar, with Python floats; a
backtest computes them for thousands of bars at once, with arrays. Both go through the same
formulas by way of these few helpers, which do the same IEEE operation either way (so a
bar's array entry is bitwise the number computed alone) and spare one bar numpy's per-call
overhead.
"""

import math
from typing import Any

import numpy as np


def where(condition: Any, if_true: Any, if_false: Any) -> Any:
    """``if_true`` where ``condition`` holds, else ``if_false`` (np.where for arrays)."""
    if isinstance(condition, np.ndarray):
        return np.where(condition, if_true, if_false)
    return if_true if condition else if_false


def divide_where(numerator: Any, denominator: Any, valid: Any) -> Any:
    """``numerator / denominator`` where ``valid``, NaN elsewhere — where nothing is divided,
    so an invalid denominator (zero, or not positive) raises and warns nothing."""
    if isinstance(valid, np.ndarray):
        shape = np.broadcast(numerator, denominator).shape
        return np.divide(numerator, denominator, out=np.full(shape, np.nan), where=valid)
    return numerator / denominator if valid else math.nan


def clip_unit(value: Any) -> Any:
    """``value`` clipped to [0, 1], a NaN or -0.0 to 0.0 — Python's ``min(1.0, max(0.0, x))``
    in both forms (np.maximum would keep the NaN and the -0.0)."""
    if isinstance(value, np.ndarray):
        return np.where(value > 0.0, np.minimum(value, 1.0), 0.0)
    return min(1.0, max(0.0, value))


def full_like(shaped: Any, value: Any) -> Any:
    """``value`` in the shape of ``shaped``: an array of it, or the value itself."""
    if isinstance(shaped, np.ndarray):
        return np.full(shaped.shape, value)
    return value
