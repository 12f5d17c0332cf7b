"""GET /targets, POST /targets/reload, GET /agent/targets through the app factory (SPEC §8)."""

import pytest

from backend.config import load_settings
from backend.factory import create_app
from backend.notifiers import ConsoleNotifier
from backend.targets_file import TargetsFileError
from tests.backend_fixtures import (Api, api, app, backend_env, client, console, db, event,  # noqa: F401
                                    settings, with_env, targets_yaml)
from tests.support.procs import assert_no_secret_in_any_file

SECRET = "s3cr3t-token-do-not-show"
NAMES = "shop: ü/?#%20 & \"quoted\""  # names may hold any character

TARGETS = f"""\
defaults:
  interval: 30
targets:
  - name: '{NAMES}'
    url: https://shop.example/health
    headers:
      Authorization: "Bearer ${{SHOP_TOKEN}}"
    body_contains: ok
    tags: [prod]
  - url: https://plain.example/
  - name: db
    kind: tcp
    host: 127.0.0.1
    port: 5432
  - name: nightly
    kind: push
    period: 86400
    grace: 3600
"""



def names(api) -> list[str]:
    return [t["name"] for t in api.get("/targets").get_json()["targets"]]


@with_env(SHOP_TOKEN=SECRET, AGENT_REFRESH_SECONDS="45")
def test_agents_get_http_and_tcp_targets_with_secrets_resolved_push_left_out(targets_yaml, api):
    body = api.get("/agent/targets").get_json()
    assert body["refresh_seconds"] == 45
    shop, plain, db_target = body["targets"]
    assert shop == {"name": NAMES, "kind": "http", "url": "https://shop.example/health", "interval": 30, "timeout": 5,
                    "method": "GET", "headers": {"Authorization": f"Bearer {SECRET}"}, "body": None,
                    "expect_status": None, "body_contains": "ok", "body_regex": None, "json_path": None,
                    "json_equals": None, "tls_verify": True, "ca_file": None}
    assert plain["name"] == "https://plain.example/" and plain["headers"] is None
    assert db_target == {"name": "db", "kind": "tcp", "host": "127.0.0.1", "port": 5432, "interval": 30, "timeout": 5}


@with_env(SHOP_TOKEN=SECRET)
def test_the_targets_list_shows_state_and_settings_as_written_never_a_secret(targets_yaml, api, tmp_path):
    body = api.get("/targets").get_json()
    assert (body["total"], body["limit"], body["offset"]) == (4, 50, 0)
    shop, _, db_target, push = body["targets"]
    assert shop["name"] == NAMES and shop["url"] == "https://shop.example/health" and shop["tags"] == ["prod"]
    assert shop["headers"] == {"Authorization": "Bearer ${SHOP_TOKEN}"}
    assert (shop["state"], shop["paused"], shop["failures_in_a_row"], shop["last_check"], shop["alert"]) == (
        "UNKNOWN", False, 0, None, None)
    assert (db_target["host"], db_target["port"]) == ("127.0.0.1", 5432) and "url" not in db_target
    assert (push["kind"], push["period"], push["grace"], push["state"]) == ("push", 86400, 3600, "UNKNOWN")
    assert SECRET not in api.get("/targets").get_data(as_text=True)
    assert_no_secret_in_any_file(tmp_path, SECRET)


@with_env(SHOP_TOKEN=SECRET, FAILURE_THRESHOLD="2")
def test_state_follows_the_results_and_the_active_alert(targets_yaml, api):
    url = "https://shop.example/health"
    api.send(event(url, ok=True, timestamp="2025-01-08T15:30:00Z", target=NAMES, agent="box-1"))
    shop = api.get("/targets").get_json()["targets"][0]
    assert (shop["state"], shop["failures_in_a_row"], shop["last_check"]) == ("UP", 0, "2025-01-08 15:30:00.000")
    api.send(event(url, ok=False, timestamp="2025-01-08T15:30:30Z"), event(url, ok=False, timestamp="2025-01-08T15:31:00Z"))
    shop = api.get("/targets").get_json()["targets"][0]
    assert (shop["state"], shop["failures_in_a_row"]) == ("DOWN", 2)
    assert shop["alert"]["alert_type"] == "ERROR" and shop["alert"]["status"] == "OPEN"
    api.send(event("tcp://127.0.0.1:5432", ok=True, status_code=None, target="db"))
    assert api.get("/targets").get_json()["targets"][2]["state"] == "UP"


def test_events_store_their_target_name_and_agent(api, db):
    api.send(event(target="shop / ü", agent="box-1"), event("tcp://[::1]:5432", status_code=None))
    assert db.rows("SELECT target_url, target, agent FROM events ORDER BY id") == [
        ("https://t.example/", "shop / ü", "box-1"), ("tcp://[::1]:5432", None, None)]


@pytest.mark.parametrize("target_url", ["tcp://h", "tcp://h:0", "tcp://h:5432/path", "tcp://u@h:1", "udp://h:1"])
def test_a_tcp_target_url_must_be_host_and_port_only(api, target_url):
    response = api.post("/events", json=event(target_url, status_code=None))
    assert response.status_code == 400
    assert response.get_json()["details"] == {"code": "invalid_event", "field": "target_url",
                                              "problem": "must be an http:// or https:// URL, or tcp://host:port"}


@pytest.mark.parametrize("field, value", [("target", ""), ("agent", "a" * 256), ("target", "a\x00b"), ("agent", 1)])
def test_bad_target_or_agent_names_are_refused_as_invalid_events(api, field, value):
    response = api.post("/events", json=event(**{field: value}))
    assert response.status_code == 400 and response.get_json()["details"]["field"] == field


