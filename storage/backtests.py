"""Backtest runs with their decided bars and fills, stored under the run's id (migration 0007;
0009 added the data file's sha256 and each bar's exit signal, None in rows stored before).

A run is written once, in one transaction, when it has finished: a run cut short leaves
nothing half-stored. Plain INSERTs: a run of 10,000 bars writes 10,000 rows.
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa

from core.trading import FillView
from storage.engine import Database
from storage.models import BacktestDecisionRow, BacktestFillRow, BacktestRunRow


@dataclass(frozen=True)
class BacktestRunSummary:
    id: str
    created_at: int
    symbol: str
    timeframe: str
    data_file: str
    data_sha256: str | None  # of the file's bytes; None for a run stored before 0009
    first_as_of: int
    last_as_of: int
    bars: int
    triggers_enabled: bool
    engine_version: str
    config_hash: str
    seconds: float
    bars_per_second: float
    metrics: dict[str, Any]


# The columns of a decided bar, as backtest.run.BarRecord names them.
DECISION_COLUMNS = tuple(
    column.name for column in BacktestDecisionRow.__table__.columns if column.name != "run_id"
)


class BacktestStore:
    def __init__(self, database: Database) -> None:
        self._session_factory = database.session_factory

    def save(
        self,
        run: BacktestRunSummary,
        decisions: Sequence[Mapping[str, Any]],
        fills: Sequence[FillView],
    ) -> None:
        """Write the run, its decided bars (DECISION_COLUMNS each) and fills, all or nothing."""
        run_values = {**asdict(run), "metrics": json.dumps(run.metrics, sort_keys=True)}
        bars = [
            {
                **{name: bar[name] for name in DECISION_COLUMNS},
                "run_id": run.id,
                "failed_checks": json.dumps(list(bar["failed_checks"])),
                "trips": json.dumps(list(bar["trips"])),
            }
            for bar in decisions
        ]
        fill_rows = [
            {
                "run_id": run.id,
                "seq": seq,
                **{key: value for key, value in asdict(fill).items() if key != "symbol"},
            }
            for seq, fill in enumerate(fills, start=1)
        ]
        with self._session_factory.begin() as session:
            connection = session.connection()
            connection.execute(sa.insert(BacktestRunRow), [run_values])
            if bars:
                connection.execute(sa.insert(BacktestDecisionRow), bars)
            if fill_rows:
                connection.execute(sa.insert(BacktestFillRow), fill_rows)

    def runs(self, limit: int = 20) -> list[BacktestRunSummary]:
        """The newest runs first."""
        query = sa.select(BacktestRunRow).order_by(BacktestRunRow.created_at.desc()).limit(limit)
        with self._session_factory() as session:
            return [_summary(row) for row in session.scalars(query)]

    def get(self, run_id: str) -> BacktestRunSummary | None:
        with self._session_factory() as session:
            row = session.get(BacktestRunRow, run_id)
            return None if row is None else _summary(row)

    def decisions(self, run_id: str) -> list[dict[str, Any]]:
        """The run's decided bars, oldest first, with their check and trip names as lists."""
        query = (
            sa.select(BacktestDecisionRow)
            .where(BacktestDecisionRow.run_id == run_id)
            .order_by(BacktestDecisionRow.as_of)
        )
        with self._session_factory() as session:
            return [
                {
                    **{name: getattr(row, name) for name in DECISION_COLUMNS},
                    "failed_checks": json.loads(row.failed_checks),
                    "trips": json.loads(row.trips),
                }
                for row in session.scalars(query)
            ]

    def fill_count(self, run_id: str) -> int:
        query = sa.select(sa.func.count()).where(BacktestFillRow.run_id == run_id)
        with self._session_factory() as session:
            return int(session.scalar(query) or 0)


def _summary(row: BacktestRunRow) -> BacktestRunSummary:
    return BacktestRunSummary(
        id=row.id,
        created_at=row.created_at,
        symbol=row.symbol,
        timeframe=row.timeframe,
        data_file=row.data_file,
        data_sha256=row.data_sha256,
        first_as_of=row.first_as_of,
        last_as_of=row.last_as_of,
        bars=row.bars,
        triggers_enabled=row.triggers_enabled,
        engine_version=row.engine_version,
        config_hash=row.config_hash,
        seconds=row.seconds,
        bars_per_second=row.bars_per_second,
        metrics=json.loads(row.metrics),
    )
