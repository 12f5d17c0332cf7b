"""Delivery (SPEC §6): the Dispatcher with a real TelegramNotifier against a local fake Bot API.

Every attempt is a notification_logs row; failures are retried with backoff; a slow or failing
channel never slows POST /events, and never holds up the console.
"""

from __future__ import annotations

import io
import logging
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone

import pytest
from sqlalchemy import create_engine

from backend import store
from backend.config import ConfigError, load_settings
from backend.database import make_engine, write_transaction
from backend.migrate import upgrade
from backend.dispatch import Dispatcher
from backend.leases import holder_id, holder_is_dead
from backend.factory import create_app
from backend.log_setup import configure_logging
from backend.messages import Notice, telegram_text
from backend.rules import AlertType
from backend.notifiers import ConsoleNotifier, Notifier, TelegramNotifier
from backend.service import AlertService
from backend.time_text import precise_text
from backend.validation import parse_events
from tests.backend_fixtures import API_KEY, Api, Db, engine, event  # noqa: F401 (engine: a fixture)
from tests.support.databases import database_url
from tests.support.procs import ROOT, base_env, run_to_exit, start, stop, wait_until

TOKEN = "123456:FAKE-bot-token-DO-NOT-LOG"
CHAT_ID = "4242"



@pytest.fixture
def db(tmp_path) -> Db:
    return Db(database_url(tmp_path))


@pytest.fixture
def make_dispatcher(engine):
    """Dispatchers over the test database, closed at teardown."""
    made: list[Dispatcher] = []

    def make(notifiers, retries: int = 3, backoff_base_seconds: float = 0.01) -> Dispatcher:
        dispatcher = Dispatcher(engine, notifiers, retries=retries, backoff_base_seconds=backoff_base_seconds)
        made.append(dispatcher)
        return dispatcher

    yield make
    for dispatcher in made:
        dispatcher.close()


def telegram_notifier(telegram, timeout: float = 5.0) -> TelegramNotifier:
    return TelegramNotifier(TOKEN, CHAT_ID, telegram.base_url, timeout)


def raise_alert(engine, target_url: str = "https://t.example/") -> list[Notice]:
    """Store one failing event with threshold 1, as POST /events would: the alert and its outbox row."""
    [recorded] = AlertService(engine, failure_threshold=1, channels=["TELEGRAM"]).record_events(
        parse_events(event(target_url=target_url, ok=False, status=503, response_time_ms=5000)))
    assert recorded.alert is not None
    return [Notice(recorded.alert["id"], AlertType.ERROR, target_url, 503, 5000, "HTTP 503",
                   "2025-01-08 15:30:45")]


def attempts(db: Db) -> list[dict]:
    return [dict(r) for r in db.rows("SELECT * FROM notification_logs ORDER BY id")]


def test_a_delivered_message_is_one_sent_row_with_telegrams_message_id(engine, db, telegram, make_dispatcher):
    notices = raise_alert(engine)
    dispatcher = make_dispatcher([telegram_notifier(telegram)])
    dispatcher.wake()
    assert dispatcher.wait_idle(10)
    [sent] = telegram.sent_messages()
    assert sent["text"] == telegram_text(notices[0])
    assert sent["text"].startswith(
        "🚨 서비스 장애 알림\n\nURL: https://t.example/\n상태: 503 Service Unavailable\n")
    assert str(sent["chat_id"]) == CHAT_ID
    [row] = attempts(db)
    assert (row["alert_id"], row["channel"], row["notice_type"], row["status"], row["retry_count"]) == (
        notices[0].alert_id, "TELEGRAM", "ERROR", "SENT", 0)
    assert row["message_id"] == str(sent["message_id"])
    assert row["response_code"] == 200


