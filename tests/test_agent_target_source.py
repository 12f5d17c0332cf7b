"""The agent's pull of GET /agent/targets: parsing, bad entries, the 0600 cache, fallbacks, backoff (SPEC §8)."""

from __future__ import annotations

import json
import logging
import stat
import threading

import pytest
import requests

from agent.target_source import (MAX_RETRY_SECONDS, TargetListError, TargetSource, fetch_answer, parse_answer,
                                 read_cache, write_cache)
from tests.support.procs import free_port
from tests.support.servers import LoopbackServer, QuietHandler

KEY = "test-key-0123456789"
AGENT = "büro-7"  # AGENT_NAME may be any printable text
SECRET = "s3cret-header-value"
SHOP = {"name": "shop", "kind": "http", "url": "http://127.0.0.1:9/health", "interval": 30, "timeout": 5,
        "headers": {"Authorization": f"Bearer {SECRET}"}}
DB = {"name": "db", "kind": "tcp", "host": "127.0.0.1", "port": 5432, "interval": 10, "timeout": 2}
ANSWER = {"refresh_seconds": 60, "targets": [SHOP, DB]}


class _ListHandler(QuietHandler):
    def do_GET(self):
        server: ListServer = self.server  # type: ignore[assignment]
        server.keys.append(self.headers.get("X-API-Key"))
        server.agent_names.append(self.headers.get("X-Agent-Name"))
        status, body = server.answer
        if not isinstance(body, str):
            self.reply_json(status, body)
            return
        self.send_response(status)  # a body that is not JSON, as a broken proxy might send
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())


class ListServer(LoopbackServer):
    """A stand-in for the backend's GET /agent/targets whose answer a test sets."""

    def __init__(self):
        super().__init__(_ListHandler)
        self.answer: tuple[int, object] = (200, ANSWER)
        self.keys: list[str | None] = []
        self.agent_names: list[str | None] = []  # as http.server hands them over: latin-1


@pytest.fixture
def server():
    s = ListServer().start()
    yield s
    s.stop()


@pytest.fixture
def session():
    with requests.Session() as s:
        yield s


def source(session, url: str, tmp_path) -> TargetSource:
    return TargetSource(session, url.rstrip("/"), KEY, AGENT, tmp_path / "cache.json", threading.Event())


def test_an_answer_becomes_specs_named_for_their_events():
    targets = parse_answer(ANSWER, "GET /agent/targets")
    assert targets.refresh_seconds == 60.0
    assert [(s.name, s.kind, s.event_target, s.target_url) for s in targets.specs] == [
        ("shop", "http", "shop", "http://127.0.0.1:9/health"), ("db", "tcp", "db", "tcp://127.0.0.1:5432")]


def test_a_bad_entry_is_skipped_with_one_error_naming_target_and_key_never_the_value(caplog):
    bad = {**SHOP, "name": "broken", "url": f"ftp://{SECRET}/"}
    with caplog.at_level(logging.ERROR):
        targets = parse_answer({"refresh_seconds": 5, "targets": [bad, DB, {**DB, "port": 1}, 7]}, "GET /x")
    assert [s.name for s in targets.specs] == ["db"]
    assert [r.getMessage() for r in caplog.records] == [
        "GET /x: skipped: target 'broken': url must start with http:// or https://",
        "GET /x: skipped: target 'db': name is used twice",
        "GET /x: target #4 skipped: not an object"]
    assert SECRET not in caplog.text


@pytest.mark.parametrize("answer", [[], {"targets": {}}, {"targets": []}, {"refresh_seconds": 0, "targets": []},
                                    {"refresh_seconds": True, "targets": []}])
def test_an_answer_that_is_not_a_target_list_is_refused(answer):
    with pytest.raises(TargetListError):
        parse_answer(answer, "GET /agent/targets")