@with_env(SHOP_TOKEN=SECRET)
def test_reload_applies_a_changed_file(targets_yaml, api):
    targets_yaml.write_text(TARGETS.replace("  - url: https://plain.example/\n", "")
                            .replace("interval: 30", "interval: 60") + "  - url: https://new.example/\n")
    response = api.post("/targets/reload")
    assert response.status_code == 200
    # the push target takes no interval: unchanged
    assert response.get_json() == {"targets": 4, "added": 1, "changed": 2, "removed": 1}
    assert names(api) == [NAMES, "db", "nightly", "https://new.example/"]
    assert api.get("/agent/targets").get_json()["targets"][0]["interval"] == 60
    assert api.post("/targets/reload").get_json() == {"targets": 4, "added": 0, "changed": 0, "removed": 0}


@with_env(SHOP_TOKEN=SECRET)
def test_reload_refuses_an_invalid_file_with_its_line_and_keeps_the_running_list(targets_yaml, api, caplog):
    targets_yaml.write_text(TARGETS.replace("url: https://plain.example/", f"url: ftp://{SECRET}/"))
    response = api.post("/targets/reload")
    assert response.status_code == 400
    assert response.get_json() == {"error": f"{targets_yaml}:10: targets[1].url: must be an http(s) URL",
                                   "details": {"code": "invalid_targets_file"}}
    assert names(api) == [NAMES, "https://plain.example/", "db", "nightly"]
    assert "targets[1].url: must be an http(s) URL" in caplog.text and SECRET not in caplog.text


@with_env(SHOP_TOKEN=SECRET)
def test_a_second_process_serves_the_list_the_first_reloaded(targets_yaml, api, backend_env, tmp_path):
    other = create_app(load_settings(backend_env), notifiers=[ConsoleNotifier(tmp_path / "other.log")])
    try:
        targets_yaml.write_text("targets:\n  - url: https://only.example/\n")
        assert api.post("/targets/reload").status_code == 200
        other_api = Api(other.test_client())
        assert [t["name"] for t in other_api.get("/agent/targets").get_json()["targets"]] == ["https://only.example/"]
        assert names(other_api) == ["https://only.example/"]
    finally:
        other.extensions["outage"].close()


def test_an_invalid_file_stops_the_app_factory_with_the_same_line(tmp_path, backend_env):
    (tmp_path / "targets.yaml").write_text("targets:\n  - url: http://a/\n    headers: {X: '${UNSET}'}\n")
    with pytest.raises(TargetsFileError, match=r"targets.yaml:3: targets\[0\].headers.X: uses \$\{UNSET\}"):
        create_app(load_settings(backend_env))


def test_paging_and_refusals(tmp_path, backend_env):
    (tmp_path / "targets.yaml").write_text("targets:\n" + "".join(f"  - url: https://{i}.example/\n" for i in range(5)))
    app = create_app(load_settings(backend_env), notifiers=[])
    try:
        api = Api(app.test_client())
        page = api.get("/targets?limit=2&offset=3").get_json()
        assert [t["name"] for t in page["targets"]] == ["https://3.example/", "https://4.example/"]
        assert page["total"] == 5
        assert api.get("/targets?limit=0").status_code == 400
        for method, path in (("GET", "/targets"), ("POST", "/targets/reload"), ("GET", "/agent/targets")):
            assert Api(app.test_client(), key=None).request(method, path).status_code == 401
            assert Api(app.test_client(), key="wrong").request(method, path).status_code == 401
    finally:
        app.extensions["outage"].close()


def test_no_targets_file_is_an_empty_list(api):
    assert api.get("/targets").get_json()["targets"] == []
    assert api.get("/agent/targets").get_json() == {"refresh_seconds": 60, "targets": []}
    assert api.post("/targets/reload").get_json() == {"targets": 0, "added": 0, "changed": 0, "removed": 0}


@with_env(TARGETS_POLL_SECONDS="0.1")
def test_one_process_at_a_time_watches_the_file(tmp_path, backend_env, app, api, caplog):
    from tests.support.procs import wait_until

    other = create_app(load_settings(backend_env), notifiers=[])
    try:
        caplog.set_level("INFO", logger="backend.target_list")
        (tmp_path / "targets.yaml").write_text("targets:\n  - url: https://watched.example/\n")
        wait_until(lambda: names(api) == ["https://watched.example/"], timeout=10, message="the watched change")
        watchers = [a.extensions["outage"].targets.watcher for a in (app, other)]
        wait_until(lambda: any(w.holds_lease for w in watchers), timeout=10, message="a lease holder")
        assert sorted(w.holds_lease for w in watchers) == [False, True]
        assert caplog.text.count("changed on disk, reloaded") == 1
    finally:
        other.extensions["outage"].close()


@with_env(TARGETS_POLL_SECONDS="3600")  # the watcher's own thread stays asleep: the test polls
def test_a_database_outage_is_one_error_line_and_its_end_one_info_line(app, caplog, monkeypatch):
    from sqlalchemy.exc import OperationalError

    watcher = app.extensions["outage"].targets.watcher
    take, calls = watcher.lease.take, []

    def database_down_three_times() -> float:
        calls.append(1)
        if len(calls) <= 3:
            raise OperationalError("SELECT", {}, ConnectionRefusedError("connection refused"))
        return take()

    monkeypatch.setattr(watcher.lease, "take", database_down_three_times)
    caplog.set_level("INFO", logger="backend.target_list")
    for _ in range(5):
        watcher._renew_at = 0.0  # every poll takes (or renews) the lease
        watcher.pass_safely()
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "backend.target_list"]
    assert lines == [("ERROR", "targets file watch failed, trying again every 3600 s: connection refused"),
                     ("INFO", "targets file watch works again")]
    assert not any(r.exc_info for r in caplog.records)  # no traceback
