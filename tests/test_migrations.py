"""Alembic migrations build exactly the schema the code declares, on SQLite and PostgreSQL alike."""

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from backend.config import ConfigError
from backend.database import make_engine, metadata, write_transaction
from backend.migrate import alembic_config, current_revision, upgrade
from tests.support.databases import IS_POSTGRES, database_url, query

HEAD = "0010"


@pytest.fixture
def url(tmp_path) -> str:
    return database_url(tmp_path)


@pytest.fixture
def engine(url):
    """An engine on the test's empty database, disposed afterwards."""
    engine = make_engine(url)
    yield engine
    engine.dispose()


def migrate_to(engine, revision: str, downgrade: bool = False) -> None:
    """Upgrade (or downgrade) the database to `revision` only, as an install of that release would have it."""
    with write_transaction(engine) as conn:
        (command.downgrade if downgrade else command.upgrade)(alembic_config(conn), revision)


def assert_no_drift(engine) -> None:
    """The database's schema is exactly the one backend/database.py declares."""
    with engine.connect() as conn:
        drift = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    assert drift == []


def test_migrations_build_the_declared_schema_with_no_drift(engine):
    upgrade(engine)
    assert_no_drift(engine)
    assert current_revision(engine) == HEAD


def test_running_init_db_again_changes_nothing(url, engine):
    upgrade(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO leases (name, holder, expires_at) VALUES ('x', 'y', 'z')")
    upgrade(engine)
    assert query(url, "SELECT holder FROM leases") == [("y",)]


def test_tables_made_without_migrations_are_refused_with_one_line_naming_database_url(engine):
    """Nothing was released before 0001, so such tables are not adopted (stamped) but refused, untouched."""
    metadata.create_all(engine)
    with pytest.raises(ConfigError) as refused:
        upgrade(engine)
    assert refused.value.key == "DATABASE_URL"
    assert "new, empty database" in str(refused.value) and "\n" not in str(refused.value)
    assert "alembic_version" not in inspect(engine).get_table_names()
    assert current_revision(engine) is None


def test_the_released_revision_is_the_only_head():
    """0001 is released: a schema change must come as a new revision on top of it (migrations/README.md)."""
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(alembic_config())
    assert [s.revision for s in scripts.walk_revisions()][-1] == "0001"
    assert len(scripts.get_heads()) == 1


def test_upgrading_a_released_0001_database_keeps_its_rows_and_reaches_the_declared_schema(url, engine):
    """0002 (the targets file) and on to the head, on a database made and filled by the released 0001."""
    migrate_to(engine, "0001")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO events (target_url, status_code, response_time_ms, timestamp, is_success, "
            "error_message, received_at, event_uid, is_late, checked_at) VALUES ('https://a.example/', 503, "
            "12, '2026-01-01 00:00:00', 0, 'HTTP 503', '2026-01-01 00:00:01', NULL, 0, '2026-01-01 00:00:00.000')")
        conn.exec_driver_sql("INSERT INTO targets (target_url, failures_in_a_row, last_check_at) "
                             "VALUES ('https://a.example/', 1, '2026-01-01 00:00:00.000')")
    assert current_revision(engine) == "0001"

    upgrade(engine)

    assert current_revision(engine) == HEAD
    assert query(url, "SELECT target_url, status_code, target, agent FROM events") == [
        ("https://a.example/", 503, None, None)]
    assert query(url, "SELECT failures_in_a_row FROM targets") == [(1,)]
    assert query(url, "SELECT id, fingerprint FROM targets_file") == [(1, None)]
    assert query(url, "SELECT COUNT(*) FROM file_targets") == [(0,)]
    assert_no_drift(engine)


def test_upgrading_a_0002_database_keeps_its_rows_and_adds_an_empty_agents_table(url, engine):
    """0003 (GET /agents) on a database made and filled at 0002 (migrations/README.md)."""
    migrate_to(engine, "0002")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO events (target_url, status_code, response_time_ms, timestamp, is_success, "
            "error_message, received_at, event_uid, is_late, checked_at, target, agent) VALUES "
            "('https://a.example/', 200, 12, '2026-01-01 00:00:00', 1, NULL, '2026-01-01 00:00:01', NULL, 0, "
            "'2026-01-01 00:00:00.000', 'a', 'host-1')")
        conn.exec_driver_sql("INSERT INTO file_targets (name, position, kind, target_url, spec, loaded_at, "
                             "changed_at) VALUES ('a', 0, 'http', 'https://a.example/', '{}', 'x', 'x')")

    upgrade(engine)

    assert current_revision(engine) == HEAD
    assert query(url, "SELECT target, agent FROM events") == [("a", "host-1")]
    assert query(url, "SELECT name FROM file_targets") == [("a",)]
    assert query(url, "SELECT COUNT(*) FROM agents") == [(0,)]  # filled as agents are heard from again
    assert_no_drift(engine)


def filled_at_0003(engine) -> None:
    """Make the database a 0003 one: URL target a.example with an OPEN ERROR, file target `shop` with one too."""
    migrate_to(engine, "0003")
    with engine.begin() as conn:
        for checked, status, ok, target in (("https://a.example/", 503, 0, None),
                                            ("https://shop.example/health", 503, 0, "shop"),
                                            ("tcp://db.example:5432", None, 1, "db"),
                                            ("https://b.example/", 503, 1, None)):
            conn.exec_driver_sql(
                "INSERT INTO events (target_url, status_code, response_time_ms, timestamp, is_success, "
                "error_message, received_at, event_uid, is_late, checked_at, target) VALUES "
                f"('{checked}', {status or 'NULL'}, 12, '2026-01-01 00:00:00', {ok}, NULL, '2026-01-01 00:00:01', "
                f"NULL, 0, '2026-01-01 00:00:00.000', {repr(target) if target else 'NULL'})")
        conn.exec_driver_sql("INSERT INTO file_targets (name, position, kind, target_url, spec, loaded_at, "
                             "changed_at) VALUES ('shop', 0, 'http', 'https://shop.example/health', '{}', 'x', 'x')")
        for event_id, checked in ((1, "https://a.example/"), (2, "https://shop.example/health")):
            conn.exec_driver_sql("INSERT INTO alerts (event_id, target_url, alert_type, status, created_at, message) "
                                 f"VALUES ({event_id}, '{checked}', 'ERROR', 'OPEN', 'x', 'Service is down: HTTP 503')")
        for checked, failures in (("https://a.example/", 3), ("https://shop.example/health", 4)):
            conn.exec_driver_sql("INSERT INTO targets (target_url, failures_in_a_row, last_check_at) "
                                 f"VALUES ('{checked}', {failures}, '2026-01-01 00:00:00.000')")
        conn.exec_driver_sql("INSERT INTO deliveries (alert_id, event_id, channel, notice_type, status, attempts, "
                             "next_attempt_at, created_at) VALUES (1, 1, 'slack', 'ERROR', 'SENT', 1, 'x', 'x')")


def test_upgrading_a_0003_database_keys_alerts_and_rule_state_by_target_name(url, engine):
    """0004: alerts and rule state move to the target's name (its event's `target`, else the URL); verdicts stored."""
    from sqlalchemy.exc import IntegrityError

    filled_at_0003(engine)
    upgrade(engine)

    assert current_revision(engine) == HEAD
    assert query(url, "SELECT target, target_url, status FROM alerts ORDER BY id") == [
        ("https://a.example/", "https://a.example/", "OPEN"), ("shop", "https://shop.example/health", "OPEN")]
    assert query(url, "SELECT name, failures_in_a_row, successes_in_a_row, slow_in_a_row, clear_in_a_row "
                      "FROM targets ORDER BY name") == [("https://a.example/", 3, 0, 0, 0), ("shop", 4, 0, 0, 0)]
    assert query(url, "SELECT dns_ms, connect_ms, tls_ms, first_byte_ms, cert_expires_at FROM events "
                      "WHERE id = 1") == [(None, None, None, None, None)]
    # As 0003 judged them: §5's rule without a `target`, the agent's verdict with one.
    assert query(url, "SELECT failed FROM events ORDER BY id") == [(1,), (1,), (0,), (1,)]
    with pytest.raises(IntegrityError), engine.begin() as conn:  # one active alert per target name
        conn.exec_driver_sql("INSERT INTO alerts (event_id, target_url, target, alert_type, status, created_at, "
                             "message) VALUES (1, 'https://b.example/', 'shop', 'WARNING', 'ACK', "
                             "'x', 'slow')")
    assert_no_drift(engine)


def test_a_file_target_keeps_its_open_alert_across_the_0004_upgrade(url, engine):
    """After the upgrade, the next failure of `shop` is deduplicated into its OPEN alert, and a success resolves it."""
    from backend.ingest import Batch
    from backend.target_rules import TargetRules
    from backend.validation import parse_events

    filled_at_0003(engine)
    upgrade(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE targets_file SET fingerprint = 'f'")
    for second, ok in ((1, False), (2, True)):
        with write_transaction(engine) as conn:
            Batch(conn, ["slack"], TargetRules(3)).record(parse_events([{
                "target_url": "https://shop.example/health", "target": "shop", "status_code": 200 if ok else 503,
                "response_time_ms": 5, "timestamp": f"2026-01-01T00:00:0{second}Z", "is_success": ok}]))
    assert query(url, "SELECT id, target, status FROM alerts ORDER BY id") == [
        (1, "https://a.example/", "OPEN"), (2, "shop", "RESOLVED")]


def test_downgrading_a_populated_database_to_0003_keeps_its_rows(url, engine):
    """0004's downgrade drops its columns in place: no table rebuild that foreign keys to alerts and events refuse."""
    filled_at_0003(engine)
    upgrade(engine)
    migrate_to(engine, "0003", downgrade=True)
    assert current_revision(engine) == "0003"
    assert query(url, "SELECT COUNT(*) FROM events") == [(4,)]
    assert query(url, "SELECT target_url, status FROM alerts ORDER BY id") == [
        ("https://a.example/", "OPEN"), ("https://shop.example/health", "OPEN")]
    columns = {c["name"] for c in inspect(engine).get_columns("events")}
    assert not columns & {"failed", "dns_ms", "cert_expires_at", "batch_position"}


@pytest.mark.skipif(not IS_POSTGRES, reason="SQLite keeps the default: dropping it needs a rebuild foreign keys refuse")
def test_alerts_target_has_no_default_after_0004(engine):
    """An alert stored without its target name is refused, not keyed by an empty name."""
    upgrade(engine)
    [column] = [c for c in inspect(engine).get_columns("alerts") if c["name"] == "target"]
    assert column["default"] is None


def test_upgrading_a_0003_database_gives_loaded_push_targets_a_token_at_the_next_start(url, engine, tmp_path):
    """0005 (push targets) on a database made and filled at 0003: the next load adds the token, keeps loaded_at."""
    from backend.config import load_settings
    from backend.target_list import TargetList

    targets = tmp_path / "targets.yaml"
    targets.write_text("targets:\n  - {name: nightly, kind: push, period: 60, grace: 5}\n", encoding="utf-8")
    migrate_to(engine, "0003")
    settings = load_settings({"API_KEY": "k" * 20, "DATABASE_URL": url, "TARGETS_FILE": str(targets)})
    with engine.begin() as conn:  # as the 0003 code loaded it: no token, no target_url
        conn.exec_driver_sql(
            "INSERT INTO file_targets (name, position, kind, target_url, spec, loaded_at, changed_at) VALUES "
            "('nightly', 0, 'push', NULL, '{}', '2026-01-01 00:00:00', '2026-01-01 00:00:00')")
        conn.exec_driver_sql("UPDATE targets_file SET fingerprint = 'the same file'")

    upgrade(engine)
    assert query(url, "SELECT fingerprint FROM targets_file") == [(None,)]  # the file is loaded again
    assert query(url, "SELECT beat_at, resumed_at FROM deadline_timer") == [(None, None)]
    TargetList(engine, settings).load_at_start()

    [(token, target_url, loaded_at)] = query(url, "SELECT ping_token, target_url, loaded_at FROM file_targets")
    assert len(token) == 32 and target_url == "push://nightly" and loaded_at == "2026-01-01 00:00:00"


def test_upgrading_a_0003_database_rolls_up_the_events_it_already_holds(url, engine):
    """0006 (stats rollups) on a database filled at 0003: the watermark starts at 0, the roller backfills."""
    from backend.rollups import Roller

    migrate_to(engine, "0003")
    with engine.begin() as conn:
        for minute, ok in ((0, 1), (1, 0)):
            conn.exec_driver_sql(
                "INSERT INTO events (target_url, status_code, response_time_ms, timestamp, is_success, "
                "error_message, received_at, is_late, checked_at, target) VALUES "
                f"('https://a.example/', 200, 12, '2026-01-01 00:0{minute}:00', {ok}, NULL, "
                f"'2026-01-01 00:0{minute}:01', 0, '2026-01-01 00:0{minute}:00.000', 'a')")
    upgrade(engine)
    assert query(url, "SELECT last_event_id FROM rollup_progress") == [(0,)]
    roller = Roller(engine, 60, start=False)
    assert roller.run_once() == 2
    assert query(url, "SELECT target, hour, checks, failures FROM rollups") == [
        ("a", "2026-01-01 00:00:00", 2, 1)]


def test_downgrading_0010_and_0009_with_rows_leaves_what_older_code_reads_and_upgrades_again(url, engine):
    """Below 0010 no dispatcher knows REMINDER or ESCALATION; below 0009 a log row is an attempt (SENT or FAILED)."""
    upgrade(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO events (target_url, status_code, response_time_ms, timestamp, is_success, error_message, "
            "received_at, is_late, checked_at, target) VALUES ('https://a.example/', 503, 12, '2026-01-01 00:00:00', "
            "0, 'HTTP 503', '2026-01-01 00:00:01', 0, '2026-01-01 00:00:00.000', 'a')")
        conn.exec_driver_sql(
            "INSERT INTO alerts (event_id, target_url, target, alert_type, status, created_at, message, remind_at) "
            "VALUES (1, 'https://a.example/', 'a', 'ERROR', 'OPEN', '2026-01-01 00:00:01', 'HTTP 503', "
            "'2026-01-01 00:10:01')")
        for notice, status in (("ERROR", "SENT"), ("REMINDER", "PENDING"), ("ESCALATION", "PENDING")):
            conn.exec_driver_sql(
                "INSERT INTO deliveries (alert_id, event_id, channel, notice_type, status, attempts, next_attempt_at, "
                f"created_at) VALUES (1, 1, 'CONSOLE', '{notice}', '{status}', 0, '2026-01-01 00:10:01', "
                "'2026-01-01 00:10:01')")
        for status, by in (("SENT", "NULL"), ("SUPPRESSED", "'maintenance nightly'")):
            conn.exec_driver_sql(
                "INSERT INTO notification_logs (alert_id, channel, notice_type, status, attempted_at, retry_count, "
                f"suppressed_by) VALUES (1, 'CONSOLE', 'ERROR', '{status}', '2026-01-01 00:00:02', 0, {by})")

    migrate_to(engine, "0008", downgrade=True)

    assert query(url, "SELECT notice_type, status FROM deliveries ORDER BY id") == [
        ("ERROR", "SENT"), ("REMINDER", "FAILED"), ("ESCALATION", "FAILED")]  # never handed to older code
    assert query(url, "SELECT status FROM notification_logs ORDER BY id") == [("SENT",)]
    if not IS_POSTGRES:  # ids never reused: the rebuilt table keeps AUTOINCREMENT, as 0007 made it
        [(sql,)] = query(url, "SELECT sql FROM sqlite_master WHERE name = 'notification_logs'")
        assert "AUTOINCREMENT" in sql
    upgrade(engine)
    assert current_revision(engine) == HEAD
    assert query(url, "SELECT status FROM alerts") == [("OPEN",)]
    assert_no_drift(engine)
