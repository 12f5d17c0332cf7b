"""Shared fixtures: real local servers on 127.0.0.1 (target site, fake Telegram Bot API)."""

import pytest

from tests.support.servers import FakeTelegram, TargetServer


@pytest.fixture
def target():
    """A toggleable target site on a free loopback port."""
    server = TargetServer().start()
    yield server
    server.stop()


@pytest.fixture
def telegram():
    """A fake Telegram Bot API; pass `telegram.base_url` as TELEGRAM_API_BASE_URL."""
    server = FakeTelegram().start()
    yield server
    server.stop()


def pytest_sessionstart(session):
    """Start every run with no reliability figures (tests/support/figures.py)."""
    from tests.support import figures
    figures.clear()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Print the reliability figures the fault-injection tests recorded in this run."""
    from tests.support import figures
    rows = figures.read_all()
    if not rows:
        return
    terminalreporter.write_sep("=", "Reliability figures")
    for line in figures.table(rows):
        terminalreporter.write_line(line)
