"""A quick smoke run of each benchmark in bench/: it completes and reports figures. No speed is asserted."""

import json
import math
import shutil
import sqlite3
import threading
from http.server import BaseHTTPRequestHandler

import pytest

from bench import agent_load, agent_profile, alert_latency, event_mix, ingest, nginx, peers, queries, speed
from bench.common import run_load
from tests.support.servers import LoopbackServer


def _value(rows, metric_start: str) -> float:
    return next(row.value for row in rows if row.metric.startswith(metric_start))


@pytest.mark.timeout(180)
def test_alert_latency_completes_in_a_quick_run():
    rows = alert_latency.run(quick=True)
    assert rows
    assert all(math.isfinite(row.value) for row in rows)


@pytest.mark.timeout(180)
def test_agent_quick_run_states_its_measured_capacity():
    rows = agent_load.bench_rows(quick=True)
    assert all(math.isfinite(row.value) for row in rows)
    assert _value(rows, "capacity @ 2s: most targets that kept up") in (0, 100)
    assert not any(row.ceiling for row in rows)  # paced by design: no request-rate ceiling


@pytest.mark.timeout(180)
def test_ingest_batches_carry_failures_and_open_alerts_during_the_run_under_both_servers():
    rows = ingest.run(quick=True)
    assert all(math.isfinite(row.value) for row in rows)
    for server in ("gunicorn", "waitress"):
        assert _value(rows, f"{server}: batches of 500 (4 x 500 targets): events/s") > 0
        assert _value(rows, f"{server}: batches of 500 (4 x 500 targets): failed checks") > 0
        assert _value(rows, f"{server}: batches of 500 (4 x 500 targets): alerts opened during the run") > 0
        single = [row for row in rows if row.metric.startswith(f"{server}: 1 event/request")]
        assert {row.target for row in single if row.met is not None} == {">= 60% of bare", "<= 3x bare"}


@pytest.mark.timeout(180)
def test_queries_label_get_alerts_by_alerts_stored_and_post_events_by_both():
    rows = queries.run(quick=True)
    assert all(math.isfinite(row.value) for row in rows)
    assert all(row.metric.endswith("@ 2,000 alerts") for row in rows if row.metric.startswith("GET /alerts"))
    assert all(row.metric.endswith("@ 20,000 events, 2,000 alerts") for row in rows if row.metric.startswith("POST"))
    stats = [row.metric for row in rows if row.metric.startswith("GET /targets/")]
    assert stats and all(m.endswith("@ 72,000 rollup rows + 2,000 unrolled events") for m in stats)


def test_queries_seed_gives_every_alert_its_failed_checks_and_recovery(tmp_path):
    db = tmp_path / "seed.db"
    counts = queries.seed(db, 20_000, 2_000)
    assert counts["alerts"] == 2_000
    assert 0 < counts["OPEN"] < 200 and 0 < counts["ACK"] < counts["OPEN"]
    with sqlite3.connect(db) as conn:
        opening = conn.execute("SELECT count(*) FROM alerts a JOIN events e ON e.id = a.event_id "
                               "WHERE e.is_success = 0 AND e.target_url = a.target_url").fetchone()[0]
        recovering = conn.execute("SELECT count(*) FROM alerts a JOIN events e ON e.id = a.resolved_event_id "
                                  "WHERE e.is_success = 1 AND e.target_url = a.target_url").fetchone()[0]
        resolved = conn.execute("SELECT count(*) FROM alerts WHERE status = 'RESOLVED'").fetchone()[0]
        runs = conn.execute(
            "SELECT count(*) FROM alerts a WHERE (SELECT count(*) FROM events e WHERE e.target_url = a.target_url "
            "AND e.id <= a.event_id AND e.id > a.event_id - 3 * 1000 AND e.is_success = 0) = 3").fetchone()[0]
    assert opening == 2_000
    assert recovering == resolved
    assert runs == 2_000  # the opening check is the third failure in a row


