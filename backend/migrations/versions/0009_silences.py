"""Silences, maintenance windows, paused targets (SPEC §11): three tables, suppressed notices in notification_logs.

Revision ID: 0009
Revises: 0006
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "silences",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("match", sa.Text(), nullable=False),
        sa.Column("starts_at", sa.Text(), nullable=False),
        sa.Column("ends_at", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False, server_default=sa.text("''")),
        sa.Column("created_at", sa.Text(), nullable=False),
        sa.Column("ended_early_at", sa.Text(), nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_silences_ends_at", "silences", ["ends_at"])
    op.create_table(
        "maintenance_windows",
        sa.Column("position", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("spec", sa.Text(), nullable=False),
    )
    op.create_table(
        "paused_targets",
        sa.Column("name", sa.Text(), primary_key=True),
        sa.Column("paused_at", sa.Text(), nullable=False),
    )
    # Plain ADD COLUMN (no table rebuild on SQLite).
    op.add_column("notification_logs", sa.Column("suppressed_by", sa.Text(), nullable=True))
    op.add_column("notification_logs", sa.Column("silence_id", Id, nullable=True))
    op.add_column("notification_logs", sa.Column("release_at", sa.Text(), nullable=True))
    op.create_index("ix_notification_logs_release_at", "notification_logs", ["release_at"])
    op.add_column("targets_file", sa.Column("pauses_changed_at", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("targets_file") as batch:
        batch.drop_column("pauses_changed_at")
    # Below 0009 a log row is one delivery attempt, SENT or FAILED (its API schema says so): a SUPPRESSED
    # row is none, and would lose the words saying why with the columns below. The notice is gone with it.
    op.execute("DELETE FROM notification_logs WHERE status = 'SUPPRESSED'")
    op.drop_index("ix_notification_logs_release_at", table_name="notification_logs")
    # As 0007 built it: ids never reused, so a rebuild keeps AUTOINCREMENT (SQLite).
    with op.batch_alter_table("notification_logs", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("release_at")
        batch.drop_column("silence_id")
        batch.drop_column("suppressed_by")
    op.drop_table("paused_targets")
    op.drop_table("maintenance_windows")
    op.drop_index("ix_silences_ends_at", table_name="silences")
    op.drop_table("silences")
