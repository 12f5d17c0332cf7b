"""Backend configuration (SPEC §2): defaults, one clear error naming each bad key, secrets kept out."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent import config as agent_config
from backend.config import ROOT, ConfigError, Settings, load_settings, read_environment
from backend.database import make_engine
from backend.messages import Notice, telegram_text
from backend.notifiers import enabled_notifiers
from backend.rules import AlertType
from common.config import api_key_warning

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
    ("NOTIFY_LANGUAGE", "fr"),
    ("NOTIFY_POLL_SECONDS", "0"),
    ("NOTIFY_POLL_SECONDS", "61"),
    ("REMINDER_MINUTES", "-1"),
    ("REMINDER_MINUTES", "soon"),
    ("DATABASE_URL", "foo://x"),
])
def test_an_invalid_value_raises_config_error_naming_the_key(key, value):
    with pytest.raises(ConfigError) as caught:
        load_settings({"API_KEY": KEY, "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_CHAT_ID": "42", key: value})
    assert caught.value.key == key
    assert str(caught.value).startswith(f"{key}:")
    assert KEY not in str(caught.value) and TOKEN not in str(caught.value)


def test_the_outbox_poll_is_bounded_and_says_both_bounds():
    assert load_settings({"API_KEY": KEY}).notify_poll_seconds == 0.2
    assert load_settings({"API_KEY": KEY, "NOTIFY_POLL_SECONDS": "60"}).notify_poll_seconds == 60.0
    with pytest.raises(ConfigError) as caught:
        load_settings({"API_KEY": KEY, "NOTIFY_POLL_SECONDS": "90"})
    assert str(caught.value) == "NOTIFY_POLL_SECONDS: must be a number of at least 0.01 and at most 60, got '90'"


@pytest.mark.parametrize("value, minutes", [(None, None), ("", None), ("0", None), ("0.05", 0.05), ("30", 30.0)])
def test_reminders_are_off_unless_reminder_minutes_is_set(value, minutes):
    environ = {"API_KEY": KEY} if value is None else {"API_KEY": KEY, "REMINDER_MINUTES": value}
    assert load_settings(environ).reminder_minutes == minutes


@pytest.mark.parametrize("environ", [{}, {"API_KEY": ""}, {"API_KEY": "   "}], ids=["absent", "empty", "blank"])
def test_a_missing_api_key_raises_config_error_naming_it(environ):
    with pytest.raises(ConfigError) as caught:
        load_settings(environ)
    assert caught.value.key == "API_KEY"
    assert "API_KEY" in str(caught.value)


@pytest.mark.parametrize("token, chat_id, enabled", [
    (None, None, False),
    ("", "  ", False),
    (TOKEN, "42", True),
])
def test_telegram_is_enabled_when_token_and_chat_id_are_both_set(token, chat_id, enabled):
    environ = {"API_KEY": KEY}
    if token is not None:
        environ["TELEGRAM_BOT_TOKEN"] = token
    if chat_id is not None:
        environ["TELEGRAM_CHAT_ID"] = chat_id
    assert load_settings(environ).telegram_enabled is enabled


@pytest.mark.parametrize("given, missing", [
    ({"TELEGRAM_BOT_TOKEN": TOKEN}, "TELEGRAM_CHAT_ID"),
    ({"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_CHAT_ID": ""}, "TELEGRAM_CHAT_ID"),
    ({"TELEGRAM_CHAT_ID": "42"}, "TELEGRAM_BOT_TOKEN"),
])
def test_half_set_telegram_is_an_error_naming_the_missing_key_not_a_silent_off(given, missing):
    other = ({"TELEGRAM_BOT_TOKEN", "TELEGRAM_CHAT_ID"} - {missing}).pop()
    with pytest.raises(ConfigError) as caught:
        load_settings({"API_KEY": KEY, **given})
    assert str(caught.value) == f"{missing}: is required when {other} is set"
    assert TOKEN not in str(caught.value)


@pytest.mark.parametrize("value, language", [(None, "ko"), ("", "ko"), ("ko", "ko"), ("en", "en"), ("EN", "en")])
def test_notify_language_is_ko_by_default_or_en(value, language):
    environ = {"API_KEY": KEY} if value is None else {"API_KEY": KEY, "NOTIFY_LANGUAGE": value}
    assert load_settings(environ).notify_language == language


def test_notify_language_reaches_the_telegram_channel(telegram):
    settings = load_settings({"API_KEY": KEY, "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_CHAT_ID": "42",
                              "TELEGRAM_API_BASE_URL": telegram.base_url, "NOTIFY_LANGUAGE": "en"})
    [_, channel] = enabled_notifiers(settings)
    notice = Notice(1, AlertType.ERROR, "https://example.com", 503, 5000, None, "2025-01-08 15:30:45")
    channel.send(notice)
    [sent] = telegram.sent_messages()
    assert sent["text"] == telegram_text(notice, "en")
    assert sent["text"].startswith("🚨 Service outage alert\n")


@pytest.mark.parametrize("url, words", [
    ("foo://host/x", "unknown scheme 'foo://'"),
    ("postgres://u@h/d", "unknown scheme 'postgres://'"),
    ("not a url", "is not a database URL"),
    ("mysql://u@h/d", "mysql is not supported"),
    ("postgresql://u:pw-SECRET@h/d", "its driver psycopg2 is not installed; use postgresql+psycopg://"),
    ("sqlite:////nonexistent-folder-for-a-test/x.db", "folder /nonexistent-folder-for-a-test does not exist"),
    ("sqlite:///nonexistent-folder-for-a-test/x.db", f"folder {ROOT / 'nonexistent-folder-for-a-test'} does"),
])
def test_a_bad_database_url_is_one_sentence_naming_the_key_without_the_password(url, words):
    with pytest.raises(ConfigError) as caught:
        load_settings({"API_KEY": KEY, "DATABASE_URL": url})
    assert caught.value.key == "DATABASE_URL"
    assert words in str(caught.value)
    assert "pw-SECRET" not in str(caught.value)


@pytest.mark.parametrize("url", ["sqlite:///{tmp}/x.db", "sqlite:///x.db", "sqlite://",
                                 "postgresql+psycopg://u:p@db.example/outage"])
def test_a_good_database_url_is_kept_as_given(tmp_path, url):
    url = url.format(tmp=tmp_path)
    assert load_settings({"API_KEY": KEY, "DATABASE_URL": url}).database_url == url


def test_secrets_never_appear_in_the_settings_repr():
    password = "db-pw-SECRET-31337"
    settings = load_settings({"API_KEY": KEY, "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_CHAT_ID": "42",
                              "DATABASE_URL": f"postgresql+psycopg://outage:{password}@127.0.0.1:5432/outage"})
    for shown in (repr(settings), str(settings)):
        assert KEY not in shown
        assert TOKEN not in shown
        assert password not in shown  # DATABASE_URL may carry the database's password
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


def test_backend_and_agent_read_the_environment_by_one_rule():
    """One ENV_FILE rule for both (SPEC §1: relative to the repository); tests/test_agent_config.py tests it."""
    assert read_environment is agent_config.read_environment
    assert ConfigError is agent_config.ConfigError


@pytest.mark.parametrize("key, warned", [("x" * 15, True), ("k3y", True), ("x" * 16, False), (KEY, False)])
def test_an_api_key_under_16_characters_gets_a_warning_that_never_shows_it(key, warned):
    warning = api_key_warning(key)
    assert (warning is not None) is warned
    if warning:
        assert warning.startswith("API_KEY is shorter than 16 characters") and key not in warning
    assert load_settings({"API_KEY": key}).api_key == key  # a warning, not a refusal
