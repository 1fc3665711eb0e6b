"""News items as ingestion stores them, deduplicated."""

import json
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from storage.engine import Database
from storage.models import NewsItemRow


@dataclass(frozen=True)
class NewNewsItem:
    source: str
    guid: str
    title: str
    title_key: str
    url: str
    summary: str
    published_at: int
    fetched_at: int
    sentiment: float | None
    # Assets mentioned, in capitals ("BTC"); the market view matches a symbol by its base.
    symbols: tuple[str, ...]


class NewsStore:
    def __init__(self, database: Database) -> None:
        self._database = database

    def add_new(self, items: Sequence[NewNewsItem]) -> list[NewNewsItem]:
        """Store the items not seen before — by guid within their source, by link, or by
        normalised title, among what is stored and earlier in ``items`` — and return them."""
        added: list[NewNewsItem] = []
        # Read then write: on SQLite the write lock is taken at BEGIN, so a worker writing
        # beside the scheduler waits its turn (busy timeout) instead of failing "locked".
        with self._database.guarded_session_factory.begin() as session:
            seen_guids, seen_urls, seen_titles = _already_stored(session, items)
            for item in items:
                if (
                    (item.source, item.guid) in seen_guids
                    or (item.url and item.url in seen_urls)
                    or (item.title_key and item.title_key in seen_titles)
                ):
                    continue
                seen_guids.add((item.source, item.guid))
                seen_urls.add(item.url)
                seen_titles.add(item.title_key)
                added.append(item)
            if added:
                session.execute(sa.insert(NewsItemRow), [_values(item) for item in added])
        return added


def _already_stored(
    session: Session, items: Sequence[NewNewsItem]
) -> tuple[set[tuple[str, str]], set[str], set[str]]:
    guids = {item.guid for item in items}
    urls = {item.url for item in items if item.url}
    titles = {item.title_key for item in items if item.title_key}
    rows = session.execute(
        sa.select(
            NewsItemRow.source, NewsItemRow.guid, NewsItemRow.url, NewsItemRow.title_key
        ).where(
            sa.or_(
                NewsItemRow.guid.in_(guids),
                NewsItemRow.url.in_(urls),
                NewsItemRow.title_key.in_(titles),
            )
        )
    ).all()
    return (
        {(row.source, row.guid) for row in rows},
        {row.url for row in rows if row.url},
        {row.title_key for row in rows if row.title_key},
    )


def _values(item: NewNewsItem) -> dict[str, object]:
    return {
        "source": item.source,
        "guid": item.guid,
        "title": item.title,
        "title_key": item.title_key,
        "url": item.url,
        "summary": item.summary,
        "published_at": item.published_at,
        "fetched_at": item.fetched_at,
        "sentiment": item.sentiment,
        "symbols": json.dumps(list(item.symbols)),
    }
