"""Push targets and the deadline timer (SPEC §8, §9): file_targets.ping_token, targets.last_received_at, deadline_timer.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (no table rebuild on SQLite); the backend gives loaded push targets a token at its next load.
    op.add_column("file_targets", sa.Column("ping_token", sa.Text(), nullable=True))
    op.create_index("uq_file_targets_ping_token", "file_targets", ["ping_token"], unique=True)
    # Forget which file was loaded, so the next start loads it again: push targets loaded before this
    # revision get their token and their push:// target_url then (their loaded_at stays).
    op.execute("UPDATE targets_file SET fingerprint = NULL")
    # Silence is measured on the backend's clock, from when a target's last result arrived; until one
    # arrives, the newest check time stands in for it.
    op.add_column("targets", sa.Column("last_received_at", sa.Text(), nullable=True))
    op.execute("UPDATE targets SET last_received_at = last_check_at")
    timer = op.create_table(
        "deadline_timer",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("beat_at", sa.Text(), nullable=True),
        sa.Column("resumed_at", sa.Text(), nullable=True),
    )
    op.bulk_insert(timer, [{"id": 1, "beat_at": None, "resumed_at": None}])


def downgrade() -> None:
    op.drop_table("deadline_timer")
    with op.batch_alter_table("targets") as batch:
        batch.drop_column("last_received_at")
    op.drop_index("uq_file_targets_ping_token", table_name="file_targets")
    with op.batch_alter_table("file_targets") as batch:
        batch.drop_column("ping_token")
