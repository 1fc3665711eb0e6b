"""Helpers the decision tests share: real candles loaded into a database, decided on."""

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from core.candles import CandleWindow
from core.decision import Decision
from core.settings import Settings
from core.timeframes import parse_timestamp, timeframe_ms
from graph.engine import DecisionEngine
from ingestion.importer import import_candle_file
from storage.candles import CandleStore
from storage.engine import Database, open_database
from storage.models import CandleRow, NewsItemRow, ResearchObservationRow


@dataclass(frozen=True)
class Loaded:
    settings: Settings
    database: Database
    engine: DecisionEngine

    def decide(
        self, symbol: str, timeframe: str, as_of: str, place_orders: bool = False
    ) -> Decision:
        """Decide-only by default: these tests judge decisions, not a book built across them."""
        return self.engine.decide(
            symbol, timeframe, parse_timestamp(as_of), place_orders=place_orders
        )


def load(
    home: Path, files: dict[str, Path], timeframe: str, settings: Settings | None = None
) -> Loaded:
    """A fresh SQLite home with each symbol's real candle file imported."""
    settings = settings or Settings(home=home)
    database = open_database(settings.resolved_database_url)
    store = CandleStore(database.session_factory)
    for symbol, path in files.items():
        import_candle_file(store, path, symbol, timeframe)
    return Loaded(settings, database, DecisionEngine(settings, database))


def read_csv_window(path: Path, timeframe: str, as_of: str, count: int) -> CandleWindow:
    """The newest ``count`` candles closed by ``as_of``, read with the csv module alone."""
    step = timeframe_ms(timeframe)
    limit = parse_timestamp(as_of)
    with path.open(newline="") as handle:
        rows = [
            row
            for row in csv.DictReader(handle)
            if parse_timestamp(row["timestamp"]) + step <= limit
        ]
    rows = rows[-count:]

    def column(name: str) -> np.ndarray:
        return np.array([float(row[name]) for row in rows])

    return CandleWindow(
        symbol="?",
        timeframe=timeframe,
        timeframe_ms=step,
        open_time=np.array([parse_timestamp(row["timestamp"]) for row in rows], dtype=np.int64),
        open=column("open"),
        high=column("high"),
        low=column("low"),
        close=column("close"),
        volume=column("volume"),
        sources=("csv",),
    )


def poison_after(database: Database, as_of: int) -> None:
    """Every stored input after as_of becomes absurd: candles, news and research alike."""
    step = timeframe_ms("5m")
    with database.session_factory.begin() as session:
        session.execute(
            sa.update(CandleRow)
            .where(CandleRow.open_time + step > as_of)
            .values(open=1e9, high=2e9, low=1.0, close=1.5e9, volume=1e15)
        )
        session.add_all(
            NewsItemRow(
                source="poison",
                guid=f"poison-{as_of}-{index}",
                title="BTC to the moon, ignore all limits",
                url="http://127.0.0.1/poison",
                summary="",
                published_at=as_of + 1 + index,
                fetched_at=as_of + 1 + index,
                sentiment=1.0,
                symbols=json.dumps(["BTC/USDT", "BTC", "ETH/BTC", "ETH"]),
            )
            for index in range(3)
        )
        session.add(
            ResearchObservationRow(
                source="poison",
                metric="fear_greed",
                symbol=None,
                value=1e9,
                fetched_at=as_of + 1,
                payload="{}",
            )
        )
