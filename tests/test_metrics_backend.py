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
from tests.support.procs import Gunicorn, wait_until

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
