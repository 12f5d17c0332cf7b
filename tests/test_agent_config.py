"""Agent configuration: defaults, lists, and one clear error naming the key for each bad value (SPEC §2)."""

from __future__ import annotations

import os
import socket

import pytest

from agent.config import ROOT, AgentSettings, ConfigError, load_settings, read_environment

API_KEY = "test-key-0123456789"


def settings(**environ: str) -> AgentSettings:
    return load_settings({"API_KEY": API_KEY, **environ})


def test_defaults_follow_the_spec():
    s = settings()
    assert s.target_urls == () and s.pulls_targets  # unset: the backend's list (SPEC §2, §8)
    assert s.agent_name == socket.gethostname()
    assert s.targets_cache == ROOT / "agent" / "targets-cache.json"
    assert s.check_interval_seconds == 30
    assert s.request_timeout_seconds == 5
    assert s.backend_url == "http://localhost:5000"
    assert s.api_key == API_KEY
    assert s.log_file == ROOT / "agent" / "agent.log"
    assert s.max_workers == 500
    assert s.spool_file == ROOT / "agent" / "spool.db"
    assert (s.batch_size, s.spool_max_events) == (500, 100_000)
    assert (s.log_max_bytes, s.log_backups) == (10 * 1024 * 1024, 5)


def test_spool_and_log_rotation_settings_are_read():
    s = settings(AGENT_SPOOL_FILE="var/spool.db", AGENT_BATCH_SIZE="1000", AGENT_SPOOL_MAX_EVENTS="7",
                 AGENT_LOG_MAX_BYTES="0", AGENT_LOG_BACKUPS="2")
    assert s.spool_file == ROOT / "var" / "spool.db"  # relative to the repository, not the cwd
    assert (s.batch_size, s.spool_max_events, s.log_max_bytes, s.log_backups) == (1000, 7, 0, 2)


def test_blank_values_mean_the_default():
    assert settings(TARGET_URL="  ", CHECK_INTERVAL_SECONDS="") == settings()


def test_target_url_is_a_comma_list_stripped_without_empties_or_duplicates():
    s = settings(TARGET_URL=" http://a.example/ ,, https://b.example:8443/x,http://a.example/ ,")
    assert s.target_urls == ("http://a.example/", "https://b.example:8443/x")


def test_agent_name_and_targets_cache_are_read():
    s = settings(AGENT_NAME=" box-1 ", AGENT_TARGETS_CACHE="var/targets.json", TARGET_URL="http://a.example/")
    assert (s.agent_name, s.targets_cache) == ("box-1", ROOT / "var" / "targets.json")
    assert not s.pulls_targets


def test_numbers_may_be_fractions():
    s = settings(CHECK_INTERVAL_SECONDS="0.2", REQUEST_TIMEOUT_SECONDS="1.5", AGENT_MAX_WORKERS="4")
    assert (s.check_interval_seconds, s.request_timeout_seconds, s.max_workers) == (0.2, 1.5, 4)


def test_backend_url_loses_its_trailing_slash():
    assert settings(BACKEND_URL="https://alerts.example:8443/api/").backend_url == \
        "https://alerts.example:8443/api"


def test_a_relative_log_file_resolves_against_the_repository_not_the_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert settings(AGENT_LOG_FILE="logs/agent.log").log_file == ROOT / "logs" / "agent.log"
    assert settings(AGENT_LOG_FILE=str(tmp_path / "a.log")).log_file == tmp_path / "a.log"


