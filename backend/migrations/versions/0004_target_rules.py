"""Per-target rules (SPEC §8, §9): alerts and rule state keyed by target name, a stored verdict and timings on events.

Edited in place after merge, before any release had it: the backfill keys by name, events.failed.

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
    # Plain ADD COLUMN everywhere (no table rebuild on SQLite). alerts.target needs a default only so
    # that SQLite accepts a NOT NULL column on existing rows; the backfill gives each its real name.
    op.add_column("alerts", sa.Column("target", sa.Text(), nullable=False, server_default=""))
    op.add_column("alerts", sa.Column("reason", sa.Text(), nullable=True))
    _key_alerts_by_name()
    if op.get_context().dialect.name == "postgresql":
        # SQLite cannot drop a default without rebuilding alerts, which its foreign keys refuse here.
        op.alter_column("alerts", "target", server_default=None)
    op.drop_index("uq_alerts_one_active_per_target", table_name="alerts")
    op.create_index("uq_alerts_one_active_per_target", "alerts", ["target"], unique=True,
                    sqlite_where=_ACTIVE, postgresql_where=_ACTIVE)
    op.create_index("ix_alerts_target_id", "alerts", ["target", "id"])

    op.execute("ALTER TABLE targets RENAME COLUMN target_url TO name")
    _key_rule_state_by_name()
    for column in ("successes_in_a_row", "slow_in_a_row", "clear_in_a_row"):
        op.add_column("targets", sa.Column(column, sa.Integer(), nullable=False, server_default="0"))

    for column in ("dns_ms", "connect_ms", "tls_ms", "first_byte_ms"):
        op.add_column("events", sa.Column(column, sa.Float(), nullable=True))
    op.add_column("events", sa.Column("cert_expires_at", sa.Text(), nullable=True))
    # SQLAlchemy's insert sentinel (database.events): one multi-row INSERT per batch on SQLite too.
    op.add_column("events", sa.Column("batch_position", sa.Integer(), nullable=True))
    # The verdict ingest decided (rules.is_failure), so the recount and the rollups never judge again.
    op.add_column("events", sa.Column("failed", sa.Integer(), nullable=False, server_default="0"))
    # Stored events as 0003 judged them: the agent's verdict when it named the target, or for tcp.
    op.execute("UPDATE events SET failed = 1 WHERE is_success = 0 OR (target IS NULL AND target_url NOT LIKE "
               "'tcp://%' AND (status_code IS NULL OR status_code >= 400))")


def _name_of_url(conn) -> dict[str, str]:
    """Each URL that exactly one loaded file target checks: that target's name."""
    rows = conn.execute(sa.text("SELECT target_url, MIN(name) FROM file_targets WHERE target_url IS NOT NULL "
                                "GROUP BY target_url HAVING COUNT(*) = 1"))
    return dict(rows.all())


def _key_alerts_by_name() -> None:
    """Key each alert by its event's `target`, else the one file target with its URL, else the URL."""
    conn = op.get_bind()
    by_url = _name_of_url(conn)
    rows = conn.execute(sa.text("SELECT a.id, a.target_url, e.target, a.status FROM alerts a "
                                "JOIN events e ON e.id = a.event_id ORDER BY a.id DESC")).all()
    taken, keys = set(), []
    for alert_id, url, event_target, status in rows:
        name = event_target or by_url.get(url) or url
        if status in ("OPEN", "ACK"):
            if name in taken:  # two active alerts under one name: the newest takes it, the other keeps its URL
                name = url
            taken.add(name)
        keys.append({"id": alert_id, "name": name})
    if keys:
        conn.execute(sa.text("UPDATE alerts SET target = :name WHERE id = :id"), keys)


def _key_rule_state_by_name() -> None:
    """Carry each URL's rule state over to the name its newest event (else the one file target) gives it."""
    conn = op.get_bind()
    by_url = _name_of_url(conn)
    rows = conn.execute(sa.text(
        "SELECT t.name, t.failures_in_a_row, t.last_check_at, (SELECT e.target FROM events e "
        "WHERE e.target_url = t.name ORDER BY e.checked_at DESC, e.id DESC LIMIT 1) FROM targets t")).all()
    kept: dict[str, tuple] = {}
    renamed = False
    for url, failures, last_check_at, event_target in rows:
        name = event_target or by_url.get(url) or url
        renamed = renamed or name != url
        if name not in kept or (last_check_at or "") > (kept[name][1] or ""):  # the newest state wins a name
            kept[name] = (failures, last_check_at)
    if renamed:
        conn.execute(sa.text("DELETE FROM targets"))
        conn.execute(sa.text("INSERT INTO targets (name, failures_in_a_row, last_check_at) "
                             "VALUES (:name, :failures, :last_check_at)"),
                     [{"name": n, "failures": f, "last_check_at": t} for n, (f, t) in kept.items()])


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+): a batch rebuild would drop tables that alerts, deliveries
    # and notification_logs point at, which SQLite's foreign keys refuse once any row exists.
    for column in ("failed", "batch_position", "cert_expires_at", "first_byte_ms", "tls_ms", "connect_ms", "dns_ms"):
        op.execute(f"ALTER TABLE events DROP COLUMN {column}")
    for column in ("clear_in_a_row", "slow_in_a_row", "successes_in_a_row"):
        op.execute(f"ALTER TABLE targets DROP COLUMN {column}")
    op.execute("ALTER TABLE targets RENAME COLUMN name TO target_url")
    op.drop_index("ix_alerts_target_id", table_name="alerts")
    op.drop_index("uq_alerts_one_active_per_target", table_name="alerts")
    op.create_index("uq_alerts_one_active_per_target", "alerts", ["target_url"], unique=True,
                    sqlite_where=_ACTIVE, postgresql_where=_ACTIVE)
    op.execute("ALTER TABLE alerts DROP COLUMN reason")
    op.execute("ALTER TABLE alerts DROP COLUMN target")
