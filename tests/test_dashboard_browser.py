"""The dashboard in a real headless browser (SPEC §12, issue 11 "Done when").

Debian's chromium, driven by Selenium through Debian's chromedriver (so Selenium Manager never runs
and no browser is downloaded), against the real backend and agent processes watching a local
site: log in, see the site up, make it fail, see it go down and its alert appear, acknowledge the
alert with the keyboard, see it change. Screenshots go to test-artifacts/dashboard/ (or
$TEST_ARTIFACTS_DIR/dashboard/). Nothing leaves 127.0.0.1: every other host is unresolvable.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import requests

from tests.support.procs import ROOT, Backend, base_env, start, stop, wait_until

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
PASSWORD = "browser-test-password"
SECRET_KEY = "browser-test-secret-key-0123456789abcdef"
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS_DIR") or ROOT / "test-artifacts") / "dashboard"

if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
    if os.environ.get("CI"):
        pytest.fail("chromium and chromium-driver are missing: .ci/run installs them (scripts/ensure_browser.sh)",
                    pytrace=False)
    pytest.skip("needs Debian's chromium and chromium-driver (sh scripts/ensure_browser.sh)", allow_module_level=True)

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402


@pytest.fixture
def browser(tmp_path):
    """Headless chromium with a fresh profile, no background traffic, and only 127.0.0.1 resolvable."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--disable-dev-shm-usage", "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
                     f"--user-data-dir={tmp_path / 'chromium-profile'}", "--window-size=1200,900"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=CHROMEDRIVER, log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(20)
    yield driver
    driver.quit()  # stops chromedriver, which it started, and the browser


@pytest.fixture
def dashboard(tmp_path, target):
    """The real backend (dashboard on) and agent, watching `target` as "shop" every half second."""
    (tmp_path / "targets.yaml").write_text(
        f"targets:\n  - name: shop\n    url: {target.url}\n    interval: 0.5\n    timeout: 2\n"
        "    failure_threshold: 2\n    public: true\n", encoding="utf-8")
    backend = Backend(tmp_path, DASHBOARD_PASSWORD=PASSWORD, SECRET_KEY=SECRET_KEY, ROLLUP_INTERVAL_SECONDS="0.5",
                      STATUS_PAGE="on",
                      NOTIFY_BACKOFF_SECONDS="0.01").start()
    agent = start(["agent/agent.py"], base_env(tmp_path, TARGET_URL="", BACKEND_URL=backend.url,
                                               AGENT_NAME="browser-test-agent"), tmp_path / "agent.out")
    yield backend
    stop(agent)
    backend.stop()


