"""Decisions: each stored once with its debate turns, read back whole or listed newest first."""

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, TypeAdapter

from core.decision import Action, DebateTurn, Decision, Mode, Verdict
from core.hashing import canonical_json
from core.timeframes import parse_timestamp
from storage.engine import Database
from storage.models import DebateTurnRow, DecisionRecordRow, DecisionRow, SafetyEventRow
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


_SUMMARY_FIELDS = tuple(DecisionSummary.model_fields)
_SUMMARY_COLUMNS = tuple(getattr(DecisionRow, name) for name in _SUMMARY_FIELDS)
# One validation call for a page of rows: a third of the cost of one per row.
_SUMMARIES = TypeAdapter(list[DecisionSummary])


def _summaries(rows: Sequence[sa.Row[Any]]) -> list[DecisionSummary]:
    return _SUMMARIES.validate_python(
        [dict(zip(_SUMMARY_FIELDS, row, strict=True)) for row in rows]
    )


class DecisionStore:
    """Reads go through plain connections, not ORM sessions: the API lists pages of these on
    every request, and a session cost more than the query it ran."""

    def __init__(self, database: Database) -> None:
        self._engine = database.engine
        self.session_factory = database.session_factory

    def save(self, decision: Decision, events: Sequence[SafetyEventDraft] = ()) -> None:
        """Write the decision, its debate turns and the safety events it raised in one
        transaction: all or nothing."""
        self.save_all([(decision, events)])

    def save_all(self, batch: Sequence[tuple[Decision, Sequence[SafetyEventDraft]]]) -> None:
        """Write many decisions with their turns and events in one transaction, in order.
        Plain INSERTs: the ORM's unit of work cost four times as much here, on the path of
        every decision."""
        summaries = [_decision_values(decision) for decision, _ in batch]
        records = [
            {"decision_id": decision.id, "record": decision.model_dump_json()}
            for decision, _ in batch
        ]
        turns = [
            _turn_values(decision.id, turn) for decision, _ in batch for turn in decision.debate
        ]
        rows = [event_values(event, decision.id) for decision, events in batch for event in events]
        with self.session_factory.begin() as session:
            connection = session.connection()
            connection.execute(_insert_decision(connection), summaries)
            connection.execute(_INSERT_RECORD, records)
            if turns:
                connection.execute(_INSERT_TURN, turns)
            if rows:
                connection.execute(_INSERT_EVENT, rows)

    def get(self, decision_id: str) -> Decision | None:
        with self._engine.connect() as connection:
            record = connection.scalar(
                sa.select(DecisionRecordRow.record).where(
                    DecisionRecordRow.decision_id == decision_id
                )
            )
        return None if record is None else Decision.model_validate_json(record)

    def previous_as_of(self, symbol: str, timeframe: str, before_ms: int) -> int | None:
        """When the symbol was last decided before ``before_ms`` (None: never)."""
        query = sa.select(sa.func.max(DecisionRow.as_of)).where(
            DecisionRow.symbol == symbol,
            DecisionRow.timeframe == timeframe,
            DecisionRow.as_of < before_ms,
        )
        with self._engine.connect() as connection:
            return connection.scalar(query)

    def records(
        self,
        filters: "DecisionFilters | None" = None,
        limit: int = 20,
        before_seq: int | None = None,
    ) -> list[tuple[int, Decision]]:
        """Whole records with their ``seq``, newest first, paged like ``list``."""
        values = _bound(filters or DecisionFilters(), before_seq, limit)
        with self._engine.connect() as connection:
            rows = connection.execute(_record_page(frozenset(values)), values).all()
        return [(seq, Decision.model_validate_json(record)) for seq, record in rows]

    def after(self, seq: int, limit: int = 100) -> list[DecisionSummary]:
        """Decisions stored after ``seq``, oldest first: what a follower has not seen yet."""
        query = (
            sa.select(*_SUMMARY_COLUMNS)
            .where(DecisionRow.seq > seq)
            .order_by(DecisionRow.seq)
            .limit(limit)
        )
        with self._engine.connect() as connection:
            rows = connection.execute(query).all()
        return _summaries(rows)

    def newest_seq(self) -> int:
        """The highest ``seq`` stored; 0 when there is none."""
        with self._engine.connect() as connection:
            return connection.scalar(sa.select(sa.func.max(DecisionRow.seq))) or 0

    def counts(self) -> list[tuple[str, str, int]]:
        """(action, verdict, how many) over every stored decision."""
        query = sa.select(DecisionRow.action, DecisionRow.verdict, sa.func.count()).group_by(
            DecisionRow.action, DecisionRow.verdict
        )
        with self._engine.connect() as connection:
            return [
                (action, verdict, count) for action, verdict, count in connection.execute(query)
            ]

    # Last in the class: below it, `list` in an annotation would name this method.
    def list(
        self,
        filters: "DecisionFilters | None" = None,
        limit: int = 50,
        before_seq: int | None = None,
    ) -> list[DecisionSummary]:
        """Newest first; pass the last summary's ``seq`` as ``before_seq`` for the next page."""
        values = _bound(filters or DecisionFilters(), before_seq, limit)
        with self._engine.connect() as connection:
            rows = connection.execute(_summary_page(frozenset(values)), values).all()
        return _summaries(rows)


