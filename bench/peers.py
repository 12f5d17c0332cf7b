"""Peers, measured side by side on this box: blackbox_exporter probing and Alertmanager ingesting.

- blackbox_exporter (Debian's prometheus-blackbox-exporter): its /probe?target=... endpoint probing
  the agent benchmark's local site (bench/target_site.py), paced at 100 probes/s (the agent's rate
  at 1,000 targets every 10 s), then driven by wrk with 8 connections (as fast as it goes). CPU per
  probe is its process CPU (/proc/<pid>/stat) over the probes made: compare the agent's CPU per check.
- Alertmanager (prometheus-alertmanager): POST /api/v2/alerts, one alert per request (8 connections)
  and 100 per request (4 connections), over 500 distinct alerts, one in ten resolved, re-sent as
  Prometheus re-sends firing alerts; beside it, our POST /events with the same request sizes and
  connections (bench/event_mix.py bodies), measured in the same run.

Each peer runs on 127.0.0.1 with a temporary config and data directory and is stopped by PID. A
peer that is not installed is skipped with a note (make bench installs both with apt-get); so is
Alertmanager when wrk is absent, since the Python load generator would measure itself instead.

    python -m bench.peers [--quick]
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import requests

from bench.common import (API_KEY, GUNICORN_BACKEND, ChildProcess, Gunicorn, Row, answers, cpu_seconds, free_port,
                          have_wrk, log, print_table, run_load, start_command, stop, wait_until)
from bench.target_site import TargetSite

BLACKBOX = ("prometheus-blackbox-exporter", "blackbox_exporter")  # Debian's name, upstream's
ALERTMANAGER = ("prometheus-alertmanager", "alertmanager")
PACED_RATE = 100  # probes/s: the agent's 1,000 targets every 10 s
ALERTS = 500
CASES = {"single": (1, 8), "batch": (100, 4)}  # per request, connections


def find(names: tuple[str, ...]) -> str | None:
    return next((path for path in map(shutil.which, names) if path), None)


def paced(url: str, rate: float, duration_s: float) -> int:
    """GET `url` `rate` times a second for `duration_s` over kept-alive connections, as Prometheus
    scrapes; return how many probes succeeded."""
    parts = url.split("/", 3)
    host, port = parts[2].split(":")
    path = "/" + parts[3]
    ok = []
    mine = threading.local()

    def one():
        if getattr(mine, "conn", None) is None:
            mine.conn = http.client.HTTPConnection(host, int(port), timeout=10)
        try:
            mine.conn.request("GET", path)
            response = mine.conn.getresponse()
            ok.append(response.status == 200 and b"probe_success 1" in response.read())
        except (OSError, http.client.HTTPException):
            ok.append(False)
            mine.conn.close()
            mine.conn = None

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=32) as pool:
        for i in range(int(rate * duration_s)):
            time.sleep(max(0.0, started + i / rate - time.monotonic()))
            pool.submit(one)
    return sum(ok)


class BlackboxExporter(ChildProcess):
    """blackbox_exporter on a free 127.0.0.1 port with an http_2xx module, stopped by PID; a context manager."""

    name = "blackbox_exporter"

    def __init__(self, binary: str, tmp: Path):
        self.binary, self.tmp = binary, tmp
        self.url = f"http://127.0.0.1:{free_port()}"

    def start(self) -> subprocess.Popen:
        config = self.tmp / "blackbox.yml"
        config.write_text("modules:\n  http_2xx:\n    prober: http\n    timeout: 5s\n")
        return start_command([self.binary, f"--config.file={config}", f"--web.listen-address={self.url[7:]}",
                              "--log.level=warn"], self.tmp / "blackbox.out")

    def is_ready(self) -> bool:
        return answers(f"{self.url}/-/healthy")

    def probe_url(self, target: str) -> str:
        """Its /probe URL for `target`, checked once: RuntimeError when the probe fails."""
        probe = f"{self.url}/probe?module=http_2xx&target={target}"
        if b"probe_success 1" not in requests.get(probe, timeout=10).content:
            raise RuntimeError(f"blackbox_exporter's probe of {target} failed")
        return probe

    def paced_cpu(self, target: str, rate: float, duration_s: float) -> tuple[int, float, float]:
        """Probe `target` `rate` times a second for `duration_s`: (probes that succeeded, probes/s made,
        its CPU ms per probe). Only the exporter's own process CPU counts, not the load generator's."""
        probe = self.probe_url(target)
        before, started = cpu_seconds(self.proc.pid), time.monotonic()
        ok = paced(probe, rate, duration_s)
        elapsed = time.monotonic() - started
        return ok, ok / elapsed, 1000 * (cpu_seconds(self.proc.pid) - before) / max(1, ok)


def blackbox(binary: str, tmp: Path, duration_s: float) -> list[Row]:
    """blackbox_exporter's CPU per probe, paced and under wrk, against the local target site."""
    with TargetSite(tmp) as site, BlackboxExporter(binary, tmp) as exporter:
        ok, _, paced_ms = exporter.paced_cpu(f"{site.url}/t/probe", PACED_RATE, duration_s)
        before = cpu_seconds(exporter.proc.pid)
        load = run_load(exporter.probe_url(f"{site.url}/t/probe"), duration_s, 8, tmp)
        wrk_ms = 1000 * (cpu_seconds(exporter.proc.pid) - before) / max(1, load["requests"])
        log(f"  blackbox_exporter: {ok} probes at {PACED_RATE}/s, {paced_ms:.2f} ms CPU each; "
            f"{load['rps']:.0f} probes/s with 8 connections ({load['tool']}), {wrk_ms:.2f} ms CPU each")
    return [
        Row("peers", f"blackbox_exporter, {PACED_RATE} probes/s paced: CPU per probe ({ok} probes)", paced_ms, "ms"),
        Row("peers", "blackbox_exporter, 8 connections: probes/s", load["rps"], "probes/s"),
        Row("peers", "blackbox_exporter, 8 connections: CPU per probe", wrk_ms, "ms"),
    ]


