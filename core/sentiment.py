"""News sentiment as one number: a time-decayed mean of the scores stored with the items.

Scoring an item happens once, at ingestion; here the stored scores are only aggregated,
so the reading at ``as_of`` depends on nothing but the items published by then (DESIGN §3).
"""

import math
from collections.abc import Sequence

from core.decision import SentimentReading
from core.market_view import NewsItem

_HOUR_MS = 3_600_000
# Crypto news moves prices within hours and is stale within a day: an item counts half
# after 6 h and a quarter after 12 h, and one older than 24 h (weight 1/16 by then) is
# dropped, so yesterday's headlines cannot outvote a quiet morning.
DEFAULT_HALF_LIFE_MS = 6 * _HOUR_MS
DEFAULT_MAX_AGE_MS = 24 * _HOUR_MS


def decayed_sentiment(
    items: Sequence[NewsItem],
    as_of: int,
    half_life_ms: int = DEFAULT_HALF_LIFE_MS,
    max_age_ms: int = DEFAULT_MAX_AGE_MS,
) -> SentimentReading | None:
    """The mean of the scored items' sentiment, each weighted 0.5^(age / half-life).

    Used: items published at or before ``as_of`` and less than ``max_age_ms`` before it,
    with a score (a missing or NaN score says nothing and is skipped). Scores are clipped to
    [-1, 1]. None when no item qualifies: the caller abstains, saying so. The sums are
    correctly rounded (math.fsum), so the reading does not depend on the items' order.
    """
    if half_life_ms <= 0 or max_age_ms <= 0:
        raise ValueError(
            f"half-life and maximum age must be positive, got {half_life_ms} and {max_age_ms} ms"
        )
    weighted: list[tuple[float, float]] = []
    for item in items:
        age = as_of - item.published_at
        if item.sentiment is None or math.isnan(item.sentiment) or not 0 <= age < max_age_ms:
            continue
        weighted.append((0.5 ** (age / half_life_ms), _clip(item.sentiment)))
    if not weighted:
        return None
    total = math.fsum(weight for weight, _ in weighted)
    mean = math.fsum(weight * score for weight, score in weighted) / total
    return SentimentReading(score=_clip(mean), item_count=len(weighted))


def _clip(score: float) -> float:
    return min(1.0, max(-1.0, score))
