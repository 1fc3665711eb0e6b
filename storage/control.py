"""The control state (DESIGN §6): ACTIVE, PAUSED or HALTED, as the newest recorded change says."""

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session, sessionmaker

from core.decision import ControlStateName
from storage.models import ControlStateChangeRow

# Where a global and a symbol's own state disagree, the stricter one holds.
_STRICTNESS: dict[str, int] = {"ACTIVE": 0, "PAUSED": 1, "HALTED": 2}


class ControlState(BaseModel):
    """The state in force, why, who set it and since when (None: never changed)."""

    model_config = ConfigDict(frozen=True)

    state: ControlStateName
    reason: str
    actor: str
    since: int | None


NEVER_CHANGED = ControlState(
    state="ACTIVE", reason="no control change recorded", actor="system", since=None
)


class ControlStore:
    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.session_factory = session_factory

    def current(self, symbol: str | None = None) -> ControlState:
        """The global state; for a symbol, the stricter of the global state and its own."""
        with self.session_factory() as session:
            changes = [_newest(session, None)]
            if symbol is not None:
                changes.append(_newest(session, symbol))
        recorded = [change for change in changes if change is not None]
        if not recorded:
            return NEVER_CHANGED
        change = max(recorded, key=lambda row: (_STRICTNESS[row.state], row.id))
        return ControlState.model_validate(
            {
                "state": change.state,
                "reason": change.reason,
                "actor": change.actor,
                "since": change.at,
            }
        )

    def record(
        self,
        state: ControlStateName,
        reason: str,
        actor: str,
        at_ms: int,
        symbol: str | None = None,
    ) -> None:
        """Append a change, for every symbol or (``symbol``) for one; it is the newest at once."""
        with self.session_factory.begin() as session:
            session.add(
                ControlStateChangeRow(
                    symbol=symbol, state=state, reason=reason, actor=actor, at=at_ms
                )
            )


def _newest(session: Session, symbol: str | None) -> ControlStateChangeRow | None:
    scope = (
        ControlStateChangeRow.symbol.is_(None)
        if symbol is None
        else ControlStateChangeRow.symbol == symbol
    )
    return session.scalar(
        sa.select(ControlStateChangeRow)
        .where(scope)
        .order_by(ControlStateChangeRow.id.desc())
        .limit(1)
    )
