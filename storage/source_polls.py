"""The state of each polled outside source: validators for conditional requests, the last
outcome and why. A news feed is keyed by its URL, a research source by its name."""

from dataclasses import dataclass

import sqlalchemy as sa

from storage.engine import Database
from storage.models import SourcePollRow


@dataclass(frozen=True)
class SourcePoll:
    key: str
    etag: str | None
    last_modified: str | None
    polled_at: int
    outcome: str
    detail: str


class SourcePollStore:
    def __init__(self, database: Database) -> None:
        self._database = database

    def get(self, key: str) -> SourcePoll | None:
        with self._database.session_factory() as session:
            row = session.get(SourcePollRow, key)
            return None if row is None else _poll(row)

    def all(self) -> list[SourcePoll]:
        with self._database.session_factory() as session:
            rows = session.scalars(sa.select(SourcePollRow).order_by(SourcePollRow.key)).all()
            return [_poll(row) for row in rows]

    def record(self, poll: SourcePoll) -> None:
        # Read then write: on SQLite the write lock is taken at BEGIN, so a worker writing
        # beside the scheduler waits its turn (busy timeout) instead of failing "locked".
        with self._database.guarded_session_factory.begin() as session:
            session.merge(
                SourcePollRow(
                    key=poll.key,
                    etag=poll.etag,
                    last_modified=poll.last_modified,
                    polled_at=poll.polled_at,
                    outcome=poll.outcome,
                    detail=poll.detail,
                )
            )


def _poll(row: SourcePollRow) -> SourcePoll:
    return SourcePoll(
        key=row.key,
        etag=row.etag,
        last_modified=row.last_modified,
        polled_at=row.polled_at,
        outcome=row.outcome,
        detail=row.detail,
    )
