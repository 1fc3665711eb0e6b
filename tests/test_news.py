"""News ingestion with the real clients (httpx, feedparser) against a loopback feed site:
RSS 2.0 and Atom, malformed entries, missing dates, HTML in titles, conditional requests,
duplicates across polls, failing feeds — and the sentiment signal a decision then reads."""

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from feed_server import Document, FeedSite, feed_site

from api.cli import cli
from core.decision import Abstained, SentimentReading
from core.settings import Settings
from core.timeframes import format_timestamp, parse_timestamp
from graph.engine import DecisionEngine
from ingestion.coins import CoinDetector
from ingestion.news_feed import title_key
from ingestion.news_poller import NewsPoller
from ingestion.news_score import NewsScorer
from ingestion.sim_feed import extend_simulation
from storage.candles import CandleStore
from storage.engine import Database
from storage.models import NewsItemRow
from storage.news import NewsStore
from storage.source_polls import SourcePollStore

FETCHED = parse_timestamp("2026-11-24T12:00:00Z")
RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Coin News</title><link>https://news.example/</link>
<item><guid>n-1</guid>
  <title>Bitcoin &lt;b&gt;surges&lt;/b&gt; to record high as ETF inflows soar</title>
  <link>https://news.example/1</link>
  <description>&lt;p&gt;BTC rallied &amp;amp; bulls cheered&lt;/p&gt;</description>
  <pubDate>Tue, 24 Nov 2026 10:00:00 GMT</pubDate></item>
<item><guid>n-2</guid><title>Exchange hacked, ether stolen; ETH plunges</title>
  <link>https://news.example/2</link><pubDate>Tue, 24 Nov 2026 11:00:00 +0100</pubDate></item>
<item><guid>n-3</guid><title>A solution for payments, says startup</title>
  <link>https://news.example/3</link></item>
<item><description>an entry with neither title nor link nor guid</description></item>
<item><guid>n-5</guid><title>Solana outage: SOL validators restart</title>
  <link>https://news.example/5</link><pubDate>Wed, 25 Nov 2026 09:00:00 GMT</pubDate></item>
</channel></rss>"""
ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Chain Daily</title><id>urn:chain-daily</id>
<updated>2026-11-24T09:30:00Z</updated>
<entry><id>urn:chain-daily:a</id>
  <title type="html">Ethereum &lt;i&gt;upgrade&lt;/i&gt; goes live</title>
  <link href="https://chain.example/a"/><updated>2026-11-24T09:30:00Z</updated>
  <summary>Developers shipped the upgrade.</summary></entry>
<entry><id>urn:chain-daily:b</id><title>Bitcoin surges to record high as ETF inflows soar!</title>
  <link href="https://chain.example/b"/><updated>2026-11-24T09:45:00Z</updated></entry>
</feed>"""


@pytest.fixture
def site() -> Iterator[FeedSite]:
    with feed_site() as running:
        yield running


def poller(database: Database, client: httpx.Client, *feeds: str) -> NewsPoller:
    return NewsPoller(
        NewsStore(database),
        SourcePollStore(database),
        client,
        NewsScorer(),
        CoinDetector({"BTC"}),
        feeds,
    )


def stored(database: Database) -> dict[str, NewsItemRow]:
    with database.session_factory() as session:
        return {row.guid: row for row in session.scalars(sa.select(NewsItemRow))}


def test_an_rss_feed_is_read_cleaned_dated_scored_and_tagged(
    database: Database, site: FeedSite
) -> None:
    site.documents["/rss"] = Document(RSS.encode())
    with httpx.Client(timeout=5) as client:
        result = poller(database, client, f"{site.base_url}/rss").poll_feed(
            f"{site.base_url}/rss", FETCHED
        )
    assert (result.outcome, result.read, result.added) == ("new", 4, 4)
    assert result.problems == ("entry 4: no title and no link; skipped",)
    items = stored(database)
    assert set(items) == {"n-1", "n-2", "n-3", "n-5"}
    surge, hack, solution, solana = (items[guid] for guid in ("n-1", "n-2", "n-3", "n-5"))
    assert surge.title == "Bitcoin surges to record high as ETF inflows soar"
    assert surge.summary == "BTC rallied & bulls cheered"
    assert surge.source == "127.0.0.1"
    assert surge.published_at == parse_timestamp("2026-11-24T10:00:00Z")
    assert hack.published_at == parse_timestamp("2026-11-24T10:00:00Z")  # +0100 read as UTC
    assert solution.published_at == FETCHED, "no date: dated when fetched"
    assert solana.published_at == FETCHED, "dated after the fetch: clamped to it"
    assert surge.sentiment is not None
    assert surge.sentiment > 0.5
    assert hack.sentiment is not None
    assert hack.sentiment < -0.5
    assert json.loads(surge.symbols) == ["BTC"]
    assert json.loads(hack.symbols) == ["ETH"]
    assert json.loads(solution.symbols) == [], "'solution' is not SOL"
    assert json.loads(solana.symbols) == ["SOL"]