def test_a_failing_channel_is_tried_four_times_and_every_attempt_is_a_row(engine, db, telegram, make_dispatcher,
                                                                           caplog):
    telegram.mode = "fail"
    raise_alert(engine)
    dispatcher = make_dispatcher([telegram_notifier(telegram)])
    with caplog.at_level(logging.WARNING, logger="backend"):
        dispatcher.wake()
        assert dispatcher.wait_idle(10)
    rows = attempts(db)
    assert [r["retry_count"] for r in rows] == [0, 1, 2, 3]
    assert {r["status"] for r in rows} == {"FAILED"}
    assert all(r["response_code"] == 500 for r in rows)
    assert rows[-1]["error_message"] and "500" in rows[-1]["error_message"]
    assert rows[-1]["message_id"] is None
    assert len(telegram.requests) == 4
    errors = [r for r in caplog.records if r.levelno == logging.ERROR and r.name.startswith("backend")]
    assert len(errors) == 1
    assert "FAILED" in errors[0].getMessage() and "TELEGRAM" in errors[0].getMessage()


def test_one_failure_then_success_is_a_failed_row_then_a_sent_row(engine, db, telegram, make_dispatcher):
    telegram.modes = ["fail"]
    raise_alert(engine)
    dispatcher = make_dispatcher([telegram_notifier(telegram)])
    dispatcher.wake()
    assert dispatcher.wait_idle(10)
    rows = attempts(db)
    assert [(r["status"], r["retry_count"]) for r in rows] == [("FAILED", 0), ("SENT", 1)]
    assert rows[1]["message_id"] == str(telegram.sent_messages()[0]["message_id"])
    assert len(telegram.sent_messages()) == 1


def test_flood_control_waits_at_least_the_retry_after_telegram_asks_for(engine, db, telegram, make_dispatcher):
    """With a 10 ms backoff, only honouring retry_after (1 s) can make the retry wait a second."""
    telegram.modes = ["flood"]
    telegram.retry_after = 1
    raise_alert(engine)
    dispatcher = make_dispatcher([telegram_notifier(telegram)], backoff_base_seconds=0.01)
    started = time.monotonic()
    dispatcher.wake()
    wait_until(lambda: len(telegram.requests) >= 1, timeout=5, interval=0.01, message="the first Telegram request")
    first_request_at = time.monotonic()
    wait_until(lambda: len(telegram.requests) >= 2, timeout=5, interval=0.01, message="the retry")
    gap = time.monotonic() - first_request_at
    assert dispatcher.wait_idle(10)
    assert gap >= 0.9, f"the retry came {gap:.3f}s after the 429, before retry_after"
    assert time.monotonic() - started < 5
    rows = attempts(db)
    assert [(r["status"], r["retry_count"], r["response_code"]) for r in rows] == [
        ("FAILED", 0, 429), ("SENT", 1, 200)]
    assert "retry after" in rows[0]["error_message"]


def _token_scenario(engine, telegram, make_dispatcher):
    """Fail, flood, time out, succeed on the fake; and fail on a port where nothing listens."""
    telegram.modes = ["fail", "flood", "hang"]
    telegram.retry_after = 1
    telegram.hang_seconds = 10
    raise_alert(engine)
    dispatcher = make_dispatcher([telegram_notifier(telegram, timeout=0.5)], retries=3)
    assert dispatcher.wait_idle(15)
    dispatcher.close()  # gives up its lease, so the next dispatcher takes over at once
    raise_alert(engine, target_url="https://other.example/")
    unreachable = TelegramNotifier(TOKEN, CHAT_ID, "http://127.0.0.1:9/bot", 0.5)  # nothing listens on port 9
    assert make_dispatcher([unreachable], retries=1).wait_idle(15)
    assert [r["token"] for r in telegram.requests] == [TOKEN] * 4  # the token did go where it belongs


def test_the_bot_token_never_reaches_a_log_row_or_our_own_log_records(engine, db, telegram, make_dispatcher,
                                                                       caplog):
    with caplog.at_level(logging.DEBUG, logger="backend"):
        _token_scenario(engine, telegram, make_dispatcher)
    rows = attempts(db)
    # the fake: fail, flood, timeout, then sent; port 9: two refused connections
    assert sorted(r["status"] for r in rows) == ["FAILED"] * 5 + ["SENT"]
    for row in rows:
        assert TOKEN not in repr(row)
    ours = [r for r in caplog.records if r.name.startswith("backend")]
    assert any(r.levelno == logging.ERROR for r in ours)  # the unreachable channel's final failure
    for record in ours:
        assert TOKEN not in record.getMessage(), record.name
        assert TOKEN not in (record.exc_text or ""), record.name


