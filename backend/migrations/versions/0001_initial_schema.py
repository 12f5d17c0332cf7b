"""The initial schema: events, alerts, notification_logs (SPEC §3), targets, deliveries, leases.

Released: never edit it again; a schema change is a new revision (see ../README.md).

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
ACTIVE = sa.text("status IN ('OPEN', 'ACK')")


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("target_url", sa.Text(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response_time_ms", sa.Integer(), nullable=True),
        sa.Column("timestamp", sa.Text(), nullable=False),
        sa.Column("is_success", sa.Integer(), nullable=False),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("received_at", sa.Text(), nullable=False),
        sa.Column("event_uid", sa.Text(), nullable=True),
        sa.Column("is_late", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("checked_at", sa.Text(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_events_target_url_checked_at", "events", ["target_url", "checked_at"])
    op.create_index("uq_events_event_uid", "events", ["event_uid"], unique=True)
    op.create_index("ix_events_timestamp", "events", ["timestamp"])

    op.create_table(
        "alerts",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("event_id", Id, sa.ForeignKey("events.id"), nullable=False),
        sa.Column("target_url", sa.Text(), nullable=False),
        sa.Column("alert_type", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Text(), nullable=False),
        sa.Column("acknowledged_at", sa.Text(), nullable=True),
        sa.Column("resolved_at", sa.Text(), nullable=True),
        sa.Column("resolved_event_id", Id, sa.ForeignKey("events.id"), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_alerts_status_id", "alerts", ["status", "id"])
    op.create_index("ix_alerts_target_url_id", "alerts", ["target_url", "id"])
    op.create_index("uq_alerts_one_active_per_target", "alerts", ["target_url"], unique=True,
                    sqlite_where=ACTIVE, postgresql_where=ACTIVE)

    op.create_table(
        "notification_logs",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("alert_id", Id, sa.ForeignKey("alerts.id"), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("notice_type", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempted_at", sa.Text(), nullable=False),
        sa.Column("response_code", sa.Integer(), nullable=True),
        sa.Column("message_id", sa.Text(), nullable=True),
        sa.Column("retry_count", sa.Integer(), nullable=False),
        sa.Column("error_message", sa.Text(), nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_notification_logs_alert_id", "notification_logs", ["alert_id", "id"])

    op.create_table(
        "targets",
        sa.Column("target_url", sa.Text(), primary_key=True),
        sa.Column("failures_in_a_row", sa.Integer(), nullable=False),
        sa.Column("last_check_at", sa.Text(), nullable=True),
    )

    op.create_table(
        "deliveries",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("alert_id", Id, sa.ForeignKey("alerts.id"), nullable=False),
        sa.Column("event_id", Id, sa.ForeignKey("events.id"), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("notice_type", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("next_attempt_at", sa.Text(), nullable=False),
        sa.Column("claimed_by", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Text(), nullable=False),
        sa.Column("finished_at", sa.Text(), nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_deliveries_channel_status_id", "deliveries", ["channel", "status", "id"])
    op.create_index("ix_deliveries_alert_id", "deliveries", ["alert_id"])

    op.create_table(
        "leases",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("holder", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    for table in ("leases", "deliveries", "targets", "notification_logs", "alerts", "events"):
        op.drop_table(table)
