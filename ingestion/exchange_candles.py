"""Closed candles from an exchange through ccxt: refresh up to now, backfill where missing.

Only candles that have closed by ``now`` are kept (the one still forming is dropped), each
aligned to the timeframe, sorted and deduplicated by open time; their values are checked
like an imported file's. Transient failures — ccxt's NetworkError family: timeouts,
unavailability, 429 rate limits and DDoS protection — are retried with exponential back-off,
waiting what a Retry-After header asks when there is one; any other ExchangeError is not
retried. Every failure is recorded as an API error (bursts of them pause trading, through
the gate's trigger), and a refresh that gives up says why (FeedError): nothing made up.

The fetcher runs on ccxt's async client, so the series closing together are fetched side
by side under one rate limiter that counts each request's weight over the exchange's own
window (ccxt's rolling-window limiter) instead of spacing every request evenly.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import ccxt
import ccxt.async_support as ccxt_async
import numpy as np

from core.candles import CandleWindow
from core.timeframes import floor_to, format_timestamp, timeframe_ms
from core.urls import rebased_urls
from ingestion.candle_file import CandleValueError, check_candle_values
from ingestion.feeds import FeedError, Series
from storage.api_errors import ApiErrorStore
from storage.candles import VALUE_COLUMNS, CandleConflictError, CandleStore

PAGE = 1000
MAX_RETRIES = 4
BACKOFF_SECONDS = 0.5
MAX_WAIT_SECONDS = 60.0
# Refusals that may carry a Retry-After: rate limited, IP banned for a while, unavailable.
REFUSED_STATUSES = frozenset({418, 429, 503})


@dataclass(frozen=True)
class RefreshReport:
    symbol: str
    timeframe: str
    received: int  # candles the exchange sent
    added: int  # new rows stored
    already_present: int
    dropped: tuple[str, ...]  # what was not kept, and why
    retries: int


class CandleFetcher:
    def __init__(
        self,
        exchange: Any,
        store: CandleStore,
        api_errors: ApiErrorStore,
        backfill_bars: int,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._exchange = exchange
        self._store = store
        self._api_errors = api_errors
        self._backfill_bars = backfill_bars
        self._sleep = sleep
        self._source = f"exchange:{exchange.id}"
        # No request before this instant (time.monotonic()): a refusal pauses every series,
        # since the exchange limits the client, not one symbol.
        self._resume_at = 0.0

    async def close(self) -> None:
        """Close the client's HTTP session (on the loop it ran on)."""
        await self._exchange.close()

    async def refresh_all(
        self, series: Sequence[Series], now_ms: int
    ) -> list[RefreshReport | FeedError]:
        """Refresh every series side by side; each one's report, or why it failed."""

        async def one(item: Series) -> RefreshReport | FeedError:
            try:
                return await self.refresh(item.symbol, item.timeframe, now_ms)
            except FeedError as error:
                return error
            except Exception as error:  # the others go on; this one says what stopped it
                return FeedError(f"{item.symbol}: {type(error).__name__}: {_short(error)}")

        return list(await asyncio.gather(*(one(item) for item in series)))

    async def refresh(self, symbol: str, timeframe: str, now_ms: int) -> RefreshReport:
        """Store every closed candle after the newest stored one (or the last
        ``backfill_bars`` when none is), up to ``now_ms``."""
        step = timeframe_ms(timeframe)
        newest_closed_open = floor_to(now_ms, step) - step
        # The database calls run off the loop: a wait for SQLite's write lock must not hold
        # up the requests in flight for the other series.
        latest = await asyncio.to_thread(self._store.latest_open_time, symbol, timeframe)
        since = (
            latest + step
            if latest is not None
            else newest_closed_open - (self._backfill_bars - 1) * step
        )
        received = added = present = retries = 0
        dropped: list[str] = []
        while since <= newest_closed_open:
            rows, tries = await self._call(symbol, now_ms, symbol, timeframe, since, PAGE)
            retries += tries
            received += len(rows)
            window, page_dropped = self._closed(symbol, timeframe, rows, since, now_ms)
            dropped += page_dropped
            if len(window):
                try:
                    counts = await asyncio.to_thread(self._store.insert_candles, window)
                except CandleConflictError as error:
                    raise FeedError(f"{symbol}: the exchange rewrote history: {error}") from None
                added += counts.added
                present += counts.already_present
            if len(rows) < PAGE or not len(window):
                break
            since = int(window.open_time[-1]) + step
        return RefreshReport(symbol, timeframe, received, added, present, tuple(dropped), retries)

    async def _call(self, symbol: str, now_ms: int, *args: Any) -> tuple[list[list[Any]], int]:
        """fetch_ohlcv with retries; the rows and how many retries it took."""
        for attempt in range(MAX_RETRIES + 1):
            pause = self._resume_at - time.monotonic()
            if pause > 0:
                await self._sleep(pause)
            try:
                return await self._exchange.fetch_ohlcv(*args), attempt
            except ccxt.NetworkError as error:  # timeouts, 5xx, 429, DDoS protection
                await self._record(error, now_ms)
                if attempt == MAX_RETRIES:
                    raise FeedError(
                        f"{symbol}: gave up after {attempt + 1} tries: "
                        f"{type(error).__name__}: {_short(error)}"
                    ) from None
                self._resume_at = max(self._resume_at, time.monotonic() + self._wait(attempt))
            except ccxt.ExchangeError as error:  # refused as asked: retrying will not help
                await self._record(error, now_ms)
                raise FeedError(f"{symbol}: {type(error).__name__}: {_short(error)}") from None
        raise AssertionError("unreachable")

    def _wait(self, attempt: int) -> float:
        """What the exchange's Retry-After asked for, else exponential back-off."""
        asked: float | None = self._exchange.retry_after_seconds
        self._exchange.retry_after_seconds = None
        if asked is not None:
            return min(asked, MAX_WAIT_SECONDS)
        return min(BACKOFF_SECONDS * 2.0**attempt, MAX_WAIT_SECONDS)

    async def _record(self, error: Exception, now_ms: int) -> None:
        await asyncio.to_thread(
            self._api_errors.record, self._source, type(error).__name__, _short(error), now_ms
        )

    def _closed(
        self, symbol: str, timeframe: str, rows: list[list[Any]], since: int, now_ms: int
    ) -> tuple[CandleWindow, list[str]]:
        step = timeframe_ms(timeframe)
        kept: dict[int, tuple[float, float, float, float, float]] = {}
        dropped: list[str] = []
        for row in rows:
            if row[0] is None:
                dropped.append("a kline without an open time")
                continue
            opened = int(row[0])
            when = format_timestamp(opened)
            if opened + step > now_ms:
                dropped.append(f"{when}: still forming")
            elif opened % step or opened < since:
                dropped.append(f"{when}: misaligned or before {format_timestamp(since)}")
            elif opened in kept:
                dropped.append(f"{when}: sent twice")
            else:
                try:
                    checked = check_candle_values(dict(zip(VALUE_COLUMNS, row[1:6], strict=True)))
                except CandleValueError as error:
                    dropped.append(f"{when}: {error.message}")
                    continue
                kept[opened] = (
                    checked["open"],
                    checked["high"],
                    checked["low"],
                    checked["close"],
                    checked["volume"],
                )
        times = sorted(kept)
        values = np.array([kept[opened] for opened in times], dtype=np.float64).reshape(-1, 5)
        window = CandleWindow(
            symbol=symbol,
            timeframe=timeframe,
            timeframe_ms=step,
            open_time=np.array(times, dtype=np.int64),
            open=values[:, 0],
            high=values[:, 1],
            low=values[:, 2],
            close=values[:, 3],
            volume=values[:, 4],
            sources=(self._source,),
        )
        return window, dropped


