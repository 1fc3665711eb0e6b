"""The market-only stages of the decision path over many bars at once, as numbers: the rule
agents' arguments, the researcher's doubts and confidence factor, and the debate's verdict.

What ``sigmax decide`` computes bar by bar through agents.rules.arguments_for,
agents.researcher.research_brief/check_claims and graph.debate.run_debate, computed here
for a backtest's every bar in one pass through the same arithmetic (the rules' readings,
doubt_factors, debate_rounds), without the words. It holds for the rules' agents over a
market without news or research — what a candle file gives; model-backed agents are asked
bar by bar instead.
"""

from typing import NamedTuple

import numpy as np

from agents.bear import BEAR
from agents.bull import BULL
from agents.researcher import confidence_factor, doubt_factors
from agents.rules import (
    BoolArray,
    IntArray,
    Reading,
    Side,
    Values,
    readings,
    strongest_first_order,
)
from core.candles import FloatArray
from core.settings import DebateSettings
from graph.debate import Board, debate_rounds


class DebatedBars(NamedTuple):
    """The debate's verdict at each bar (DebateVerdict's fields, one array entry a bar)."""

    score: FloatArray
    confidence: FloatArray
    rounds_run: IntArray
    stopped_early: BoolArray
    bull_strength: FloatArray
    bear_strength: FloatArray


def debate_bars(values: Values, settings: DebateSettings) -> DebatedBars:
    """The verdict of every bar of ``values`` (the snapshot values, one array entry a bar)."""
    sides = [_slots(readings(values, side), side) for side in (BULL, BEAR)]
    present, bull, category, strength = (
        np.concatenate([side[part] for side in sides], axis=1) for part in range(4)
    )
    board = Board(present, bull, category, strength, doubt_factors(values, category))
    debated = debate_rounds(board, settings)
    return DebatedBars(
        score=debated.score,
        confidence=np.abs(debated.score) * confidence_factor(values["atr_pct_rank"]),
        rounds_run=debated.rounds_run,
        stopped_early=debated.stopped_early,
        bull_strength=debated.bull_strength,
        bear_strength=debated.bear_strength,
    )


def _slots(
    side_readings: tuple[Reading, ...], side: Side
) -> tuple[BoolArray, BoolArray, IntArray, FloatArray]:
    """One side's arguments at each bar as board slots, in arguments_for's order (strongest
    first); the rules that did not fire are the empty slots after them."""
    order = strongest_first_order(side_readings)
    fired, category, strength = (
        np.take_along_axis(np.stack(column, axis=-1), order, axis=-1)
        for column in zip(
            *((reading.fired, reading.category, reading.strength) for reading in side_readings),
            strict=True,
        )
    )
    # An empty slot never competes: its strength is 0 (only positive strengths are chosen).
    strength = np.where(fired, strength, 0.0)
    return fired, np.full(fired.shape, side.speaker == "bull"), category, strength
