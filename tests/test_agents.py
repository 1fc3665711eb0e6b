"""Bull, bear and researcher: evidence in, typed arguments and context out."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.bear import bear_arguments
from agents.bull import bull_arguments
from agents.researcher import check_claims, research_brief
from agents.rules import show
from core.evidence import Argument, Evidence
from core.market_view import NewsItem, ResearchObservation
from core.snapshot import MarketSnapshot
from core.timeframes import parse_timestamp

AS_OF = parse_timestamp("2023-01-20T12:00:00Z")

# A quiet market: price on its EMA, mid-band, RSI 50, average volume, ATR 1% of price.
NEUTRAL = {
    "close": 100.0,
    "return_1": 0.0,
    "momentum_20": 0.0,
    "rsi_14": 50.0,
    "macd": 0.0,
    "macd_signal": 0.0,
    "macd_hist": 0.0,
    "macd_hist_prev": 0.0,
    "bb_upper": 102.0,
    "bb_middle": 100.0,
    "bb_lower": 98.0,
    "bb_percent_b": 0.5,
    "bb_bandwidth": 0.04,
    "atr_14": 1.0,
    "atr_pct": 0.01,
    "atr_pct_rank": 0.5,
    "volume_z_20": 0.0,
    "ema_50": 100.0,
    "ema_50_slope_5": 0.0,
    "close_vs_ema_50": 0.0,
}
UPTREND = {
    "close_vs_ema_50": 0.03,
    "ema_50_slope_5": 0.008,
    "macd_hist": 0.3,
    "macd_hist_prev": 0.2,
    "momentum_20": 0.05,
    "return_1": 0.006,
    "volume_z_20": 2.0,
}
DOWNTREND = {
    "close_vs_ema_50": -0.03,
    "ema_50_slope_5": -0.008,
    "macd_hist": -0.3,
    "macd_hist_prev": -0.2,
    "momentum_20": -0.05,
    "return_1": -0.006,
    "volume_z_20": 2.0,
}
OVERSOLD = {"rsi_14": 18.0, "bb_percent_b": -0.15}
OVERBOUGHT = {"rsi_14": 82.0, "bb_percent_b": 1.15}

# Signed readings flip under a mirrored market; bounded ones reflect about their middle.
NEGATED = (
    "return_1",
    "momentum_20",
    "macd",
    "macd_signal",
    "macd_hist",
    "macd_hist_prev",
    "ema_50_slope_5",
    "close_vs_ema_50",
)
REFLECTED = {"rsi_14": 100.0, "bb_percent_b": 1.0}


def snapshot(**overrides: float) -> MarketSnapshot:
    values = {**NEUTRAL, **overrides}
    return MarketSnapshot(
        symbol="BTC/USDT",
        timeframe="5m",
        as_of=AS_OF,
        last_close_time=AS_OF,
        values={
            name: Evidence(name=name, value=value, window="250 bars to 2023-01-20T12:00:00Z")
            for name, value in values.items()
        },
    )


def mirrored(market: MarketSnapshot) -> MarketSnapshot:
    values = {name: market.value(name) for name in market.values}
    for name in NEGATED:
        values[name] = -values[name]
    for name, total in REFLECTED.items():
        values[name] = total - values[name]
    return snapshot(**values)


def both_sides(market: MarketSnapshot) -> tuple[Argument, ...]:
    return bull_arguments(market) + bear_arguments(market)


def strongest(market: MarketSnapshot) -> Argument:
    return max(both_sides(market), key=lambda argument: argument.strength)


@pytest.mark.parametrize(
    ("values", "side", "category"),
    [
        (OVERSOLD, "bull", "mean_reversion"),
        (UPTREND, "bull", "trend"),
        (DOWNTREND, "bear", "trend"),
        (OVERBOUGHT, "bear", "mean_reversion"),
    ],
)
def test_the_expected_side_has_the_strongest_argument(
    values: dict[str, float], side: str, category: str
) -> None:
    best = strongest(snapshot(**values))
    assert (best.speaker, best.stance, best.category) == (side, side, category)


def test_oversold_claim_states_its_numbers() -> None:
    (rsi,) = [a for a in bull_arguments(snapshot(rsi_14=27.4)) if "RSI" in a.claim]
    assert rsi.claim == "RSI(14) 27.4 is oversold (< 30)"
    assert rsi.evidence == (snapshot(rsi_14=27.4)["rsi_14"],)


@pytest.mark.parametrize("values", [UPTREND, DOWNTREND, OVERSOLD, OVERBOUGHT])
def test_evidence_is_the_snapshot_items_stated_in_the_claim(values: dict[str, float]) -> None:
    market = snapshot(**values)
    arguments = both_sides(market)
    assert arguments
    for argument in arguments:
        names = [evidence.name for evidence in argument.evidence]
        assert len(set(names)) == len(names)
        for evidence in argument.evidence:
            assert evidence is market[evidence.name]
            assert show(evidence) in argument.claim


@pytest.mark.parametrize(
    ("name", "values", "category"),
    [
        ("rsi_14", [29.0, 25.0, 20.0, 16.0, 5.0], "mean_reversion"),
        ("bb_percent_b", [-0.01, -0.1, -0.2, -0.29, -0.5], "mean_reversion"),
        ("macd_hist", [0.12, 0.2, 0.3, 0.39, 0.8], "momentum"),
        ("volume_z_20", [1.1, 1.5, 2.0, 2.9, 6.0], "volume"),
        ("close_vs_ema_50", [0.011, 0.015, 0.02, 0.029, 0.06], "trend"),
    ],
)
def test_strength_grows_with_distance_past_the_threshold(
    name: str, values: list[float], category: str
) -> None:
    # A backdrop in which only the varied reading decides whether its rule fires.
    backdrop = {
        "macd_hist_prev": 0.0,
        "momentum_20": 0.01,
        "return_1": 0.005,
        "volume_z_20": 0.0,
        "ema_50_slope_5": 0.008,
    }
    strengths = []
    for value in values:
        found = [
            a
            for a in bull_arguments(snapshot(**{**backdrop, name: value}))
            if a.category == category
        ]
        assert len(found) == 1
        strengths.append(found[0].strength)
    assert strengths[:-1] == sorted(set(strengths[:-1]))
    assert 0.0 < strengths[0] < strengths[-2] < 1.0
    assert strengths[-1] == 1.0


@pytest.mark.parametrize(
    "values",
    [
        {"rsi_14": 30.0},
        {"bb_percent_b": 0.0},
        {"close_vs_ema_50": 0.01, "ema_50_slope_5": 0.01},
        {"volume_z_20": 1.0, "return_1": 0.01},
    ],
)
def test_a_reading_exactly_at_its_threshold_is_no_argument(values: dict[str, float]) -> None:
    assert bull_arguments(snapshot(**values)) == ()


def test_a_neutral_market_gives_neither_side_anything() -> None:
    assert bull_arguments(snapshot()) == ()
    assert bear_arguments(snapshot()) == ()


def test_readings_short_of_their_thresholds_give_no_arguments() -> None:
    market = snapshot(rsi_14=33.0, bb_percent_b=0.1, close_vs_ema_50=0.008, volume_z_20=0.8)
    assert both_sides(market) == ()


def test_a_flat_market_without_range_is_no_argument() -> None:
    assert both_sides(snapshot(**UPTREND, atr_14=0.0, atr_pct=0.0)) == ()


def test_arguments_are_ordered_by_strength_then_category() -> None:
    arguments = bull_arguments(snapshot(**UPTREND, rsi_14=20.0))
    keys = [(-a.strength, a.category) for a in arguments]
    assert len(arguments) >= 3
    assert keys == sorted(keys)
    assert bull_arguments(snapshot(**UPTREND, rsi_14=20.0)) == arguments


def test_a_squeeze_turns_a_band_break_into_a_breakout() -> None:
    market = snapshot(bb_percent_b=1.2, atr_pct_rank=0.1)
    (breakout,) = bull_arguments(market)
    assert breakout.category == "volatility"
    assert market["atr_pct_rank"] in breakout.evidence
    assert bear_arguments(market) == ()


# Grids of dyadic fractions keep the mirror (100 - rsi, 1 - %b) exact in binary floating point.
signed = st.floats(min_value=-0.08, max_value=0.08, allow_nan=False)
mirror_markets = st.fixed_dictionaries(
    {
        "close_vs_ema_50": signed,
        "ema_50_slope_5": signed,
        "momentum_20": signed,
        "return_1": signed,
        "macd_hist": st.floats(min_value=-1.0, max_value=1.0),
        "macd_hist_prev": st.floats(min_value=-1.0, max_value=1.0),
        "rsi_14": st.integers(min_value=0, max_value=400).map(lambda q: q / 4),
        "bb_percent_b": st.integers(min_value=-64, max_value=128).map(lambda q: q / 64),
        "atr_pct_rank": st.floats(min_value=0.0, max_value=1.0),
        "volume_z_20": st.floats(min_value=-2.0, max_value=8.0),
        "atr_14": st.sampled_from([0.5, 1.0, 2.0]),
        "atr_pct": st.sampled_from([0.005, 0.01, 0.02]),
    }
)


@given(mirror_markets)
def test_a_mirrored_market_swaps_the_sides(values: dict[str, float]) -> None:
    market = snapshot(**values)

    def profile(arguments: tuple[Argument, ...]) -> list[tuple[str, float]]:
        return [(a.category, a.strength) for a in arguments]

    assert profile(bull_arguments(mirrored(market))) == profile(bear_arguments(market))
    assert profile(bear_arguments(mirrored(market))) == profile(bull_arguments(market))
    for argument in both_sides(market):
        assert 0.0 < argument.strength <= 1.0


def news_item(published: str, sentiment: float | None) -> NewsItem:
    return NewsItem(
        source="rss:coindesk",
        title="BTC moves",
        url="https://example.org/a",
        published_at=parse_timestamp(published),
        sentiment=sentiment,
        symbols=("BTC/USDT",),
    )


def observation(metric: str, value: float, fetched: str) -> ResearchObservation:
    return ResearchObservation(
        source="alternative.me",
        metric=metric,
        symbol=None,
        value=value,
        fetched_at=parse_timestamp(fetched),
    )


def test_the_researcher_says_news_and_research_are_missing() -> None:
    brief = research_brief(snapshot(), (), ())
    assert brief.missing == (
        "news: no items stored up to 2023-01-20T12:00:00Z",
        "research: no observations stored up to 2023-01-20T12:00:00Z",
        "order book: no recent summary up to 2023-01-20T12:00:00Z",
    )
    assert [item.kind for item in brief.items] == ["volatility_regime", "volume_regime"]
    assert brief.confidence_factor == 1.0


def test_the_researcher_reports_news_and_research() -> None:
    news = [
        news_item("2023-01-20T10:00:00Z", 0.5),
        news_item("2023-01-20T11:00:00Z", None),
        news_item("2023-01-20T11:30:00Z", -0.1),
    ]
    research = [
        observation("fear_greed", 20.0, "2023-01-19T00:00:00Z"),
        observation("fear_greed", 25.0, "2023-01-20T00:00:00Z"),
    ]
    brief = research_brief(snapshot(), news, research)
    assert brief.missing == ("order book: no recent summary up to 2023-01-20T12:00:00Z",)
    by_kind = {item.kind: item for item in brief.items}
    news_values = {e.name: e.value for e in by_kind["news"].evidence}
    assert news_values == {"news_count": 3.0, "news_sentiment_mean": pytest.approx(0.2)}
    assert "3 items" in by_kind["news"].summary
    assert "mean sentiment +0.20" in by_kind["news"].summary
    (fear_greed,) = by_kind["research"].evidence
    assert (fear_greed.name, fear_greed.value) == ("fear_greed", 25.0)


def test_news_without_scores_is_counted_and_the_missing_sentiment_said() -> None:
    brief = research_brief(snapshot(), [news_item("2023-01-20T10:00:00Z", None)], ())
    assert "news sentiment: none of 1 items has a score" in brief.missing
    (news,) = [item for item in brief.items if item.kind == "news"]
    assert [e.name for e in news.evidence] == ["news_count"]


def test_the_researcher_refuses_news_from_after_as_of() -> None:
    with pytest.raises(ValueError, match="after as_of"):
        research_brief(snapshot(), [news_item("2023-01-20T12:00:01Z", 0.1)], ())


def test_high_volatility_lowers_the_confidence_factor() -> None:
    factors = [
        research_brief(snapshot(atr_pct_rank=rank), (), ()).confidence_factor
        for rank in (0.1, 0.5, 0.8, 0.9, 1.0)
    ]
    assert factors[:3] == [1.0, 1.0, 1.0]
    assert 1.0 > factors[3] > factors[4] >= 0.5
    (regime, _) = research_brief(snapshot(atr_pct_rank=0.9), (), ()).items
    assert "high" in regime.summary


def test_high_volatility_discounts_mean_reversion_claims() -> None:
    market = snapshot(**OVERSOLD, atr_pct_rank=0.95)
    arguments = bull_arguments(market)
    checks = check_claims(research_brief(market, (), ()), arguments)
    assert {arguments[c.position].category for c in checks} == {"mean_reversion"}
    assert len(checks) == 2
    for check in checks:
        assert 0.5 <= check.factor < 1.0
        assert check.evidence == (market["atr_pct_rank"],)


def test_thin_volume_discounts_a_breakout() -> None:
    market = snapshot(bb_percent_b=1.2, atr_pct_rank=0.1, volume_z_20=-1.4)
    arguments = bull_arguments(market)
    (check,) = check_claims(research_brief(market, (), ()), arguments)
    assert arguments[check.position].category == "volatility"
    assert check.evidence == (market["volume_z_20"],)
    assert check.factor < 1.0


def test_ordinary_regimes_raise_no_doubts() -> None:
    market = snapshot(**OVERSOLD)
    assert check_claims(research_brief(market, (), ()), bull_arguments(market)) == ()
