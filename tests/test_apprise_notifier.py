"""The apprise notifier in process, against a real local receiver: only loopback is reached, apprise's own
log lines (URLs included) stay out of ours, and a channel's secrets are redacted from every reason."""

import logging
import socket

import pytest

from backend.channels import NamedChannel
from backend.config import ConfigError, load_settings
from backend.messages import Notice
from backend.notifiers.apprise import AppriseNotifier
from backend.notifiers.base import DeliveryError, Notifier
from backend.notifiers.redact import redact, url_secrets
from backend.rules import AlertType
from tests.support.apprise_receiver import receiver  # noqa: F401 (a fixture)

TOKEN = "notifier-TOKEN-0123456789"
NOTICE = Notice(7, AlertType.ERROR, "https://shop.example/", 503, 250, None, "2026-12-01 10:00:00", target="shop")


def test_apprise_reaches_only_the_loopback_receiver(receiver, monkeypatch):
    reached = []
    connect = socket.socket.connect
    monkeypatch.setattr(socket.socket, "connect", lambda self, address: (reached.append(address[0]),
                                                                         connect(self, address))[1])
    port = receiver.server_port
    notifier = AppriseNotifier([f"json://127.0.0.1:{port}/{TOKEN}", f"form://127.0.0.1:{port}/f"], 2, "en")
    assert notifier.send(NOTICE) is None
    assert len(receiver.received()) == 2 and set(reached) == {"127.0.0.1"}
    assert receiver.received()[0]["body"]["title"] == "🚨 Service outage alert"


def test_apprise_log_lines_never_reach_our_handlers_even_at_debug(receiver, caplog):
    caplog.set_level(logging.DEBUG)
    receiver.status = 500
    with pytest.raises(DeliveryError) as failed:
        AppriseNotifier([f"json://127.0.0.1:{receiver.server_port}/{TOKEN}"], 2, "en").send(NOTICE)
    assert failed.value.response_code == 500
    assert TOKEN not in failed.value.reason
    # apprise logs each target's URL at DEBUG ("JSON POST URL: http://…/<token>"); none of its lines reach us.
    assert [r.getMessage() for r in caplog.records if r.name.startswith("apprise")] == []


class _Quoting(Notifier):
    """A channel whose library quotes its URL in an error, as many do."""

    channel = "WEBHOOK"

    def send(self, notice):
        raise DeliveryError(f"POST https://hooks.example/{TOKEN}?key=abcdef123 failed (secret s3cr3t-value)", 502)


def test_a_named_channel_redacts_its_secrets_from_every_reason():
    channel = NamedChannel("pager", "webhook", _Quoting(),
                           [*url_secrets(f"https://hooks.example/{TOKEN}?key=abcdef123"), "s3cr3t-value"])
    with pytest.raises(DeliveryError) as failed:
        channel.send(NOTICE)
    assert channel.channel == "pager" and failed.value.response_code == 502
    assert failed.value.reason == "POST <redacted> failed (secret <redacted>)"


def test_redact_takes_out_a_url_and_its_longer_parts():
    url = f"slack://{TOKEN}/B0000000/XXXXXXXXXXXX"
    assert redact(f"{url} and {TOKEN} and XXXXXXXXXXXX", url_secrets(url)) == "<redacted> and <redacted> and <redacted>"
    assert redact("nothing secret", url_secrets(url)) == "nothing secret"


def test_an_unusable_apprise_url_stops_the_start_naming_the_key_not_the_value():
    with pytest.raises(ConfigError) as refused:
        load_settings({"API_KEY": "k" * 20, "APPRISE_URLS": f"json://127.0.0.1/ok, discord://{TOKEN}"})
    assert str(refused.value).startswith("APPRISE_URLS: entry 2 of 2 is not a URL apprise can use")
    assert TOKEN not in str(refused.value)
