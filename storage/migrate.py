"""Schema migrations, run from code: no alembic.ini, the scripts ship inside the package."""

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext

MIGRATIONS = Path(__file__).with_name("migrations")

# Any fixed number: PostgreSQL processes starting together queue on it, so only the first
# creates the tables and the others then find them current.
_POSTGRES_MIGRATION_LOCK = 0x51_67_4D_58


def upgrade_to_head(engine: sa.Engine) -> None:
    """Apply every migration not yet applied, in one transaction (idempotent)."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(
                sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _POSTGRES_MIGRATION_LOCK}
            )
        command.upgrade(_config(connection), "head")


def current_revision(engine: sa.Engine) -> str | None:
    """The revision the database is at; None before the first migration."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def _config(connection: sa.Connection) -> Config:
    config = Config()
    # The option goes through configparser, where "%" starts an interpolation.
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    config.attributes["connection"] = connection
    return config