def shot(driver, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def row_text(driver, selector: str) -> str:
    rows = driver.find_elements(By.CSS_SELECTOR, selector)
    return rows[0].text if rows else ""


def reload_until(driver, url: str, selector: str, words: str, timeout: float = 20) -> str:
    """Load `url` again every half second until the element `selector` shows `words`."""
    def shown():
        driver.get(url)
        return words in row_text(driver, selector)
    wait_until(shown, timeout, interval=0.5, message=f"{words!r} in {selector} at {url}")
    return row_text(driver, selector)


def severe(driver) -> list[str]:
    """The console's errors since the last call (reading the log empties it)."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def test_log_in_see_a_site_go_down_and_acknowledge_its_alert(dashboard, browser, target):
    base = dashboard.url
    browser.get(f"{base}/")
    assert browser.current_url == f"{base}/ui/login?next=/ui/"
    browser.find_element(By.ID, "password").send_keys(PASSWORD + Keys.ENTER)
    wait_until(lambda: browser.current_url == f"{base}/ui/", 10, message="the targets page after login")

    reload_until(browser, f"{base}/ui/", 'tr[data-target="shop"]', "UP")
    shot(browser, "1-targets-up")

    target.set_status(503)
    down = reload_until(browser, f"{base}/ui/", 'tr[data-target="shop"]', "DOWN")
    assert "%" in down  # uptime shown
    shot(browser, "2-targets-down")
    alert_id = dashboard.rows("SELECT id FROM alerts WHERE target = 'shop' AND status = 'OPEN'")[0][0]

    browser.get(f"{base}/ui/alerts?status=OPEN")
    assert "OPEN" in row_text(browser, f'tr[data-alert="{alert_id}"]')
    shot(browser, "3-alert-open")
    # With the keyboard only: Tab to the ACK button, then Enter.
    ack = browser.find_element(By.CSS_SELECTOR, f'button[aria-label="ACK alert {alert_id}"]')
    for _ in range(40):
        if browser.switch_to.active_element == ack:
            break
        ActionChains(browser).send_keys(Keys.TAB).perform()  # to whatever has the focus, as a user's key
    assert browser.switch_to.active_element == ack, "the ACK button is not reachable with Tab"
    ActionChains(browser).send_keys(Keys.ENTER).perform()
    wait_until(lambda: f"Alert {alert_id} is now ACK." in browser.page_source, 10, message="the ACK message")
    browser.get(f"{base}/ui/alerts")
    assert "ACK" in row_text(browser, f'tr[data-alert="{alert_id}"]')
    assert dashboard.rows("SELECT status FROM alerts WHERE id = ?", alert_id)[0][0] == "ACK"
    shot(browser, "4-alert-acknowledged")

    browser.get(f"{base}/ui/targets/shop")
    wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, "#chart .uplot canvas"), 10, message="the chart")
    assert "Delivery attempts" in browser.page_source and "CONSOLE" in browser.page_source
    shot(browser, "5-target-page")

    browser.set_window_size(390, 844)  # a phone
    browser.get(f"{base}/ui/")
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 390 + 1
    shot(browser, "6-targets-phone")
    browser.get(f"{base}/status")  # the public page, on a phone too: no login, no URL
    assert "down" in row_text(browser, 'li[data-target="shop"]') and target.url not in browser.page_source
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 390 + 1
    shot(browser, "6-status-phone")
    browser.set_window_size(1200, 900)

    # Wait through one live refresh (fetch and swap, every 10 s): the page is still whole, and quiet.
    browser.get(f"{base}/ui/")
    wait_until(lambda: browser.execute_script(
        "return document.querySelector('#main h1') && window.performance.getEntriesByType('resource')"
        ".some(e => e.initiatorType === 'fetch')"), 15, interval=0.5, message="a live refresh")
    assert "DOWN" in row_text(browser, 'tr[data-target="shop"]')
    assert severe(browser) == []  # no console error on any page so far

    # A POST without its CSRF token is refused, even with a good session, and changes nothing.
    cookies = {c["name"]: c["value"] for c in browser.get_cookies()}
    forged = requests.post(f"{base}/ui/alerts/{alert_id}/status", data={"status": "RESOLVED"}, cookies=cookies,
                           timeout=10, allow_redirects=False)
    assert forged.status_code == 400
    assert dashboard.rows("SELECT status FROM alerts WHERE id = ?", alert_id)[0][0] == "ACK"

    # Logged out, a wrong password is refused on the page.
    browser.find_element(By.CSS_SELECTOR, "form.logout button").click()
    wait_until(lambda: "/ui/login" in browser.current_url, 10, message="the login page after logout")
    browser.find_element(By.ID, "password").send_keys("not the password" + Keys.ENTER)
    wait_until(lambda: browser.find_elements(By.ID, "login-error"), 10, message="the refusal")
    assert browser.find_element(By.ID, "login-error").text == "Wrong password."
    shot(browser, "7-wrong-password")
    browser.get(f"{base}/ui/")
    assert "/ui/login" in browser.current_url  # still signed out
    assert PASSWORD not in dashboard.log_text() and SECRET_KEY not in dashboard.log_text()


def test_the_dashboard_of_a_backend_without_a_password_is_404(tmp_path):
    backend = Backend(tmp_path).start()
    try:
        for path in ("/", "/ui/", "/ui/login", "/ui/static/dashboard.js"):
            assert requests.get(f"{backend.url}{path}", timeout=10).status_code == 404
    finally:
        backend.stop()
