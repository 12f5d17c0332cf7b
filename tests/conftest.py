"""Shared fixtures: real local servers on 127.0.0.1 (target site, fake Telegram Bot API)."""

import threading
import time

import pytest

from tests.support import databases
from tests.support.servers import FakeTelegram, TargetServer

# The threads the backend and the agent start by these names; each must end with its owner's close.
_BACKGROUND_THREADS = ("dispatch-", "retention", "rollups", "targets-watch", "deadline-timer", "check-engine",
                       "spool-writer", "sender")


@pytest.fixture(autouse=True)
def no_background_thread_outlives_its_test():
    """A background thread a test started (backend or agent) must be stopped by it (close, fixture teardown)."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5
    left = [t for t in threading.enumerate() if t not in before and t.name.startswith(_BACKGROUND_THREADS)]
    for thread in left:
        thread.join(max(0.0, deadline - time.monotonic()))
    assert [t.name for t in left if t.is_alive()] == [], "background threads left running"


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


def _module_name(item) -> str:
    return item.module.__name__.rpartition(".")[2]


def pytest_collection_modifyitems(config, items):
    """On PostgreSQL, run only the tests that use the database: the rest already ran on SQLite."""
    if not databases.IS_POSTGRES:
        return
    kept = [item for item in items if _module_name(item) not in databases.DATABASE_FREE_MODULES]
    dropped = [item for item in items if _module_name(item) in databases.DATABASE_FREE_MODULES]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(autouse=True)
def _database_use(request):
    """Mark the tests of database-free modules, so that a query from one of them fails (databases.py)."""
    databases.use.in_use = _module_name(request.node) not in databases.DATABASE_FREE_MODULES
    yield
    databases.use.in_use = True


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
