"""Rollups (SPEC §8 stats): per target and hour counts and a response-time histogram, and the roller's watermark.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rollups",
        sa.Column("target", sa.Text(), primary_key=True),
        sa.Column("hour", sa.Text(), primary_key=True),
        sa.Column("checks", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("response_ms_sum", sa.BigInteger(), nullable=False),
        sa.Column("response_ms_count", sa.Integer(), nullable=False),
        sa.Column("histogram", sa.Text(), nullable=False),
        sqlite_with_rowid=False,
    )
    progress = op.create_table(
        "rollup_progress",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("last_event_id", sa.BigInteger(), nullable=False),
    )
    # From 0: the events already stored are rolled up in chunks by the first roller to run.
    op.bulk_insert(progress, [{"id": 1, "last_event_id": 0}])


def downgrade() -> None:
    op.drop_table("rollup_progress")
    op.drop_table("rollups")