@pytest.fixture
def backend_logging(tmp_path):
    """The logging set-up of `python backend/app.py` (configure_logging), undone afterwards.

    Yields (server.log path, what went to "stdout"): the stdout handler is pointed at a StringIO."""
    root = logging.getLogger()
    names = ("httpx", "httpcore")
    saved_handlers, saved_level = list(root.handlers), root.level
    saved_levels = {n: logging.getLogger(n).level for n in names}
    log_file = tmp_path / "logs" / "server.log"
    configure_logging(log_file)
    added = [h for h in root.handlers if h not in saved_handlers]
    stdout = io.StringIO()
    for handler in added:
        if type(handler) is logging.StreamHandler:
            handler.setStream(stdout)
    yield log_file, stdout
    for handler in added:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(saved_level)
    for name, level in saved_levels.items():
        logging.getLogger(name).setLevel(level)


def test_the_bot_token_never_reaches_server_log_or_stdout(engine, telegram, make_dispatcher, backend_logging):
    """Libraries log Bot API URLs (httpx at INFO, telegram.Bot at DEBUG); the backend's set-up keeps them out."""
    log_file, stdout = backend_logging
    _token_scenario(engine, telegram, make_dispatcher)
    for output in (log_file.read_text(encoding="utf-8"), stdout.getvalue()):
        assert "TELEGRAM ERROR for alert 1" in output  # the attempts were logged
        assert TOKEN not in output


# --- a slow channel through the app -------------------------------------------------------------

@pytest.fixture
def hanging_app(tmp_path, telegram):
    """The app with console and a real TelegramNotifier whose fake Bot API never answers in time."""
    telegram.mode = "hang"
    telegram.hang_seconds = 30
    settings = load_settings({"API_KEY": API_KEY, "DATABASE_URL": database_url(tmp_path),
                              "BACKEND_LOG_FILE": str(tmp_path / "server.log"), "FAILURE_THRESHOLD": "1",
                              "NOTIFY_BACKOFF_SECONDS": "0.01", "NOTIFY_TIMEOUT_SECONDS": "5"})
    console = io.StringIO()
    app = create_app(settings, notifiers=[ConsoleNotifier(settings.log_file, stream=console),
                                          TelegramNotifier(TOKEN, CHAT_ID, telegram.base_url, 5.0)])
    app.console = console
    yield app
    telegram.release.set()  # let the held request go, so the worker stops promptly
    app.extensions["outage"].close()  # the dispatcher, the retention thread and the engine


def test_a_hanging_telegram_does_not_slow_post_events(hanging_app, telegram):
    api = Api(hanging_app.test_client())
    started = time.monotonic()
    first = api.send(event(ok=False))
    assert first["alert"] is not None
    wait_until(lambda: telegram.requests, timeout=5, message="Telegram to be asked")
    # Telegram now holds the ERROR message for up to 5 s; the recovery must not wait for it.
    second_started = time.monotonic()
    second = api.send(event(ok=True))
    second_took = time.monotonic() - second_started
    assert second["alert"]["status"] == "RESOLVED"
    assert second_took < 2.5, f"POST /events took {second_took:.2f}s while Telegram hung"
    assert not telegram.release.is_set() and not telegram.sent_messages()  # the fake was still holding on
    assert time.monotonic() - started < 5


def test_console_delivery_goes_on_while_telegram_hangs(hanging_app, telegram, tmp_path):
    api = Api(hanging_app.test_client())
    api.send(event(ok=False))
    api.send(event(ok=True))
    wait_until(lambda: "[ALERT] RECOVERY" in hanging_app.console.getvalue(), timeout=3,
               message="the console RECOVERY block")
    assert "[ALERT] ERROR" in hanging_app.console.getvalue()
    rows = Db(database_url(tmp_path)).rows("SELECT channel, notice_type, status FROM notification_logs ORDER BY id")
    assert [tuple(r) for r in rows if r["channel"] == "CONSOLE"] == [
        ("CONSOLE", "ERROR", "SENT"), ("CONSOLE", "RECOVERY", "SENT")]
    assert not [r for r in rows if r["channel"] == "TELEGRAM"]  # Telegram is still stuck on its first try
    assert not telegram.sent_messages()


