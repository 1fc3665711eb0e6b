"""Order-book summaries: written by the book worker, read by the decision's market view."""

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from core.market_view import BookSummary
from storage.models import BookSummaryRow

_ROW = BookSummaryRow
LATEST_QUERY = (
    sa.select(
        _ROW.symbol,
        _ROW.taken_at,
        _ROW.best_bid,
        _ROW.best_ask,
        _ROW.spread_fraction,
        _ROW.imbalance,
        _ROW.band_fraction,
        _ROW.source,
    )
    .where(
        _ROW.symbol == sa.bindparam("symbol"),
        _ROW.taken_at >= sa.bindparam("since"),
        _ROW.taken_at <= sa.bindparam("until"),
    )
    .order_by(_ROW.taken_at.desc(), _ROW.id.desc())
    .limit(1)
)


class BookSummaryStore:
    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._session_factory = session_factory

    def add(self, summary: BookSummary) -> None:
        with self._session_factory.begin() as session:
            session.add(BookSummaryRow(**summary.model_dump()))

    def latest(self, symbol: str, since_ms: int, until_ms: int) -> BookSummary | None:
        """The newest summary of ``symbol`` taken in [since_ms, until_ms], if any."""
        parameters = {"symbol": symbol, "since": since_ms, "until": until_ms}
        with self._session_factory() as session:
            row = session.connection().execute(LATEST_QUERY, parameters).first()
        return None if row is None else BookSummary.model_validate(row._asdict())
