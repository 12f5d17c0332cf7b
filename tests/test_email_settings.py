"""The email channel's SMTP_* settings (SPEC §10): on, off, defaults, and one sentence naming the key when wrong."""

from __future__ import annotations

import socket

import pytest

from backend.config import ConfigError, load_settings
from backend.notifiers import EmailNotifier, enabled_notifiers
from tests.support.procs import base_env
from tests.support.tls import issue
from tests.test_startup import ENTRY_POINTS, assert_refused, run_entry

KEY = "k" * 20
PASSWORD = "smtp-pw-SECRET-5150"
ON = {"SMTP_HOST": "smtp.example.com", "SMTP_TO": "ops@example.com"}


def settings(**environ: str):
    return load_settings({"API_KEY": KEY, **environ})


def test_email_is_off_without_smtp_keys_and_on_with_host_and_to():
    assert settings().email is None
    email = settings(**ON).email
    assert (email.host, email.port, email.to, email.starttls, email.tls) == (
        "smtp.example.com", 587, ("ops@example.com",), True, False)
    assert email.sender == f"outage-alerts@{socket.gethostname()}" and email.user is None


def test_given_values_are_read_and_typed(tmp_path):
    ca = issue(tmp_path, "ca", days=30, is_ca=True).cert
    email = settings(SMTP_HOST="mail.example.net", SMTP_PORT="25", SMTP_TO="a@example.com, B <b@example.org>,",
                     SMTP_FROM="Alerts <alerts@example.net>", SMTP_CA_FILE=str(ca)).email
    assert (email.port, email.to, email.sender, email.starttls, email.ca_file) == (
        25, ("a@example.com", "B <b@example.org>"), "Alerts <alerts@example.net>", False, ca)


@pytest.mark.parametrize("environ, expected", [
    ({}, (587, True, False)),
    ({"SMTP_TLS": "true"}, (465, False, True)),
    ({"SMTP_PORT": "2525"}, (2525, False, False)),
    ({"SMTP_PORT": "2525", "SMTP_STARTTLS": "true"}, (2525, True, False)),
    ({"SMTP_STARTTLS": "false"}, (587, False, False)),
])
def test_starttls_is_on_by_default_on_587_and_tls_means_465(environ, expected):
    email = settings(**ON, **environ).email
    assert (email.port, email.starttls, email.tls) == expected


def test_a_mailbox_login_is_the_default_sender_and_the_password_is_never_shown():
    email = settings(**ON, SMTP_USER="me@fastmail.example", SMTP_PASSWORD=PASSWORD).email
    assert email.sender == "me@fastmail.example"
    whole = settings(**ON, SMTP_USER="me@fastmail.example", SMTP_PASSWORD=PASSWORD)
    assert PASSWORD not in repr(whole) and PASSWORD not in repr(email)
    [notifier] = [n for n in enabled_notifiers(whole) if isinstance(n, EmailNotifier)]
    assert notifier.channel == "EMAIL" and PASSWORD not in repr(notifier)


@pytest.mark.parametrize("environ, key, words", [
    ({"SMTP_HOST": "smtp.example.com"}, "SMTP_TO", "is required when SMTP_HOST is set"),
    ({"SMTP_TO": "ops@example.com"}, "SMTP_HOST", "is required when SMTP_TO is set"),
    ({**ON, "SMTP_USER": "me"}, "SMTP_PASSWORD", "is required when SMTP_USER is set"),
    ({**ON, "SMTP_PASSWORD": PASSWORD}, "SMTP_USER", "is required when SMTP_PASSWORD is set"),
    ({"SMTP_PASSWORD": PASSWORD}, "SMTP_HOST", "is required when SMTP_PASSWORD is set"),
    ({**ON, "SMTP_TO": "ops@example.com, not-an-address"}, "SMTP_TO", "'not-an-address' is not an email address"),
    ({**ON, "SMTP_TO": " , "}, "SMTP_TO", "must name at least one address"),
    ({**ON, "SMTP_FROM": "alerts at example.com"}, "SMTP_FROM", "is not an email address"),
    ({**ON, "SMTP_FROM": "a@example.com\nBcc: x@example.com"}, "SMTP_FROM", "is not an email address"),
    ({**ON, "SMTP_HOST": "smtp://smtp.example.com"}, "SMTP_HOST", "must be a host name"),
    ({**ON, "SMTP_PORT": "0"}, "SMTP_PORT", "must be a whole number from 1 to 65535"),
    ({**ON, "SMTP_STARTTLS": "maybe"}, "SMTP_STARTTLS", "must be true or false"),
    ({**ON, "SMTP_TLS": "true", "SMTP_STARTTLS": "true"}, "SMTP_STARTTLS", "cannot be true with SMTP_TLS=true"),
    ({**ON, "SMTP_PORT": "25", "SMTP_USER": "me", "SMTP_PASSWORD": PASSWORD}, "SMTP_PASSWORD",
     "would travel unencrypted"),
    ({**ON, "SMTP_CA_FILE": "/nonexistent/ca.pem"}, "SMTP_CA_FILE", "no such file"),
])
def test_a_bad_or_half_set_email_channel_is_one_sentence_naming_the_key(environ, key, words):
    with pytest.raises(ConfigError) as caught:
        settings(**environ)
    assert caught.value.key == key and words in caught.value.problem
    assert PASSWORD not in str(caught.value) and "\n" not in str(caught.value)


def test_a_ca_file_that_holds_no_certificate_is_refused_at_start(tmp_path):
    """It is loaded once at start, as WEBHOOK_CA_FILE is, so a bad file is one sentence, not a failure per email."""
    not_pem = tmp_path / "ca.pem"
    not_pem.write_text("x")
    with pytest.raises(ConfigError) as caught:
        settings(**ON, SMTP_CA_FILE=str(not_pem))
    assert caught.value.key == "SMTP_CA_FILE" and "is not a file of PEM certificates" in caught.value.problem


@pytest.mark.parametrize("environ, key, words", [
    ({"SMTP_HOST": "127.0.0.1"}, "SMTP_TO", "is required when SMTP_HOST is set"),
    ({**ON, "SMTP_USER": "me@example.com"}, "SMTP_PASSWORD", "is required when SMTP_USER is set"),
    ({**ON, "SMTP_FROM": "nobody"}, "SMTP_FROM", "'nobody' is not an email address"),
], ids=["host-without-to", "user-without-password", "bad-from"])
def test_the_backend_refuses_to_start_with_one_line_and_exit_2(tmp_path, environ, key, words):
    line = assert_refused(run_entry(ENTRY_POINTS["app"], base_env(tmp_path, **environ)), key, words)
    assert PASSWORD not in line
