"""Research observations as the research sources deliver them."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from core.hashing import canonical_json
from storage.engine import Database
from storage.models import ResearchObservationRow


@dataclass(frozen=True)
class NewObservation:
    """One value of a metric; ``symbol`` is an asset ("BTC") or None for the whole market."""

    source: str
    metric: str
    symbol: str | None
    value: float
    # What the value was read from, kept for the audit.
    payload: Mapping[str, Any]


class ResearchStore:
    def __init__(self, database: Database) -> None:
        self._database = database

    def add(self, observations: Sequence[NewObservation], fetched_at: int) -> None:
        """Store observations fetched at ``fetched_at``, in one transaction."""
        if not observations:
            return
        rows = [
            {
                "source": item.source,
                "metric": item.metric,
                "symbol": item.symbol,
                "value": item.value,
                "fetched_at": fetched_at,
                "payload": canonical_json(dict(item.payload)).decode(),
            }
            for item in observations
        ]
        with self._database.session_factory.begin() as session:
            session.execute(sa.insert(ResearchObservationRow), rows)
