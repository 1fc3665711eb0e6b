"""The stored data as one decision may see it: nothing after ``as_of`` (DESIGN §3)."""

import json

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from core.candles import CandleWindow
from core.market_view import BookSummary, NewsItem, ResearchObservation
from storage.book_summaries import BookSummaryStore
from storage.candles import CandleStore
from storage.models import NewsItemRow, ResearchObservationRow

_NEWS = NewsItemRow
NEWS_QUERY = (
    sa.select(
        _NEWS.source, _NEWS.title, _NEWS.url, _NEWS.published_at, _NEWS.sentiment, _NEWS.symbols
    )
    .where(
        _NEWS.published_at <= sa.bindparam("as_of"),
        sa.or_(
            _NEWS.symbols.like(sa.bindparam("symbol_pattern"), escape="/"),
            _NEWS.symbols.like(sa.bindparam("base_pattern"), escape="/"),
        ),
    )
    .order_by(_NEWS.published_at.desc(), _NEWS.id.desc())
    .limit(sa.bindparam("limit"))
)

_RESEARCH = ResearchObservationRow
_NEWEST_FIRST = sa.func.row_number().over(
    partition_by=(_RESEARCH.source, _RESEARCH.metric, _RESEARCH.symbol),
    order_by=(_RESEARCH.fetched_at.desc(), _RESEARCH.id.desc()),
)
_RANKED = (
    sa.select(
        _RESEARCH.source,
        _RESEARCH.metric,
        _RESEARCH.symbol,
        _RESEARCH.value,
        _RESEARCH.fetched_at,
        _NEWEST_FIRST.label("rank"),
    )
    .where(
        _RESEARCH.fetched_at <= sa.bindparam("as_of"),
        sa.or_(
            _RESEARCH.symbol.is_(None),
            _RESEARCH.symbol.in_(sa.bindparam("names", expanding=True)),
        ),
    )
    .subquery()
)
RESEARCH_QUERY = (
    sa.select(
        _RANKED.c.source, _RANKED.c.metric, _RANKED.c.symbol, _RANKED.c.value, _RANKED.c.fetched_at
    )
    .where(_RANKED.c.rank == 1)
    .order_by(_RANKED.c.source, _RANKED.c.metric, _RANKED.c.symbol.nulls_first())
)


class StoredMarketView:
    """core.market_view.MarketView over the database, bound to ``as_of`` (epoch ms).

    News and research are matched by the symbol (BTC/USDT) or its base asset (BTC);
    research stored without a symbol is market-wide and always matches. The queries are
    built once at import: each decision runs them, and building them cost more than running.
    """

    def __init__(
        self, session_factory: sessionmaker[Session], as_of: int, book_staleness_ms: int = 0
    ) -> None:
        self._session_factory = session_factory
        self._as_of = as_of
        self._candles = CandleStore(session_factory)
        self._books = BookSummaryStore(session_factory)
        self._book_staleness_ms = book_staleness_ms

    @property
    def as_of(self) -> int:
        return self._as_of

    def candles(self, symbol: str, timeframe: str, limit: int) -> CandleWindow:
        return self._candles.window(symbol, timeframe, self._as_of, limit)

    def news(self, symbol: str, limit: int) -> list[NewsItem]:
        """The newest ``limit`` items published by as_of that mention the symbol or its asset."""
        names = _names(symbol)
        parameters = {
            "as_of": self._as_of,
            "symbol_pattern": _contains_pattern(json.dumps(names[0])),
            "base_pattern": _contains_pattern(json.dumps(names[-1])),
            "limit": limit,
        }
        with self._session_factory() as session:
            rows = session.connection().execute(NEWS_QUERY, parameters).all()
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
        parameters = {"as_of": self._as_of, "names": list(_names(symbol))}
        with self._session_factory() as session:
            rows = session.connection().execute(RESEARCH_QUERY, parameters).all()
        return [ResearchObservation.model_validate(row._asdict()) for row in rows]

    def book(self, symbol: str) -> BookSummary | None:
        """The newest summary taken in [as_of − staleness, as_of]: an older book says nothing
        about the market at as_of."""
        return self._books.latest(symbol, self._as_of - self._book_staleness_ms, self._as_of)


def _contains_pattern(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere, with "/" escaping LIKE's wildcards."""
    escaped = text.replace("/", "//").replace("%", "/%").replace("_", "/_")
    return f"%{escaped}%"


def _names(symbol: str) -> tuple[str, ...]:
    """The symbol and its base asset, as news and research name them."""
    base = symbol.partition("/")[0]
    return (symbol, base) if base != symbol else (symbol,)