def alert_bodies(per_request: int) -> list[str]:
    """Request bodies covering ALERTS distinct alerts in turn; one in ten resolved (endsAt in the past)."""
    now = datetime.now(timezone.utc)

    def utc(moment: datetime) -> str:
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    alerts = [{"labels": {"alertname": "ServiceDown", "instance": f"https://service-{i}.example.com/health",
                          "severity": "critical"},
               "annotations": {"summary": "Request timed out after 5000ms"},
               "startsAt": utc(now - timedelta(minutes=5)), **({"endsAt": utc(now)} if i % 10 == 0 else {}),
               "generatorURL": "http://127.0.0.1/bench"} for i in range(ALERTS)]
    return [json.dumps(alerts[i:i + per_request]) for i in range(0, ALERTS, per_request)]


def alertmanager(binary: str, tmp: Path, duration_s: float, ours: bool) -> list[Row]:
    """Alertmanager's alerts/s, one per request and 100 per request; beside it our events/s (`ours`)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = tmp / "alertmanager.yml"
    config.write_text('route:\n  receiver: "null"\n  group_by: [alertname, instance]\nreceivers:\n  - name: "null"\n')
    peer = start_command([binary, f"--config.file={config}", f"--storage.path={tmp / 'am-data'}",
                   f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=", "--log.level=warn"],
                  tmp / "alertmanager.out")
    peer_results = {}
    try:
        wait_until(lambda: answers(f"{url}/-/ready"), 20, message="Alertmanager")
        headers = {"Content-Type": "application/json"}
        for name, (per_request, connections) in CASES.items():
            r = peer_results[name] = run_load(f"{url}/api/v2/alerts", duration_s, connections, tmp, "POST", headers,
                                              alert_bodies(per_request))
            log(f"  Alertmanager {name}: {r['rps'] * per_request:.0f} alerts/s, p99 {r['p99_ms']:.1f} ms, "
                f"non-2xx {r['non2xx']} errors {r['errors']}")
    finally:
        stop(peer)
    our_results = {}
    if ours:
        with Gunicorn(tmp, GUNICORN_BACKEND, "backend", BACKEND_WORKERS="2") as server:
            headers = {"Content-Type": "application/json", "X-API-Key": API_KEY}
            run_load(f"{server.url}/events", 1, 8, tmp, "POST", headers, mix=(1, 50))  # warm-up
            for name, (per_request, connections) in CASES.items():
                r = our_results[name] = run_load(f"{server.url}/events", duration_s, connections, tmp, "POST",
                                                 headers, mix=(per_request, ALERTS))
                log(f"  our POST /events {name}: {r['rps'] * per_request:.0f} events/s, p99 {r['p99_ms']:.1f} ms")
    rows = []
    for name, (per_request, connections) in CASES.items():
        label = f"{per_request} per request, {connections} connections"
        refused = peer_results[name]["non2xx"] + peer_results[name]["errors"]
        if refused:
            label += f" ({refused} Alertmanager requests failed)"
        peer_rate = peer_results[name]["rps"] * per_request
        if ours:
            rows.append(Row("peers", f"POST /events, {label}: our events/s vs Alertmanager's alerts/s",
                            our_results[name]["rps"] * per_request, "/s", peer_rate, "Alertmanager, same run"))
        else:
            rows.append(Row("peers", f"Alertmanager POST /api/v2/alerts, {label}: alerts/s", peer_rate, "alerts/s"))
    return rows


def run(quick: bool = False) -> list[Row]:
    """Measure each installed peer; a missing one is skipped with a note. Quick: 1 s each, no backend."""
    duration_s = 1 if quick else 5
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-peers-") as name:
        tmp = Path(name)
        binary = find(BLACKBOX)
        if binary is None:
            log("peers: blackbox_exporter is not installed (apt-get install prometheus-blackbox-exporter): skipped")
        else:
            log(f"peers: blackbox_exporter ({binary})")
            rows += blackbox(binary, tmp, duration_s)
        binary = find(ALERTMANAGER)
        if binary is None:
            log("peers: Alertmanager is not installed (apt-get install prometheus-alertmanager): skipped")
        elif not have_wrk():
            log("peers: Alertmanager needs wrk to drive it (apt-get install wrk): skipped")
        else:
            log(f"peers: Alertmanager ({binary})")
            rows += alertmanager(binary, tmp, duration_s, ours=not quick)
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run (1 s each, our backend left out)")
    print_table(run(parser.parse_args().quick))
