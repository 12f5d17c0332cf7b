"""Named channels (SPEC §10): the targets file's channels kept beside its fingerprint; channel tests have no alert.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("targets_file", sa.Column("channels", sa.Text(), nullable=True))
    # SQLite cannot alter a column in place: batch mode copies the table (its rows and indexes kept).
    with op.batch_alter_table("notification_logs", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.alter_column("alert_id", existing_type=sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                           nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM notification_logs WHERE alert_id IS NULL")
    with op.batch_alter_table("notification_logs", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.alter_column("alert_id", existing_type=sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                           nullable=False)
    op.drop_column("targets_file", "channels")
