"""Helpers the decision tests share: real candles loaded into a database, decided on."""

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.candles import CandleWindow
from core.decision import Decision
from core.settings import Settings
from core.timeframes import parse_timestamp, timeframe_ms
from graph.engine import DecisionEngine
from ingestion.importer import import_candle_file
from storage.candles import CandleStore
from storage.engine import Database, open_database


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
