"""Alembic environment: migrations run on the connection backend.migrate hands over."""

from alembic import context

from backend.database import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `python backend/init_db.py` (backend.migrate.upgrade)")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True,
                  compare_type=True)
with context.begin_transaction():
    context.run_migrations()
