"""Shared fixtures: the real-candle folder, settings on a temporary home, both databases."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from core.settings import Settings
from storage.engine import Database, open_database

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("SIGMAX_TEST_DATA", REPO_ROOT.parent / "shared" / "data"))
POSTGRES_URL = os.environ.get(
    "SIGMAX_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def shared_csv(name: str) -> Path:
    """A real candle file from ../shared/data (or $SIGMAX_TEST_DATA); skip where absent."""
    path = SHARED_DATA / name
    if not path.is_file():
        pytest.skip(f"real candle file {path} is absent (set SIGMAX_TEST_DATA to its folder)")
    return path


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home")


def _postgres_available() -> str | None:
    try:
        engine = sa.create_engine(POSTGRES_URL)
        with engine.connect() as connection:
            connection.execute(sa.text("select 1"))
        engine.dispose()
    except Exception as error:  # any failure to reach the server means: skip, with why
        return f"PostgreSQL at {POSTGRES_URL} is not reachable: {type(error).__name__}"
    return None


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of each kind; PostgreSQL gets a schema of its own per test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    reason = _postgres_available()
    if reason:
        pytest.skip(reason)
    schema = f"t_{os.getpid()}_{abs(hash(request.node.nodeid)) % 10**8}"
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    """A migrated database of each kind (SQLite file, PostgreSQL schema)."""
    opened = open_database(database_url)
    yield opened
    opened.dispose()