@dataclass(frozen=True)
class DecisionFilters:
    """What a decision list may be narrowed by; ``since``/``until`` bound as_of (epoch ms,
    inclusive)."""

    symbol: str | None = None
    action: Action | None = None
    verdict: Verdict | None = None
    since: int | None = None
    until: int | None = None


_AnySelect = sa.Select[*tuple[Any, ...]]
# Each filter as a condition on a bound parameter named after it.
_CONDITIONS: dict[str, sa.ColumnElement[bool]] = {
    "symbol": DecisionRow.symbol == sa.bindparam("symbol"),
    "action": DecisionRow.action == sa.bindparam("action"),
    "verdict": DecisionRow.verdict == sa.bindparam("verdict"),
    "since": DecisionRow.as_of >= sa.bindparam("since"),
    "until": DecisionRow.as_of <= sa.bindparam("until"),
    "before_seq": DecisionRow.seq < sa.bindparam("before_seq"),
}


def _bound(filters: DecisionFilters, before_seq: int | None, limit: int) -> dict[str, Any]:
    """The parameters of a page query: the filters given, the cursor, the limit."""
    given = {
        "symbol": filters.symbol,
        "action": filters.action,
        "verdict": filters.verdict,
        "since": filters.since,
        "until": filters.until,
        "before_seq": before_seq,
    }
    return {name: value for name, value in given.items() if value is not None} | {"limit": limit}


# One statement per combination of filters, built once: building and keying a statement
# cost more than running it, on every page the API serves.
@functools.cache
def _summary_page(parameters: frozenset[str]) -> _AnySelect:
    return _page(sa.select(*_SUMMARY_COLUMNS), parameters)


@functools.cache
def _record_page(parameters: frozenset[str]) -> _AnySelect:
    joined = sa.select(DecisionRow.seq, DecisionRecordRow.record).join(
        DecisionRecordRow, DecisionRecordRow.decision_id == DecisionRow.id
    )
    return _page(joined, parameters)


def _page(query: _AnySelect, parameters: frozenset[str]) -> _AnySelect:
    conditions = [_CONDITIONS[name] for name in sorted(parameters - {"limit"})]
    return query.where(*conditions).order_by(DecisionRow.seq.desc()).limit(sa.bindparam("limit"))


_INSERT_TURN = sa.insert(DebateTurnRow)
_INSERT_RECORD = sa.insert(DecisionRecordRow)
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
        "model": None if turn.model is None else canonical_json(turn.model.model_dump()).decode(),
    }
