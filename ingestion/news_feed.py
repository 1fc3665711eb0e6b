"""An RSS or Atom document → news items, with what was wrong in it.

feedparser reads RSS 0.9x–2.0 and Atom, tolerating broken XML as far as it can. Here each
entry becomes an item or a stated problem: no title and no link is nothing to keep. Titles
and summaries lose their HTML. An entry without a date is dated when it was fetched, and
one dated after that is clamped to it: a decision may only know what had been fetched by
its as_of (DESIGN §3), whatever the feed claims.
"""

import calendar
import hashlib
import html
import re
import time
from dataclasses import dataclass
from typing import Any

import feedparser

_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")
_NOT_WORD = re.compile(r"[^\w\s]")
MAX_SUMMARY = 1000


@dataclass(frozen=True)
class FeedEntry:
    guid: str
    title: str
    url: str
    summary: str
    published_at: int
    # The title as dedup compares it: lower case, no punctuation, single spaces.
    title_key: str
    dated_by_feed: bool


@dataclass(frozen=True)
class ParsedFeed:
    entries: tuple[FeedEntry, ...]
    problems: tuple[str, ...]


class NotAFeedError(ValueError):
    """The document is not a feed at all (nothing could be read from it)."""


def parse_feed(content: bytes, fetched_at: int) -> ParsedFeed:
    parsed = feedparser.parse(content)
    entries: list[FeedEntry] = []
    problems: list[str] = []
    if not parsed.entries and (parsed.get("bozo") or not parsed.get("version")):
        why = parsed.get("bozo_exception") or "no RSS or Atom in it"
        raise NotAFeedError(f"not a readable feed: {why}")
    if parsed.get("bozo"):
        problems.append(f"malformed feed, read what could be: {parsed.get('bozo_exception')}")
    for position, raw in enumerate(parsed.entries, start=1):
        entry = _entry(raw, fetched_at)
        if entry is None:
            problems.append(f"entry {position}: no title and no link; skipped")
        else:
            entries.append(entry)
    return ParsedFeed(tuple(entries), tuple(problems))


def title_key(title: str) -> str:
    return _SPACE.sub(" ", _NOT_WORD.sub(" ", title.lower())).strip()


def _entry(raw: Any, fetched_at: int) -> FeedEntry | None:
    title = _text(raw.get("title", ""))
    url = str(raw.get("link", "")).strip()
    if not title and not url:
        return None
    summary = _text(raw.get("summary", ""))[:MAX_SUMMARY]
    guid = str(raw.get("id") or url or hashlib.sha256(title.encode()).hexdigest())
    published = _epoch_ms(raw.get("published_parsed") or raw.get("updated_parsed"))
    return FeedEntry(
        guid=guid,
        title=title or url,
        url=url,
        summary=summary,
        published_at=min(published, fetched_at) if published is not None else fetched_at,
        title_key=title_key(title or url),
        dated_by_feed=published is not None,
    )


def _text(value: Any) -> str:
    """Plain text: tags dropped, entities decoded, white space folded."""
    return _SPACE.sub(" ", html.unescape(_TAG.sub(" ", str(value)))).strip()


def _epoch_ms(moment: time.struct_time | None) -> int | None:
    # feedparser hands dates back normalised to UTC.
    return None if moment is None else calendar.timegm(moment) * 1000
