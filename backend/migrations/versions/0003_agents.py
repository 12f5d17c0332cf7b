"""The agents table (SPEC §8): when each agent was last heard from.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agents",
        sa.Column("name", sa.Text(), primary_key=True),
        sa.Column("last_event_at", sa.Text(), nullable=True),
        sa.Column("last_pull_at", sa.Text(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("agents")