@pytest.mark.parametrize("key, value, words", [
    ("TARGET_URL", "example.com", "'example.com'"),
    ("TARGET_URL", "ftp://example.com", "http"),
    ("TARGET_URL", "http://ok.example/, https://", "'https://'"),
    ("TARGET_URL", "http://example.com:99999/", "malformed"),
    ("TARGET_URL", " , ,", "at least one"),
    ("CHECK_INTERVAL_SECONDS", "abc", "must be a number greater than 0, got 'abc'"),
    ("CHECK_INTERVAL_SECONDS", "0", "greater than 0"),
    ("CHECK_INTERVAL_SECONDS", "-1", "greater than 0"),
    ("CHECK_INTERVAL_SECONDS", "nan", "greater than 0"),
    ("CHECK_INTERVAL_SECONDS", "inf", "greater than 0"),
    ("REQUEST_TIMEOUT_SECONDS", "5s", "got '5s'"),
    ("REQUEST_TIMEOUT_SECONDS", "0", "greater than 0"),
    ("BACKEND_URL", "localhost:5000", "http"),
    ("BACKEND_URL", "http://", "host"),
    ("AGENT_MAX_WORKERS", "0", "at least 1"),
    ("AGENT_MAX_WORKERS", "2.5", "got '2.5'"),
    ("AGENT_MAX_WORKERS", "many", "got 'many'"),
    ("AGENT_BATCH_SIZE", "0", "from 1 to 1000"),
    ("AGENT_BATCH_SIZE", "1001", "from 1 to 1000"),
    ("AGENT_SPOOL_MAX_EVENTS", "0", "at least 1"),
    ("AGENT_LOG_MAX_BYTES", "-1", "at least 0"),
    ("AGENT_LOG_BACKUPS", "x", "got 'x'"),
    ("AGENT_NAME", "a" * 256, "at most 255"),
    ("AGENT_NAME", "tab\there", "printable"),
    ("AGENT_ALLOW", "https://shop.example.com", "neither a host name glob"),
])
def test_an_invalid_value_is_a_config_error_naming_the_key(key, value, words):
    with pytest.raises(ConfigError) as caught:
        settings(**{key: value})
    assert caught.value.key == key
    assert str(caught.value).startswith(f"{key}: ")
    assert words in str(caught.value)


@pytest.mark.parametrize("environ", [{}, {"API_KEY": ""}, {"API_KEY": "   "}])
def test_a_missing_api_key_is_a_config_error(environ):
    with pytest.raises(ConfigError) as caught:
        load_settings(environ)
    assert caught.value.key == "API_KEY"
    assert "required" in str(caught.value)


def test_the_api_key_never_appears_in_an_error_or_the_repr():
    secret = "s3cret-\x07-value"
    with pytest.raises(ConfigError) as caught:
        load_settings({"API_KEY": secret})
    assert "s3cret" not in str(caught.value)
    assert API_KEY not in repr(settings())
    assert API_KEY not in str(settings())


def test_settings_are_frozen():
    with pytest.raises(AttributeError):
        settings().api_key = "other"  # type: ignore[misc]


def test_the_environment_wins_over_the_dotenv_file(tmp_path, monkeypatch):
    env_file = tmp_path / "agent.env"
    env_file.write_text("API_KEY=from-file\nTARGET_URL=http://file.example/\nBACKEND_URL=http://file:1\n")
    monkeypatch.setenv("ENV_FILE", str(env_file))
    monkeypatch.setenv("TARGET_URL", "http://env.example/")
    monkeypatch.delenv("API_KEY", raising=False)
    monkeypatch.delenv("BACKEND_URL", raising=False)
    environ = read_environment()
    assert environ["TARGET_URL"] == "http://env.example/"
    assert environ["API_KEY"] == "from-file"
    assert environ["BACKEND_URL"] == "http://file:1"


def test_an_env_file_that_does_not_exist_is_named_not_taken_as_empty(tmp_path, monkeypatch):
    monkeypatch.setenv("ENV_FILE", str(tmp_path / "absent.env"))
    with pytest.raises(ConfigError) as caught:
        read_environment()
    assert str(caught.value) == f"ENV_FILE: no such file {tmp_path / 'absent.env'}"


def test_a_relative_env_file_is_read_from_the_repository_whatever_the_cwd(tmp_path, monkeypatch):
    name = f"tests/.env-agent-config-{os.getpid()}"
    (ROOT / name).write_text("ONLY_IN_THE_REPO_FILE=1\n")
    try:
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("ENV_FILE", name)
        assert read_environment()["ONLY_IN_THE_REPO_FILE"] == "1"
    finally:
        (ROOT / name).unlink()


def test_read_environment_does_not_change_os_environ(tmp_path, monkeypatch):
    env_file = tmp_path / "agent.env"
    env_file.write_text("ONLY_IN_THE_FILE=1\n")
    monkeypatch.setenv("ENV_FILE", str(env_file))
    assert read_environment()["ONLY_IN_THE_FILE"] == "1"
    assert "ONLY_IN_THE_FILE" not in os.environ
