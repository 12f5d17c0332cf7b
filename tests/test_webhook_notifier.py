"""The webhook notifier's one attempt against a real local receiver: TLS with a private CA, redirects, failures."""

import pytest

from backend.config import ConfigError, load_settings
from backend.messages import Notice
from backend.notifiers.base import DeliveryError
from backend.notifiers.webhook import WebhookNotifier
from backend.rules import AlertType
from tests.support.procs import free_port
from tests.support.tls import issue, serve_tls
from tests.support.webhook_receiver import WebhookReceiver

SECRET = "whsec-notifier-SECRET-42"
NOTICE = Notice(3, AlertType.ERROR, "https://shop.example/", 503, 250, "HTTP 503", "2026-12-01 10:00:00", target="shop")


@pytest.fixture
def tls_receiver(tmp_path):
    """A receiver on https://127.0.0.1 with a certificate from a CA made here; yields (receiver, CA file)."""
    ca = issue(tmp_path, "ca", 30, is_ca=True)
    server = serve_tls(WebhookReceiver(SECRET), issue(tmp_path, "receiver", 30, issuer=ca)).start()
    yield server, ca.cert
    server.stop()


def test_a_receiver_with_a_private_ca_is_reached_through_webhook_ca_file(tls_receiver):
    receiver, ca_file = tls_receiver
    settings = load_settings({"API_KEY": "k" * 20, "WEBHOOK_URL": receiver.url, "WEBHOOK_SECRET": SECRET,
                              "WEBHOOK_CA_FILE": str(ca_file)})
    assert WebhookNotifier(receiver.url, SECRET, 2, settings.webhook_ca_file).send(NOTICE) is None
    [delivered] = receiver.verified_notices()
    assert delivered["alert"]["target"] == "shop"


def test_without_the_ca_the_receiver_s_certificate_is_not_trusted(tls_receiver):
    receiver, _ = tls_receiver
    with pytest.raises(DeliveryError) as failed:
        WebhookNotifier(receiver.url, SECRET, 2).send(NOTICE)
    assert "TLS certificate not trusted" in failed.value.reason and failed.value.response_code is None
    assert receiver.verified_notices() == []


def test_a_redirect_is_not_followed_and_the_request_id_is_returned():
    receiver = WebhookReceiver(SECRET).start()
    try:
        receiver.statuses, receiver.extra_headers = [302], {"Location": "http://127.0.0.1:9/elsewhere"}
        with pytest.raises(DeliveryError) as failed:
            WebhookNotifier(f"{receiver.url}hook", SECRET, 2).send(NOTICE)
        assert failed.value.response_code == 302 and "redirects are not followed" in failed.value.reason
        receiver.statuses, receiver.extra_headers = [200], {"X-Request-Id": "req-81"}
        assert WebhookNotifier(f"{receiver.url}hook", SECRET, 2).send(NOTICE) == "req-81"
        assert len(receiver.requests) == 2
    finally:
        receiver.stop()


def test_an_unreachable_receiver_is_one_line_without_the_url_s_path_or_the_secret():
    notifier = WebhookNotifier(f"http://user:pw-SECRET@127.0.0.1:{free_port()}/path-SECRET", SECRET, 2)
    with pytest.raises(DeliveryError) as failed:
        notifier.send(NOTICE)
    assert failed.value.reason.startswith("webhook 127.0.0.1:") and "Connection refused" in failed.value.reason
    assert "SECRET" not in failed.value.reason and "SECRET" not in repr(notifier)


def test_settings_never_show_the_secret_or_the_url():
    settings = load_settings({"API_KEY": "k" * 20, "WEBHOOK_URL": "https://hooks.example/x-SECRET",
                              "WEBHOOK_SECRET": SECRET})
    assert settings.webhook_enabled and "SECRET" not in repr(settings)
    assert load_settings({"API_KEY": "k" * 20}).webhook_enabled is False


@pytest.mark.parametrize("env, key, words", [
    ({"WEBHOOK_CA_FILE": "{tmp}/missing.pem"}, "WEBHOOK_CA_FILE", "no such file"),
    ({"WEBHOOK_CA_FILE": "{tmp}/junk.pem"}, "WEBHOOK_CA_FILE", "is not a file of PEM certificates"),
    ({"WEBHOOK_URL": "https://", "WEBHOOK_SECRET": SECRET}, "WEBHOOK_URL", "has no host"),
    ({"WEBHOOK_SECRET": " "}, None, None),
])
def test_bad_webhook_settings_are_one_sentence_naming_the_key(tmp_path, env, key, words):
    (tmp_path / "junk.pem").write_text("not a certificate\n")
    environ = {"API_KEY": "k" * 20, "WEBHOOK_URL": "https://hooks.example/x", "WEBHOOK_SECRET": SECRET}
    environ.update({k: v.format(tmp=tmp_path) for k, v in env.items()})
    if key is None:  # a blank secret is no secret
        key, words = "WEBHOOK_SECRET", "is required when WEBHOOK_URL is set"
    with pytest.raises(ConfigError) as refused:
        load_settings(environ)
    assert refused.value.key == key and words in refused.value.problem
