"""GET /metrics (SPEC §12): counts add up across gunicorn workers, METRICS_TOKEN guards it, promtool accepts it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from tests.backend_fixtures import API_KEY, app, backend_env, client, console, event, settings, with_env  # noqa: F401
from tests.support.procs import Backend, Gunicorn, free_port, wait_until

TOKEN = "metrics-token-abcdef0123456789"


def samples(text: str) -> dict[tuple, float]:
    """Every sample of a scrape as {(name, (label, value), ...): value}."""
    return {(s.name, *sorted(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def events_received(text: str, result: str) -> float:
    return samples(text).get(("outage_events_received_total", ("result", result)), 0.0)


def promtool_check(text: str) -> None:
    """`promtool check metrics` (Debian's prometheus package) accepts the text; CI must have it installed."""
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing: bench/ensure_tools.sh installs the prometheus package")
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    checked = subprocess.run([promtool, "check", "metrics"], input=text.encode(), capture_output=True, timeout=30)
    assert checked.returncode == 0, checked.stdout.decode() + checked.stderr.decode()


def worker_pids(server: Gunicorn) -> list[int]:
    log = server.log_path.read_text(encoding="utf-8") if server.log_path.exists() else ""
    return [int(pid) for pid in re.findall(r"gunicorn worker pid (\d+), master pid \d+\) serving", log)]


def metrics_dir(pid: int) -> Path:
    """The multiprocess folder a worker writes to, found from its open files (gunicorn_conf makes it private)."""
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = Path(os.readlink(fd))
        if target.name == f"counter_{pid}.db":
            return target.parent
    raise AssertionError(f"worker {pid} has no counter file open: not in multiprocess mode")


def counted_by(folder: Path, pid: int, scratch: Path) -> float:
    """The events one worker counted, read from its own file alone."""
    scratch.mkdir(exist_ok=True)
    shutil.copy(folder / f"counter_{pid}.db", scratch / f"counter_{pid}.db")
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(scratch))
    return sum(s.value for family in registry.collect() for s in family.samples
               if s.name == "outage_events_received_total")


def test_counts_add_up_across_two_gunicorn_workers(tmp_path):
    server = Gunicorn(tmp_path, BACKEND_WORKERS="2", FAILURE_THRESHOLD="1")
    try:
        wait_until(lambda: len(worker_pids(server)) == 2, 30, message="both workers serving")
        pids = worker_pids(server)
        folder = metrics_dir(pids[0])
        assert metrics_dir(pids[1]) == folder and oct(folder.stat().st_mode)[-3:] == "700"
        sent = {"success": 0, "failure": 0}

        def post(i: int) -> None:
            ok = i % 3 != 0
            # A connection each, so the kernel hands the requests to both workers.
            response = requests.post(f"{server.url}/events", json=[event(f"https://t{i % 4}.example/", ok=ok)],
                                     headers={"X-API-Key": server.env["API_KEY"], "Connection": "close"},
                                     timeout=30)
            assert response.status_code == 201, response.text
            sent["success" if ok else "failure"] += 1

        def both_served() -> bool:
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(post, range(sum(sent.values()), sum(sent.values()) + 16)))
            return all(counted_by(folder, pid, tmp_path / f"w{pid}") > 0 for pid in pids)

        wait_until(both_served, 30, interval=0, message="requests served by both workers")
        for _ in range(4):  # whichever worker answers the scrape, it reports every worker's counts
            text = requests.get(f"{server.url}/metrics", timeout=10).text
            assert events_received(text, "success") == sent["success"]
            assert events_received(text, "failure") == sent["failure"]
        values = samples(text)
        assert values[("outage_ingest_duration_seconds_count", ("route", "events"))] == sum(sent.values())
        [(opened,)] = server.rows("SELECT count(*) FROM alerts WHERE alert_type = 'ERROR'")
        [(resolved,)] = server.rows("SELECT count(*) FROM alerts WHERE status = 'RESOLVED'")
        assert opened > 0 and values[("outage_alerts_opened_total", ("type", "ERROR"))] == opened
        assert values[("outage_alert_status_changes_total", ("status", "RESOLVED"))] == resolved
        assert ("outage_outbox_pending", ("channel", "CONSOLE")) in values
        promtool_check(text)
    finally:
        server.stop()
    assert not folder.exists()  # the master removed the workers' files on exit


@with_env(METRICS_TOKEN=TOKEN)
def test_metrics_token_is_required_when_set_and_never_logged(client, settings):
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"X-API-Key": API_KEY}).status_code == 401  # not the API key
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong-token"}).status_code == 401
    refused = client.get("/metrics", headers={"Authorization": TOKEN})  # no scheme
    assert refused.status_code == 401 and TOKEN not in refused.get_data(as_text=True)
    answer = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200 and "outage_events_received_total" in answer.get_data(as_text=True)
    assert TOKEN not in repr(settings)
    assert not settings.log_file.exists() or TOKEN not in settings.log_file.read_text(encoding="utf-8")


