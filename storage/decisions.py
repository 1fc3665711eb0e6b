"""Decisions: each stored once with its debate turns, read back whole or listed newest first."""

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session, sessionmaker

from core.decision import Action, DebateTurn, Decision, Mode, Verdict
from core.hashing import canonical_json
from core.timeframes import parse_timestamp
from storage.models import DebateTurnRow, DecisionRow, SafetyEventRow
from storage.safety_events import SafetyEventDraft, event_values


class DecisionSummary(BaseModel):
    """One line of a decision list; ``seq`` is the cursor for the next page."""

    model_config = ConfigDict(frozen=True)

    id: str
    seq: int
    symbol: str
    timeframe: str
    as_of: int
    action: Action
    size: float
    confidence: float
    verdict: Verdict
    mode: Mode


_SUMMARY_COLUMNS = tuple(getattr(DecisionRow, name) for name in DecisionSummary.model_fields)


class DecisionStore:
    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.session_factory = session_factory

    def save(self, decision: Decision, events: Sequence[SafetyEventDraft] = ()) -> None:
        """Write the decision, its debate turns and the safety events it raised in one
        transaction: all or nothing. Plain INSERTs: the ORM's unit of work cost four times as
        much here, on the path of every decision."""
        turns = [_turn_values(decision.id, turn) for turn in decision.debate]
        rows = [event_values(event, decision.id) for event in events]
        with self.session_factory.begin() as session:
            connection = session.connection()
            connection.execute(_insert_decision(connection), _decision_values(decision))
            if turns:
                connection.execute(_INSERT_TURN, turns)
            if rows:
                connection.execute(_INSERT_EVENT, rows)

    def get(self, decision_id: str) -> Decision | None:
        with self.session_factory() as session:
            record = session.scalar(
                sa.select(DecisionRow.record).where(DecisionRow.id == decision_id)
            )
        return None if record is None else Decision.model_validate_json(record)

    def previous_as_of(self, symbol: str, timeframe: str, before_ms: int) -> int | None:
        """When the symbol was last decided before ``before_ms`` (None: never)."""
        query = sa.select(sa.func.max(DecisionRow.as_of)).where(
            DecisionRow.symbol == symbol,
            DecisionRow.timeframe == timeframe,
            DecisionRow.as_of < before_ms,
        )
        with self.session_factory() as session:
            return session.scalar(query)

    def records(
        self,
        filters: "DecisionFilters | None" = None,
        limit: int = 20,
        before_seq: int | None = None,
    ) -> list[tuple[int, Decision]]:
        """Whole records with their ``seq``, newest first, paged like ``list``."""
        query = (
            sa.select(DecisionRow.seq, DecisionRow.record)
            .order_by(DecisionRow.seq.desc())
            .limit(limit)
        )
        query = query.where(*_conditions(filters or DecisionFilters(), before_seq))
        with self.session_factory() as session:
            rows = session.execute(query).all()
        return [(seq, Decision.model_validate_json(record)) for seq, record in rows]

    def after(self, seq: int, limit: int = 100) -> list[DecisionSummary]:
        """Decisions stored after ``seq``, oldest first: what a follower has not seen yet."""
        query = (
            sa.select(*_SUMMARY_COLUMNS)
            .where(DecisionRow.seq > seq)
            .order_by(DecisionRow.seq)
            .limit(limit)
        )
        with self.session_factory() as session:
            rows = session.execute(query).all()
        return [DecisionSummary.model_validate(row._asdict()) for row in rows]

    def newest_seq(self) -> int:
        """The highest ``seq`` stored; 0 when there is none."""
        with self.session_factory() as session:
            return session.scalar(sa.select(sa.func.max(DecisionRow.seq))) or 0

    def counts(self) -> list[tuple[str, str, int]]:
        """(action, verdict, how many) over every stored decision."""
        query = sa.select(DecisionRow.action, DecisionRow.verdict, sa.func.count()).group_by(
            DecisionRow.action, DecisionRow.verdict
        )
        with self.session_factory() as session:
            return [(action, verdict, count) for action, verdict, count in session.execute(query)]

    # Last in the class: below it, `list` in an annotation would name this method.
    def list(
        self,
        filters: "DecisionFilters | None" = None,
        limit: int = 50,
        before_seq: int | None = None,
    ) -> list[DecisionSummary]:
        """Newest first; pass the last summary's ``seq`` as ``before_seq`` for the next page."""
        query = sa.select(*_SUMMARY_COLUMNS).order_by(DecisionRow.seq.desc()).limit(limit)
        query = query.where(*_conditions(filters or DecisionFilters(), before_seq))
        with self.session_factory() as session:
            rows = session.execute(query).all()
        return [DecisionSummary.model_validate(row._asdict()) for row in rows]


@dataclass(frozen=True)
class DecisionFilters:
    """What a decision list may be narrowed by; ``since``/``until`` bound as_of (epoch ms,
    inclusive)."""

    symbol: str | None = None
    action: Action | None = None
    verdict: Verdict | None = None
    since: int | None = None
    until: int | None = None


def _conditions(filters: DecisionFilters, before_seq: int | None) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = []
    if filters.symbol is not None:
        conditions.append(DecisionRow.symbol == filters.symbol)
    if filters.action is not None:
        conditions.append(DecisionRow.action == filters.action)
    if filters.verdict is not None:
        conditions.append(DecisionRow.verdict == filters.verdict)
    if filters.since is not None:
        conditions.append(DecisionRow.as_of >= filters.since)
    if filters.until is not None:
        conditions.append(DecisionRow.as_of <= filters.until)
    if before_seq is not None:
        conditions.append(DecisionRow.seq < before_seq)
    return conditions


_INSERT_TURN = sa.insert(DebateTurnRow)
_INSERT_EVENT = sa.insert(SafetyEventRow)
# SQLite has no sequence for a column outside the key, so the insert numbers itself: a SQLite
# database has one writer at a time, so no two inserts read the same maximum. PostgreSQL's
# identity column numbers the row.
_INSERT_DECISION_SQLITE = sa.insert(DecisionRow).values(
    seq=sa.select(sa.func.coalesce(sa.func.max(DecisionRow.seq), 0) + 1).scalar_subquery()
)
_INSERT_DECISION = sa.insert(DecisionRow)


def _insert_decision(connection: sa.Connection) -> sa.Insert:
    if connection.dialect.name == "sqlite":
        return _INSERT_DECISION_SQLITE
    return _INSERT_DECISION


def _decision_values(decision: Decision) -> dict[str, object]:
    return {
        "id": decision.id,
        "symbol": decision.symbol,
        "timeframe": decision.timeframe,
        "as_of": parse_timestamp(decision.as_of),
        "created_at": parse_timestamp(decision.created_at),
        "mode": decision.mode,
        "engine_version": decision.engine_version,
        "config_hash": decision.config_hash,
        "action": decision.action,
        "size": decision.safety.size,
        "confidence": decision.proposal.confidence,
        "score": decision.proposal.score,
        "verdict": decision.safety.verdict,
        "record": decision.model_dump_json(),
    }


def _turn_values(decision_id: str, turn: DebateTurn) -> dict[str, object]:
    return {
        "decision_id": decision_id,
        "turn_index": turn.index,
        "round": turn.round,
        "speaker": turn.speaker,
        "kind": turn.kind,
        "claim": turn.claim,
        "evidence": canonical_json([item.model_dump() for item in turn.evidence]).decode(),
        "strength": turn.strength,
        "target": turn.target,
    }
