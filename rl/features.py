"""The RL observation's features, from the same indicator values the decision path computes.

The market part is five numbers per bar: the last return, the volume z-score, the RSI, the
MACD line as a fraction of the close (scale-free, so a model trained at one price level
applies at another) and the news sentiment. ``market_feature_rows`` computes them for a
whole series at once (training, walk-forward, backtests); ``snapshot_feature_row`` reads
them off the decision's MarketSnapshot. Both go through ``_assemble``: one formula.

The indicators are causal, so row i depends only on bars 0..i. A snapshot is computed over
the decision's lookback window rather than the whole series; the EMA and Wilder seeds of the
window's first bars then differ, by an amount that decays geometrically: after the 250-bar
lookback, below 1e-5 RSI points and 1e-7 relative in the MACD share (tests/test_rl.py); the
return and the volume z-score are equal exactly. Below PARITY_LOOKBACK_BARS the rl node
abstains rather than feed the policy features unlike the ones it was trained on.
"""

from collections.abc import Mapping, Sequence

import numpy as np

from core import indicators
from core.candles import CandleWindow, FloatArray
from core.market_features import MACD_FAST, MACD_SIGNAL, MACD_SLOW, RSI_PERIOD, VOLUME_PERIOD
from core.snapshot import MarketSnapshot

MARKET_FEATURES = ("price_change", "volume", "rsi", "macd", "sentiment")
BOOK_FEATURES = ("position", "unrealised_pnl")
FEATURE_NAMES = MARKET_FEATURES + BOOK_FEATURES
# The shortest decision lookback whose snapshot features match the series' within the
# tolerances above (the MACD's slow EMA seed has decayed by then).
PARITY_LOOKBACK_BARS = 250


def market_feature_rows(window: CandleWindow, sentiment: FloatArray | None = None) -> FloatArray:
    """One row of MARKET_FEATURES per candle of ``window``, shape (len, 5), NaN in the warm-up.

    ``sentiment`` is the decayed news score per bar; None (no news stored) reads as 0,
    exactly as the decision path reads a sentiment abstention (``snapshot_feature_row``).
    """
    close = np.asarray(window.close, dtype=np.float64)
    return_1 = np.full(len(close), np.nan)
    np.divide(close[1:], close[:-1], out=return_1[1:], where=close[:-1] != 0)
    return_1[1:] -= 1.0
    line, _, _ = indicators.macd(close, MACD_FAST, MACD_SLOW, MACD_SIGNAL)
    scores = np.zeros(len(close)) if sentiment is None else np.asarray(sentiment, dtype=np.float64)
    if scores.shape != close.shape:
        raise ValueError(f"sentiment has {scores.shape[0]} values for {len(close)} candles")
    return _assemble(
        return_1,
        indicators.volume_zscore(window.volume, VOLUME_PERIOD),
        indicators.rsi(close, RSI_PERIOD),
        line,
        close,
        scores,
    )


def snapshot_feature_row(snapshot: MarketSnapshot, sentiment: float | None) -> FloatArray:
    """The same five features for the decision at the snapshot's as_of, shape (5,).

    A sentiment abstention (no scored news) reads as 0: the models are trained the same way
    on candle files without news, and the abstention itself stays in the record.
    """
    values = {name: np.array([evidence.value]) for name, evidence in snapshot.values.items()}
    row: FloatArray = value_feature_rows(values, None if sentiment is None else [sentiment])[0]
    return row


def value_feature_rows(
    values: Mapping[str, FloatArray], sentiment: Sequence[float] | FloatArray | None
) -> FloatArray:
    """The features of snapshots given by their values (core.market_features.evidence_values,
    one array entry a bar: a backtest's every bar at once), shape (bars, 5); a sentiment of
    None (abstained everywhere) reads as 0."""
    close = values["close"]
    return _assemble(
        values["return_1"],
        values["volume_z_20"],
        values["rsi_14"],
        values["macd"],
        close,
        np.zeros(close.shape) if sentiment is None else np.asarray(sentiment, dtype=np.float64),
    )


def _assemble(
    return_1: FloatArray,
    volume_z: FloatArray,
    rsi: FloatArray,
    macd_line: FloatArray,
    close: FloatArray,
    sentiment: FloatArray,
) -> FloatArray:
    macd_share = np.full(len(close), np.nan)
    np.divide(macd_line, close, out=macd_share, where=close != 0)
    return np.column_stack((return_1, volume_z, rsi, macd_share, sentiment))
