"""Poll research sources within their rate limits and store their observations.

A source asked again before its ``min_interval_seconds`` is not asked: its last answer,
stored already, stands (outcome "cached"). A source that fails abstains — nothing is stored
for it, its state says why — and the others are polled all the same.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import httpx

from ingestion.research_sources import ResearchSource, SourceError
from storage.research import ResearchStore
from storage.source_polls import SourcePoll, SourcePollStore

ResearchOutcome = Literal["new", "cached", "failed"]


@dataclass(frozen=True)
class ResearchResult:
    source: str
    outcome: ResearchOutcome
    observations: int
    detail: str


class ResearchPoller:
    def __init__(
        self,
        store: ResearchStore,
        polls: SourcePollStore,
        client: httpx.Client,
        sources: Sequence[ResearchSource],
    ) -> None:
        self._store = store
        self._polls = polls
        self._client = client
        self._sources = tuple(sources)

    def poll(self, now_ms: int) -> list[ResearchResult]:
        return [self.poll_source(source, now_ms) for source in self._sources]

    def poll_source(self, source: ResearchSource, now_ms: int) -> ResearchResult:
        previous = self._polls.get(_key(source))
        # Asked last at its last poll, whatever came of it: the rate limit counts requests.
        asked_at = None if previous is None else previous.polled_at
        if asked_at is not None and now_ms - asked_at < source.min_interval_seconds * 1000:
            wait = source.min_interval_seconds - (now_ms - asked_at) / 1000
            detail = f"asked {(now_ms - asked_at) / 1000:.0f} s ago; next in {wait:.0f} s"
            return ResearchResult(source.name, "cached", 0, detail)
        try:
            fetched = source.fetch(self._client)
        except SourceError as error:
            self._record(source, now_ms, "failed", str(error))
            return ResearchResult(source.name, "failed", 0, str(error))
        self._store.add(fetched.observations, fetched_at=now_ms)
        count = len(fetched.observations)
        detail = f"{count} observations" + "".join(f"; {p}" for p in fetched.problems)
        self._record(source, now_ms, "new", detail)
        return ResearchResult(source.name, "new", count, detail)

    def _record(self, source: ResearchSource, now_ms: int, outcome: str, detail: str) -> None:
        self._polls.record(
            SourcePoll(
                key=_key(source),
                etag=None,
                last_modified=None,
                polled_at=now_ms,
                outcome=outcome,
                detail=detail,
            )
        )


def _key(source: ResearchSource) -> str:
    return f"research:{source.name}"
