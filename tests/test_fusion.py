"""Fusion: abstentions are left out, not counted as zero; thresholds pick the action."""

import pytest

from core.decision import Abstained, DebateVerdict, RLOpinion, SentimentReading
from core.settings import RISK_PROFILES, FusionWeights
from graph.fusion import fuse

LIMITS = RISK_PROFILES["balanced"]
ABSTAIN = Abstained(reason="test")


def verdict(score: float) -> DebateVerdict:
    return DebateVerdict(
        score=score,
        confidence=abs(score),
        rounds_run=1,
        stopped_early=False,
        bull_strength=max(score, 0.0),
        bear_strength=max(-score, 0.0),
    )


def test_all_abstaining_holds_and_says_so() -> None:
    proposal = fuse(ABSTAIN, ABSTAIN, ABSTAIN, FusionWeights(), LIMITS)
    assert proposal.action == "hold"
    assert "abstained" in proposal.reason


def test_abstentions_do_not_dilute_the_debate() -> None:
    proposal = fuse(verdict(0.5), ABSTAIN, ABSTAIN, FusionWeights(), LIMITS)
    assert proposal.score == pytest.approx(0.5)
    assert proposal.contributions == {"debate": pytest.approx(0.5)}
    assert proposal.action == "buy"
    assert proposal.size == pytest.approx(LIMITS.max_position_fraction * 0.5)


def test_signals_are_weighted() -> None:
    rl = RLOpinion(
        action="sell",
        probabilities={"buy": 0.1, "hold": 0.1, "sell": 0.8},
        confidence=0.8,
        model_id="m",
    )
    sentiment = SentimentReading(score=-0.9, item_count=4)
    weights = FusionWeights(debate=1.0, rl=0.5, sentiment=0.5)
    proposal = fuse(verdict(0.3), rl, sentiment, weights, LIMITS)
    assert proposal.score == pytest.approx((0.3 - 0.5 * 0.7 - 0.5 * 0.9) / 2.0)
    assert proposal.action == "sell"


@pytest.mark.parametrize(
    ("score", "action"), [(0.2, "buy"), (0.19, "hold"), (-0.19, "hold"), (-0.2, "sell")]
)
def test_entry_threshold_decides_the_action(score: float, action: str) -> None:
    assert fuse(verdict(score), ABSTAIN, ABSTAIN, FusionWeights(), LIMITS).action == action