def _short(error: Exception) -> str:
    return str(error)[:300]


def public_client(
    exchange_id: str, timeout_seconds: float, rest_base: str | None = None, sandbox: bool = False
) -> Any:
    """A ccxt client for public market data (markets, order books, tickers), its own rate
    limiter on."""
    return _configured(ccxt, exchange_id, timeout_seconds, rest_base, sandbox, {})


def candle_client(
    exchange_id: str, timeout_seconds: float, rest_base: str | None = None, sandbox: bool = False
) -> Any:
    """An async ccxt client for candles. Its limiter counts request weight over the
    exchange's window, so the series closing together go out at once, within the limit;
    it keeps the Retry-After of the latest refusal in ``retry_after_seconds``."""
    return _configured(
        ccxt_async,
        exchange_id,
        timeout_seconds,
        rest_base,
        sandbox,
        {"rateLimiterAlgorithm": "rollingWindow"},
        hear_retry_after=True,
    )


def _configured(
    module: Any,
    exchange_id: str,
    timeout_seconds: float,
    rest_base: str | None,
    sandbox: bool,
    extra: dict[str, Any],
    hear_retry_after: bool = False,
) -> Any:
    """``rest_base`` points every REST URL elsewhere (a proxy, a mirror, a test server);
    ``sandbox`` switches to the exchange's testnet (ccxt's sandbox mode)."""
    exchange_class = getattr(module, exchange_id, None)
    if exchange_class is None:
        raise FeedError(f"ccxt knows no exchange {exchange_id!r}")
    if hear_retry_after:
        exchange_class = _hearing_retry_after(exchange_class)
    exchange = exchange_class(
        {
            "enableRateLimit": True,
            "timeout": int(timeout_seconds * 1000),
            # Spot only: the futures and options markets are other hosts and other requests.
            "options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False},
            **extra,
        }
    )
    if sandbox:
        try:
            exchange.set_sandbox_mode(True)
        except ccxt.NotSupported:
            raise FeedError(f"{exchange_id} has no testnet in ccxt (sandbox mode)") from None
    if rest_base is not None:
        exchange.urls["api"] = rebased_urls(exchange.urls["api"], rest_base)
    return exchange


def _hearing_retry_after(exchange_class: Any) -> Any:
    """``exchange_class`` keeping the Retry-After of each refused response, read from that
    response as it arrives: ccxt's ``last_response_headers`` is set after an await, so with
    requests side by side it may already hold another response's headers."""

    def on_rest_response(
        self: Any,
        code: int,
        reason: str,
        url: str,
        method: str,
        headers: dict[str, str],
        body: str,
        *request: Any,
    ) -> Any:
        if code in REFUSED_STATUSES:
            asked = {str(name).lower(): value for name, value in headers.items()}.get("retry-after")
            self.retry_after_seconds = _seconds(asked)
        return exchange_class.on_rest_response(
            self, code, reason, url, method, headers, body, *request
        )

    return type(
        exchange_class.__name__,
        (exchange_class,),
        {"on_rest_response": on_rest_response, "retry_after_seconds": None},
    )


def _seconds(value: str | None) -> float | None:
    try:
        return None if value is None else max(0.0, float(value))
    except ValueError:  # an HTTP date: not worth parsing, the back-off applies
        return None
