"""Errors answered by exchange and data APIs, kept so a burst of them can pause trading."""

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from storage.models import ApiErrorRow


def _declared_length(column: sa.orm.InstrumentedAttribute[str]) -> int:
    declared = column.type
    if not isinstance(declared, sa.String) or declared.length is None:
        raise TypeError(f"{column} is not a string column of bounded length")
    return declared.length


_SOURCE_LENGTH = _declared_length(ApiErrorRow.source)
_KIND_LENGTH = _declared_length(ApiErrorRow.kind)


class ApiErrorStore:
    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.session_factory = session_factory

    def record(self, source: str, kind: str, message: str, at_ms: int) -> int:
        """Store one error; returns its id.

        ``source`` and ``kind`` are cut to their columns' length: recording an error must not
        fail (PostgreSQL refuses an over-long value) just because an exception name is long.
        """
        row = ApiErrorRow(
            source=source[:_SOURCE_LENGTH], kind=kind[:_KIND_LENGTH], message=message, at=at_ms
        )
        with self.session_factory.begin() as session:
            session.add(row)
        return row.id

    def times_since(self, since_ms: int, until_ms: int) -> list[int]:
        """When each error in (since_ms, until_ms] happened, oldest first.

        The window is open at its start so that "the last 60 s before as_of" spans exactly
        60 s, and closed at its end: an error at as_of is known to the decision made then.
        """
        with self.session_factory() as session:
            times = session.scalars(
                sa.select(ApiErrorRow.at)
                .where(ApiErrorRow.at > since_ms, ApiErrorRow.at <= until_ms)
                .order_by(ApiErrorRow.at)
            ).all()
        return list(times)
