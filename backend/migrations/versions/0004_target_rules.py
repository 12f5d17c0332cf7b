"""Per-target rules (SPEC §8, §9): alerts and rule state keyed by target name, timing and certificate on events.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_ACTIVE = sa.text("status IN ('OPEN', 'ACK')")


def upgrade() -> None:
    # Plain ADD COLUMN everywhere (no table rebuild on SQLite). alerts.target gets a default only so
    # that SQLite accepts a NOT NULL column on existing rows; the backfill gives each its real name.
    op.add_column("alerts", sa.Column("target", sa.Text(), nullable=False, server_default=""))
    op.add_column("alerts", sa.Column("reason", sa.Text(), nullable=True))
    op.execute("UPDATE alerts SET target = target_url")
    op.drop_index("uq_alerts_one_active_per_target", table_name="alerts")
    op.create_index("uq_alerts_one_active_per_target", "alerts", ["target"], unique=True,
                    sqlite_where=_ACTIVE, postgresql_where=_ACTIVE)
    op.create_index("ix_alerts_target_id", "alerts", ["target", "id"])

    # The rule state is keyed by the target's name; until now every key was a URL, which is its name.
    op.execute("ALTER TABLE targets RENAME COLUMN target_url TO name")
    for column in ("successes_in_a_row", "slow_in_a_row", "clear_in_a_row"):
        op.add_column("targets", sa.Column(column, sa.Integer(), nullable=False, server_default="0"))

    for column in ("dns_ms", "connect_ms", "tls_ms", "first_byte_ms"):
        op.add_column("events", sa.Column(column, sa.Float(), nullable=True))
    op.add_column("events", sa.Column("cert_expires_at", sa.Text(), nullable=True))
    # SQLAlchemy's insert sentinel (database.events): one multi-row INSERT per batch on SQLite too.
    op.add_column("events", sa.Column("batch_position", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("events") as batch:
        for column in ("batch_position", "cert_expires_at", "first_byte_ms", "tls_ms", "connect_ms", "dns_ms"):
            batch.drop_column(column)
    with op.batch_alter_table("targets") as batch:
        for column in ("clear_in_a_row", "slow_in_a_row", "successes_in_a_row"):
            batch.drop_column(column)
    op.execute("ALTER TABLE targets RENAME COLUMN name TO target_url")
    op.drop_index("ix_alerts_target_id", table_name="alerts")
    op.drop_index("uq_alerts_one_active_per_target", table_name="alerts")
    op.create_index("uq_alerts_one_active_per_target", "alerts", ["target_url"], unique=True,
                    sqlite_where=_ACTIVE, postgresql_where=_ACTIVE)
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("reason")
        batch.drop_column("target")
