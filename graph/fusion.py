"""Fusion: the signals that gave an opinion, weighted, become one proposal.

Abstaining signals are left out and the remaining weights renormalised; they are never
counted as a neutral zero, which would silently drag the score toward hold.

``fuse_opinions`` decides on the numbers alone (no text, no model object), so a backtest
holding the signals' numbers can fuse them bar after bar; ``fuse`` is the same fusion with
the proposal and its reason that a decision records.
"""

from collections.abc import Mapping
from typing import NamedTuple

from core.decision import Action, DebateSignal, Proposal, RLSignal, SentimentSignal
from core.settings import FusionWeights, RiskLimits

# (score in [-1, 1], confidence in [0, 1]).
Opinion = tuple[float, float]


class Fused(NamedTuple):
    """What fusion proposes: the proposal's numbers, without its reason."""

    action: Action
    size: float
    confidence: float
    score: float
    # Each signal's weighted share of the score, in the opinions' order.
    contributions: dict[str, float]


def rl_score(probabilities: Mapping[str, float]) -> float:
    """The RL opinion's score: how much likelier a buy is than a sell."""
    return probabilities.get("buy", 0.0) - probabilities.get("sell", 0.0)


def opinions_from(
    debate: Opinion | None, rl: Opinion | None, sentiment_score: float | None
) -> dict[str, Opinion]:
    """name → opinion for each signal that has one (None: it abstained), in the order
    debate, rl, sentiment: fusion sums in this order, and float sums depend on it. The
    sentiment's confidence is the strength of its score."""
    opinions: dict[str, Opinion] = {}
    if debate is not None:
        opinions["debate"] = debate
    if rl is not None:
        opinions["rl"] = rl
    if sentiment_score is not None:
        opinions["sentiment"] = (sentiment_score, abs(sentiment_score))
    return opinions


def signal_opinions(
    debate: DebateSignal, rl: RLSignal, sentiment: SentimentSignal
) -> dict[str, Opinion]:
    """The opinions of the signals that did not abstain."""
    return opinions_from(
        (debate.score, debate.confidence) if debate.status == "value" else None,
        (rl_score(rl.probabilities), rl.confidence) if rl.status == "value" else None,
        sentiment.score if sentiment.status == "value" else None,
    )


def fuse_opinions(
    opinions: Mapping[str, Opinion], weights: FusionWeights, limits: RiskLimits
) -> Fused | None:
    """Weight the opinions into one action and size; None when there is nothing to fuse
    (no opinion, or a total weight of zero or less)."""
    if not opinions:
        return None
    weight_of = {"debate": weights.debate, "rl": weights.rl, "sentiment": weights.sentiment}
    total_weight = sum([weight_of[name] for name in opinions])
    if total_weight <= 0.0:
        return None
    contributions = {
        name: weight_of[name] * score / total_weight for name, (score, _) in opinions.items()
    }
    score = max(-1.0, min(1.0, sum(contributions.values())))
    confidence = sum(
        [weight_of[name] * conf / total_weight for name, (_, conf) in opinions.items()]
    )
    confidence = max(0.0, min(1.0, confidence))
    action: Action = "hold"
    if score >= limits.entry_threshold:
        action = "buy"
    elif score <= -limits.entry_threshold:
        action = "sell"
    size = limits.max_position_fraction * confidence if action != "hold" else 0.0
    return Fused(action, size, confidence, score, contributions)


def fuse(
    debate: DebateSignal,
    rl: RLSignal,
    sentiment: SentimentSignal,
    weights: FusionWeights,
    limits: RiskLimits,
) -> Proposal:
    fused = fuse_opinions(signal_opinions(debate, rl, sentiment), weights, limits)
    if fused is None:
        return Proposal(
            action="hold",
            size=0.0,
            confidence=0.0,
            score=0.0,
            contributions={},
            reason="every signal abstained: no opinion to act on",
        )
    action, size, confidence, score, contributions = fused
    used = ", ".join(sorted(contributions))
    reason = (
        f"fused score {score:+.3f} from {used} vs entry threshold ±{limits.entry_threshold:.2f}"
    )
    return Proposal(
        action=action,
        size=size,
        confidence=confidence,
        score=score,
        contributions=contributions,
        reason=reason,
    )
