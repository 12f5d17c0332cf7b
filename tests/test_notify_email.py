"""The email channel end to end (SPEC §10): the real backend process, real events, a real local SMTP server."""

from __future__ import annotations

import socket
from datetime import datetime, timedelta, timezone

import pytest

from backend.email_settings import EmailSettings
from backend.messages import Notice
from backend.notifiers import DeliveryError, EmailNotifier
from backend.rules import AlertType
from tests.support.procs import Backend, assert_no_secret_in_any_file, wait_until
from tests.support.smtp import SmtpServer
from tests.support.tls import issue

URL = "https://shop.example/health"
PASSWORD = "smtp-pw-SECRET-7781"


@pytest.fixture
def smtp():
    server = SmtpServer().start()
    yield server
    server.stop()


def shop_file(tmp_path, channels: str = "[email]"):
    """The targets file: one target, `shop`, alerting on the first failure, routed to `channels`."""
    (tmp_path / "targets.yaml").write_text(
        f"targets:\n  - name: shop\n    url: {URL}\n    failure_threshold: 1\n    channels: {channels}\n",
        encoding="utf-8")


def outage_and_recovery(backend: Backend) -> None:
    """POST a failed check of shop, then a good one a second later: one alert opened and resolved."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    for offset, ok in ((-2, False), (-1, True)):
        stamp = (now + timedelta(seconds=offset)).isoformat().replace("+00:00", "Z")
        event = {"target_url": URL, "timestamp": stamp, "is_success": ok, "status_code": 200 if ok else 503,
                 "response_time_ms": 120, "error_message": None if ok else "HTTP 503"}
        assert backend.api("POST", "/events", json=event).status_code == 201


def body(message, subtype: str) -> str:
    """A part of a received message, its line ends as written (SMTP carries CRLF)."""
    return message.get_body((subtype,)).get_content().replace("\r\n", "\n")


def email_rows(backend: Backend) -> list[tuple]:
    return backend.rows("SELECT notice_type, status, response_code, message_id, error_message FROM notification_logs "
                        "WHERE channel = 'EMAIL' ORDER BY id")


def test_an_outage_and_its_recovery_arrive_as_two_emails_after_a_4xx_retry(tmp_path, smtp):
    shop_file(tmp_path)
    smtp.keeper.replies.append("451 4.3.0 Mailbox busy, try again later")  # the first DATA: a temporary refusal
    backend = Backend(tmp_path, SMTP_HOST="127.0.0.1", SMTP_PORT=str(smtp.port),
                      SMTP_TO="ops@example.com, oncall@example.com", SMTP_FROM="Outage alerts <alerts@example.com>",
                      NOTIFY_LANGUAGE="en", NOTIFY_BACKOFF_SECONDS="0.1").start()
    try:
        outage_and_recovery(backend)
        wait_until(lambda: len(smtp.received) == 2, 15, message="two emails")
        wait_until(lambda: len(email_rows(backend)) == 3, 10, message="three email rows")
    finally:
        backend.stop()
    (sender, recipients, down), (_, _, up) = smtp.received
    assert sender == "alerts@example.com" and recipients == ["ops@example.com", "oncall@example.com"]
    assert (down["Subject"], up["Subject"]) == ("[ERROR] shop", "[RECOVERY] shop")
    assert down["From"] == "Outage alerts <alerts@example.com>"
    assert down["To"] == "ops@example.com, oncall@example.com"
    text, page = body(down, "plain"), body(down, "html")
    assert text.startswith("🚨 Service outage alert\n\nTarget: shop\nURL: " + URL + "\nStatus: 503 Service Unavailable")
    assert "Message: Service is down: HTTP 503" in text and "Alert opened: " in text
    assert f'<a href="{URL}">' in page and "<th" in page and "503 Service Unavailable" in page
    assert "Alert resolved: " in body(up, "plain")
    rows = email_rows(backend)
    assert [r[:3] for r in rows] == [("ERROR", "FAILED", 451), ("ERROR", "SENT", 200), ("RECOVERY", "SENT", 200)]
    assert rows[0][4] == "SMTP server answered 451 4.3.0 Mailbox busy, try again later"
    assert [r[3] for r in rows[1:]] == [down["Message-ID"], up["Message-ID"]]
    # `channels: [email]` routes shop's notices to email alone.
    assert backend.rows("SELECT DISTINCT channel FROM notification_logs") == [("EMAIL",)]


@pytest.mark.parametrize("password, delivered", [(PASSWORD, True), ("wrong-" + PASSWORD, False)],
                         ids=["right-password", "wrong-password"])
def test_starttls_and_login_deliver_and_a_refused_login_fails_without_the_password(tmp_path, password, delivered):
    cert = issue(tmp_path, "smtp", days=30)  # self-signed for 127.0.0.1: trusted only through SMTP_CA_FILE
    smtp = SmtpServer(tls=cert.server_context(), user="alerts", password=PASSWORD).start()
    shop_file(tmp_path, "[email, console]")
    backend = Backend(tmp_path, SMTP_HOST="127.0.0.1", SMTP_PORT=str(smtp.port), SMTP_STARTTLS="true",
                      SMTP_CA_FILE=str(cert.cert), SMTP_USER="alerts", SMTP_PASSWORD=password,
                      SMTP_TO="ops@example.com", NOTIFY_RETRIES="1", NOTIFY_BACKOFF_SECONDS="0.1")
    try:
        backend.start()
        outage_and_recovery(backend)
        wait_until(lambda: len(email_rows(backend)) == (2 if delivered else 4), 15, message="the email rows")
    finally:
        backend.stop()
        smtp.stop()
    rows = email_rows(backend)
    if delivered:
        assert [(r[0], r[1]) for r in rows] == [("ERROR", "SENT"), ("RECOVERY", "SENT")]
        assert [m["Subject"] for _, _, m in smtp.received] == ["[ERROR] shop", "[RECOVERY] shop"]
        assert smtp.logins == [("alerts", True), ("alerts", True)]
        assert smtp.received[0][0] == f"outage-alerts@{socket.gethostname()}"  # SMTP_FROM's default
    else:
        assert smtp.received == [] and smtp.logins and not any(ok for _, ok in smtp.logins)
        assert [(r[0], r[1], r[2]) for r in rows] == [("ERROR", "FAILED", 535)] * 2 + [("RECOVERY", "FAILED", 535)] * 2
        assert rows[0][4].startswith("SMTP login as alerts refused: 535")
        assert all(PASSWORD not in (r[4] or "") for r in rows)
        assert "FAILED after 2 attempts: SMTP login as alerts refused: 535" in backend.log_text()
    assert_no_secret_in_any_file(tmp_path, PASSWORD)  # the log, the captured output, the SQLite file


def test_implicit_tls_delivers_and_an_untrusted_certificate_is_a_failed_attempt(tmp_path):
    cert = issue(tmp_path, "smtps", days=30)
    smtp = SmtpServer(implicit_tls=cert.server_context()).start()
    notice = Notice(1, AlertType.WARNING, URL, 200, 950, None, "2026-12-01 10:00:00", target="shop")
    trusted = EmailSettings("127.0.0.1", smtp.port, ("ops@example.com",), "alerts@example.com", tls=True,
                            starttls=False, ca_file=cert.cert)
    try:
        message_id = EmailNotifier(trusted, 5, "en").send(notice)
        with pytest.raises(DeliveryError) as caught:  # the system's CAs do not know a certificate made here
            EmailNotifier(EmailSettings(**{**vars(trusted), "ca_file": None}), 5, "en").send(notice)
    finally:
        smtp.stop()
    [(_, _, message)] = smtp.received
    assert message["Subject"] == "[WARNING] shop" and message["Message-ID"] == message_id
    assert caught.value.reason.startswith(f"TLS error with 127.0.0.1:{smtp.port}: certificate verify failed")