def test_an_atom_feed_is_read_and_a_repeated_story_is_kept_once(
    database: Database, site: FeedSite
) -> None:
    site.documents["/rss"] = Document(RSS.encode())
    site.documents["/atom"] = Document(ATOM.encode(), content_type="application/atom+xml")
    with httpx.Client(timeout=5) as client:
        results = poller(database, client, f"{site.base_url}/rss", f"{site.base_url}/atom").poll(
            FETCHED
        )
    assert [(r.outcome, r.read, r.added) for r in results] == [("new", 4, 4), ("new", 2, 1)]
    items = stored(database)
    assert items["urn:chain-daily:a"].title == "Ethereum upgrade goes live"
    assert items["urn:chain-daily:a"].published_at == parse_timestamp("2026-11-24T09:30:00Z")
    # The same headline, told apart only by punctuation, is one story.
    assert "urn:chain-daily:b" not in items
    assert title_key("Bitcoin surges to record high as ETF inflows soar!") == title_key(
        "Bitcoin SURGES to record high, as ETF inflows soar"
    )


def test_polls_ask_conditionally_and_store_only_what_is_new(
    database: Database, site: FeedSite
) -> None:
    url = f"{site.base_url}/rss"
    site.documents["/rss"] = Document(
        RSS.encode(), etag='"v1"', last_modified="Tue, 24 Nov 2026 11:59:00 GMT"
    )
    with httpx.Client(timeout=5) as client:
        news = poller(database, client, url)
        first = news.poll_feed(url, FETCHED)
        second = news.poll_feed(url, FETCHED + 300_000)
        assert site.requests[-1][1]["if-none-match"] == '"v1"'
        assert site.requests[-1][1]["if-modified-since"] == "Tue, 24 Nov 2026 11:59:00 GMT"
        assert (second.outcome, second.added) == ("not_modified", 0)

        updated = RSS.replace(
            "</channel>",
            "<item><guid>n-1-again</guid><title>A new guid, the same link</title>"
            "<link>https://news.example/1</link></item>"
            "<item><guid>n-6</guid><title>bitcoin surges to record high as ETF inflows soar</title>"
            "<link>https://news.example/6</link></item>"
            "<item><guid>n-7</guid><title>Litecoin slumps as miners sell</title>"
            "<link>https://news.example/7</link></item></channel>",
        )
        site.documents["/rss"] = Document(updated.encode(), etag='"v2"')
        third = news.poll_feed(url, FETCHED + 600_000)
    assert first.added == 4
    assert (third.outcome, third.read, third.added) == ("new", 7, 1)
    items = stored(database)
    assert "n-7" in items
    assert {"n-1-again", "n-6"}.isdisjoint(items)
    state = SourcePollStore(database).get(url)
    assert state is not None
    assert (state.etag, state.outcome) == ('"v2"', "new")


