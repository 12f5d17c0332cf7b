"""An agent without TARGET_URL checks the backend's targets file, follows its changes, and caches it (SPEC §8)."""

from __future__ import annotations

import json
import stat

import pytest

from tests.support.procs import Backend, base_env, free_port, start, stop, wait_until
from tests.support.servers import TargetServer

INTERVAL = 0.3


@pytest.fixture
def sites():
    """Two local sites (a and b), stopped afterwards."""
    a, b = TargetServer().start(), TargetServer().start()
    yield a, b
    a.stop()
    b.stop()


def http_target(name: str, site: TargetServer) -> str:
    return f"  - {{name: {name}, url: '{site.url}', interval: {INTERVAL}, timeout: 2}}\n"


def write_targets(path, *entries: str) -> None:
    path.write_text("targets:\n" + "".join(entries), encoding="utf-8")


def agent_env(tmp_path, backend_url: str) -> dict[str, str]:
    return base_env(tmp_path, TARGET_URL="", BACKEND_URL=backend_url, AGENT_NAME="box-1",
                    AGENT_TARGETS_CACHE=str(tmp_path / "cache" / "targets.json"))


def stored(backend: Backend, target: str) -> list[tuple]:
    return backend.rows("SELECT target_url, agent, is_success FROM events WHERE target = ?", target)


def agent_log(tmp_path) -> str:
    path = tmp_path / "agent.log"
    return path.read_text(encoding="utf-8") if path.exists() else ""


def test_the_agent_checks_the_files_targets_follows_reloads_and_uses_its_cache(tmp_path, sites):
    a, b = sites
    targets = tmp_path / "targets.yaml"
    tcp_b = (f"  - {{name: port-b, kind: tcp, host: 127.0.0.1, port: {b.server_address[1]}, "
             f"interval: {INTERVAL}, timeout: 2}}\n")
    write_targets(targets, http_target("site-a", a), tcp_b)
    backend = Backend(tmp_path, TARGETS_FILE=str(targets), AGENT_REFRESH_SECONDS="0.3").start()
    agent = start(["agent/agent.py"], agent_env(tmp_path, backend.url), tmp_path / "agent.out")
    try:
        # The file's targets are checked, and their events name the target and the agent.
        wait_until(lambda: stored(backend, "site-a") and stored(backend, "port-b"), 30, 0.1,
                   "events of both file targets")
        assert stored(backend, "site-a")[0] == (a.url, "box-1", True)
        assert stored(backend, "port-b")[0] == (f"tcp://127.0.0.1:{b.server_address[1]}", "box-1", True)

        # A target added to the file and reloaded starts being checked; the removed one stops.
        write_targets(targets, http_target("site-a", a), http_target("site-b", b))
        assert backend.api("POST", "/targets/reload").status_code == 200
        wait_until(lambda: stored(backend, "site-b"), 30, 0.1, "events of the added target")
        assert "targets: now 2 targets (1 added, 1 removed, 0 changed)" in agent_log(tmp_path)

        write_targets(targets, http_target("site-b", b))
        assert backend.api("POST", "/targets/reload").status_code == 200
        wait_until(lambda: "targets: now 1 target (0 added, 1 removed, 0 changed)" in agent_log(tmp_path), 30,
                   0.1, "the agent to drop site-a")
        a_hits, b_hits = a.hits, b.hits
        wait_until(lambda: b.hits >= b_hits + 3, 30, 0.1, "three more checks of site-b")
        assert a.hits <= a_hits + 1  # at most the one check already in flight when the list changed
        assert "Traceback" not in agent_log(tmp_path)

        # The last good list is on disk, readable by its owner only (it may hold resolved secrets).
        cache = tmp_path / "cache" / "targets.json"
        assert stat.S_IMODE(cache.stat().st_mode) == 0o600
        assert [t["name"] for t in json.loads(cache.read_text())["targets"]] == ["site-b"]
    finally:
        assert stop(agent) == 0
        backend.stop()

    # The backend is away at start: the agent checks the cached list, and does not exit.
    b_hits = b.hits
    again = start(["agent/agent.py"], agent_env(tmp_path, f"http://127.0.0.1:{free_port()}"),
                  tmp_path / "again.out")
    try:
        wait_until(lambda: b.hits >= b_hits + 2, 30, 0.1, "checks of the cached target")
        assert "checking the cached list from" in agent_log(tmp_path)
        assert again.poll() is None
    finally:
        assert stop(again) == 0


def test_without_backend_or_cache_the_agent_waits_for_the_backend_instead_of_exiting(tmp_path, sites):
    a, _ = sites
    targets = tmp_path / "targets.yaml"
    write_targets(targets, http_target("site-a", a))
    backend = Backend(tmp_path, TARGETS_FILE=str(targets), AGENT_REFRESH_SECONDS="0.3")
    agent = start(["agent/agent.py"], agent_env(tmp_path, backend.url), tmp_path / "agent.out")
    try:
        wait_until(lambda: "no targets yet" in agent_log(tmp_path), 30, 0.1, "the no-targets line")
        assert agent.poll() is None
        backend.start()  # later: the agent's retries find it
        wait_until(lambda: stored(backend, "site-a"), 60, 0.1, "events once the backend is up")
        assert agent_log(tmp_path).count("no targets yet") == 1
    finally:
        assert stop(agent) == 0
        backend.stop()


def test_agent_allow_keeps_the_agent_from_checking_a_host_it_does_not_list(tmp_path, sites):
    a, b = sites
    targets = tmp_path / "targets.yaml"
    # Both sites are on 127.0.0.1; one is named by "localhost", which AGENT_ALLOW does not list.
    write_targets(targets, http_target("allowed", a),
                  f"  - {{name: refused, url: 'http://localhost:{b.server_address[1]}/', interval: {INTERVAL}, "
                  "timeout: 2}\n")
    backend = Backend(tmp_path, TARGETS_FILE=str(targets), AGENT_REFRESH_SECONDS="0.3").start()
    agent = start(["agent/agent.py"], {**agent_env(tmp_path, backend.url), "AGENT_ALLOW": "127.0.0.0/8"},
                  tmp_path / "agent.out")
    try:
        wait_until(lambda: len(stored(backend, "allowed")) >= 3, 30, 0.1, "three checks of the allowed target")
        wait_until(lambda: "AGENT_ALLOW" in agent_log(tmp_path), 10, 0.1, "the line naming the refused target")
        assert b.hits == 0 and stored(backend, "refused") == []
        log = agent_log(tmp_path)
        # Said once, though the list came again at every 0.3 s refresh.
        assert log.count("1 target not checked, the host is not allowed by AGENT_ALLOW: 'refused'") == 1
    finally:
        stop(agent)
        backend.stop()
