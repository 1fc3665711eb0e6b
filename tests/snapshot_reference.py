"""The snapshot's definitions, written once for the tests, over indicator series computed
by whichever implementation a test checks against (ours, or TA-Lib)."""

import numpy as np
import numpy.typing as npt

Series = npt.NDArray[np.float64]


def expected_snapshot(
    close: Series,
    volume_z: float,
    rsi: Series,
    macd: tuple[Series, Series, Series],
    bands: tuple[Series, Series, Series],
    atr: Series,
    ema50: Series,
) -> dict[str, float]:
    """Every snapshot value from the given series' newest entries (core/market_features.py
    names them; these are the textbook definitions it must equal)."""
    line, signal, hist = macd
    upper, middle, lower = bands
    atr_pct = atr / close
    defined = atr_pct[~np.isnan(atr_pct)]
    values = {
        "close": close[-1],
        "return_1": close[-1] / close[-2] - 1,
        "momentum_20": close[-1] / close[-21] - 1,
        "rsi_14": rsi[-1],
        "macd": line[-1],
        "macd_signal": signal[-1],
        "macd_hist": hist[-1],
        "macd_hist_prev": hist[-2],
        "bb_upper": upper[-1],
        "bb_middle": middle[-1],
        "bb_lower": lower[-1],
        "bb_percent_b": (close[-1] - lower[-1]) / (upper[-1] - lower[-1]),
        "bb_bandwidth": (upper[-1] - lower[-1]) / middle[-1],
        "atr_14": atr[-1],
        "atr_pct": atr_pct[-1],
        "atr_pct_rank": np.count_nonzero(defined <= atr_pct[-1]) / len(defined),
        "volume_z_20": volume_z,
        "ema_50": ema50[-1],
        "ema_50_slope_5": ema50[-1] / ema50[-6] - 1,
        "close_vs_ema_50": close[-1] / ema50[-1] - 1,
    }
    return {name: float(value) for name, value in values.items()}
