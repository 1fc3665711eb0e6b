"""Safety events: each gate trigger and safety action, recorded as it happens."""

import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session, sessionmaker

from core.hashing import canonical_json
from storage.models import SafetyEventRow


class SafetyEvent(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    at: int
    kind: str
    symbol: str | None
    decision_id: str | None
    detail: dict[str, Any]


@dataclass(frozen=True)
class SafetyEventDraft:
    """An event to store, possibly together with the decision that raised it."""

    kind: str
    symbol: str | None
    detail: dict[str, Any]
    at_ms: int


def event_values(event: SafetyEventDraft, decision_id: str | None = None) -> dict[str, Any]:
    """The row's column values; ``detail`` must be JSON without NaN or infinity."""
    return {
        "at": event.at_ms,
        "kind": event.kind,
        "symbol": event.symbol,
        "decision_id": decision_id,
        "detail": canonical_json(event.detail).decode(),
    }


def event_row(event: SafetyEventDraft, decision_id: str | None = None) -> SafetyEventRow:
    return SafetyEventRow(**event_values(event, decision_id))


class SafetyEventStore:
    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.session_factory = session_factory

    def record(
        self,
        kind: str,
        symbol: str | None,
        detail: dict[str, Any],
        at_ms: int,
        decision_id: str | None = None,
    ) -> int:
        """Store one event; returns its id."""
        row = event_row(SafetyEventDraft(kind, symbol, detail, at_ms), decision_id)
        with self.session_factory.begin() as session:
            session.add(row)
        return row.id

    def after(self, event_id: int, limit: int = 100) -> list[SafetyEvent]:
        """Events stored after ``event_id``, oldest first: what a follower has not seen yet."""
        query = (
            sa.select(SafetyEventRow)
            .where(SafetyEventRow.id > event_id)
            .order_by(SafetyEventRow.id)
            .limit(limit)
        )
        return self._events(query)

    def newest_id(self) -> int:
        with self.session_factory() as session:
            return session.scalar(sa.select(sa.func.max(SafetyEventRow.id))) or 0

    def _events(self, query: sa.Select[SafetyEventRow]) -> list[SafetyEvent]:
        with self.session_factory() as session:
            rows = session.scalars(query).all()
        return [
            SafetyEvent(
                id=row.id,
                at=row.at,
                kind=row.kind,
                symbol=row.symbol,
                decision_id=row.decision_id,
                detail=json.loads(row.detail),
            )
            for row in rows
        ]

    # Last in the class: below it, `list` in an annotation would name this method.
    def list(
        self,
        limit: int = 50,
        before_id: int | None = None,
        kind: str | None = None,
        symbol: str | None = None,
    ) -> list[SafetyEvent]:
        """The newest events first; pass the last one's id as ``before_id`` for the next page."""
        query = sa.select(SafetyEventRow).order_by(SafetyEventRow.id.desc()).limit(limit)
        if before_id is not None:
            query = query.where(SafetyEventRow.id < before_id)
        if kind is not None:
            query = query.where(SafetyEventRow.kind == kind)
        if symbol is not None:
            query = query.where(SafetyEventRow.symbol == symbol)
        return self._events(query)
