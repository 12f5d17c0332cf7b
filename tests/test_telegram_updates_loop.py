"""The getUpdates poller as a background loop (SPEC §10): a refusing Bot API is said once, token-free; closing
the app ends a long poll in hand."""

from __future__ import annotations

import logging

import pytest

from tests.backend_fixtures import app, backend_env as base_env, console, settings  # noqa: F401
from tests.support.procs import wait_until

TOKEN = "616161:poller-token-SECRET"


@pytest.fixture
def backend_env(base_env, telegram):  # noqa: F811
    """The app's settings with Telegram on, pointed at the fake Bot API."""
    return {**base_env, "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_CHAT_ID": "7",
            "TELEGRAM_API_BASE_URL": telegram.base_url}


@pytest.fixture
def refusing(telegram):
    telegram.poll_error = (401, "Unauthorized")
    return telegram


def test_a_refused_get_updates_is_one_error_line_without_the_token_or_a_traceback(refusing, app, caplog):
    caplog.set_level(logging.INFO, logger="backend.telegram_updates")
    poller = app.extensions["outage"].telegram_updates
    wait_until(lambda: [r for r in caplog.records if "getUpdates failed" in r.getMessage()], 10,
               message="the failure logged")
    [line] = [r for r in caplog.records if r.name == "backend.telegram_updates"]
    assert line.levelno == logging.ERROR and not line.exc_info
    assert "Unauthorized" in line.getMessage() and TOKEN not in caplog.text
    assert poller.interval_seconds == 5.0  # the next poll waits, rather than asking again at once


def test_closing_the_app_ends_a_long_poll_in_hand(telegram, app):
    poller = app.extensions["outage"].telegram_updates
    wait_until(lambda: telegram.polls_now == 1, 10, message="a long poll in flight")
    app.extensions["outage"].close()  # the poll lasts 10 s; close waits at most 5 s for the thread
    assert not poller._thread.is_alive()
