"""Fusion: the signals that gave an opinion, weighted, become one proposal.

Abstaining signals are left out and the remaining weights renormalised; they are never
counted as a neutral zero, which would silently drag the score toward hold.
"""

from core.decision import Action, DebateSignal, Proposal, RLSignal, SentimentSignal
from core.settings import FusionWeights, RiskLimits


def _opinions(
    debate: DebateSignal, rl: RLSignal, sentiment: SentimentSignal
) -> dict[str, tuple[float, float]]:
    """name → (score in [-1, 1], confidence in [0, 1]) for each signal that did not abstain."""
    opinions: dict[str, tuple[float, float]] = {}
    if debate.status == "value":
        opinions["debate"] = (debate.score, debate.confidence)
    if rl.status == "value":
        rl_score = rl.probabilities.get("buy", 0.0) - rl.probabilities.get("sell", 0.0)
        opinions["rl"] = (rl_score, rl.confidence)
    if sentiment.status == "value":
        opinions["sentiment"] = (sentiment.score, abs(sentiment.score))
    return opinions


def fuse(
    debate: DebateSignal,
    rl: RLSignal,
    sentiment: SentimentSignal,
    weights: FusionWeights,
    limits: RiskLimits,
) -> Proposal:
    opinions = _opinions(debate, rl, sentiment)
    weight_of = {"debate": weights.debate, "rl": weights.rl, "sentiment": weights.sentiment}
    total_weight = sum(weight_of[name] for name in opinions)
    if not opinions or total_weight <= 0.0:
        return Proposal(
            action="hold",
            size=0.0,
            confidence=0.0,
            score=0.0,
            contributions={},
            reason="every signal abstained: no opinion to act on",
        )
    contributions = {
        name: weight_of[name] * score / total_weight for name, (score, _) in opinions.items()
    }
    score = max(-1.0, min(1.0, sum(contributions.values())))
    confidence = sum(weight_of[name] * conf / total_weight for name, (_, conf) in opinions.items())
    confidence = max(0.0, min(1.0, confidence))
    action: Action = "hold"
    if score >= limits.entry_threshold:
        action = "buy"
    elif score <= -limits.entry_threshold:
        action = "sell"
    size = limits.max_position_fraction * confidence if action != "hold" else 0.0
    used = ", ".join(sorted(opinions))
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
