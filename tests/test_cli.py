"""The command line (backend/cli.py) against a real backend process: tables, --json, ack, silences, channels, pause,
errors, exit codes. The tests share one backend, so each makes the alerts and silences it changes on its own targets."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from backend.cli import EXIT_REFUSED, EXIT_UNREACHABLE, EXIT_USAGE, Api
from tests.backend_fixtures import event
from tests.support.procs import ROOT, Backend, base_env, free_port

KEY = "cli-test-key-0123456789"
HOOK_SECRET = "cli-hook-SECRET-0123456789"
TARGETS = """\
channels:
  pager: {{type: webhook, url: "http://127.0.0.1:{port}/hook", secret: "${{HOOK_SECRET}}"}}
targets:
  - name: shop
    url: https://shop.example/health
  - name: quiet
    url: https://quiet.example/
  - name: blog
    url: https://blog.example/
  - name: "[bold]api[/bold]"
    url: https://api.example/
  - name: ackme
    url: https://ackme.example/
  - name: hush
    url: https://hush.example/
  - name: napper
    url: https://napper.example/
"""


def ago(seconds: float) -> str:
    return (datetime.now(timezone.utc) - timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    """One real backend for the module: shop DOWN with an OPEN alert, blog with a RESOLVED one, quiet unchecked."""
    tmp_path = tmp_path_factory.mktemp("cli")
    (tmp_path / "targets.yaml").write_text(TARGETS.format(port=free_port()), encoding="utf-8")  # pager: refused
    server = Backend(tmp_path, API_KEY=KEY, FAILURE_THRESHOLD="1", HOOK_SECRET=HOOK_SECRET,
                     NOTIFY_TIMEOUT_SECONDS="2", NOTIFY_RETRIES="0").start()
    try:
        server.api("POST", "/events", json=[
            event("https://shop.example/health", target="shop", timestamp=ago(120), response_time_ms=100),
            event("https://shop.example/health", ok=False, target="shop", timestamp=ago(60)),
            event("https://blog.example/", ok=False, target="blog", timestamp=ago(50)),
            event("https://blog.example/", target="blog", timestamp=ago(40)),
        ]).raise_for_status()
        yield server
    finally:
        server.stop()


def cli(backend: Backend | None, *args: str, env_file_text: str | None = None, env_dir: Path | None = None,
        timeout: float = 30) -> subprocess.CompletedProcess:
    """`python -m backend.cli ARGS` from another folder, with the key and URL only in its .env, as a user runs it."""
    env_dir = env_dir or backend.log_path.parent
    env_path = env_dir / "cli.env"
    if env_file_text is None:
        env_file_text = f"API_KEY={KEY}\nBACKEND_URL={backend.url}\n"
    env_path.write_text(env_file_text, encoding="utf-8")
    env = base_env(env_dir, ENV_FILE=str(env_path), PYTHONPATH=str(ROOT))
    del env["API_KEY"]  # from the .env file only
    done = subprocess.run([sys.executable, "-m", "backend.cli", *args], cwd=env_dir, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert KEY not in done.stdout + done.stderr and HOOK_SECRET not in done.stdout + done.stderr, "a secret was printed"
    assert "Traceback" not in done.stderr
    return done


def alert_of(backend: Backend, target: str) -> dict:
    return backend.api("GET", "/alerts", params={"target": target}).json()["alerts"][0]


def outage_of(backend: Backend, target: str) -> dict:
    """A failed check of `target` now: its new OPEN alert (FAILURE_THRESHOLD=1)."""
    answer = backend.api("POST", "/events", json=event(f"https://{target}.example/", ok=False, target=target,
                                                       timestamp=ago(1)))
    assert answer.status_code == 201, answer.text
    return answer.json()["alert"]


def test_targets_shows_each_target_with_its_state(backend):
    done = cli(backend, "targets")
    assert done.returncode == 0, done.stderr
    lines = {line.split()[0]: line.split() for line in done.stdout.splitlines()[1:]}
    assert done.stdout.split()[:3] == ["NAME", "KIND", "STATE"]
    assert lines["shop"][1:3] == ["http", "DOWN"] and str(alert_of(backend, "shop")["id"]) in lines["shop"]
    assert lines["quiet"][1:3] == ["http", "UNKNOWN"] and lines["blog"][1:3] == ["http", "UP"]
    assert lines["[bold]api[/bold]"][1:3] == ["http", "UNKNOWN"]  # a name is shown as written, never as markup
    assert json.loads(cli(backend, "--json", "targets").stdout)["targets"] == backend.api("GET", "/targets").json()["targets"]


def test_alerts_lists_and_filters_as_a_table_and_as_json(backend):
    done = cli(backend, "alerts")
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines()[1:]]
    ours = [(row[1], row[2], row[3]) for row in rows if row[3] in ("blog", "shop")]  # other tests open their own
    assert ours == [("RESOLVED", "ERROR", "blog"), ("OPEN", "ERROR", "shop")]
    only = cli(backend, "alerts", "--status", "open", "--target", "shop").stdout.splitlines()
    assert len(only) == 2 and only[1].split()[1:4] == ["OPEN", "ERROR", "shop"]
    as_json = json.loads(cli(backend, "--json", "alerts", "--target", "blog").stdout)
    assert as_json["alerts"] == backend.api("GET", "/alerts", params={"target": "blog"}).json()["alerts"]
    assert cli(backend, "alerts", "--target", "quiet").stdout.strip() == "no alerts"


def test_ack_then_resolve_change_the_alert_and_a_refusal_says_why(backend):
    alert_id = outage_of(backend, "ackme")["id"]
    done = cli(backend, "ack", str(alert_id))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1].split()[:4] == [str(alert_id), "ACK", "ERROR", "ackme"]
    assert backend.rows("SELECT status, acknowledged_by FROM alerts WHERE id = ?", alert_id) == [("ACK", "cli")]
    resolved = json.loads(cli(backend, "--json", "resolve", str(alert_id)).stdout)
    assert (resolved["id"], resolved["status"]) == (alert_id, "RESOLVED") and resolved["resolved_at"]
    assert resolved["resolved_by"] == "cli"
    again = cli(backend, "ack", str(alert_id))
    assert again.returncode == EXIT_REFUSED and again.stdout == ""
    assert again.stderr.startswith("outage: ") and "(HTTP 409)" in again.stderr and len(again.stderr.splitlines()) == 1
    missing = cli(backend, "resolve", "999999")
    assert missing.returncode == EXIT_REFUSED and "999999 does not exist" in missing.stderr


def test_stats_shows_checks_and_uptime_as_a_table_and_as_json(backend):
    done = cli(backend, "stats", "shop", "--window", "7d")
    assert done.returncode == 0, done.stderr
    header, row = done.stdout.splitlines()[:2]
    assert header.split() == ["TARGET", "WINDOW", "CHECKS", "FAILURES", "UPTIME", "MEAN", "MS", "P95", "MS"]
    assert row.split()[:5] == ["shop", "7d", "2", "1", "50.0%"]
    as_json = json.loads(cli(backend, "--json", "stats", "shop").stdout)
    assert (as_json["target"], as_json["window"], as_json["checks"], as_json["failures"]) == ("shop", "24h", 2, 1)
    unknown = cli(backend, "stats", "nobody")
    assert unknown.returncode == EXIT_REFUSED and "'nobody' is not in the targets file" in unknown.stderr


def test_a_wrong_key_is_refused_with_the_apis_sentence_and_never_printed(backend, tmp_path):
    wrong = "wrong-key-0123456789abcdef"
    key_file = tmp_path / "key"
    key_file.write_text(wrong + "\n", encoding="utf-8")
    done = cli(backend, "--api-key-file", str(key_file), "alerts")
    assert done.returncode == EXIT_REFUSED and done.stdout == ""
    assert done.stderr.startswith("outage: ") and "(HTTP 401)" in done.stderr and wrong not in done.stderr
    no_key = cli(backend, "alerts", env_file_text=f"BACKEND_URL={backend.url}\n")
    assert no_key.returncode == EXIT_USAGE and "API_KEY" in no_key.stderr


def test_usage_errors_exit_2_before_any_request(backend):
    assert cli(backend, "stats", "shop", "--window", "1y").returncode == EXIT_USAGE
    assert cli(backend, "ack", "seven").returncode == EXIT_USAGE
    bad_url = cli(backend, "--url", "localhost:5000", "targets")
    assert bad_url.returncode == EXIT_USAGE and "is not an http(s) URL" in bad_url.stderr


def test_a_backend_that_is_down_is_reported_in_one_line(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    done = cli(None, "--url", url, "targets", env_file_text=f"API_KEY={KEY}\n", env_dir=tmp_path)
    assert done.returncode == EXIT_UNREACHABLE
    assert done.stderr == f"outage: cannot reach the backend at {url}: Connection refused.\n"


def test_a_backend_that_never_answers_is_given_up_on_after_the_timeout(tmp_path):
    with socket.socket() as silent:  # accepts connections (the kernel's backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        done = cli(None, "--url", url, "--timeout", "1", "alerts", env_file_text=f"API_KEY={KEY}\n",
                   env_dir=tmp_path, timeout=20)
    assert done.returncode == EXIT_UNREACHABLE and done.stderr == f"outage: {url} did not answer within 1s.\n"


def test_paging_fetches_every_alert_and_reports_progress(backend):
    counts: list[int] = []
    every = backend.api("GET", "/alerts", params={"limit": 500}).json()["alerts"]
    alerts = Api(backend.url, KEY, 10).pages("/alerts", "alerts", {}, None, counts.append, page_size=1)
    assert alerts == every and len(every) >= 2 and counts == [*range(1, len(every) + 1), len(every)]
    assert len(Api(backend.url, KEY, 10).pages("/alerts", "alerts", {}, 1, counts.append, page_size=1)) == 1


def test_a_silence_added_from_the_cli_is_listed_suppresses_a_notice_and_ends(backend):
    done = cli(backend, "silence", "add", "hush", "--for", "2h", "--reason", "db upgrade")
    assert done.returncode == 0, done.stderr
    header, row = done.stdout.splitlines()
    assert header.split() == ["ID", "STATE", "MATCH", "STARTS", "(UTC)", "ENDS", "(UTC)", "REASON"]
    silence_id = int(row.split()[0])
    assert row.split()[1:3] == ["active", "hush"] and row.endswith("db upgrade")
    [listed] = [s for s in backend.api("GET", "/silences").json()["silences"] if s["id"] == silence_id]
    ends = datetime.fromisoformat(listed["ends_at"].replace("Z", "+00:00"))
    assert timedelta(minutes=119) < ends - datetime.now(timezone.utc) <= timedelta(hours=2)
    assert (listed["match"], listed["reason"]) == ("hush", "db upgrade")

    alert = outage_of(backend, "hush")  # the alert opens; its notice is a SUPPRESSED row, not a delivery
    assert backend.rows("SELECT channel, status, silence_id FROM notification_logs WHERE alert_id = ? "
                        "ORDER BY channel", alert["id"]) == [("CONSOLE", "SUPPRESSED", silence_id),
                                                             ("pager", "SUPPRESSED", silence_id)]
    assert backend.rows("SELECT count(*) FROM deliveries WHERE alert_id = ?", alert["id"]) == [(0,)]

    table_ids = [line.split()[0] for line in cli(backend, "silence", "list").stdout.splitlines()[1:]]
    assert str(silence_id) in table_ids
    as_json = json.loads(cli(backend, "--json", "silence", "list").stdout)["silences"]
    assert as_json == backend.api("GET", "/silences").json()["silences"]
    ended = json.loads(cli(backend, "--json", "silence", "end", str(silence_id)).stdout)
    assert (ended["id"], ended["state"]) == (silence_id, "ended") and ended["ended_early_at"]
    assert str(silence_id) not in cli(backend, "silence", "list").stdout.split()
    every = cli(backend, "silence", "list", "--all").stdout.splitlines()
    assert [line.split()[1] for line in every if line.split()[0] == str(silence_id)] == ["ended"]
    again = cli(backend, "silence", "end", "999999")
    assert again.returncode == EXIT_REFUSED and "Silence 999999 does not exist" in again.stderr


def test_a_silence_from_and_until_a_time_and_a_bad_until_refused_with_the_apis_sentence(backend):
    starts = datetime.now(timezone.utc).astimezone(timezone(timedelta(hours=1))) + timedelta(days=1)
    done = cli(backend, "--json", "silence", "add", "web-*", "--from", starts.isoformat(timespec="seconds"),
               "--until", (starts + timedelta(hours=1)).isoformat(timespec="seconds"))
    assert done.returncode == 0, done.stderr
    silence = json.loads(done.stdout)
    assert (silence["match"], silence["state"]) == ("web-*", "upcoming")
    assert silence["starts_at"] == starts.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    later = cli(backend, "silence", "add", "web-*", "--from", starts.isoformat(timespec="seconds"), "--for", "90m")
    assert later.returncode == 0 and later.stdout.splitlines()[1].split()[1] == "upcoming"

    before = backend.rows("SELECT count(*) FROM silences")
    bad = cli(backend, "silence", "add", "hush", "--until", "tomorrow")
    assert bad.returncode == EXIT_REFUSED and bad.stdout == ""
    assert bad.stderr == ("outage: ends_at must be an ISO 8601 date-time with a UTC offset, such as "
                          "2026-12-24T18:00:00+01:00 or ...Z. (HTTP 400)\n")
    assert backend.rows("SELECT count(*) FROM silences") == before  # stored nothing
    assert cli(backend, "silence", "add", "hush", "--for", "soon").returncode == EXIT_USAGE
    assert cli(backend, "silence", "add", "hush").returncode == EXIT_USAGE  # --for or --until


def test_channels_are_listed_with_secrets_redacted_and_tested_sent_or_failed(backend):
    done = cli(backend, "channels")
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: sorted(line.split()[1:]) for line in done.stdout.splitlines()[1:]}
    assert rows == {"console": ["-", "console"], "pager": ["secret=<redacted>", "url=<redacted>", "webhook"]}
    assert json.loads(cli(backend, "--json", "channels").stdout) == backend.api("GET", "/channels").json()

    sent = cli(backend, "channels", "test", "console")
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout.startswith("SENT test notice through CONSOLE (notification log ")
    log_id = int(sent.stdout.split()[-1].rstrip(")"))
    assert backend.rows("SELECT channel, notice_type, status FROM notification_logs WHERE id = ?", log_id) == [
        ("CONSOLE", "TEST", "SENT")]
    failed = cli(backend, "channels", "test", "pager")
    assert failed.returncode == EXIT_REFUSED and failed.stdout.startswith("FAILED test notice through pager: ")
    as_json = json.loads(cli(backend, "--json", "channels", "test", "pager").stdout)
    assert (as_json["channel"], as_json["status"]) == ("pager", "FAILED") and as_json["error_message"]
    unknown = cli(backend, "channels", "test", "nope")
    assert unknown.returncode == EXIT_REFUSED and "No channel is named 'nope'" in unknown.stderr


def test_pause_and_resume_a_target(backend):
    done = cli(backend, "pause", "napper")
    assert done.returncode == 0, done.stderr
    assert [line.split() for line in done.stdout.splitlines()] == [["NAME", "PAUSED"], ["napper", "yes"]]
    [napper] = [t for t in backend.api("GET", "/targets").json()["targets"] if t["name"] == "napper"]
    assert napper["paused"] is True and napper["state"] == "PAUSED"
    assert json.loads(cli(backend, "--json", "resume", "napper").stdout) == {"name": "napper", "paused": False}
    [napper] = [t for t in backend.api("GET", "/targets").json()["targets"] if t["name"] == "napper"]
    assert napper["paused"] is False
    missing = cli(backend, "pause", "nobody")
    assert missing.returncode == EXIT_REFUSED and "No target named nobody" in missing.stderr
