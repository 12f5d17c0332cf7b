"""The agent's own /metrics on AGENT_METRICS_PORT (SPEC §12): a real agent checking a local site; off when unset."""

from __future__ import annotations

import socket

import pytest
import requests

from agent.config import ConfigError, load_settings
from tests.support.fake_backend import FakeBackend
from tests.support.procs import base_env, free_port, run_to_exit, start, stop, wait_until
from tests.support.servers import TargetServer
from tests.test_metrics_backend import promtool_check, samples


def scrape(port: int) -> dict | None:
    try:
        return samples(requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text)
    except requests.RequestException:
        return None


def listening_addresses(port: int) -> set[str]:
    """The local addresses with a socket listening on `port`, read from /proc/net/tcp{,6} (Linux)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as rows:
            for row in list(rows)[1:]:
                local, state = row.split()[1], row.split()[3]
                address, _, hex_port = local.partition(":")
                if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                    found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]) if len(address) == 8 else address)
    return found


def test_agent_serves_checks_lag_spool_and_send_failures(tmp_path):
    site, backend = TargetServer().start(), FakeBackend(status=401).start()  # 401: a refusal, not retried
    port = free_port()
    env = base_env(tmp_path, TARGET_URL=site.url, BACKEND_URL=backend.url, CHECK_INTERVAL_SECONDS="0.2",
                   AGENT_METRICS_PORT=str(port))
    agent = start(["agent/agent.py"], env, tmp_path / "agent.out")
    try:
        def counted():
            values = scrape(port)
            return values if values and values.get(("outage_agent_checks_total", ("result", "success")), 0) >= 3 \
                and values.get(("outage_agent_send_failures_total",), 0) >= 1 else None
        values = wait_until(counted, 20, interval=0.1, message="checks and a refused send counted")
        assert values[("outage_agent_check_duration_seconds_count",)] >= 3
        assert values[("outage_agent_schedule_lag_seconds_count",)] >= 3
        assert values[("outage_agent_spool_depth",)] >= 1  # refused: the results stay spooled
        site.set_status(503)
        wait_until(lambda: (scrape(port) or {}).get(("outage_agent_checks_total", ("result", "failure")), 0) >= 1,
                   10, message="a failed check counted")
        promtool_check(requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text)
        assert listening_addresses(port) == {"127.0.0.1"}  # by default, not every address
    finally:
        stop(agent)
        site.stop()
        backend.stop()


def test_agent_without_metrics_port_serves_none_and_a_bad_port_stops_it(tmp_path):
    assert load_settings({"API_KEY": "k" * 20}).metrics_port is None
    settings = load_settings({"API_KEY": "k" * 20, "AGENT_METRICS_PORT": "9464"})
    assert (settings.metrics_host, settings.metrics_port) == ("127.0.0.1", 9464)
    with pytest.raises(ConfigError, match="AGENT_METRICS_PORT"):
        load_settings({"API_KEY": "k" * 20, "AGENT_METRICS_PORT": "70000"})
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = base_env(tmp_path, AGENT_METRICS_PORT=str(taken.getsockname()[1]))
        assert run_to_exit(["agent/agent.py", "--once"], env, tmp_path / "agent.out") == 2
    output = (tmp_path / "agent.out").read_text()
    assert output.count("\n") == 1 and output.startswith("configuration error: AGENT_METRICS_PORT: cannot listen")
