"""The background workers a service (with --exchange) or `sigmax ingest` runs: news every
``news.poll_seconds``, research as often as its quickest source may be asked, order books
and tickers every ``book.poll_seconds``, and for `sigmax ingest` the candles at each close."""

import asyncio
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from core.settings import Settings
from core.timeframes import floor_to, timeframe_ms
from core.version import ENGINE_VERSION
from ingestion.book_worker import BookWorker, Ticker
from ingestion.coins import CoinDetector
from ingestion.exchange_feed import ExchangeFeed
from ingestion.news_poller import NewsPoller
from ingestion.news_score import NewsScorer
from ingestion.research_poller import ResearchPoller
from ingestion.research_sources import configured_sources
from ingestion.workers import Worker, WorkerStatus, WorkFailedError, every, outcome_summary
from storage.api_errors import ApiErrorStore
from storage.book_summaries import BookSummaryStore
from storage.engine import Database
from storage.news import NewsStore
from storage.research import ResearchStore
from storage.source_polls import SourcePollStore

# After a candle's close, how long the candle worker waits for the exchange to close it too.
CLOSE_SETTLE_SECONDS = 2.0


def http_client(timeout: float, purpose: str) -> httpx.Client:
    """A client for outside sources that says who asks (some refuse anonymous agents)."""
    return httpx.Client(
        timeout=timeout,
        follow_redirects=True,
        headers={"User-Agent": f"sigmax/{ENGINE_VERSION} (+{purpose})"},
    )


def news_poller(settings: Settings, database: Database, client: httpx.Client) -> NewsPoller:
    assets = {symbol.partition("/")[0] for symbol in settings.symbols}
    return NewsPoller(
        NewsStore(database),
        SourcePollStore(database),
        client,
        NewsScorer(),
        CoinDetector(assets),
        settings.news.feeds,
    )


def research_poller(settings: Settings, database: Database, client: httpx.Client) -> ResearchPoller:
    assets = sorted({symbol.partition("/")[0] for symbol in settings.symbols})
    return ResearchPoller(
        ResearchStore(database),
        SourcePollStore(database),
        client,
        configured_sources(settings.research, assets, NewsScorer()),
    )


@dataclass
class Workers:
    workers: list[Worker]
    books: BookWorker
    clients: list[httpx.Client] = field(default_factory=list)

    def statuses(self) -> list[WorkerStatus]:
        return [worker.status for worker in self.workers]

    def tickers(self) -> dict[str, Ticker]:
        return self.books.tickers

    async def run(self, stopping: threading.Event) -> None:
        try:
            await asyncio.gather(*(worker.run(stopping) for worker in self.workers))
        finally:
            for client in self.clients:
                client.close()


def build_workers(
    settings: Settings, database: Database, exchange: object, candles: ExchangeFeed | None
) -> Workers:
    news_client = http_client(settings.news.timeout_seconds, "news poller")
    research_client = http_client(settings.research.timeout_seconds, "research poller")
    news = news_poller(settings, database, news_client)
    research = research_poller(settings, database, research_client)
    sources = configured_sources(settings.research, [], NewsScorer())
    research_every = min(source.min_interval_seconds for source in sources)
    books = BookWorker(
        exchange,
        settings.symbols,
        BookSummaryStore(database.session_factory),
        ApiErrorStore(database.session_factory),
        settings.book,
    )
    workers = [
        Worker(
            "news",
            lambda now: outcome_summary([(r.url, r.outcome, r.detail) for r in news.poll(now)]),
            every(settings.news.poll_seconds),
        ),
        Worker(
            "research",
            lambda now: outcome_summary(
                [(r.source, r.outcome, r.detail) for r in research.poll(now)]
            ),
            every(research_every),
        ),
        Worker("order_books", books.run, every(settings.book.poll_seconds)),
    ]
    if candles is not None:
        workers.append(Worker("candles", _refresh(candles), _until_next_close(candles)))
    return Workers(workers, books, [news_client, research_client])


def _refresh(feed: ExchangeFeed) -> Callable[[int], str]:
    def work(now: int) -> str:
        for series in feed.series:
            feed.prepare(series, now)
        states = feed.states()
        failed = {key: state.error for key, state in states.items() if state.error}
        if failed and len(failed) == len(states):
            raise WorkFailedError("; ".join(f"{key}: {error}" for key, error in failed.items()))
        return ", ".join(f"{key}: +{state.added}" for key, state in states.items())

    return work


def _until_next_close(feed: ExchangeFeed) -> Callable[[int], float]:
    steps = sorted({timeframe_ms(series.timeframe) for series in feed.series})

    def delay(now: int) -> float:
        next_close = min(floor_to(now, step) + step for step in steps)
        return (next_close - now) / 1000.0 + CLOSE_SETTLE_SECONDS

    return delay


def run_workers(workers: Workers, say: Callable[[str], None]) -> None:
    """Run the workers until SIGINT or SIGTERM, printing each run's outcome as it changes."""
    stopping = threading.Event()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for signal_number in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signal_number, stopping.set)
        task = asyncio.create_task(workers.run(stopping))
        seen: dict[str, int] = {}
        while not task.done():
            for status in workers.statuses():
                if seen.get(status.name) != status.runs:
                    seen[status.name] = status.runs
                    outcome = status.last_error or status.last_detail
                    say(f"{status.name} run {status.runs}: {outcome}")
            await asyncio.sleep(0.2)
        await task

    asyncio.run(main())
    say("ingest stopped")
