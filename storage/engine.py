"""Engines and sessions: the embedded SQLite file by default, PostgreSQL by URL (DESIGN §7)."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from storage.migrate import upgrade_to_head

# WAL lets readers (the decision path) run while a writer (an import) commits; NORMAL is
# durable in WAL mode except for the last commits on power loss; the busy timeout makes a
# second writer wait instead of failing at once.
_SQLITE_PRAGMAS = (
    "journal_mode=WAL",
    "synchronous=NORMAL",
    "foreign_keys=ON",
    "busy_timeout=30000",
)


SQLITE_POOL_SIZE = 32


def create_engine_for(url: str) -> sa.Engine:
    """An engine for ``url``: SQLite gets its folder and pragmas, anything else a checked pool."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(parsed, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    # A pool as wide as the API's concurrency: a connection opened past the pool is closed
    # again on return, and opening one (the pragmas) costs more than the query it serves.
    engine = sa.create_engine(parsed, pool_size=SQLITE_POOL_SIZE, max_overflow=SQLITE_POOL_SIZE)
    sa.event.listen(engine, "connect", _configure_sqlite_connection)
    sa.event.listen(engine, "begin", _begin_sqlite_transaction)
    return engine


def _configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    # Take BEGIN away from the sqlite3 driver, which would emit it only before the first
    # write: reads would then see no consistent snapshot and DDL would not be transactional.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in _SQLITE_PRAGMAS:
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _begin_sqlite_transaction(connection: sa.Connection) -> None:
    # A guarded write (orders, control changes) takes SQLite's write lock at BEGIN, so its
    # read of the control state and its insert are one indivisible step across processes.
    immediate = connection.get_execution_options().get(GUARDED_WRITE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


# Execution option marking a transaction that must hold the write lock from its start.
GUARDED_WRITE_OPTION = "sigmax_guarded_write"


def make_session_factory(engine: sa.Engine) -> sessionmaker[Session]:
    # Objects stay readable after their transaction commits, without another round trip or
    # a DetachedInstanceError once the session is closed.
    return sessionmaker(engine, expire_on_commit=False)


@dataclass(frozen=True)
class Database:
    """One database, migrated to the current schema, with the session factory the stores take."""

    engine: sa.Engine
    session_factory: sessionmaker[Session]
    # For transactions that check the control state and then write (see storage.journal).
    guarded_session_factory: sessionmaker[Session]

    def dispose(self) -> None:
        """Close every pooled connection (at shutdown, or when a test is done with it)."""
        self.engine.dispose()


def open_database(url: str) -> Database:
    """Connect to ``url`` and bring its schema to the newest migration (a no-op when current)."""
    engine = create_engine_for(url)
    upgrade_to_head(engine)
    guarded = engine.execution_options(**{GUARDED_WRITE_OPTION: True})
    return Database(
        engine=engine,
        session_factory=make_session_factory(engine),
        guarded_session_factory=make_session_factory(guarded),
    )
