"""The decayed news sentiment: weights, what is left out, and nothing from after as_of."""

import math

import pytest

from core.market_view import NewsItem
from core.sentiment import DEFAULT_HALF_LIFE_MS, DEFAULT_MAX_AGE_MS, decayed_sentiment

AS_OF = 1_674_216_000_000
HOUR = 3_600_000


def item(age_ms: int, score: float | None, title: str = "headline") -> NewsItem:
    return NewsItem(
        source="test",
        title=title,
        url=f"https://example.test/{title}/{age_ms}",
        published_at=AS_OF - age_ms,
        sentiment=score,
        symbols=("BTC/USDT",),
    )


def test_each_item_weighs_half_as_much_per_half_life() -> None:
    reading = decayed_sentiment([item(0, 1.0), item(DEFAULT_HALF_LIFE_MS, -1.0)], AS_OF)
    assert reading is not None
    # weights 1 and 1/2: (1 - 1/2) / (1 + 1/2)
    assert reading.score == pytest.approx(1 / 3)
    assert reading.item_count == 2

    two_half_lives = decayed_sentiment([item(0, 1.0), item(2 * HOUR, -1.0)], AS_OF, HOUR, 24 * HOUR)
    assert two_half_lives is not None
    assert two_half_lives.score == pytest.approx((1 - 0.25) / 1.25)


def test_items_published_after_as_of_are_never_used() -> None:
    known = [item(0, 0.2), item(3 * HOUR, 0.6), item(10 * HOUR, -0.1)]
    poison = [item(-1, -1.0, "a"), item(-HOUR, 1.0, "b"), item(-1, math.inf, "c")]
    clean = decayed_sentiment(known, AS_OF)
    assert clean is not None
    assert decayed_sentiment(known + poison, AS_OF) == clean
    assert decayed_sentiment(poison, AS_OF) is None


def test_unscored_items_are_ignored_and_not_counted() -> None:
    reading = decayed_sentiment([item(0, None), item(HOUR, math.nan), item(HOUR, -0.4)], AS_OF)
    assert reading is not None
    assert reading.score == pytest.approx(-0.4)
    assert reading.item_count == 1


def test_nothing_scored_and_recent_enough_reads_none() -> None:
    assert decayed_sentiment([], AS_OF) is None
    assert decayed_sentiment([item(0, None)], AS_OF) is None
    assert decayed_sentiment([item(DEFAULT_MAX_AGE_MS, -1.0)], AS_OF) is None
    just_inside = decayed_sentiment([item(DEFAULT_MAX_AGE_MS - 1, -1.0)], AS_OF)
    assert just_inside is not None
    assert just_inside.item_count == 1


def test_scores_are_clipped_and_the_order_of_items_does_not_matter() -> None:
    items = [item(0, 5.0), item(HOUR, -0.3), item(7 * HOUR, 0.1), item(2 * HOUR, -2.0)]
    forward = decayed_sentiment(items, AS_OF)
    assert forward is not None
    assert forward == decayed_sentiment(list(reversed(items)), AS_OF)
    assert decayed_sentiment([item(0, 5.0)], AS_OF) == decayed_sentiment([item(0, 1.0)], AS_OF)
    assert -1.0 <= forward.score <= 1.0


def test_a_nonpositive_half_life_or_age_is_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        decayed_sentiment([item(0, 0.5)], AS_OF, half_life_ms=0)
    with pytest.raises(ValueError, match="positive"):
        decayed_sentiment([item(0, 0.5)], AS_OF, max_age_ms=-1)
