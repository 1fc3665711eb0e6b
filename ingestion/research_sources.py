"""Research sources: public APIs read into observations (source, metric, symbol, value).

Each source turns its API's documented JSON into numbers, or raises SourceError saying
what was wrong; it never fills a gap with a default. Market-wide metrics carry no symbol;
per-asset ones carry the asset ("BTC"), which the market view matches to BTC/USDT.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import fmean
from typing import Any, Protocol

import httpx

from core.settings import ResearchSettings
from ingestion.news_score import NewsScorer
from storage.research import NewObservation

# CoinGecko names coins by id, not ticker.
COINGECKO_IDS: dict[str, str] = {
    "BTC": "bitcoin",
    "ETH": "ethereum",
    "SOL": "solana",
    "XRP": "ripple",
    "BNB": "binancecoin",
    "ADA": "cardano",
    "DOGE": "dogecoin",
    "AVAX": "avalanche-2",
    "DOT": "polkadot",
    "LINK": "chainlink",
    "LTC": "litecoin",
}
# Subreddit → the asset it is about (None: the market as a whole).
SUBREDDITS: dict[str, str | None] = {
    "CryptoCurrency": None,
    "CryptoMarkets": None,
    "Bitcoin": "BTC",
    "ethereum": "ETH",
}


@dataclass(frozen=True)
class Fetched:
    observations: list[NewObservation]
    # Parts of the source that failed while others answered (one subreddit of four).
    problems: tuple[str, ...] = ()


class SourceError(Exception):
    """The source gave nothing usable; the message says why (it abstains)."""


class ResearchSource(Protocol):
    name: str
    # The least time between two requests to it: its rate limit, and how long an answer
    # is reused.
    min_interval_seconds: float

    def fetch(self, client: httpx.Client) -> Fetched: ...


def get_json(client: httpx.Client, url: str, **params: str | int) -> Any:
    """GET and decode, with every failure as a SourceError."""
    try:
        response = client.get(url, params=params)
    except httpx.HTTPError as error:
        raise SourceError(f"{type(error).__name__}: {error}") from None
    if response.status_code == 429:
        retry = response.headers.get("retry-after", "?")
        raise SourceError(f"rate limited (HTTP 429, retry after {retry} s)")
    if response.status_code != 200:
        raise SourceError(f"HTTP {response.status_code}")
    try:
        return response.json()
    except ValueError:
        raise SourceError("the answer is not JSON") from None


def number(value: Any, what: str) -> float:
    """A finite number from a JSON value (numbers and numeric strings), or SourceError."""
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise SourceError(f"{what} is not a number: {value!r}") from None
    if not math.isfinite(result):
        raise SourceError(f"{what} is not finite: {value!r}")
    return result


class FearGreedSource:
    """alternative.me's Crypto Fear & Greed Index (0 extreme fear … 100 extreme greed)."""

    name = "alternative.me"
    min_interval_seconds = 300.0

    def __init__(self, url: str) -> None:
        self._url = url

    def fetch(self, client: httpx.Client) -> Fetched:
        body = get_json(client, self._url)
        try:
            latest = body["data"][0]
        except (KeyError, IndexError, TypeError):
            raise SourceError("no data[0] in the answer") from None
        value = number(latest.get("value"), "data[0].value")
        if not 0 <= value <= 100:
            raise SourceError(f"index {value} outside 0..100")
        return Fetched([NewObservation(self.name, "fear_greed_index", None, value, latest)])


class CoinGeckoSource:
    """CoinGecko's coin data: market cap, volume, 24 h change, community and developer
    metrics, per asset it knows the id of."""

    name = "coingecko"
    min_interval_seconds = 60.0
    _MARKET = (
        ("market_cap_usd", ("market_data", "market_cap", "usd")),
        ("volume_24h_usd", ("market_data", "total_volume", "usd")),
        ("price_change_24h_pct", ("market_data", "price_change_percentage_24h")),
        ("twitter_followers", ("community_data", "twitter_followers")),
        ("reddit_subscribers", ("community_data", "reddit_subscribers")),
        ("dev_commits_4w", ("developer_data", "commit_count_4_weeks")),
        ("dev_stars", ("developer_data", "stars")),
    )

    def __init__(self, assets: Sequence[str], base_url: str) -> None:
        self._assets = [asset for asset in assets if asset in COINGECKO_IDS]
        self._base_url = base_url.rstrip("/")

    def fetch(self, client: httpx.Client) -> Fetched:
        if not self._assets:
            raise SourceError("no configured asset has a known CoinGecko id")
        observations: list[NewObservation] = []
        for asset in self._assets:
            body = get_json(
                client,
                f"{self._base_url}/coins/{COINGECKO_IDS[asset]}",
                localization="false",
                tickers="false",
                market_data="true",
                community_data="true",
                developer_data="true",
                sparkline="false",
            )
            for metric, path in self._MARKET:
                value = _walk(body, path)
                # A metric CoinGecko leaves out (null) is not observed; the rest still are.
                if value is not None:
                    observations.append(
                        NewObservation(self.name, metric, asset, number(value, ".".join(path)), {})
                    )
        if not observations:
            raise SourceError("no metric in the answers")
        return Fetched(observations)


