"""The dashboard through the app factory (SPEC §12): off without a password, login, CSRF, pages, ACK from a form."""

import re
import threading
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import event as sa_event

from tests.backend_fixtures import (API_KEY, api, app, backend_env, client, console, db, event, settings,  # noqa: F401
                                    targets_yaml, with_env)

PASSWORD = "correct horse battery staple"
SECRET_KEY = "dashboard-test-secret-key-0123456789abcdef"
ON = {"DASHBOARD_PASSWORD": PASSWORD, "SECRET_KEY": SECRET_KEY}
on = with_env(**ON)
TARGETS = ("targets:\n  - name: shop\n    url: https://shop.example/health\n"
           "  - name: blog\n    url: https://blog.example/\n")


def ago(minutes: float) -> str:
    return (datetime.now(timezone.utc) - timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def csrf(client, path: str = "/ui/login") -> str:
    """The CSRF token a page's forms carry."""
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text).group(1)


def log_in(client, password: str = PASSWORD, address: str = "127.0.0.1", **extra):
    return client.post("/ui/login", data={"csrf_token": csrf(client), "password": password, **extra},
                       environ_base={"REMOTE_ADDR": address})


def open_alert(api, url: str = "https://shop.example/health", name: str = "shop") -> int:
    for minute in (3, 2, 1):
        answer = api.send(event(url, ok=False, target=name, timestamp=ago(minute)))
    return answer["alert"]["id"]


@pytest.mark.parametrize("path", ["/", "/ui/", "/ui/login", "/ui/alerts", "/ui/targets/shop", "/ui/static/style.css"])
def test_the_dashboard_is_off_404_without_a_password(client, path):
    assert client.get(path).status_code == 404


@on
def test_the_front_page_leads_to_the_login_and_a_wrong_password_is_refused(client):
    assert client.get("/").headers["Location"] == "/ui/"
    assert client.get("/ui/alerts").headers["Location"] == "/ui/login?next=/ui/alerts"
    refused = log_in(client, "wrong")
    assert refused.status_code == 401 and "Wrong password." in refused.text
    assert client.get("/ui/").status_code == 302  # still signed out
    signed_in = log_in(client, next="/ui/alerts")
    assert signed_in.status_code == 302 and signed_in.headers["Location"] == "/ui/alerts"
    assert client.get("/ui/").status_code == 200


@on
def test_a_login_elsewhere_is_never_the_next_page(client):
    assert log_in(client, next="//evil.example/ui/").headers["Location"] == "/ui/"
    assert log_in(client, next="https://evil.example/ui/").headers["Location"] == "/ui/"


@on
def test_a_post_without_its_csrf_token_is_refused_and_changes_nothing(targets_yaml, client, api, db):
    assert client.post("/ui/login", data={"password": PASSWORD}).status_code == 400
    assert client.get("/ui/").status_code == 302  # the right password alone did not log in
    alert_id = open_alert(api)
    log_in(client)
    refused = client.post(f"/ui/alerts/{alert_id}/status", data={"status": "ACK"})
    assert refused.status_code == 400
    forged = client.post(f"/ui/alerts/{alert_id}/status", data={"status": "ACK", "csrf_token": "forged"})
    assert forged.status_code == 400
    assert db.rows("SELECT status FROM alerts")[0]["status"] == "OPEN"
    assert client.post("/ui/logout").status_code == 400  # logout is a form too


@on
def test_ack_then_resolve_from_the_alerts_page(targets_yaml, client, api, db):
    alert_id = open_alert(api)
    log_in(client)
    page = client.get("/ui/alerts?status=OPEN").text
    assert f'data-alert="{alert_id}"' in page and "ACK alert" in page
    token = csrf(client, "/ui/alerts")
    acked = client.post(f"/ui/alerts/{alert_id}/status", data={"status": "ACK", "csrf_token": token,
                                                              "next": "/ui/alerts?status=OPEN"})
    assert acked.headers["Location"] == "/ui/alerts?status=OPEN"
    acked_row = db.rows("SELECT status, acknowledged_by FROM alerts")[0]
    assert (acked_row["status"], acked_row["acknowledged_by"]) == ("ACK", "dashboard")
    assert f"Alert {alert_id} is now ACK." in client.get("/ui/alerts?status=ACK").text
    assert f'data-alert="{alert_id}"' not in client.get("/ui/alerts?status=OPEN").text
    client.post(f"/ui/alerts/{alert_id}/status", data={"status": "RESOLVED", "csrf_token": token})
    assert db.rows("SELECT status FROM alerts")[0]["status"] == "RESOLVED"
    again = client.post(f"/ui/alerts/{alert_id}/status", data={"status": "ACK", "csrf_token": token})
    assert "is RESOLVED and cannot become ACK" in client.get(again.headers["Location"]).text


@on
def test_failed_logins_slow_that_address_only(client):
    for _ in range(3):
        assert log_in(client, "wrong", "10.0.0.1").status_code == 401
    slowed = log_in(client, PASSWORD, "10.0.0.1")  # even the right password waits its turn
    assert slowed.status_code == 429 and "try again in 1 s" in slowed.text
    assert log_in(client, PASSWORD, "10.0.0.2").status_code == 302  # never a global lockout