# --- one send per row, whatever the lease does --------------------------------------------------

class SlowRecorder(Notifier):
    """A TELEGRAM channel that takes 50 ms per message and records what it sent."""

    channel = "TELEGRAM"

    def __init__(self):
        self.sent: list[tuple[int, str]] = []
        self.lock = threading.Lock()

    def send(self, notice: Notice) -> str | None:
        time.sleep(0.05)
        with self.lock:
            self.sent.append((notice.alert_id, notice.notice_type.value))
        return None


def test_two_dispatchers_with_the_lease_forced_open_send_each_row_once(engine, db, make_dispatcher, monkeypatch):
    monkeypatch.setattr(store, "acquire_lease", lambda *args, **kwargs: True)  # both "hold" the lease
    for n in range(8):
        raise_alert(engine, target_url=f"https://t{n}.example/")
    channel = SlowRecorder()
    first, second = make_dispatcher([channel]), make_dispatcher([channel])
    first.wake()
    second.wake()
    assert first.wait_idle(20)
    assert sorted(channel.sent) == sorted(set(channel.sent)), "a row was sent twice"
    assert len(channel.sent) == 8
    assert db.rows("SELECT COUNT(*) AS n FROM notification_logs")[0]["n"] == 8


def test_two_dispatcher_processes_with_the_lease_forced_open_send_each_row_once(engine, db, tmp_path):
    for n in range(12):
        raise_alert(engine, target_url=f"https://t{n}.example/")
    out = tmp_path / "sent.txt"
    env = base_env(tmp_path)
    procs = [start(["-m", "tests.support.dispatch_proc", database_url(tmp_path), str(out)], env,
                   tmp_path / f"dispatch{i}.out") for i in range(2)]
    try:
        wait_until(lambda: db.rows("SELECT COUNT(*) AS n FROM deliveries WHERE status = 'SENT'")[0]["n"] == 12, 30,
                   message="every delivery sent")
    finally:
        codes = [stop(proc) for proc in procs]
    lines = out.read_text(encoding="utf-8").splitlines()
    sent = [line.rsplit(" ", 1)[0] for line in lines]
    assert len(sent) == 12 and len(set(sent)) == 12, lines
    assert codes == [0, 0]
    assert db.rows("SELECT COUNT(*) AS n FROM notification_logs")[0]["n"] == 12


def test_a_lease_shorter_than_three_attempt_timeouts_stops_the_start_naming_the_key(tmp_path):
    with pytest.raises(ConfigError) as refused:
        load_settings({"API_KEY": API_KEY, "NOTIFY_TIMEOUT_SECONDS": "20", "NOTIFY_LEASE_SECONDS": "30"})
    assert refused.value.key == "NOTIFY_LEASE_SECONDS"
    assert "NOTIFY_TIMEOUT_SECONDS" in str(refused.value)
    assert load_settings({"API_KEY": API_KEY, "NOTIFY_TIMEOUT_SECONDS": "20", "NOTIFY_LEASE_SECONDS": "60"})
    env = base_env(tmp_path, NOTIFY_TIMEOUT_SECONDS="20", NOTIFY_LEASE_SECONDS="30")
    assert run_to_exit(["backend/app.py"], env, tmp_path / "backend.out", timeout=30) == 2
    output = (tmp_path / "backend.out").read_text(encoding="utf-8")
    assert output.strip().count("\n") == 0 and "NOTIFY_LEASE_SECONDS" in output, output


def test_a_poll_longer_than_half_the_lease_never_lets_the_lease_lapse(engine, db, tmp_path):
    # NOTIFY_POLL_SECONDS up to 60 with NOTIFY_LEASE_SECONDS down to 1: the wait ends at renewal time.
    dispatcher = Dispatcher(engine, [ConsoleNotifier(tmp_path / "console.log", stream=io.StringIO())],
                            poll_seconds=30, lease_seconds=1)
    try:
        wait_until(lambda: db.rows("SELECT holder FROM leases WHERE name = 'dispatcher:CONSOLE'"), 10,
                   message="the console lease taken")
        [first] = db.rows("SELECT holder, expires_at FROM leases WHERE name = 'dispatcher:CONSOLE'")
        time.sleep(2.5)  # five half-lives
        [now] = db.rows("SELECT holder, expires_at FROM leases WHERE name = 'dispatcher:CONSOLE'")
        assert now["holder"] == first["holder"] and now["expires_at"] > first["expires_at"]
        assert now["expires_at"] > precise_text(datetime.now(timezone.utc))  # still held, not lapsed
    finally:
        dispatcher.close()