def test_fetch_sends_the_key_and_agent_name_and_refuses_non_2xx_and_invalid_json(server, session):
    url = server.url.rstrip("/")
    assert fetch_answer(session, url, KEY, AGENT) == ANSWER
    assert server.keys == [KEY]
    assert [n.encode("latin-1").decode("utf-8") for n in server.agent_names] == [AGENT]
    server.answer = (503, {"error": "busy"})
    with pytest.raises(TargetListError, match=r"^GET .*/agent/targets answered 503$"):
        fetch_answer(session, url, KEY, AGENT)
    server.answer = (200, "{not json")
    with pytest.raises(TargetListError, match="invalid JSON"):
        fetch_answer(session, url, KEY, AGENT)
    with pytest.raises(TargetListError, match="failed"):
        fetch_answer(session, f"http://127.0.0.1:{free_port()}", KEY, AGENT)


def test_the_cache_is_replaced_atomically_and_readable_by_its_owner_only(tmp_path):
    path = tmp_path / "cache" / "targets.json"
    assert read_cache(path) is None
    path.parent.mkdir()
    path.write_text("{}")
    path.chmod(0o644)
    write_cache(path, ANSWER)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_cache(path) == ANSWER
    assert [p.name for p in path.parent.iterdir()] == ["targets.json"]  # no temporary file left
    path.write_text("{half")
    with pytest.raises(TargetListError, match="unreadable"):
        read_cache(path)


def test_the_first_list_comes_from_the_backend_and_is_cached(server, session, tmp_path):
    src = source(session, server.url, tmp_path)
    assert [s.name for s in src.first_list().specs] == ["shop", "db"]
    assert json.loads((tmp_path / "cache.json").read_text()) == ANSWER
    assert stat.S_IMODE((tmp_path / "cache.json").stat().st_mode) == 0o600


def test_a_backend_away_at_start_means_the_cached_list(server, session, tmp_path, caplog):
    write_cache(tmp_path / "cache.json", {"refresh_seconds": 60, "targets": [DB]})
    server.answer = (500, {"error": "down"})
    with caplog.at_level(logging.WARNING):
        targets = source(session, server.url, tmp_path).first_list()
    assert [s.name for s in targets.specs] == ["db"]
    assert "answered 500; checking the cached list from" in caplog.text


def test_with_neither_backend_nor_cache_there_is_one_clear_line_and_no_list(session, tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        assert source(session, f"http://127.0.0.1:{free_port()}", tmp_path).first_list() is None
    [record] = caplog.records
    assert record.levelno == logging.ERROR and record.getMessage().startswith("no targets yet: GET ")
    assert "no cached list at" in record.getMessage()


def test_a_bad_answer_keeps_the_current_list_and_retries_with_bounded_backoff(server, session, tmp_path):
    src = source(session, server.url, tmp_path)
    src.first_list()
    before = (tmp_path / "cache.json").read_text()
    server.answer = (200, {"targets": "nope"})
    waits = []
    for _ in range(8):
        with pytest.raises(TargetListError):
            src._fetch()
        src._failed()
        waits.append(src._next_wait)
    assert waits == [1, 2, 4, 8, 16, MAX_RETRY_SECONDS, MAX_RETRY_SECONDS, MAX_RETRY_SECONDS]
    assert (tmp_path / "cache.json").read_text() == before  # the last good list stays on disk
    assert src.take() is None
    server.answer = (200, ANSWER)
    src._fetch()
    assert src._next_wait == 60


def test_the_refresh_thread_hands_over_each_new_list(server, session, tmp_path):
    src = source(session, server.url, tmp_path)
    server.answer = (200, {"refresh_seconds": 0.05, "targets": [DB]})
    src.first_list()
    thread = threading.Thread(target=src.run, daemon=True)
    thread.start()
    try:
        server.answer = (200, {"refresh_seconds": 0.05, "targets": [SHOP]})
        for _ in range(200):
            latest = src.take()
            if latest is not None and [s.name for s in latest.specs] == ["shop"]:
                break
            src.stop.wait(0.05)
        else:
            pytest.fail("the refresh thread never handed over the new list")
    finally:
        src.stop.set()
        thread.join(5)
    assert not thread.is_alive()