@on
def test_the_session_cookie_is_httponly_and_samesite_lax_not_secure_over_http(client):
    cookie = log_in(client).headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie


@with_env(DASHBOARD_HTTPS="true", **ON)
def test_dashboard_https_makes_the_cookie_secure(client):
    assert "; Secure" in log_in(client).headers["Set-Cookie"]


@on
def test_no_page_or_log_line_holds_the_password_the_secret_key_or_the_api_key(targets_yaml, app, client, api, settings):
    alert_id = open_alert(api)
    log_in(client, "wrong")
    log_in(client)
    pages = [client.get(path).text for path in ("/ui/", "/ui/alerts", "/ui/targets/shop", f"/ui/login")]
    client.post(f"/ui/alerts/{alert_id}/status", data={"status": "ACK", "csrf_token": csrf(client, "/ui/")})
    logs = settings.log_file.read_text(encoding="utf-8") if settings.log_file.exists() else ""
    for secret in (PASSWORD, SECRET_KEY, API_KEY):
        assert all(secret not in page for page in pages)
        assert secret not in logs
    assert PASSWORD not in repr(settings) and SECRET_KEY not in repr(settings)


@on
def test_the_targets_page_shows_state_uptime_last_check_and_response_times(targets_yaml, app, client, api):
    api.send(*[event("https://shop.example/health", ok=i % 4 != 0, target="shop", timestamp=ago(300 - i),
                     response_time_ms=100 + i) for i in range(8)])
    app.extensions["outage"].roller.run_once()
    api.send(event("https://agent-only.example/", timestamp=ago(1)))  # a target only an agent names, unrolled
    open_alert(api, "https://blog.example/", "blog")
    log_in(client)
    page = client.get("/ui/").text
    rows = dict(re.findall(r'<tr data-target="([^"]+)">(.*?)</tr>', page, re.S))
    assert list(rows) == ["shop", "blog", "https://agent-only.example/"]  # file order, then the others
    assert "state UP" in rows["shop"] and rows["shop"].count("75.00 %") == 3 and "<polyline" in rows["shop"]
    assert "state DOWN" in rows["blog"] and "0.00 %" in rows["blog"]
    assert "100.00 %" in rows["https://agent-only.example/"]


@on
def test_the_targets_page_reads_a_fixed_number_of_statements_however_many_targets(tmp_path, backend_env, app,
                                                                                  client, api):
    def statements_for(count: int) -> int:
        api.send(*[event(f"https://t{count}-{i}.example/", timestamp=ago(i + 1)) for i in range(count)])
        app.extensions["outage"].roller.run_once()
        seen = []
        engine = app.extensions["outage"].engine
        page_thread = threading.get_ident()  # the test client serves in this thread; the app's loops run in others

        def listener(*args):
            if threading.get_ident() == page_thread:
                seen.append(args[2])
        sa_event.listen(engine, "before_cursor_execute", listener)
        try:
            assert client.get("/ui/").status_code == 200
        finally:
            sa_event.remove(engine, "before_cursor_execute", listener)
        # Only the page's reads: a new pooled connection's own set-up statements are not the page's.
        return len([sql for sql in seen if re.search(r"\b(targets|alerts|rollups|events)\b", sql)])

    log_in(client)
    app.extensions["dashboard_fleet"].reuse_seconds = 0  # read the rollups on every load here
    assert statements_for(2) == statements_for(40)


@on
def test_reused_rollup_sums_still_count_every_newer_check_once(targets_yaml, app, client, api):
    def shop_row() -> str:
        return re.search(r'<tr data-target="shop">(.*?)</tr>', client.get("/ui/").text, re.S).group(1)

    log_in(client)
    api.send(*[event("https://shop.example/health", target="shop", timestamp=ago(60 - i)) for i in range(4)])
    app.extensions["outage"].roller.run_once()
    assert shop_row().count("100.00 %") == 3  # the sums are read here and kept for a while
    api.send(*[event("https://shop.example/health", ok=i != 0, target="shop", timestamp=ago(50 - i))
               for i in range(4)])
    app.extensions["outage"].roller.run_once()  # rolled after the sums were read: counted from the events
    assert shop_row().count("87.50 %") == 3
    api.send(event("https://shop.example/health", ok=False, target="shop", timestamp=ago(40)))  # not rolled at all
    assert shop_row().count("77.77 %") == 3


@on
def test_a_targets_page_shows_its_checks_alerts_and_delivery_attempts(targets_yaml, app, client, api):
    alert_id = open_alert(api)
    assert app.extensions["outage"].dispatcher.wait_idle(10)
    log_in(client)
    page = client.get("/ui/targets/shop").text
    assert "state DOWN" in page and page.count(">fail<") == 3 and "503" in page
    assert f'data-alert="{alert_id}"' in page
    assert "CONSOLE" in page and "SENT" in page  # the console channel's attempt
    assert 'id="chart-data"' in page
    assert client.get("/ui/targets/nobody").status_code == 404