@with_env(FAILURE_THRESHOLD="1")
def test_without_a_token_metrics_are_open_and_count_events_and_alert_changes(client):
    before = client.get("/metrics").get_data(as_text=True)
    headers = {"X-API-Key": API_KEY}
    answer = client.post("/events", json=[event(ok=True, timestamp="2025-01-08T15:30:45Z"),
                                          event(ok=False, timestamp="2025-01-08T15:30:46Z"),
                                          event(status=500, timestamp="2025-01-08T15:30:47Z")], headers=headers)
    assert answer.status_code == 201
    alert_id = answer.get_json()["events"][1]["alert"]["id"]
    assert client.patch(f"/alerts/{alert_id}", json={"status": "ACK"}, headers=headers).status_code == 200
    after = client.get("/metrics")
    assert after.status_code == 200 and after.content_type.startswith("text/plain")
    text = after.get_data(as_text=True)
    assert events_received(text, "success") - events_received(before, "success") == 1
    assert events_received(text, "failure") - events_received(before, "failure") == 2  # a 500 fails (SPEC §5)
    change = ("outage_alert_status_changes_total", ("status", "ACK"))
    assert samples(text)[change] - samples(before)[change] == 1
    promtool_check(text)


def second_backend(tmp_path: Path, name: str, **env: str) -> Backend:
    """Another backend process on the same database and targets file, with its own port and log."""
    server = Backend(tmp_path, **env)
    server.log_path, server.stdout_path = tmp_path / f"server-{name}.log", tmp_path / f"backend-{name}.out"
    server.env["BACKEND_LOG_FILE"] = str(server.log_path)
    return server


def scrape(server: Backend) -> dict[tuple, float]:
    return samples(server.api("GET", "/metrics").text)


def test_the_outbox_shows_every_channel_with_notices_waiting_and_every_row_is_counted(tmp_path):
    """A sends WEBHOOK (its own channel) and `pager` (${HOOK_SECRET}, set in A only); B sends neither."""
    targets = tmp_path / "targets.yaml"
    listed = "targets:\n  - {name: shop, url: https://shop.example/}\n  - {name: hush, url: https://hush.example/}\n"
    targets.write_text(listed, encoding="utf-8")
    common = {"FAILURE_THRESHOLD": "1", "TARGETS_FILE": str(targets), "TARGETS_POLL_SECONDS": "0.2",
              "NOTIFY_RETRIES": "1", "NOTIFY_BACKOFF_SECONDS": "600", "NOTIFY_TIMEOUT_SECONDS": "2"}
    closed = f"http://127.0.0.1:{free_port()}/hook"  # every webhook attempt is refused: the notice waits to retry
    a = second_backend(tmp_path, "a", WEBHOOK_URL=closed, WEBHOOK_SECRET="w" * 24, HOOK_SECRET="h" * 24, **common)
    b = second_backend(tmp_path, "b", **common)
    c = second_backend(tmp_path, "c", **common)
    try:
        a.start()
        b.start()
        assert a.api("POST", "/events", json=event("https://shop.example/", ok=False, target="shop")).status_code == 201
        wait_until(lambda: a.rows("SELECT 1 FROM notification_logs WHERE channel = 'WEBHOOK'"), 15,
                   message="the webhook's first attempt")
        seen_by_b = scrape(b)
        assert seen_by_b[("outage_outbox_pending", ("channel", "WEBHOOK"))] == 1  # not B's channel, still shown
        assert seen_by_b[("outage_outbox_oldest_pending_age_seconds", ("channel", "WEBHOOK"))] > 0
        assert seen_by_b[("outage_outbox_pending", ("channel", "CONSOLE"))] == 0

        # The file gains `pager`, which B cannot build (${HOOK_SECRET} unset there): B shows it all the same.
        targets.write_text(listed + "channels:\n  pager: {type: webhook, url: "
                           f"\"{closed}\", secret: \"${{HOOK_SECRET}}\"}}\n", encoding="utf-8")
        assert a.api("POST", "/targets/reload").status_code == 200
        wait_until(lambda: ("outage_outbox_pending", ("channel", "pager")) in scrape(b), 10,
                   message="B's gauge for pager")
        b.stop()
        a.stop()

        # C has no webhook (and the file no pager): at start it ends A's waiting notice as FAILED, and counts that row.
        targets.write_text(listed, encoding="utf-8")
        c.start()
        values = scrape(c)
        assert values[("outage_notification_attempts_total", ("channel", "WEBHOOK"), ("result", "FAILED"))] == 1
        assert ("outage_outbox_pending", ("channel", "WEBHOOK")) not in values  # nothing waits for it now
        assert c.api("POST", "/channels/console/test").status_code == 201
        silence = c.api("POST", "/silences", json={"match": "hush", "ends_at": "2099-01-01T00:00:00Z"})
        assert silence.status_code == 201
        failures = [event("https://hush.example/", ok=False, target="hush", timestamp=f"2025-01-08T15:30:4{i}Z")
                    for i in range(3)]  # three events, one alert: one notice
        assert c.api("POST", "/events", json=failures).status_code == 201
        values = scrape(c)
        assert values[("outage_notification_attempts_total", ("channel", "CONSOLE"), ("result", "SENT"))] == 1
        assert values[("outage_notification_attempts_total", ("channel", "CONSOLE"), ("result", "SUPPRESSED"))] == 1
        assert c.rows("SELECT channel, status FROM notification_logs WHERE status = 'SUPPRESSED'") == [
            ("CONSOLE", "SUPPRESSED")]
        promtool_check(c.api("GET", "/metrics").text)
    finally:
        for server in (c, b, a):
            server.stop()
