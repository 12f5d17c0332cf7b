"""Backend configuration (SPEC §2): defaults, one clear error naming each bad key, secrets kept out."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.config import ROOT, ConfigError, Settings, load_settings
from backend.database import make_engine

KEY = "api-key-SECRET-0123456789"
TOKEN = "123456:BOT-TOKEN-SECRET-abcdef"


def test_defaults_follow_the_spec():
    settings = load_settings({"API_KEY": KEY})
    assert settings.api_key == KEY
    assert settings.host == "127.0.0.1"
    assert settings.port == 5000
    assert settings.debug is False
    assert settings.failure_threshold == 3
    assert settings.database_url == f"sqlite:///{ROOT / 'notifications.db'}"
    assert settings.log_file == ROOT / "backend" / "server.log"
    assert settings.telegram_bot_token is None
    assert settings.telegram_chat_id is None
    assert settings.telegram_api_base_url == "https://api.telegram.org/bot"
    assert settings.telegram_enabled is False


def test_given_values_are_read_and_typed():
    settings = load_settings({"API_KEY": KEY, "FLASK_HOST": "0.0.0.0", "FLASK_PORT": "8080", "FLASK_DEBUG": "true",
                              "FAILURE_THRESHOLD": "5", "DATABASE_URL": "sqlite:////tmp/x.db",
                              "TELEGRAM_API_BASE_URL": "http://127.0.0.1:8081/bot"})
    assert (settings.host, settings.port, settings.debug, settings.failure_threshold) == ("0.0.0.0", 8080, True, 5)
    assert settings.database_url == "sqlite:////tmp/x.db"
    assert settings.telegram_api_base_url == "http://127.0.0.1:8081/bot"


@pytest.mark.parametrize("key, value", [
    ("FLASK_PORT", "abc"),
    ("FLASK_PORT", "0"),
    ("FLASK_PORT", "70000"),
    ("FAILURE_THRESHOLD", "0"),
    ("FAILURE_THRESHOLD", "-1"),
    ("FAILURE_THRESHOLD", "2.5"),
    ("FLASK_DEBUG", "maybe"),
    ("TELEGRAM_API_BASE_URL", "ftp://x"),
    ("TELEGRAM_API_BASE_URL", "not a url"),
    ("NOTIFY_BACKOFF_SECONDS", "nan"),
    ("NOTIFY_TIMEOUT_SECONDS", "0"),
])
def test_an_invalid_value_raises_config_error_naming_the_key(key, value):
    with pytest.raises(ConfigError) as caught:
        load_settings({"API_KEY": KEY, "TELEGRAM_BOT_TOKEN": TOKEN, key: value})
    assert caught.value.key == key
    assert str(caught.value).startswith(f"{key}:")
    assert KEY not in str(caught.value) and TOKEN not in str(caught.value)


@pytest.mark.parametrize("environ", [{}, {"API_KEY": ""}, {"API_KEY": "   "}], ids=["absent", "empty", "blank"])
def test_a_missing_api_key_raises_config_error_naming_it(environ):
    with pytest.raises(ConfigError) as caught:
        load_settings(environ)
    assert caught.value.key == "API_KEY"
    assert "API_KEY" in str(caught.value)


@pytest.mark.parametrize("token, chat_id, enabled", [
    (None, None, False),
    (TOKEN, None, False),
    (None, "42", False),
    (TOKEN, "", False),
    (TOKEN, "42", True),
])
def test_telegram_is_enabled_only_when_token_and_chat_id_are_both_set(token, chat_id, enabled):
    environ = {"API_KEY": KEY}
    if token is not None:
        environ["TELEGRAM_BOT_TOKEN"] = token
    if chat_id is not None:
        environ["TELEGRAM_CHAT_ID"] = chat_id
    assert load_settings(environ).telegram_enabled is enabled


def test_secrets_never_appear_in_the_settings_repr():
    settings = load_settings({"API_KEY": KEY, "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_CHAT_ID": "42"})
    for shown in (repr(settings), str(settings)):
        assert KEY not in shown
        assert TOKEN not in shown
    assert "42" in repr(settings)  # the chat id is not a secret


def test_settings_are_frozen():
    settings = load_settings({"API_KEY": KEY})
    with pytest.raises(Exception):
        settings.failure_threshold = 1  # type: ignore[misc]
    assert isinstance(settings, Settings)


def test_a_relative_sqlite_url_resolves_against_the_repository_not_the_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    engine = make_engine("sqlite:///relative/dir/t.db")  # no connection is made: nothing is created
    try:
        assert Path(engine.url.database) == ROOT / "relative" / "dir" / "t.db"
    finally:
        engine.dispose()


def test_an_absolute_sqlite_url_is_kept(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/t.db")
    try:
        assert Path(engine.url.database) == tmp_path / "t.db"
    finally:
        engine.dispose()


def test_a_relative_log_file_resolves_against_the_repository(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings({"API_KEY": KEY, "BACKEND_LOG_FILE": "logs/server.log"})
    assert settings.log_file == ROOT / "logs" / "server.log"
