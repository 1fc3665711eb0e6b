"""The third candle feed: closed candles from a ccxt exchange, for the service's scheduler.

At each candle close the scheduler asks for the candles closed by then; the feed fetches
what is missing since the newest stored one — the whole lookback on the first call (the
backfill on start), every missing candle after a gap (a stopped service, a failed refresh).
A refresh that fails does not stop the decision: the error is recorded here (for /health)
and as an API error (for the gate's burst trigger), and the decision runs on what is stored,
so the gate's freshness check holds it with its reason — a gap in market data is never
filled with anything made up.

The first series asked for at a close brings every series of its timeframe up to that close,
side by side on the async client (one request each, under one rate limiter); the others
asked for at the same close — or at an earlier one — find their candles stored and ask the
exchange nothing.
"""

import threading
from dataclasses import dataclass

from core.decision import Mode
from core.timeframes import now_ms
from ingestion.exchange_candles import CandleFetcher, RefreshReport
from ingestion.feeds import FeedError, Series, ensure_not_simulated
from ingestion.loop_thread import LoopClosedError, LoopThread
from storage.candles import CandleStore


@dataclass(frozen=True)
class RefreshState:
    """The outcome of a series' latest refresh, as /health shows it."""

    symbol: str
    timeframe: str
    refreshed_at: int | None  # wall clock of the last refresh that succeeded
    added: int  # candles the last successful refresh stored
    error: str | None  # the last refresh's failure; None once one succeeds again
    failed_at: int | None


class ExchangeFeed:
    """Candles from ``fetcher``'s exchange; its decisions carry mode ``live``."""

    mode: Mode = "live"

    def __init__(
        self,
        exchange_id: str,
        store: CandleStore,
        fetcher: CandleFetcher,
        series: tuple[Series, ...],
    ) -> None:
        for item in series:
            ensure_not_simulated(store, item)
        self.exchange_id = exchange_id
        self.series = series
        self._fetcher = fetcher
        self._loop = LoopThread(f"candles-{exchange_id}")
        # One refresh of a timeframe at a time (the scheduler, the API and the candle worker
        # may all ask); other timeframes do not wait for it.
        self._refreshing = {item.timeframe: threading.Lock() for item in series}
        self._refreshed_to: dict[str, int] = {}  # series -> the latest close it was brought to
        self._lock = threading.Lock()
        self._states = {
            _key(item): RefreshState(item.symbol, item.timeframe, None, 0, None, None)
            for item in series
        }

    def start_ms(self, wall_now_ms: int) -> int:
        return wall_now_ms

    def end_ms(self) -> None:
        return None

    def prepare(self, series: Series, as_of: int) -> None:
        if series not in self.series:
            raise FeedError(f"{_key(series)} is not a series of this feed")
        with self._refreshing[series.timeframe]:
            if self._fresh(series, as_of):
                return
            due = tuple(
                item
                for item in self.series
                if item.timeframe == series.timeframe and not self._fresh(item, as_of)
            )
            try:
                outcomes = self._loop.run(self._fetcher.refresh_all(due, as_of))
            except LoopClosedError as error:
                raise FeedError(f"{_key(series)}: {error}") from None
            for item, outcome in zip(due, outcomes, strict=True):
                self._record(item, as_of, outcome)

    def _fresh(self, series: Series, as_of: int) -> bool:
        """Brought up to ``as_of`` or later already: an earlier close asks nothing again."""
        return self._refreshed_to.get(_key(series), as_of - 1) >= as_of

    def _record(self, series: Series, as_of: int, outcome: RefreshReport | FeedError) -> None:
        key = _key(series)
        previous = self.states()[key]
        if isinstance(outcome, FeedError):
            state = RefreshState(
                series.symbol,
                series.timeframe,
                previous.refreshed_at,
                previous.added,
                str(outcome),
                now_ms(),
            )
        else:
            self._refreshed_to[key] = as_of
            state = RefreshState(
                series.symbol, series.timeframe, now_ms(), outcome.added, None, None
            )
        with self._lock:
            # A new dict, never one changed in place: /health copies it from another thread.
            self._states = {**self._states, key: state}

    def close(self) -> None:
        """Cancel a refresh under way (its caller gets FeedError), close the exchange client
        and stop its loop."""
        self._loop.close(self._fetcher.close())

    def states(self) -> dict[str, RefreshState]:
        return self._states


def _key(series: Series) -> str:
    return f"{series.symbol} {series.timeframe}"
