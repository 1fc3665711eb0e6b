"""Stored candles: the closed-candle window every decision reads, and idempotent inserts."""

from dataclasses import dataclass
from typing import Literal, overload

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from core.candles import CandleWindow
from core.settings import validate_symbol
from core.timeframes import format_timestamp, timeframe_ms
from storage.models import CandleRow, InstrumentRow

VALUE_COLUMNS = ("open", "high", "low", "close", "volume")

# Built once: the decision path runs it for every decision. Newest first so LIMIT keeps the
# newest candles; `window` turns the rows back to oldest first. The instrument id comes from
# a scalar subquery, so a store made for one decision needs no lookup first; unlike a join,
# it leaves PostgreSQL a plain backward scan of the key instead of a sort of the whole series.
_WINDOW_QUERY = (
    sa.select(
        CandleRow.open_time,
        CandleRow.open,
        CandleRow.high,
        CandleRow.low,
        CandleRow.close,
        CandleRow.volume,
        CandleRow.source,
    )
    .where(
        CandleRow.instrument_id
        == sa.select(InstrumentRow.id)
        .where(InstrumentRow.symbol == sa.bindparam("symbol"))
        .scalar_subquery(),
        CandleRow.timeframe == sa.bindparam("timeframe"),
        CandleRow.open_time <= sa.bindparam("last_open_time"),
    )
    .order_by(CandleRow.open_time.desc())
    .limit(sa.bindparam("limit"))
)


class CandleConflictError(ValueError):
    """A candle to insert differs from the one stored at the same open time; nothing was written."""

    def __init__(
        self, index: int, open_time: int, column: str, stored: float, incoming: float
    ) -> None:
        super().__init__(
            f"the candle at {format_timestamp(open_time)} is already stored with "
            f"{column} {stored!r}, not {incoming!r}"
        )
        self.index = index
        self.open_time = open_time
        self.column = column
        self.stored = stored
        self.incoming = incoming


@dataclass(frozen=True)
class InsertCounts:
    added: int
    already_present: int


@dataclass(frozen=True)
class CandleCoverage:
    """What is stored for one symbol and timeframe; ``missing_bars`` counts holes in between."""

    first_open_time: int
    last_open_time: int
    count: int
    missing_bars: int


