"""Schema migrations with Alembic: `upgrade(engine)` brings any database to the newest schema."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from backend.config import ConfigError
from backend.database import metadata, write_transaction

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(connection=None) -> Config:
    """An Alembic Config pointing at backend/migrations, with no alembic.ini needed."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def upgrade(engine: Engine) -> None:
    """Apply every missing migration, safely from many processes at once; idempotent."""
    logging.getLogger("alembic").setLevel(logging.WARNING)  # its INFO lines say nothing to a user
    with write_transaction(engine) as conn:
        if conn.dialect.name == "postgresql":
            # Serialise concurrent upgrades (several gunicorn workers starting together).
            conn.execute(text("SELECT pg_advisory_xact_lock(724001)"))
        tables = set(inspect(conn).get_table_names())
        ours = sorted(tables & set(metadata.tables))
        if ours and "alembic_version" not in tables:
            # No schema was ever released without migrations: such tables are not ours to adopt.
            raise ConfigError("DATABASE_URL", f"the database already has tables named {', '.join(ours)} that "
                              "this backend's migrations did not make; point it at a new, empty database")
        command.upgrade(alembic_config(conn), "head")


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None before any migration."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