# --- lease holders ------------------------------------------------------------------------------

def test_a_holder_is_alive_while_its_process_runs_and_dead_once_it_is_gone(tmp_path):
    assert not holder_is_dead(holder_id())
    child = subprocess.run([sys.executable, "-c", "from backend.leases import holder_id; print(holder_id())"],
                           capture_output=True, text=True, timeout=30, cwd=ROOT, check=True)
    assert holder_is_dead(child.stdout.strip())


def test_a_reused_pid_is_dead_but_another_machine_or_pid_namespace_is_never_judged(tmp_path):
    host, namespace, pid, started, suffix = holder_id().split(":")
    assert holder_is_dead(f"{host}:{namespace}:{pid}:{int(started) + 1}:{suffix}")  # our PID, another start
    gone = "99999999"  # above the largest pid_max Linux allows (2**22), so never a running process
    assert holder_is_dead(f"{host}:{namespace}:{gone}:{started}:{suffix}")
    assert not holder_is_dead(f"{host}:{int(namespace) + 1}:{gone}:{started}:{suffix}")  # another container
    assert not holder_is_dead(f"other-{host}:{namespace}:{gone}:{started}:{suffix}")
    assert not holder_is_dead(f"{host}:{gone}:{suffix}")  # an older, shorter id: only its expiry frees it


LEASE = "console"
T0, T1, T2, T3 = (f"2026-01-01 00:{m}.000" for m in ("00:00", "00:30", "01:00", "01:30"))


def test_a_takeover_loses_to_a_renewal_committed_after_it_read_the_lease(engine, db):
    """B reads A's lease and judges A dead; A renews and commits; B's update must then change nothing."""
    with engine.begin() as conn:
        assert store.acquire_lease(conn, LEASE, "A", T0, T1)
    renewed = []

    def a_renews_meanwhile(holder: str) -> bool:
        # Between B's read and B's update, on a connection of its own, committed.
        with write_transaction(engine) as other:
            renewed.append(store.acquire_lease(other, LEASE, "A", T0, T2))
        return True  # B judged A's process gone from what it had read

    # B in autocommit: each statement sees what is committed when it runs, as in PostgreSQL's READ
    # COMMITTED (where an UPDATE waits for a concurrent one, then re-checks its WHERE on the new row).
    # The backend's own SQLite writers lock first (BEGIN IMMEDIATE); this one lets the race happen.
    other_engine = create_engine(engine.url, isolation_level="AUTOCOMMIT")
    try:
        with other_engine.connect() as conn:
            taken = store.acquire_lease(conn, LEASE, "B", T0, T3, is_dead=a_renews_meanwhile)
    finally:
        other_engine.dispose()
    assert renewed == [True]
    assert not taken
    rows = db.rows("SELECT holder, expires_at FROM leases")
    assert [tuple(r) for r in rows] == [("A", T2)]


# --- notices for a channel that is gone ---------------------------------------------------------