class CandleStore:
    """Candles of every symbol and timeframe. Keeps symbol → instrument id in memory."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.session_factory = session_factory
        # Filled only once the transaction that read or added an id commits (see `_remember`).
        self._instrument_ids: dict[str, int] = {}

    @overload
    def instrument_id(self, symbol: str, *, create: Literal[True]) -> int: ...

    @overload
    def instrument_id(self, symbol: str, *, create: bool = False) -> int | None: ...

    def instrument_id(self, symbol: str, *, create: bool = False) -> int | None:
        """The database's id for ``symbol``; None when unknown, unless ``create`` adds it."""
        with self.session_factory.begin() as session:
            return self._find_or_add(session, symbol) if create else self._find(session, symbol)

    def window(self, symbol: str, timeframe: str, as_of_ms: int, limit: int) -> CandleWindow:
        """The newest ``limit`` candles closed by ``as_of_ms`` (open + timeframe ≤ as_of), oldest
        first. Unknown symbol or no candles: an empty window, for the gate to report."""
        step = timeframe_ms(timeframe)
        if limit < 1:
            raise ValueError(f"a candle window needs a limit of at least 1, not {limit}")
        with self.session_factory() as session:
            rows = (
                session.connection()
                .execute(
                    _WINDOW_QUERY,
                    {
                        "symbol": symbol,
                        "timeframe": timeframe,
                        "last_open_time": as_of_ms - step,
                        "limit": limit,
                    },
                )
                .all()
            )
        if not rows:
            return _empty_window(symbol, timeframe, step)
        open_time, open_, high, low, close, volume, sources = zip(*reversed(rows), strict=True)
        return CandleWindow(
            symbol=symbol,
            timeframe=timeframe,
            timeframe_ms=step,
            open_time=np.array(open_time, dtype=np.int64),
            open=np.array(open_, dtype=np.float64),
            high=np.array(high, dtype=np.float64),
            low=np.array(low, dtype=np.float64),
            close=np.array(close, dtype=np.float64),
            volume=np.array(volume, dtype=np.float64),
            sources=tuple(sorted(set(sources))),
        )

    def insert_candles(self, candles: CandleWindow) -> InsertCounts:
        """`add_candles` in a transaction of its own."""
        with self.session_factory.begin() as session:
            return self.add_candles(session, candles)

    def add_candles(self, session: Session, candles: CandleWindow) -> InsertCounts:
        """Add ``candles`` within the caller's transaction, labelled with their single source.

        A candle already stored with the same values is skipped and counted; one stored with
        different values raises CandleConflictError before anything is written, so the caller's
        rollback leaves the database as it was.
        """
        if len(candles.sources) != 1:
            raise ValueError(f"candles to store need exactly one source, not {candles.sources}")
        times = candles.open_time
        if np.any(times % candles.timeframe_ms) or np.any(np.diff(times) <= 0):
            raise ValueError("candles to store must be on timeframe boundaries and oldest first")
        if len(candles) == 0:
            return InsertCounts(added=0, already_present=0)
        instrument = self._find_or_add(session, candles.symbol)
        stored = _stored_values(session, instrument, candles)
        columns = [getattr(candles, name).tolist() for name in VALUE_COLUMNS]
        new_rows = []
        for index, open_time in enumerate(times.tolist()):
            values = [column[index] for column in columns]
            existing = stored.get(open_time)
            if existing is None:
                new_rows.append(
                    dict(zip(VALUE_COLUMNS, values, strict=True))
                    | {
                        "instrument_id": instrument,
                        "timeframe": candles.timeframe,
                        "open_time": open_time,
                        "source": candles.sources[0],
                    }
                )
                continue
            for name, was, new in zip(VALUE_COLUMNS, existing, values, strict=True):
                if was != new:
                    raise CandleConflictError(index, open_time, name, was, new)
        if new_rows:
            session.execute(sa.insert(CandleRow), new_rows)
        return InsertCounts(added=len(new_rows), already_present=len(candles) - len(new_rows))

    def latest_open_time(self, symbol: str, timeframe: str) -> int | None:
        """Open time of the newest stored candle (closed or not), None when there is none."""
        instrument = self.instrument_id(symbol)
        if instrument is None:
            return None
        with self.session_factory() as session:
            return session.scalar(
                sa.select(sa.func.max(CandleRow.open_time)).where(
                    CandleRow.instrument_id == instrument, CandleRow.timeframe == timeframe
                )
            )

    def sources(self, symbol: str, timeframe: str) -> set[str]:
        """Where the stored candles of a series came from ("sim", "import", …)."""
        instrument = self.instrument_id(symbol)
        if instrument is None:
            return set()
        with self.session_factory() as session:
            return set(
                session.scalars(
                    sa.select(CandleRow.source)
                    .where(CandleRow.instrument_id == instrument, CandleRow.timeframe == timeframe)
                    .distinct()
                )
            )

    def coverage(self, symbol: str, timeframe: str) -> CandleCoverage | None:
        """First and last candle, how many, how many missing between; None when there is none."""
        step = timeframe_ms(timeframe)
        instrument = self.instrument_id(symbol)
        if instrument is None:
            return None
        with self.session_factory() as session:
            first, last, count = session.execute(
                sa.select(
                    sa.func.min(CandleRow.open_time),
                    sa.func.max(CandleRow.open_time),
                    sa.func.count(),
                ).where(CandleRow.instrument_id == instrument, CandleRow.timeframe == timeframe)
            ).one()
        if not count:
            return None
        return CandleCoverage(
            first_open_time=first,
            last_open_time=last,
            count=count,
            missing_bars=(last - first) // step + 1 - count,
        )

    def _find(self, session: Session, symbol: str) -> int | None:
        cached = self._instrument_ids.get(symbol)
        if cached is not None:
            return cached
        found = session.scalar(sa.select(InstrumentRow.id).where(InstrumentRow.symbol == symbol))
        if found is not None:
            self._remember(session, symbol, found)
        return found

    def _find_or_add(self, session: Session, symbol: str) -> int:
        found = self._find(session, symbol)
        if found is not None:
            return found
        instrument = InstrumentRow(symbol=validate_symbol(symbol))
        session.add(instrument)
        session.flush()
        self._remember(session, symbol, instrument.id)
        return instrument.id

    def _remember(self, session: Session, symbol: str, instrument_id: int) -> None:
        # Not before the commit: the transaction may still roll back, taking an instrument it
        # added with it.
        def cache(_session: Session) -> None:
            self._instrument_ids[symbol] = instrument_id

        sa.event.listen(session, "after_commit", cache, once=True)


def _stored_values(
    session: Session, instrument: int, candles: CandleWindow
) -> dict[int, tuple[float, ...]]:
    """open time → stored values, for every stored candle in the time span of ``candles``."""
    rows = session.execute(
        sa.select(CandleRow.open_time, *(getattr(CandleRow, name) for name in VALUE_COLUMNS)).where(
            CandleRow.instrument_id == instrument,
            CandleRow.timeframe == candles.timeframe,
            CandleRow.open_time.between(int(candles.open_time[0]), int(candles.open_time[-1])),
        )
    )
    return {row[0]: tuple(row[1:]) for row in rows}


def _empty_window(symbol: str, timeframe: str, step: int) -> CandleWindow:
    no_values = np.empty(0, dtype=np.float64)
    return CandleWindow(
        symbol=symbol,
        timeframe=timeframe,
        timeframe_ms=step,
        open_time=np.empty(0, dtype=np.int64),
        open=no_values,
        high=no_values,
        low=no_values,
        close=no_values,
        volume=no_values,
        sources=(),
    )
