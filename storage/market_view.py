"""The stored data as one decision may see it: nothing after ``as_of`` (DESIGN §3)."""

import json

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from core.candles import CandleWindow
from core.market_view import NewsItem, ResearchObservation
from storage.candles import CandleStore
from storage.models import NewsItemRow, ResearchObservationRow


class StoredMarketView:
    """core.market_view.MarketView over the database, bound to ``as_of`` (epoch ms).

    News and research are matched by the symbol (BTC/USDT) or its base asset (BTC);
    research stored without a symbol is market-wide and always matches.
    """

    def __init__(self, session_factory: sessionmaker[Session], as_of: int) -> None:
        self._session_factory = session_factory
        self._as_of = as_of
        self._candles = CandleStore(session_factory)

    @property
    def as_of(self) -> int:
        return self._as_of

    def candles(self, symbol: str, timeframe: str, limit: int) -> CandleWindow:
        return self._candles.window(symbol, timeframe, self._as_of, limit)

    def news(self, symbol: str, limit: int) -> list[NewsItem]:
        """The newest ``limit`` items published by as_of that mention the symbol or its asset."""
        mentions = sa.or_(
            *(
                NewsItemRow.symbols.contains(json.dumps(name), autoescape=True)
                for name in _names(symbol)
            )
        )
        query = (
            sa.select(NewsItemRow)
            .where(NewsItemRow.published_at <= self._as_of, mentions)
            .order_by(NewsItemRow.published_at.desc(), NewsItemRow.id.desc())
            .limit(limit)
        )
        with self._session_factory() as session:
            rows = session.scalars(query).all()
        return [
            NewsItem(
                source=row.source,
                title=row.title,
                url=row.url,
                published_at=row.published_at,
                sentiment=row.sentiment,
                symbols=tuple(json.loads(row.symbols)),
            )
            for row in rows
        ]

    def research(self, symbol: str) -> list[ResearchObservation]:
        """The newest observation fetched by as_of of each source, metric and symbol that
        concerns ``symbol``: older values of a metric are history, not context."""
        table = ResearchObservationRow
        newest_first = sa.func.row_number().over(
            partition_by=(table.source, table.metric, table.symbol),
            order_by=(table.fetched_at.desc(), table.id.desc()),
        )
        ranked = (
            sa.select(
                table.source,
                table.metric,
                table.symbol,
                table.value,
                table.fetched_at,
                newest_first.label("rank"),
            )
            .where(
                table.fetched_at <= self._as_of,
                sa.or_(table.symbol.is_(None), table.symbol.in_(_names(symbol))),
            )
            .subquery()
        )
        query = (
            sa.select(
                ranked.c.source,
                ranked.c.metric,
                ranked.c.symbol,
                ranked.c.value,
                ranked.c.fetched_at,
            )
            .where(ranked.c.rank == 1)
            .order_by(ranked.c.source, ranked.c.metric, ranked.c.symbol.nulls_first())
        )
        with self._session_factory() as session:
            rows = session.execute(query).all()
        return [ResearchObservation.model_validate(row._asdict()) for row in rows]


def _names(symbol: str) -> tuple[str, ...]:
    """The symbol and its base asset, as news and research name them."""
    base = symbol.partition("/")[0]
    return (symbol, base) if base != symbol else (symbol,)
