"""Helpers the paper-broker, panic and concurrency tests share."""

import csv
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from conftest import shared_csv

from core.timeframes import parse_timestamp
from core.trading import OrderRequest, Side
from ingestion.importer import import_candle_file
from storage.candles import CandleStore
from storage.engine import Database, open_database
from storage.models import ControlStateChangeRow, InstrumentRow, OrderRow, SafetyEventRow


@dataclass(frozen=True)
class CsvCandle:
    """A candle as the file says, read with the csv module alone (no project code)."""

    open_time: int
    open: float
    high: float
    low: float
    close: float
    volume: float


def import_real_candles(
    database: Database, folder: Path, name: str, symbol: str, timeframe: str, count: int
) -> list[CsvCandle]:
    """Import the first ``count`` candles of a real file from ../shared/data; return them."""
    lines = shared_csv(name).read_text().splitlines()[: count + 1]
    path = folder / f"first-{count}-{name}"
    path.write_text("\n".join(lines) + "\n")
    import_candle_file(CandleStore(database.session_factory), path, symbol, timeframe)
    with path.open(newline="") as handle:
        return [
            CsvCandle(
                open_time=parse_timestamp(row["timestamp"]),
                open=float(row["open"]),
                high=float(row["high"]),
                low=float(row["low"]),
                close=float(row["close"]),
                volume=float(row["volume"]),
            )
            for row in csv.DictReader(handle)
        ]


_client_ids = itertools.count()


def order(
    symbol: str = "BTC/USDT",
    side: Side = "buy",
    *,
    size: float = 0.1,
    reference_price: float,
    not_before: int,
    timeframe: str = "5m",
    reduce_only: bool = False,
    client_order_id: str | None = None,
) -> OrderRequest:
    return OrderRequest(
        client_order_id=client_order_id or f"test-{next(_client_ids)}",
        symbol=symbol,
        timeframe=timeframe,
        side=side,
        size_fraction=size,
        reference_price=reference_price,
        not_before=not_before,
        reduce_only=reduce_only,
    )


def set_instrument_rules(database: Database, symbol: str, **rules: float | None) -> None:
    """Exchange precision and minimums (amount_step, min_amount, min_notional) for a symbol."""
    with database.session_factory.begin() as session:
        session.execute(
            sa.update(InstrumentRow).where(InstrumentRow.symbol == symbol).values(**rules)
        )


def order_rows(database: Database) -> list[OrderRow]:
    with database.session_factory() as session:
        return list(session.scalars(sa.select(OrderRow).order_by(OrderRow.journal_seq)))


def control_rows(database: Database) -> list[ControlStateChangeRow]:
    with database.session_factory() as session:
        return list(
            session.scalars(
                sa.select(ControlStateChangeRow).order_by(ControlStateChangeRow.journal_seq)
            )
        )


def event_rows(database: Database) -> list[SafetyEventRow]:
    with database.session_factory() as session:
        return list(session.scalars(sa.select(SafetyEventRow).order_by(SafetyEventRow.id)))


def orders_placed_between(database: Database, after_seq: int, before_seq: int | None) -> int:
    """Orders other than reduce-only ones numbered after ``after_seq`` (and before
    ``before_seq``): under HALTED there must be none."""
    query = sa.select(sa.func.count()).where(
        OrderRow.journal_seq > after_seq, OrderRow.reduce_only.is_(False)
    )
    if before_seq is not None:
        query = query.where(OrderRow.journal_seq < before_seq)
    with database.session_factory() as session:
        return session.scalar(query) or 0


def place_orders_until_stopped(url: str, symbols: list[str], stop: Any, results: Any) -> None:
    """A worker process: submit tiny buys for ``symbols`` round and round until ``stop`` is
    set, then put its count of each outcome on ``results``. Module level, for spawn."""
    from core.settings import PaperSettings
    from execution.paper import PaperBroker

    database = open_database(url)
    broker = PaperBroker(database, PaperSettings())
    tally: dict[str, int] = {}
    try:
        for index in itertools.count():
            if stop.is_set():
                break
            symbol = symbols[index % len(symbols)]
            request = order(
                symbol,
                size=1e-6,
                reference_price=100.0,
                not_before=0,
                client_order_id=f"{symbol}-{index}",
            )
            outcome = broker.submit(request, now_ms=index)
            tally[outcome.status] = tally.get(outcome.status, 0) + 1
    finally:
        results.put(tally)
        database.dispose()
