"""The third candle feed: closed candles from a ccxt exchange, for the service's scheduler.

At each candle close the scheduler asks for the candles closed by then; the feed fetches
what is missing since the newest stored one — the whole lookback on the first call (the
backfill on start), every missing candle after a gap (a stopped service, a failed refresh).
A refresh that fails does not stop the decision: the error is recorded here (for /health)
and as an API error (for the gate's burst trigger), and the decision runs on what is stored,
so the gate's freshness check holds it with its reason — a gap in market data is never
filled with anything made up.
"""

import threading
from dataclasses import dataclass

from core.decision import Mode
from core.timeframes import now_ms
from ingestion.exchange_candles import CandleFetcher
from ingestion.feeds import FeedError, Series, ensure_not_simulated
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
        key = _key(series)
        previous = self.states()[key]
        try:
            report = self._fetcher.refresh(series.symbol, series.timeframe, as_of)
        except FeedError as error:
            state = RefreshState(
                series.symbol,
                series.timeframe,
                previous.refreshed_at,
                previous.added,
                str(error),
                now_ms(),
            )
        else:
            state = RefreshState(
                series.symbol, series.timeframe, now_ms(), report.added, None, None
            )
        with self._lock:
            # A new dict, never one changed in place: /health copies it from another thread.
            self._states = {**self._states, key: state}

    def states(self) -> dict[str, RefreshState]:
        return self._states


def _key(series: Series) -> str:
    return f"{series.symbol} {series.timeframe}"
