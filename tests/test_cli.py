"""The command line (backend/cli.py) against a real backend process: tables, --json, ack, errors, exit codes."""

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
TARGETS = """\
targets:
  - name: shop
    url: https://shop.example/health
  - name: quiet
    url: https://quiet.example/
  - name: blog
    url: https://blog.example/
  - name: "[bold]api[/bold]"
    url: https://api.example/
"""


def ago(seconds: float) -> str:
    return (datetime.now(timezone.utc) - timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    """One real backend for the module: shop DOWN with an OPEN alert, blog with a RESOLVED one, quiet unchecked."""
    tmp_path = tmp_path_factory.mktemp("cli")
    (tmp_path / "targets.yaml").write_text(TARGETS, encoding="utf-8")
    server = Backend(tmp_path, API_KEY=KEY, FAILURE_THRESHOLD="1").start()
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
    assert KEY not in done.stdout + done.stderr, "the API key was printed"
    assert "Traceback" not in done.stderr
    return done


def alert_of(backend: Backend, target: str) -> dict:
    return backend.api("GET", "/alerts", params={"target": target}).json()["alerts"][0]


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
    assert [(row[1], row[2], row[3]) for row in rows] == [("RESOLVED", "ERROR", "blog"), ("OPEN", "ERROR", "shop")]
    only = cli(backend, "alerts", "--status", "open", "--target", "shop").stdout.splitlines()
    assert len(only) == 2 and only[1].split()[1:4] == ["OPEN", "ERROR", "shop"]
    as_json = json.loads(cli(backend, "--json", "alerts", "--target", "blog").stdout)
    assert as_json["alerts"] == backend.api("GET", "/alerts", params={"target": "blog"}).json()["alerts"]
    assert cli(backend, "alerts", "--target", "quiet").stdout.strip() == "no alerts"


def test_ack_then_resolve_change_the_alert_and_a_refusal_says_why(backend):
    alert_id = alert_of(backend, "shop")["id"]
    done = cli(backend, "ack", str(alert_id))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1].split()[:4] == [str(alert_id), "ACK", "ERROR", "shop"]
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
    alerts = Api(backend.url, KEY, 10).pages("/alerts", "alerts", {}, None, counts.append, page_size=1)
    assert [a["target"] for a in alerts] == ["blog", "shop"] and counts == [1, 2, 2]
    assert len(Api(backend.url, KEY, 10).pages("/alerts", "alerts", {}, 1, counts.append, page_size=1)) == 1
