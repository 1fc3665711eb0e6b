"""The control state (DESIGN §6): ACTIVE, PAUSED or HALTED, as the newest recorded change says.

Changes are appended, never updated: the table is the audit trail. Each is numbered from
the journal under the exclusive control guard (see storage.journal).
"""

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session

from core.decision import ControlStateName
from storage.engine import Database
from storage.journal import guarded_transaction, next_journal_seq
from storage.models import ControlStateChangeRow

STRICTNESS: dict[str, int] = {"ACTIVE": 0, "PAUSED": 1, "HALTED": 2}


def precedence(state: str, journal_seq: int | None) -> tuple[int, int]:
    """Where a global and a symbol's own state disagree, the stricter one holds; the newer
    on a tie. The greatest of the scopes' precedences is the state in force."""
    return STRICTNESS[state], journal_seq or 0


class ControlState(BaseModel):
    """The state in force, why, who set it, since when (None: never changed), for which
    symbol (None: all), its journal number and, for an auto-pause, when it may lift."""

    model_config = ConfigDict(frozen=True)

    state: ControlStateName
    reason: str
    actor: str
    since: int | None
    symbol: str | None = None
    journal_seq: int | None = None
    cool_down_until: int | None = None


NEVER_CHANGED = ControlState(
    state="ACTIVE", reason="no control change recorded", actor="system", since=None
)


class ControlStore:
    def __init__(self, database: Database) -> None:
        self.database = database

    def current(self, symbol: str | None = None) -> ControlState:
        """The global state; for a symbol, the stricter of the global state and its own."""
        with self.database.session_factory() as session:
            return current_in(session, symbol)

    def record(
        self,
        state: ControlStateName,
        reason: str,
        actor: str,
        at_ms: int,
        symbol: str | None = None,
        cool_down_until: int | None = None,
    ) -> ControlState:
        """Append a change under the exclusive guard; it is the newest at once."""
        with guarded_transaction(self.database, exclusive=True) as session:
            return record_in(session, state, reason, actor, at_ms, symbol, cool_down_until)


def changes_after(session: Session, journal_seq: int, limit: int = 100) -> list[ControlState]:
    """Control changes recorded after ``journal_seq``, oldest first."""
    rows = session.scalars(
        sa.select(ControlStateChangeRow)
        .where(ControlStateChangeRow.journal_seq > journal_seq)
        .order_by(ControlStateChangeRow.journal_seq)
        .limit(limit)
    ).all()
    return [_state(row) for row in rows]


def newest_change_seq(session: Session) -> int:
    """The journal number of the newest control change; 0 when there is none."""
    return session.scalar(sa.select(sa.func.max(ControlStateChangeRow.journal_seq))) or 0


def current_in(session: Session, symbol: str | None = None) -> ControlState:
    """``ControlStore.current`` inside the caller's transaction (after its guard)."""
    connection = session.connection()
    rows = list(connection.execute(_NEWEST_GLOBAL).mappings())
    if symbol is not None:
        rows += connection.execute(_NEWEST_FOR_SYMBOL, {"symbol": symbol}).mappings()
    if not rows:
        return NEVER_CHANGED
    newest = max(rows, key=lambda row: precedence(row["state"], row["journal_seq"]))
    return ControlState.model_validate({**newest, "since": newest["at"]})


def scopes_in(session: Session) -> list[ControlState]:
    """The newest change of each scope (global first, then symbols), not combined."""
    newest = sa.select(sa.func.max(ControlStateChangeRow.journal_seq)).group_by(
        ControlStateChangeRow.symbol
    )
    rows = session.scalars(
        sa.select(ControlStateChangeRow)
        .where(ControlStateChangeRow.journal_seq.in_(newest))
        .order_by(ControlStateChangeRow.symbol.is_not(None), ControlStateChangeRow.symbol)
    ).all()
    return [_state(row) for row in rows]


def record_in(
    session: Session,
    state: ControlStateName,
    reason: str,
    actor: str,
    at_ms: int,
    symbol: str | None = None,
    cool_down_until: int | None = None,
) -> ControlState:
    """Append a change inside the caller's transaction, which holds the exclusive guard."""
    row = ControlStateChangeRow(
        journal_seq=next_journal_seq(session, "control", at_ms),
        symbol=symbol,
        state=state,
        reason=reason,
        actor=actor,
        at=at_ms,
        cool_down_until=cool_down_until,
    )
    session.add(row)
    session.flush()
    return _state(row)


def _state(row: ControlStateChangeRow) -> ControlState:
    return ControlState.model_validate(
        {
            "state": row.state,
            "reason": row.reason,
            "actor": row.actor,
            "since": row.at,
            "symbol": row.symbol,
            "journal_seq": row.journal_seq,
            "cool_down_until": row.cool_down_until,
        }
    )


_CHANGE = ControlStateChangeRow
# Built once: the gate reads the control state on every decision.
_NEWEST = (
    sa.select(
        _CHANGE.state,
        _CHANGE.reason,
        _CHANGE.actor,
        _CHANGE.at,
        _CHANGE.symbol,
        _CHANGE.journal_seq,
        _CHANGE.cool_down_until,
    )
    .order_by(_CHANGE.journal_seq.desc())
    .limit(1)
)
_NEWEST_GLOBAL = _NEWEST.where(_CHANGE.symbol.is_(None))
_NEWEST_FOR_SYMBOL = _NEWEST.where(_CHANGE.symbol == sa.bindparam("symbol"))
