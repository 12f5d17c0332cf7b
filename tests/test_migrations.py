"""Alembic migrations build exactly the schema the code declares, on SQLite and PostgreSQL alike."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from backend.database import init_db, make_engine, metadata
from backend.migrate import current_revision
from tests.support.databases import database_url, query


def test_migrations_build_the_declared_schema_with_no_drift(tmp_path):
    engine = make_engine(database_url(tmp_path))
    try:
        init_db(engine)
        with engine.connect() as conn:
            drift = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
        assert drift == []
        assert current_revision(engine) == "0001"
    finally:
        engine.dispose()


def test_running_init_db_again_changes_nothing(tmp_path):
    engine = make_engine(database_url(tmp_path))
    try:
        init_db(engine)
        with engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO leases (name, holder, expires_at) VALUES ('x', 'y', 'z')")
        init_db(engine)
        assert query(database_url(tmp_path), "SELECT holder FROM leases") == [("y",)]
    finally:
        engine.dispose()


def test_a_database_made_before_migrations_is_adopted_and_upgraded(tmp_path):
    """A schema from metadata.create_all (no alembic_version table) is stamped, not rebuilt."""
    engine = make_engine(database_url(tmp_path))
    try:
        metadata.create_all(engine)
        with engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO leases (name, holder, expires_at) VALUES ('kept', 'h', 'e')")
        init_db(engine)
        assert current_revision(engine) == "0001"
        assert "alembic_version" in inspect(engine).get_table_names()
        assert query(database_url(tmp_path), "SELECT name FROM leases") == [("kept",)]
    finally:
        engine.dispose()
