"""End to end (SPEC §8, §9): the real backend and agent, the agent pulling the targets file, local sites.

A certificate made here expiring in 3 days opens a WARNING; a slow site opens a WARNING that an
outage then replaces with an ERROR, silently; recovery waits for success_threshold good checks.
"""

from __future__ import annotations

import pytest

from tests.support.procs import Backend, base_env, start, stop, wait_until
from tests.support.servers import TargetServer
from tests.support.tls import issue, serve_tls

INTERVAL = 0.3


@pytest.fixture
def sites(tmp_path):
    """An https site whose certificate (issued by a CA made here) expires in 3 days, and a plain one."""
    ca = issue(tmp_path, "ca", days=30, is_ca=True)
    secure = serve_tls(TargetServer(), issue(tmp_path, "site", days=3, issuer=ca)).start()
    secure.ca = ca
    plain = TargetServer().start()
    yield secure, plain
    secure.stop()
    plain.stop()


def alerts(backend: Backend, target: str) -> list[tuple]:
    return backend.rows("SELECT id, alert_type, status, message, resolved_event_id FROM alerts WHERE target = ? "
                        "ORDER BY id", target)


def notices(backend: Backend, alert_id: int) -> list[str]:
    return [r[0] for r in backend.rows("SELECT notice_type FROM notification_logs WHERE alert_id = ? AND "
                                       "status = 'SENT' ORDER BY id", alert_id)]


def test_warnings_for_a_certificate_and_a_slow_site_an_outage_replacing_one_and_recovery_by_threshold(
        tmp_path, sites):
    secure, plain = sites
    targets = tmp_path / "targets.yaml"
    targets.write_text(f"""\
defaults: {{interval: {INTERVAL}, timeout: 3}}
targets:
  - name: secure
    url: '{secure.url}'
    ca_file: '{secure.ca.cert}'
    tls_expiry_days: 14
  - name: slow
    url: '{plain.url}'
    max_response_time_ms: 400
    failure_threshold: 2
    success_threshold: 2
""", encoding="utf-8")
    backend = Backend(tmp_path, TARGETS_FILE=str(targets), AGENT_REFRESH_SECONDS="60").start()
    agent = start(["agent/agent.py"], base_env(tmp_path, TARGET_URL="", BACKEND_URL=backend.url, AGENT_NAME="box-1",
                                               AGENT_TARGETS_CACHE=str(tmp_path / "targets.json")),
                  tmp_path / "agent.out")
    try:
        # The certificate: one check is enough for its WARNING, and its notice reaches the console.
        [(warning_id, kind, status, message, _)] = wait_until(lambda: alerts(backend, "secure"), 30, 0.1,
                                                              "the certificate WARNING")
        assert (kind, status) == ("WARNING", "OPEN")
        assert message.startswith("certificate expires in 3 days (")
        wait_until(lambda: notices(backend, warning_id) == ["WARNING"], 30, 0.1, "the WARNING notice")
        assert f"[ALERT] WARNING - {secure.url}\n" in backend.log_text()
        assert "Message: certificate expires in 3 days (" in backend.log_text()
        assert backend.rows("SELECT COUNT(*) FROM events WHERE target = 'secure' AND tls_ms IS NOT NULL AND "
                            "cert_expires_at IS NOT NULL") != [(0,)]

        # A slow site: two slow checks in a row (its failure_threshold) open a WARNING.
        plain.delay_seconds = 0.6
        [(slow_id, kind, _, message, _)] = wait_until(lambda: alerts(backend, "slow"), 30, 0.1, "the slow WARNING")
        assert kind == "WARNING" and "is over 400 ms (2 checks in a row)" in message

        # Then it fails: the WARNING is resolved without a notice and an ERROR opens in its place.
        plain.delay_seconds = 0.0
        plain.set_status(503)
        wait_until(lambda: len(alerts(backend, "slow")) == 2, 30, 0.1, "the ERROR")
        (_, _, warning_status, _, _), (error_id, error_kind, _, _, _) = alerts(backend, "slow")
        assert (warning_status, error_kind) == ("RESOLVED", "ERROR")

        # Recovery takes success_threshold (2) good checks in a row.
        plain.set_status(200)
        wait_until(lambda: alerts(backend, "slow")[1][2] == "RESOLVED", 30, 0.1, "the recovery")
        resolved_by = alerts(backend, "slow")[1][4]
        checks = backend.rows("SELECT id, is_success FROM events WHERE target = 'slow' ORDER BY checked_at, id")
        at = [event_id for event_id, _ in checks].index(resolved_by)
        assert [ok for _, ok in checks[at - 2:at + 1]] == [0, 1, 1]  # the second success after the outage
        wait_until(lambda: notices(backend, error_id) == ["ERROR", "RECOVERY"], 30, 0.1, "the ERROR's notices")
        assert notices(backend, slow_id) == ["WARNING"]  # no RECOVERY for the replaced WARNING
    finally:
        assert stop(agent) == 0
        backend.stop()
