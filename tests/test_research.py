"""Research sources with the real httpx client against a loopback server answering each
API's documented JSON shape — and errors, rate limits, timeouts and malformed answers. A
failing source abstains with its reason; the researcher argues from what is there."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from feed_server import Document, FeedSite, feed_site

from api.cli import cli
from core.settings import ResearchSettings, Settings
from core.timeframes import parse_timestamp
from graph.engine import DecisionEngine
from ingestion.news_score import NewsScorer
from ingestion.research_poller import ResearchPoller
from ingestion.research_sources import (
    CoinGeckoSource,
    CryptoPanicSource,
    FearGreedSource,
    RedditSource,
    ResearchSource,
    configured_sources,
)
from ingestion.sim_feed import extend_simulation
from storage.candles import CandleStore
from storage.engine import Database
from storage.models import ResearchObservationRow
from storage.research import ResearchStore
from storage.source_polls import SourcePollStore

NOW = parse_timestamp("2026-11-24T12:00:00Z")
FEAR_GREED = {
    "name": "Fear and Greed Index",
    "data": [
        {
            "value": "27",
            "value_classification": "Fear",
            "timestamp": "1795478400",
            "time_until_update": "39812",
        }
    ],
    "metadata": {"error": None},
}
COIN = {
    "id": "bitcoin",
    "symbol": "btc",
    "name": "Bitcoin",
    "market_data": {
        "current_price": {"usd": 95123.0},
        "market_cap": {"usd": 1_887_000_000_000},
        "total_volume": {"usd": 41_200_000_000},
        "price_change_percentage_24h": -2.31,
    },
    "community_data": {"twitter_followers": 6_900_000, "reddit_subscribers": 7_100_000},
    "developer_data": {"stars": 80_000, "forks": 36_000, "commit_count_4_weeks": None},
    "last_updated": "2026-11-24T11:59:30.000Z",
}
PANIC = {
    "count": 2,
    "next": None,
    "previous": None,
    "results": [
        {
            "kind": "news",
            "domain": "coindesk.com",
            "title": "Bitcoin ETF inflows rise",
            "published_at": "2026-11-24T11:00:00Z",
            "currencies": [{"code": "BTC", "title": "Bitcoin", "slug": "bitcoin"}],
            "votes": {"negative": 1, "positive": 5, "important": 2, "liked": 3},
        },
        {
            "kind": "news",
            "domain": "decrypt.co",
            "title": "Ethereum fees fall",
            "published_at": "2026-11-24T10:00:00Z",
            "currencies": [{"code": "ETH", "title": "Ethereum", "slug": "ethereum"}],
            "votes": {"negative": 0, "positive": 0},
        },
    ],
}


def listing(*titles: str, stickied: str | None = None) -> dict[str, Any]:
    posts = [{"kind": "t3", "data": {"title": title, "score": 10}} for title in titles]
    if stickied:
        posts.insert(0, {"kind": "t3", "data": {"title": stickied, "stickied": True}})
    return {"kind": "Listing", "data": {"after": None, "children": posts}}


def as_json(body: Any, **kwargs: Any) -> Document:
    return Document(json.dumps(body).encode(), content_type="application/json", **kwargs)


@pytest.fixture
def site() -> Iterator[FeedSite]:
    with feed_site() as running:
        yield running


def observations(database: Database) -> dict[tuple[str, str | None], float]:
    with database.session_factory() as session:
        rows = session.scalars(sa.select(ResearchObservationRow)).all()
        return {(row.metric, row.symbol): row.value for row in rows}


def test_each_source_reads_its_documented_shape(database: Database, site: FeedSite) -> None:
    site.documents["/fng/"] = as_json(FEAR_GREED)
    site.documents["/api/v3/coins/bitcoin"] = as_json(COIN)
    site.documents["/api/v1/posts/"] = as_json(PANIC)
    for subreddit in ("CryptoCurrency", "CryptoMarkets", "Bitcoin", "ethereum"):
        site.documents[f"/r/{subreddit}/hot.json"] = as_json(
            listing("Bitcoin surges as ETF inflows soar", stickied="Daily discussion")
        )
    sources: list[ResearchSource] = [
        FearGreedSource(f"{site.base_url}/fng/?limit=1"),
        CoinGeckoSource(["BTC", "PEPE"], f"{site.base_url}/api/v3"),
        CryptoPanicSource("token-123", ["BTC", "ETH"], f"{site.base_url}/api/v1/posts/"),
        RedditSource(NewsScorer(), site.base_url),
    ]
    with httpx.Client(timeout=5) as client:
        poller = ResearchPoller(ResearchStore(database), SourcePollStore(database), client, sources)
        results = poller.poll(NOW)
    assert [(r.source, r.outcome) for r in results] == [
        ("alternative.me", "new"),
        ("coingecko", "new"),
        ("cryptopanic", "new"),
        ("reddit", "new"),
    ]
    stored = observations(database)
    assert stored[("fear_greed_index", None)] == 27.0
    assert stored[("market_cap_usd", "BTC")] == 1_887_000_000_000
    assert stored[("price_change_24h_pct", "BTC")] == -2.31
    assert stored[("reddit_subscribers", "BTC")] == 7_100_000
    assert ("dev_commits_4w", "BTC") not in stored, "a null is not observed as a number"
    assert stored[("panic_positive_vote_share", "BTC")] == pytest.approx(5 / 6)
    assert ("panic_positive_vote_share", "ETH") not in stored, "no votes, no share"
    assert stored[("reddit_Bitcoin_sentiment", "BTC")] > 0.5
    assert ("reddit_CryptoCurrency_sentiment", None) in stored
    coin_request = next(headers for path, headers in site.requests if "/coins/" in path)
    assert coin_request is not None
    panic_path = next(path for path, _ in site.requests if path.startswith("/api/v1/posts/"))
    assert "auth_token=token-123" in panic_path
    assert "currencies=BTC%2CETH" in panic_path


def test_a_failing_source_abstains_with_its_reason_and_the_others_answer(
    database: Database, site: FeedSite
) -> None:
    site.documents["/fng/"] = as_json({}, status=500)
    site.documents["/api/v3/coins/bitcoin"] = as_json(COIN, status=429, retry_after="30")
    site.documents["/api/v1/posts/"] = as_json(PANIC, delay_seconds=2.0)
    site.documents["/r/CryptoCurrency/hot.json"] = Document(b"<html>", "text/html")
    site.documents["/r/Bitcoin/hot.json"] = as_json({"kind": "Listing"})
    site.documents["/r/ethereum/hot.json"] = as_json(listing("Ethereum upgrade goes live"))
    sources: list[ResearchSource] = [
        FearGreedSource(f"{site.base_url}/fng/?limit=1"),
        CoinGeckoSource(["BTC"], f"{site.base_url}/api/v3"),
        CryptoPanicSource("t", ["BTC"], f"{site.base_url}/api/v1/posts/"),
        RedditSource(NewsScorer(), site.base_url),
    ]
    with httpx.Client(timeout=0.5) as client:
        poller = ResearchPoller(ResearchStore(database), SourcePollStore(database), client, sources)
        results = {result.source: result for result in poller.poll(NOW)}
    assert results["alternative.me"].detail == "HTTP 500"
    assert results["coingecko"].detail == "rate limited (HTTP 429, retry after 30 s)"
    assert results["cryptopanic"].detail.startswith("ReadTimeout")
    assert results["reddit"].outcome == "new"
    assert "r/CryptoCurrency: the answer is not JSON" in results["reddit"].detail
    assert "r/CryptoMarkets: HTTP 404" in results["reddit"].detail
    assert "r/Bitcoin: 'data'" in results["reddit"].detail
    assert set(observations(database)) == {("reddit_ethereum_sentiment", "ETH")}
    polls = {poll.key: poll for poll in SourcePollStore(database).all()}
    assert polls["research:alternative.me"].outcome == "failed"
    assert polls["research:alternative.me"].detail == "HTTP 500"


def test_malformed_answers_are_refused_not_guessed(database: Database, site: FeedSite) -> None:
    cases = {
        "/a/": {"data": []},
        "/b/": {"data": [{"value": "NaN"}]},
        "/c/": {"data": [{"value": "170"}]},
        "/d/": {"data": [{"value": "fear"}]},
    }
    for path, body in cases.items():
        site.documents[path] = as_json(body)
    with httpx.Client(timeout=5) as client:
        poller = ResearchPoller(ResearchStore(database), SourcePollStore(database), client, [])
        details = [  # five minutes apart: the rate limit holds per source
            poller.poll_source(FearGreedSource(f"{site.base_url}{path}"), NOW + n * 300_000).detail
            for n, path in enumerate(cases)
        ]
    assert details == [
        "no data[0] in the answer",
        "data[0].value is not finite: 'NaN'",
        "index 170.0 outside 0..100",
        "data[0].value is not a number: 'fear'",
    ]
    assert observations(database) == {}


def test_a_source_is_not_asked_again_inside_its_rate_limit(
    database: Database, site: FeedSite
) -> None:
    site.documents["/fng/"] = as_json(FEAR_GREED)
    source = FearGreedSource(f"{site.base_url}/fng/?limit=1")
    with httpx.Client(timeout=5) as client:
        poller = ResearchPoller(
            ResearchStore(database), SourcePollStore(database), client, [source]
        )
        first = poller.poll(NOW)
        inside = poller.poll(NOW + 299_000)
        after = poller.poll(NOW + 300_000)
    assert [r.outcome for r in (*first, *inside, *after)] == ["new", "cached", "new"]
    assert inside[0].detail == "asked 299 s ago; next in 1 s"
    assert len(site.requests) == 2


def test_the_researcher_argues_from_the_stored_research(
    database: Database, site: FeedSite, settings: Settings
) -> None:
    site.documents["/fng/"] = as_json(FEAR_GREED)
    with httpx.Client(timeout=5) as client:
        ResearchPoller(
            ResearchStore(database),
            SourcePollStore(database),
            client,
            [FearGreedSource(f"{site.base_url}/fng/?limit=1")],
        ).poll(NOW)
    extend_simulation(CandleStore(database.session_factory), "BTC/USDT", "5m", NOW, 300, 42)
    engine = DecisionEngine(settings, database)
    before = engine.decide("BTC/USDT", "5m", NOW - 300_000, place_orders=False)
    after = engine.decide("BTC/USDT", "5m", NOW, place_orders=False)
    claims = [turn.claim for turn in after.debate if turn.speaker == "researcher"]
    assert any("fear_greed_index 27 from alternative.me" in claim for claim in claims), claims
    assert not any("fear_greed_index" in turn.claim for turn in before.debate)


def test_sigmax_research_poll_asks_cryptopanic_only_with_a_token(
    tmp_path: Path, site: FeedSite
) -> None:
    site.documents["/fng/"] = as_json(FEAR_GREED)
    env = {
        "SIGMAX_HOME": str(tmp_path),
        "SIGMAX_RESEARCH__FEAR_GREED_URL": f"{site.base_url}/fng/?limit=1",
        "SIGMAX_RESEARCH__COINGECKO_URL": f"{site.base_url}/api/v3",
        "SIGMAX_RESEARCH__REDDIT_URL": site.base_url,
        "SIGMAX_RESEARCH__CRYPTOPANIC_URL": f"{site.base_url}/api/v1/posts/",
    }
    result = CliRunner().invoke(cli, ["research", "poll"], env=env)
    assert result.exit_code == 0, result.output
    assert "alternative.me: new — 1 observations" in result.output
    assert "coingecko: failed — HTTP 404" in result.output
    assert "cryptopanic" not in result.output
    assert not any(path.startswith("/api/v1/posts") for path, _ in site.requests)
    names = [
        s.name
        for s in configured_sources(ResearchSettings(cryptopanic_token="x"), [], NewsScorer())
    ]
    assert names == ["alternative.me", "coingecko", "reddit", "cryptopanic"]