def test_a_failing_feed_is_recorded_with_its_reason_and_the_others_still_polled(
    database: Database, site: FeedSite
) -> None:
    site.documents["/ok"] = Document(ATOM.encode(), etag='"a"')
    site.documents["/broken"] = Document(b"", status=503)
    site.documents["/slow"] = Document(RSS.encode(), delay_seconds=2.0)
    site.documents["/html"] = Document(b"<html><body>Not a feed</body></html>", "text/html")
    urls = [f"{site.base_url}/{path}" for path in ("broken", "slow", "html", "ok", "missing")]
    with httpx.Client(timeout=0.5) as client:
        results = poller(database, client, *urls).poll(FETCHED)
    outcomes = {result.url.rsplit("/", 1)[1]: result for result in results}
    assert outcomes["broken"].detail == "HTTP 503"
    assert outcomes["slow"].detail.startswith("ReadTimeout")
    assert outcomes["html"].detail.startswith("not a readable feed")
    assert outcomes["missing"].detail == "HTTP 404"
    assert all(outcomes[name].outcome == "failed" for name in ("broken", "slow", "html", "missing"))
    assert (outcomes["ok"].outcome, outcomes["ok"].added) == ("new", 2)
    assert len(stored(database)) == 2, "nothing made up for the failed feeds"
    states = {state.key.rsplit("/", 1)[1]: state for state in SourcePollStore(database).all()}
    assert states["broken"].outcome == "failed"
    assert states["ok"].etag == '"a"'


def test_the_sentiment_signal_reads_the_polled_news_up_to_as_of_only(
    database: Database, site: FeedSite, settings: Settings
) -> None:
    site.documents["/rss"] = Document(RSS.encode())
    with httpx.Client(timeout=5) as client:
        poller(database, client, f"{site.base_url}/rss").poll(FETCHED)
    extend_simulation(CandleStore(database.session_factory), "BTC/USDT", "5m", FETCHED, 300, 42)
    engine = DecisionEngine(settings, database)
    before = engine.decide(
        "BTC/USDT", "5m", parse_timestamp("2026-11-24T09:55:00Z"), place_orders=False
    )
    after = engine.decide("BTC/USDT", "5m", FETCHED, place_orders=False)
    assert before.signals.sentiment.status == "abstained"
    assert isinstance(before.signals.sentiment, Abstained)
    assert "no news stored for BTC/USDT" in before.signals.sentiment.reason
    reading = after.signals.sentiment
    assert isinstance(reading, SentimentReading)
    assert reading.item_count == 1
    assert reading.score > 0.5


def test_sigmax_news_poll_reports_each_feed(tmp_path: Path, site: FeedSite) -> None:
    site.documents["/rss"] = Document(RSS.encode())
    env = {
        "SIGMAX_HOME": str(tmp_path),
        "SIGMAX_NEWS__FEEDS": f"{site.base_url}/rss,{site.base_url}/gone",
    }
    result = CliRunner().invoke(cli, ["news", "poll"], env=env)
    assert result.exit_code == 0, result.output
    assert f"{site.base_url}/rss: new — 4 entries, 4 new; entry 4: no title" in result.output
    assert f"{site.base_url}/gone: failed — HTTP 404" in result.output
    env["SIGMAX_NEWS__FEEDS"] = f"{site.base_url}/gone"
    failed = CliRunner().invoke(cli, ["news", "poll"], env=env)
    assert failed.exit_code != 0
    assert "no feed could be read" in failed.output
    bad = CliRunner().invoke(cli, ["news", "poll"], env={**env, "SIGMAX_NEWS__FEEDS": "ftp://x"})
    assert bad.exit_code != 0
    assert "must be an http:// or https:// URL" in bad.output


def test_coins_are_found_by_ticker_and_name_on_word_boundaries() -> None:
    coins = CoinDetector({"SOL", "BTC", "PEPE"})
    assert coins.mentioned("A solution for everyone; console logs") == ()
    assert coins.mentioned("SOL jumps 10%") == ("SOL",)
    assert coins.mentioned("solana network") == ("SOL",)
    assert coins.mentioned("$PEPE and BTC-USD") == ("BTC", "PEPE")
    assert coins.mentioned("Bitcoin's rally lifts Ether") == ("BTC", "ETH")
    assert coins.mentioned("Ethernet and ethereal") == ()
    assert coins.mentioned("link to the dot com") == ()
    assert coins.mentioned("btc in lower case is not a ticker") == ()


def test_crypto_terms_carry_their_market_meaning() -> None:
    scorer = NewsScorer()
    assert scorer.score("Bitcoin surges to record high as ETF inflows soar") > 0.5
    assert scorer.score("Exchange hacked, token crashes") < -0.5
    assert scorer.score("Stablecoin depegs after bank run; USDC depegged") < 0
    assert -0.2 < scorer.score("Ethereum developers meet on Thursday") < 0.2
    assert format_timestamp(FETCHED) == "2026-11-24T12:00:00Z"
