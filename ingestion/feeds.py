"""Candle feeds for the service's scheduler: make the candle closing at as_of available.

The simulated market generates it; a replay has it stored already. The exchange feed (ccxt)
joins them behind the same two methods.
"""

from dataclasses import dataclass
from typing import Protocol

from core.decision import Mode
from core.timeframes import format_timestamp, timeframe_ms
from ingestion.sim_feed import RealDataPresentError, extend_simulation
from storage.candles import CandleStore

# Simulated history made on top of the lookback, so the first decision has a full window.
SIM_HISTORY_MARGIN_BARS = 50


class FeedError(Exception):
    """The feed cannot provide the candle: the decision is not run, and health says why."""


@dataclass(frozen=True)
class Series:
    symbol: str
    timeframe: str


class CandleFeed(Protocol):
    mode: Mode
    series: tuple[Series, ...]

    def start_ms(self, wall_now_ms: int) -> int:
        """Where the market clock starts."""
        ...

    def end_ms(self) -> int | None:
        """The last instant the feed has data for (None: it goes on)."""
        ...

    def prepare(self, series: Series, as_of: int) -> None:
        """Make the candles closed by ``as_of`` available, or raise FeedError."""
        ...

    def close(self) -> None:
        """Release what the feed holds open (an exchange client); called once, at the end."""
        ...


class SimulatedFeed:
    """The seeded simulated market, extended candle by candle as its clock advances."""

    mode: Mode = "sim"

    def __init__(
        self, store: CandleStore, series: tuple[Series, ...], lookback_bars: int, seed: int
    ) -> None:
        self.series = series
        self._store = store
        self._bars = lookback_bars + SIM_HISTORY_MARGIN_BARS
        self._seed = seed

    def start_ms(self, wall_now_ms: int) -> int:
        """Now, or where an earlier, faster run left the simulated series, if later: the
        simulated market never runs backwards."""
        latest = [
            opened + timeframe_ms(item.timeframe)
            for item in self.series
            if (opened := self._store.latest_open_time(item.symbol, item.timeframe)) is not None
        ]
        return max([wall_now_ms, *latest])

    def end_ms(self) -> None:
        return None

    def prepare(self, series: Series, as_of: int) -> None:
        try:
            extend_simulation(
                self._store, series.symbol, series.timeframe, as_of, self._bars, self._seed
            )
        except RealDataPresentError as error:
            raise FeedError(str(error)) from None

    def close(self) -> None:
        """Nothing to release: the simulation runs in the process."""


def ensure_not_simulated(store: CandleStore, series: Series) -> None:
    """Refuse a series that holds simulated candles, before real ones go into it: deciding
    on fact and fiction mixed would be neither."""
    if "sim" in store.sources(series.symbol, series.timeframe):
        raise FeedError(
            f"{series.symbol} {series.timeframe} holds simulated candles: use another "
            "SIGMAX_HOME (or another symbol) for real data"
        )


class ReplayFeed:
    """Imported candles, replayed over the file's own span (first and last open time) from
    the first instant with a full lookback (see ``ensure_not_simulated``)."""

    mode: Mode = "replay"

    def __init__(
        self, series: Series, first_open_time: int, last_open_time: int, lookback_bars: int
    ) -> None:
        step = timeframe_ms(series.timeframe)
        self.series: tuple[Series, ...] = (series,)
        self._first_close = first_open_time + step
        self._last_close = last_open_time + step
        self._lookback_ms = lookback_bars * step

    def start_ms(self, wall_now_ms: int) -> int:  # noqa: ARG002 - a replay has its own time
        return min(self._first_close + self._lookback_ms, self._last_close)

    def end_ms(self) -> int:
        return self._last_close

    def prepare(self, series: Series, as_of: int) -> None:
        if as_of > self._last_close:
            raise FeedError(
                f"the replay of {series.symbol} {series.timeframe} ended at "
                f"{format_timestamp(self._last_close)}"
            )

    def close(self) -> None:
        """Nothing to release: the replay reads the database."""
