"""Reminders and escalation (SPEC §11): alerts.remind_at and alerts.escalate_at, the due times of an open alert.

Revision ID: 0010
Revises: 0006
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (no table rebuild on SQLite). Alerts open before this revision get no reminder
    # and no escalation: their due times were never set.
    op.add_column("alerts", sa.Column("remind_at", sa.Text(), nullable=True))
    op.add_column("alerts", sa.Column("escalate_at", sa.Text(), nullable=True))


def downgrade() -> None:
    # Older code cannot read these notice types (its dispatcher would fail on each, for ever): end them unsent.
    op.execute("UPDATE deliveries SET status = 'FAILED', finished_at = next_attempt_at "
               "WHERE status = 'PENDING' AND notice_type IN ('REMINDER', 'ESCALATION')")
    # In place (SQLite 3.35+ DROP COLUMN): a rebuild of alerts is refused by the foreign keys to it.
    op.drop_column("alerts", "escalate_at")
    op.drop_column("alerts", "remind_at")
