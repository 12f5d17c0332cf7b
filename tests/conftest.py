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