@pytest.mark.timeout(60)
@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
@pytest.mark.parametrize("batch, targets", [(1, 50), (20, 40)])
def test_wrk_and_the_python_generator_send_the_same_event_mix(tmp_path, batch, targets, monkeypatch):
    class Capture(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with self.server.lock:
                self.server.bodies.append(body)
            self.send_response(201)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = LoopbackServer(Capture)
    server.bodies, server.lock = [], threading.Lock()
    server.start()
    try:
        for tool in ("wrk", "python"):
            monkeypatch.setenv("BENCH_NO_WRK", "1" if tool == "python" else "0")
            server.bodies.clear()
            result = run_load(f"{server.url.rstrip('/')}/events", 1, 2, tmp_path, "POST",
                              {"Content-Type": "application/json"}, mix=(batch, targets), run=7)
            assert result["tool"] == tool
            events = [e for body in server.bodies for e in (body if isinstance(body, list) else [body])]
            assert events
            for e in events:
                agent = int(e["target_url"].split("-a", 1)[1].split(".", 1)[0])
                k = int(e["event_uid"].rsplit("-", 1)[1], 16)
                assert e == event_mix.event(7, agent, targets, k, e["timestamp"])
                assert e["timestamp"].endswith("Z")
    finally:
        server.stop()


@pytest.mark.timeout(60)
def test_peers_quick_run_measures_the_installed_peers_and_skips_the_others():
    rows = peers.run(quick=True)
    assert all(math.isfinite(row.value) for row in rows)
    assert bool(rows) == bool(peers.find(peers.BLACKBOX) or peers.find(peers.ALERTMANAGER))


@pytest.mark.timeout(60)
@pytest.mark.skipif(nginx.find() is None, reason="nginx is not installed")
def test_speed_quick_run_measures_the_agent_from_a_targets_file_beside_blackbox_on_nginx():
    rows = speed.run(quick=True)
    assert all(math.isfinite(row.value) for row in rows)
    label = f"{speed.QUICK['targets']} targets @ 2s (targets file)"
    assert _value(rows, f"{label}: planned checks made") > 0
    assert _value(rows, f"{label}: planned checks stored in the backend") > 0
    assert _value(rows, f"{label}: backend CPU per 1,000 checks stored") > 0
    if peers.find(peers.BLACKBOX):
        ratio = next(row for row in rows if "vs blackbox_exporter" in row.metric)
        assert ratio.ceiling > 0 and ratio.met is not None
    if agent_load.py_spy_binary():
        assert any(row.metric.startswith("profile: ") for row in rows)


def test_speed_is_skipped_with_a_line_when_nginx_is_absent(monkeypatch, capsys):
    monkeypatch.setattr(nginx, "find", lambda: None)
    assert speed.run(quick=True) == []
    assert "nginx is not installed" in capsys.readouterr().err


def _line(file: str, text: str) -> int:
    """The number of the first line of the repository's `file` holding `text`, as py-spy names frames."""
    lines = (agent_profile.ROOT / file).read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


_SOCKET_ACTION = f"CheckEngine._turn (agent/engine.py:{_line('agent/engine.py', 'socket_action(key.fd')})"


@pytest.mark.parametrize("stack, group", [
    (f"CheckEngine._run (agent/engine.py:155);{_SOCKET_ACTION}", agent_profile.LIBCURL),
    (f"{_SOCKET_ACTION};Transfer.on_header (agent/checks/transfer.py:{_line('agent/checks/transfer.py', 'self.status_line = line')})",
     agent_profile.ENGINE),
    # A comment naming getinfo() is no call into libcurl.
    (f"{_SOCKET_ACTION};Transfer.on_header (agent/checks/transfer.py:{_line('agent/checks/transfer.py', '# pycurl refuses getinfo()')})",
     agent_profile.ENGINE),
    (f"CheckEngine._finish (agent/engine.py:242);finish (agent/checks/http.py:{_line('agent/checks/http.py', '= judge(')})",
     agent_profile.RESULT),
    ("Agent.spool_result (agent/agent.py:111);log_result (agent/checks/result.py:62);"
     "Logger.info (logging/__init__.py:1489)", agent_profile.LOG_LINE),
    ("SpoolWriter._run (agent/spool.py:244);Spool.add_many (agent/spool.py:112)", agent_profile.SPOOL),
    ("SpoolSender._deliver (agent/sender.py:251);JSONEncoder.encode (json/encoder.py:200)", agent_profile.SENDING),
    ("SpoolWriter._run (agent/spool.py:240);Condition.wait (threading.py:327)", None),
])
def test_profile_groups_a_stack_by_its_innermost_known_frame(stack, group):
    assert agent_profile.group_of(stack.split(";")) == group


def test_profile_shares_out_each_threads_cpu_over_its_samples(tmp_path):
    stacks = tmp_path / "stacks.txt"
    stacks.write_text(
        f"thread (11): check-engine;CheckEngine._run (agent/engine.py:155);{_SOCKET_ACTION} 30\n"
        "thread (11): check-engine;CheckEngine._deliver (agent/engine.py:248);"
        "Logger.info (logging/__init__.py:1489) 10\n"
        "thread (12): spool-writer;SpoolWriter._run (agent/spool.py:244);Spool.add_many (agent/spool.py:112) 50\n"
        "thread (12): spool-writer;SpoolWriter._run (agent/spool.py:240);Condition.wait (threading.py:327) 900\n")
    by_samples = agent_profile.summarize(stacks)
    assert by_samples[agent_profile.SPOOL] == pytest.approx(50 / 90)
    # The spool writer mostly waited in fsync: its 50 samples stand for 1 CPU-second, the engine's 40 for 3.
    by_cpu = agent_profile.summarize(stacks, {11: 3.0, 12: 1.0, 13: 0.0})
    assert by_cpu == pytest.approx({agent_profile.LIBCURL: 0.75 * 30 / 40, agent_profile.LOG_LINE: 0.75 * 10 / 40,
                                    agent_profile.SPOOL: 0.25})


def test_ingest_skips_postgresql_with_a_line_when_it_is_not_installed(monkeypatch, capsys):
    monkeypatch.setattr(ingest, "PG_INITDB", "/nonexistent/postgresql/*/bin/initdb")
    with ingest.postgres_cluster() as url:
        assert url is None
    assert "PostgreSQL pass skipped: PostgreSQL is not installed" in capsys.readouterr().err
