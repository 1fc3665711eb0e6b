"""The market-only stages of many bars of one series, computed a block of bars at a time:
what a backtest's bars and the walk-forward's debate baseline are decided from.

Everything a decision computes from the market alone — the indicators and evidence values,
the rule agents' arguments, the researcher's doubts, the debate's verdict, the circuit
breaker's measure of the newest candle, the RL features — depends only on the window that
ends at the bar, so for a backtest's bars it is computed together, as arrays, by the same
functions the decision path calls for one bar (core.market_features.evidence_values,
graph.debated_bars, rl.features.value_feature_rows, core.indicators through SnapshotBatch).
The book-dependent stages stay bar by bar (backtest.run).

A bar is planned when its window is a full ``lookback_bars`` window of the series and
every value is defined; the others (the first bars of a series, a flat stretch) are decided
through the steps themselves, which say why they cannot compute.
"""

from typing import NamedTuple

import numpy as np

from core.candles import CandleWindow, FloatArray, missing_between
from core.market_features import SnapshotBatch, evidence_values, finite_rows
from core.settings import Settings
from graph.debated_bars import debate_bars
from rl.features import value_feature_rows
from safety.triggers import CIRCUIT_BREAKER_ATR_PERIOD


class PlannedBlock(NamedTuple):
    """One block of bars' market-only results, one entry a bar (row); the per-bar numbers
    as Python lists, read one at a time by the bar-by-bar stages."""

    planned: list[bool]  # every value defined: the row is decided from this plan
    score: list[float]  # the debate's verdict
    confidence: list[float]
    breaker_atr: list[float]  # ATR before the newest candle, as the circuit breaker takes it
    missing_bars: list[int]  # candles absent from the row's window
    features: FloatArray | None  # the RL features (None: no model asks for them)


class MarketPlan:
    """The planned blocks of ``series`` for ``settings``; ``locate`` finds a bar's row."""

    def __init__(
        self, series: CandleWindow, settings: Settings, batch: SnapshotBatch, features: bool
    ) -> None:
        """``batch``: the indicators of ``series``' lookback windows; ``features``: whether
        an RL model asks for its features."""
        self._series = series
        self._settings = settings
        self._features = features
        self._lookback = settings.lookback_bars
        self._batch = batch
        self._blocks: dict[int, PlannedBlock] = {}

    def locate(self, index: int) -> tuple[PlannedBlock, int] | None:
        """The block and row of the bar at ``index`` of the series, or None when the bar is
        not planned (its window is shorter than the lookback, or a value is undefined)."""
        row = index - self._lookback + 1
        place = self._batch.place(row) if row >= 0 and index < len(self._series) else None
        if place is None:
            return None
        number, offset = place
        if number not in self._blocks:
            # A backtest walks forward: the block behind it is not needed again.
            self._blocks = {number: self._plan(number)}
        block = self._blocks[number]
        return (block, offset) if block.planned[offset] else None

    def _plan(self, number: int) -> PlannedBlock:
        raw = self._batch.raw_block(number)
        values = evidence_values(raw)
        first = self._batch.first_row_of(number)
        rows = np.arange(first, first + len(values["close"]))
        open_time = self._series.open_time
        debated = debate_bars(values, self._settings.debate)
        missing = missing_between(
            open_time[rows],
            open_time[rows + self._lookback - 1],
            self._lookback,
            self._series.timeframe_ms,
        )
        return PlannedBlock(
            planned=finite_rows(values).tolist(),
            score=debated.score.tolist(),
            confidence=debated.confidence.tolist(),
            breaker_atr=self._batch.breaker_atr_block(number, CIRCUIT_BREAKER_ATR_PERIOD).tolist(),
            missing_bars=missing.tolist(),
            features=value_feature_rows(values, None) if self._features else None,
        )