def test_notices_for_a_removed_channel_are_failed_at_start_with_the_reason(tmp_path, db):
    settings = load_settings({"API_KEY": API_KEY, "DATABASE_URL": database_url(tmp_path),
                              "BACKEND_LOG_FILE": str(tmp_path / "server.log")})
    engine = make_engine(settings.database_url)
    upgrade(engine)
    [recorded] = AlertService(engine, failure_threshold=1, channels=["CONSOLE", "TELEGRAM"]).record_events(
        parse_events(event(ok=False)))
    engine.dispose()
    alert_id = recorded.alert["id"]

    app = create_app(settings, notifiers=[ConsoleNotifier(settings.log_file, stream=io.StringIO())])
    try:
        assert app.extensions["outage"].dispatcher.wait_idle(10)
        rows = db.rows("SELECT channel, status, finished_at FROM deliveries ORDER BY id")
        assert [(r["channel"], r["status"]) for r in rows] == [("CONSOLE", "SENT"), ("TELEGRAM", "FAILED")]
        assert rows[1]["finished_at"]
        answer = Api(app.test_client()).get(f"/alerts/{alert_id}").get_json()
        telegram_logs = [n for n in answer["notifications"] if n["channel"] == "TELEGRAM"]
        assert [(n["status"], n["notice_type"], n["error_message"]) for n in telegram_logs] == [
            ("FAILED", "ERROR", "channel TELEGRAM is not configured")]
    finally:
        app.extensions["outage"].close()


def test_closing_the_app_leaves_no_dispatch_or_retention_thread(settings_for_threads):
    before = set(threading.enumerate())
    app = create_app(settings_for_threads, notifiers=[ConsoleNotifier(settings_for_threads.log_file,
                                                                      stream=io.StringIO())])
    started = [t for t in threading.enumerate() if t not in before]
    assert {t.name for t in started} >= {"dispatch-console", "retention"}
    app.extensions["outage"].close()
    assert [t.name for t in threading.enumerate() if t not in before and t.is_alive()] == []


@pytest.fixture
def settings_for_threads(tmp_path):
    return load_settings({"API_KEY": API_KEY, "DATABASE_URL": database_url(tmp_path),
                          "BACKEND_LOG_FILE": str(tmp_path / "server.log")})



def test_a_notice_carries_the_targets_name_and_the_alert_as_it_is_when_sent(engine, make_dispatcher):
    """Channels that show more than the URL (webhook, email) get the target's name and the alert at send time."""
    [notice] = raise_alert(engine, "https://named.example/")
    with write_transaction(engine) as conn:  # acknowledged before the attempt: the notice shows it
        assert store.set_alert_status(conn, notice.alert_id, ("OPEN",), {"status": "ACK", "acknowledged_at": "x"})
    sent: list[Notice] = []

    class Recording(Notifier):
        channel = "TELEGRAM"

        def send(self, notice: Notice) -> str | None:
            sent.append(notice)
            return None

    dispatcher = make_dispatcher([Recording()])
    dispatcher.wake()
    assert dispatcher.wait_idle(10)
    [got] = sent
    assert got.target == "https://named.example/"
    assert got.alert["id"] == notice.alert_id and got.alert["status"] == "ACK"
    assert got.alert["alert_type"] == "ERROR" and got.alert["target_url"] == "https://named.example/"
    assert "reason" not in got.alert


class _Held(Notifier):
    """A TELEGRAM channel whose attempt waits until the test lets it finish."""

    channel = "TELEGRAM"

    def __init__(self):
        self.started, self.go = threading.Event(), threading.Event()

    def send(self, notice: Notice) -> None:
        self.started.set()
        self.go.wait(10)


def test_a_channel_removed_and_added_again_keeps_its_lease_when_the_old_worker_ends(engine, db, make_dispatcher):
    """A reload dropping and restoring a channel quickly: the old worker, ending, must not give up the new one's lease."""
    old = _Held()
    dispatcher = make_dispatcher([old])
    raise_alert(engine)
    dispatcher.wake()
    assert old.started.wait(10)
    [old_worker] = dispatcher._threads
    dispatcher.set_channels([])
    renewed = _Held()
    renewed.go.set()
    dispatcher.set_channels([renewed])
    raise_alert(engine, "https://u.example/")  # more work for the channel
    dispatcher.wake()
    time.sleep(0.5)  # time for the new worker to ask for the lease: it must wait, one worker per channel
    assert not renewed.started.is_set()
    old.go.set()  # the old attempt ends; its worker records it, gives up its own lease and stops
    old_worker.join(10)
    assert not old_worker.is_alive()
    wait_until(lambda: db.rows("SELECT holder FROM leases WHERE name = 'dispatcher:TELEGRAM'"), 5,
               message="the new worker holding the channel's lease")
    assert renewed.started.wait(10)  # and then the new worker delivers
