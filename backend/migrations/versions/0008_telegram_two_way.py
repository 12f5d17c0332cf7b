"""Two-way Telegram (SPEC §10): who acted on an alert, the chat of a sent message, the stored getUpdates offset.

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("alerts", sa.Column("acknowledged_by", sa.Text(), nullable=True))
    op.add_column("alerts", sa.Column("resolved_by", sa.Text(), nullable=True))
    op.add_column("notification_logs", sa.Column("chat_id", sa.Text(), nullable=True))
    offset = op.create_table(
        "telegram_offset",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("next_update_id", sa.BigInteger(), nullable=False),
    )
    # 0: Telegram's own default, "the earliest unconfirmed update".
    op.bulk_insert(offset, [{"id": 1, "next_update_id": 0}])


def downgrade() -> None:
    op.drop_table("telegram_offset")
    # Plain DROP COLUMN (SQLite 3.35+), as 0004: a batch rebuild of alerts is refused by foreign keys.
    op.execute("ALTER TABLE notification_logs DROP COLUMN chat_id")
    op.execute("ALTER TABLE alerts DROP COLUMN resolved_by")
    op.execute("ALTER TABLE alerts DROP COLUMN acknowledged_by")
