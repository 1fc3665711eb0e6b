"""Poll RSS/Atom feeds over HTTP and store what is new, scored and tagged with its coins.

Each poll is a conditional GET (If-None-Match / If-Modified-Since from the feed's last
answer): a 304 costs nothing. A feed that fails — network, timeout, an HTTP error, a body
that is no feed — is recorded as failed with the reason, keeps its validators, and the
other feeds are polled all the same. Nothing is made up for a failed feed.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

import httpx

from ingestion.coins import CoinDetector
from ingestion.news_feed import NotAFeedError, parse_feed
from ingestion.news_score import NewsScorer
from storage.news import NewNewsItem, NewsStore
from storage.source_polls import SourcePoll, SourcePollStore

PollOutcome = Literal["new", "not_modified", "failed"]


@dataclass(frozen=True)
class PollResult:
    url: str
    outcome: PollOutcome
    read: int  # entries read from the document
    added: int  # of those, not seen before
    problems: tuple[str, ...]
    detail: str


class NewsPoller:
    def __init__(
        self,
        store: NewsStore,
        polls: SourcePollStore,
        client: httpx.Client,
        scorer: NewsScorer,
        coins: CoinDetector,
        feeds: Sequence[str],
    ) -> None:
        self._store = store
        self._polls = polls
        self._client = client
        self._scorer = scorer
        self._coins = coins
        self._feeds = tuple(feeds)

    def poll(self, now_ms: int) -> list[PollResult]:
        return [self.poll_feed(url, now_ms) for url in self._feeds]

    def poll_feed(self, url: str, now_ms: int) -> PollResult:
        previous = self._polls.get(url)
        try:
            response = self._client.get(url, headers=_validators(previous))
        except httpx.HTTPError as error:
            return self._failed(url, previous, now_ms, f"{type(error).__name__}: {error}")
        if response.status_code == 304:
            self._record(url, previous, response, now_ms, "not_modified", "not modified")
            return PollResult(url, "not_modified", 0, 0, (), "not modified")
        if response.status_code != 200:
            return self._failed(url, previous, now_ms, f"HTTP {response.status_code}")
        try:
            parsed = parse_feed(response.content, now_ms)
        except NotAFeedError as error:
            return self._failed(url, previous, now_ms, str(error))
        source = _source(url)
        items = [
            NewNewsItem(
                source=source,
                guid=entry.guid,
                title=entry.title,
                title_key=entry.title_key,
                url=entry.url,
                summary=entry.summary,
                published_at=entry.published_at,
                fetched_at=now_ms,
                sentiment=self._scorer.score(entry.title, entry.summary),
                symbols=self._coins.mentioned(entry.title, entry.summary),
            )
            for entry in parsed.entries
        ]
        added = self._store.add_new(items)
        detail = f"{len(items)} entries, {len(added)} new" + "".join(
            f"; {problem}" for problem in parsed.problems
        )
        self._record(url, previous, response, now_ms, "new", detail)
        return PollResult(url, "new", len(items), len(added), parsed.problems, detail)

    def _failed(
        self, url: str, previous: SourcePoll | None, now_ms: int, reason: str
    ) -> PollResult:
        self._polls.record(
            SourcePoll(
                key=url,
                etag=previous.etag if previous else None,
                last_modified=previous.last_modified if previous else None,
                polled_at=now_ms,
                outcome="failed",
                detail=reason,
            )
        )
        return PollResult(url, "failed", 0, 0, (), reason)

    def _record(
        self,
        url: str,
        previous: SourcePoll | None,
        response: httpx.Response,
        now_ms: int,
        outcome: PollOutcome,
        detail: str,
    ) -> None:
        self._polls.record(
            SourcePoll(
                key=url,
                etag=response.headers.get("etag") or (previous.etag if previous else None),
                last_modified=response.headers.get("last-modified")
                or (previous.last_modified if previous else None),
                polled_at=now_ms,
                outcome=outcome,
                detail=detail,
            )
        )


def _validators(previous: SourcePoll | None) -> dict[str, str]:
    headers: dict[str, str] = {}
    if previous is not None and previous.etag:
        headers["If-None-Match"] = previous.etag
    if previous is not None and previous.last_modified:
        headers["If-Modified-Since"] = previous.last_modified
    return headers


def _source(url: str) -> str:
    """The feed's site, as items name their source: "coindesk.com"."""
    host = urlsplit(url).hostname or url
    return host.removeprefix("www.")
