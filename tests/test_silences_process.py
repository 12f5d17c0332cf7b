"""Silences and pausing with real processes (SPEC §11): backends, restarts, a second backend, the agent, fake Telegram."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from tests.support.procs import Backend, base_env, start, stop, wait_until
from tests.support.servers import TargetServer

ALERT_LINE = "[ALERT] ERROR - "


def telegram_env(telegram) -> dict[str, str]:
    return {"FAILURE_THRESHOLD": "1", "TELEGRAM_BOT_TOKEN": "12345:secret-token", "TELEGRAM_CHAT_ID": "777",
            "TELEGRAM_API_BASE_URL": telegram.base_url, "AGENT_REFRESH_SECONDS": "60"}


def beat(backend: Backend) -> str:
    """The deadline timer's heartbeat: it moves on at every pass of every backend process."""
    return backend.rows("SELECT beat_at FROM deadline_timer")[0][0] or ""


def passes_go_by(backend: Backend, count: int = 3) -> None:
    """Wait until the timer has made `count` more passes (the silence-end pass runs in the same one)."""
    for _ in range(count):
        seen = beat(backend)
        wait_until(lambda: beat(backend) > seen, 15, 0.1, "a timer pass")


def suppressed(backend: Backend) -> list[tuple]:
    return backend.rows("SELECT channel, notice_type, suppressed_by FROM notification_logs WHERE status = "
                        "'SUPPRESSED' ORDER BY channel")


def test_a_silenced_outage_is_quiet_across_restarts_and_told_once_when_the_silence_ends(tmp_path, telegram):
    site, idle = TargetServer().start(), TargetServer().start()
    targets = tmp_path / "targets.yaml"
    targets.write_text(f"""\
defaults: {{interval: 0.3, timeout: 2}}
targets:
  - {{name: shop, url: "{site.url}", tags: [prod]}}
  - {{name: paused-site, url: "{idle.url}"}}
""", encoding="utf-8")
    env = {"TARGETS_FILE": str(targets), **telegram_env(telegram)}
    backend = Backend(tmp_path, **env).start()
    second = agent = None
    try:
        ends_at = (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat()
        silence = backend.api("POST", "/silences", json={"match": "tag:prod", "ends_at": ends_at}).json()
        assert backend.api("PATCH", "/targets/paused-site", json={"paused": True}).status_code == 200
        site.set_status(503)
        agent = start(["agent/agent.py"], base_env(tmp_path, TARGET_URL="", BACKEND_URL=backend.url,
                                                   AGENT_TARGETS_CACHE=str(tmp_path / "targets.json")),
                      tmp_path / "agent.out")

        # The outage opens its alert, and every channel's notice is a SUPPRESSED row naming the silence.
        wait_until(lambda: len(suppressed(backend)) == 2, 30, 0.1, "the suppressed notices")
        assert suppressed(backend) == [("CONSOLE", "ERROR", f"silence {silence['id']}"),
                                       ("TELEGRAM", "ERROR", f"silence {silence['id']}")]
        [(alert_id, status)] = backend.rows("SELECT id, status FROM alerts WHERE target = 'shop'")
        assert status == "OPEN"

        # The paused target: never pulled, so never checked; an event sent for it opens nothing.
        wait_until(lambda: backend.rows("SELECT COUNT(*) FROM events WHERE target = 'shop'")[0][0] >= 5, 30, 0.1,
                   "a few checks of shop")
        assert backend.rows("SELECT COUNT(*) FROM events WHERE target = 'paused-site'") == [(0,)]
        assert idle.hits == 0
        answer = backend.api("POST", "/events", json={"target_url": idle.url, "target": "paused-site",
                                                      "timestamp": datetime.now(timezone.utc).isoformat(),
                                                      "is_success": False, "status_code": 503})
        assert answer.status_code == 201 and answer.json()["alert"] is None

        # A restart: a new process takes over the database and the timer; nothing goes out.
        second = Backend(tmp_path, **env).start()
        backend.stop()
        passes_go_by(second)
        assert telegram.sent_messages() == [] and ALERT_LINE not in second.log_text()

        # The silence ends, with two backend processes running: the alert, still OPEN, is told once per channel.
        backend.start()
        assert backend.api("DELETE", f"/silences/{silence['id']}").json()["state"] == "ended"
        wait_until(lambda: len(telegram.sent_messages()) == 1 and ALERT_LINE in backend.log_text(), 30, 0.1,
                   "the notice at the silence's end")
        passes_go_by(second)
        assert len(telegram.sent_messages()) == 1
        assert backend.log_text().count(ALERT_LINE) == 1
        assert backend.rows("SELECT channel, status FROM notification_logs WHERE alert_id = ? AND status = 'SENT' "
                            "ORDER BY channel", alert_id) == [("CONSOLE", "SENT"), ("TELEGRAM", "SENT")]
        assert backend.rows("SELECT COUNT(*) FROM alerts WHERE target = 'paused-site'") == [(0,)]
    finally:
        if agent is not None:
            stop(agent)
        if second is not None:
            second.stop()
        backend.stop()
        site.stop()
        idle.stop()