class CryptoPanicSource:
    """CryptoPanic's community votes on recent posts per asset: the share of positive votes
    among positive and negative. Used only with an API token."""

    name = "cryptopanic"
    min_interval_seconds = 300.0

    def __init__(self, token: str, assets: Sequence[str], url: str) -> None:
        self._token = token
        self._assets = list(assets)
        self._url = url

    def fetch(self, client: httpx.Client) -> Fetched:
        body = get_json(
            client,
            self._url,
            auth_token=self._token,
            currencies=",".join(self._assets),
            public="true",
        )
        results = body.get("results") if isinstance(body, dict) else None
        if not isinstance(results, list):
            raise SourceError("no results list in the answer")
        votes: dict[str, list[float]] = {asset: [0.0, 0.0, 0.0] for asset in self._assets}
        for post in results:
            tally = post.get("votes") or {}
            for currency in post.get("currencies") or ():
                counted = votes.get(str(currency.get("code", "")).upper())
                if counted is not None:
                    counted[0] += number(tally.get("positive", 0), "votes.positive")
                    counted[1] += number(tally.get("negative", 0), "votes.negative")
                    counted[2] += 1
        observations = [
            NewObservation(
                self.name,
                "panic_positive_vote_share",
                asset,
                positive / (positive + negative),
                {"posts": posts, "positive": positive, "negative": negative},
            )
            for asset, (positive, negative, posts) in votes.items()
            if positive + negative > 0
        ]
        if not observations:
            raise SourceError(f"no votes on posts about {', '.join(self._assets)}")
        return Fetched(observations)


class RedditSource:
    """Reddit's public JSON: the hot posts of crypto subreddits, as the mean sentiment of
    their titles (scored like news) and how many there were."""

    name = "reddit"
    min_interval_seconds = 120.0

    def __init__(
        self,
        scorer: NewsScorer,
        base_url: str,
        subreddits: Mapping[str, str | None] = SUBREDDITS,
    ) -> None:
        self._scorer = scorer
        self._subreddits = dict(subreddits)
        self._base_url = base_url.rstrip("/")

    def fetch(self, client: httpx.Client) -> Fetched:
        observations: list[NewObservation] = []
        problems: list[str] = []
        for subreddit, asset in self._subreddits.items():
            try:
                body = get_json(client, f"{self._base_url}/r/{subreddit}/hot.json", limit=50)
                children = body["data"]["children"]
                titles = [
                    str(child["data"]["title"])
                    for child in children
                    if child.get("kind") == "t3" and not child["data"].get("stickied")
                ]
            except (SourceError, KeyError, TypeError) as error:
                problems.append(f"r/{subreddit}: {error}")
                continue
            if not titles:
                problems.append(f"r/{subreddit}: no posts")
                continue
            payload = {"subreddit": subreddit, "posts": len(titles)}
            sentiment = fmean(self._scorer.score(title) for title in titles)
            observations.append(
                NewObservation(
                    self.name, f"reddit_{subreddit}_sentiment", asset, sentiment, payload
                )
            )
        if not observations:
            raise SourceError("; ".join(problems))
        return Fetched(observations, tuple(problems))


def _walk(body: Any, path: Sequence[str]) -> Any:
    for key in path:
        if not isinstance(body, dict) or key not in body:
            return None
        body = body[key]
    return body


def configured_sources(
    settings: ResearchSettings, assets: Sequence[str], scorer: NewsScorer
) -> list[ResearchSource]:
    """The sources the settings name; CryptoPanic only with its token."""
    sources: list[ResearchSource] = [
        FearGreedSource(settings.fear_greed_url),
        CoinGeckoSource(assets, settings.coingecko_url),
        RedditSource(scorer, settings.reddit_url),
    ]
    if settings.cryptopanic_token:
        sources.append(
            CryptoPanicSource(settings.cryptopanic_token, assets, settings.cryptopanic_url)
        )
    return sources
