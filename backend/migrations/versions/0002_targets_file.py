"""The targets file (SPEC §8): file_targets and targets_file, and events.target / events.agent.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (no table rebuild on SQLite): nullable, no default, so existing rows stay as they are.
    op.add_column("events", sa.Column("target", sa.Text(), nullable=True))
    op.add_column("events", sa.Column("agent", sa.Text(), nullable=True))

    op.create_table(
        "file_targets",
        sa.Column("name", sa.Text(), primary_key=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("target_url", sa.Text(), nullable=True),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("loaded_at", sa.Text(), nullable=False),
        sa.Column("changed_at", sa.Text(), nullable=False),
    )
    op.create_index("ix_file_targets_position", "file_targets", ["position"])
    op.create_index("ix_file_targets_target_url", "file_targets", ["target_url"])

    targets_file = op.create_table(
        "targets_file",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("fingerprint", sa.Text(), nullable=True),
        sa.Column("loaded_at", sa.Text(), nullable=True),
    )
    op.bulk_insert(targets_file, [{"id": 1, "fingerprint": None, "loaded_at": None}])


def downgrade() -> None:
    op.drop_table("targets_file")
    op.drop_table("file_targets")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("agent")
        batch.drop_column("target")
