"""Named channels end to end (SPEC §10): the targets file names them, a reload changes them in every backend
process, POST /channels/<name>/test tries one, and no channel secret reaches a log, a row or an answer."""

import uuid
from datetime import datetime, timezone

import pytest

from tests.support.apprise_receiver import receiver  # noqa: F401 (a fixture)
from tests.support.procs import Backend, assert_no_secret_in_any_file, wait_until

TOKEN = "chat-TOKEN-0123456789abcdef"  # written in the file as ${CHAT_TOKEN}, never literally
HOOK_SECRET = "hook-SECRET-fedcba9876543210"
SHOP = "https://shop.example/"


def write_targets(tmp_path, receiver, channels: str, routes: str) -> None:
    (tmp_path / "targets.yaml").write_text(f"""\
channels:
{channels}
  pager: {{type: webhook, url: "{receiver.url}hook", secret: "${{HOOK_SECRET}}"}}
targets:
  - {{name: shop, url: "{SHOP}", channels: [{routes}]}}
""", encoding="utf-8")


def chat(receiver, name: str) -> str:
    return f'  {name}: {{type: apprise, urls: ["json://127.0.0.1:{receiver.server_port}/{name}/${{CHAT_TOKEN}}"]}}'


@pytest.fixture
def backends(tmp_path, receiver):
    """Two real backend processes on one database and one targets file, stopped by PID at teardown."""
    write_targets(tmp_path, receiver, chat(receiver, "ops-chat"), "console, ops-chat")
    env = {"FAILURE_THRESHOLD": "1", "TARGETS_FILE": str(tmp_path / "targets.yaml"), "CHAT_TOKEN": TOKEN,
           "HOOK_SECRET": HOOK_SECRET, "NOTIFY_RETRIES": "0", "NOTIFY_TIMEOUT_SECONDS": "2",
           "TARGETS_POLL_SECONDS": "0.2"}
    first = Backend(tmp_path, **env).start()
    second = Backend(tmp_path, **env)
    second.log_path = tmp_path / "server2.log"
    second.stdout_path = tmp_path / "backend2.out"
    second.env["BACKEND_LOG_FILE"] = str(second.log_path)
    second.start()
    yield first, second
    second.stop()
    first.stop()


def check(backend: Backend, ok: bool) -> None:
    body = {"target_url": SHOP, "timestamp": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            "is_success": ok, "status_code": 200 if ok else 503, "event_uid": str(uuid.uuid4())}
    assert backend.api("POST", "/events", json=body).status_code == 201


def test_a_named_channel_gets_its_targets_notices_and_a_reload_swaps_it_in_every_process(
        tmp_path, receiver, backends):
    first, second = backends
    check(first, ok=False)
    wait_until(lambda: receiver.received(), 10, message="the outage at ops-chat")
    assert receiver.received()[0]["path"] == f"/ops-chat/{TOKEN}"
    assert "shop.example" in receiver.received()[0]["body"]["message"]

    # The file now routes shop to team-chat; ops-chat is gone. One process reloads; both follow.
    write_targets(tmp_path, receiver, chat(receiver, "team-chat"), "team-chat")
    assert first.api("POST", "/targets/reload").status_code == 200
    check(second, ok=True)  # written by the process that did not reload
    wait_until(lambda: len(receiver.received()) == 2, 10, message="the recovery at team-chat")
    assert receiver.received()[1]["path"] == f"/team-chat/{TOKEN}"
    def rows():  # each attempt's row is written just after the receiver has the message
        return first.rows("SELECT channel, notice_type, status FROM notification_logs WHERE channel != 'CONSOLE' "
                          "ORDER BY id")
    wait_until(lambda: len(rows()) == 2, 10, message="both attempts logged")
    assert rows() == [("ops-chat", "ERROR", "SENT"), ("team-chat", "RECOVERY", "SENT")]

    for backend in (first, second):  # each process tests the channel it learnt from the database
        answer = backend.api("POST", "/channels/team-chat/test")
        assert answer.status_code == 201, answer.text
        assert answer.json()["status"] == "SENT"
    assert [n["body"]["title"] for n in receiver.received()[2:]] == ["✅ 서비스 복구 알림"] * 2
    assert first.rows("SELECT alert_id, channel, notice_type, status FROM notification_logs "
                      "WHERE notice_type = 'TEST'") == [(None, "team-chat", "TEST", "SENT")] * 2
    assert_no_secret_in_any_file(tmp_path, TOKEN, HOOK_SECRET)


def test_a_failed_test_answers_the_reason_and_no_answer_shows_a_secret(tmp_path, receiver, backends):
    first, _ = backends
    receiver.statuses = [500]
    failed = first.api("POST", "/channels/ops-chat/test")
    assert failed.status_code == 200
    assert failed.json()["status"] == "FAILED" and "error=500" in failed.json()["error_message"]

    unknown = first.api("POST", "/channels/nope/test")
    assert unknown.status_code == 404
    assert unknown.json()["details"]["channels"] == ["console", "ops-chat", "pager"]

    listed = first.api("GET", "/channels").json()["channels"]
    assert {"name": "pager", "type": "webhook", "url": "<redacted>", "secret": "<redacted>"} in listed
    assert {"name": "ops-chat", "type": "apprise", "urls": "<redacted>"} in listed
    assert first.api("POST", "/channels/console/test").status_code == 201
    # A reload with an unusable URL is refused naming the key; the URL (a token) is in no answer and no log.
    write_targets(tmp_path, receiver, '  ops-chat: {type: apprise, urls: ["discord://${CHAT_TOKEN}"]}', "ops-chat")
    refused = first.api("POST", "/targets/reload")
    assert refused.status_code == 400
    assert "channels.ops-chat.urls: entry 1 is not a URL apprise can use" in refused.json()["error"]
    for text in (failed.text, unknown.text, str(listed), refused.text):
        assert TOKEN not in text and HOOK_SECRET not in text
    assert_no_secret_in_any_file(tmp_path, TOKEN, HOOK_SECRET)
