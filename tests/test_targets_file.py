"""The targets file loader (SPEC §8): every key of the example, and one-line errors naming file, line and key."""

import pytest

from backend.targets_file import ABSENT, TargetsFileError, agent_view, parse_targets, public_view, read_targets_file

SECRET = "hunter2-very-secret-value"
ENV = {"SHOP_TOKEN": SECRET}

EXAMPLE = b"""\
defaults:
  interval: 30
  timeout: 5
targets:
  - name: shop
    url: https://shop.example.com/health
    method: post
    headers: {Authorization: "Bearer ${SHOP_TOKEN}"}
    body: '{"ping": 1}'
    expect_status: [200, "3XX"]
    body_contains: "ok"
    max_response_time_ms: 800
    tls_expiry_days: 14
    ca_file: /etc/ssl/private-ca.pem
    tls_verify: false
    failure_threshold: 3
    success_threshold: 2
    channels: [telegram, console]
    tags: [prod]
    public: true
  - url: http://127.0.0.1:8080/api
    interval: 0.5
    json_path: $.items[0].state
    json_equals: up
  - url: http://127.0.0.1:8080/page
    body_regex: "^<html.*ok"
  - name: db
    kind: tcp
    host: 10.0.0.5
    port: 5432
  - name: ipv6 db
    kind: tcp
    host: "::1"
    port: 5432
  - name: nightly-backup
    kind: push
    period: 86400
    grace: 3600
"""


def load(text: str, env=ENV):
    return parse_targets(text.encode(), env, "targets.yaml")


def refusal(text: str, env=ENV) -> str:
    with pytest.raises(TargetsFileError) as refused:
        load(text, env)
    return str(refused.value)


def test_every_key_of_the_example_loads_with_defaults_merged_and_secrets_unresolved():
    loaded = parse_targets(EXAMPLE, ENV, "targets.yaml")
    by_name = {t["name"]: t for t in loaded.targets}
    assert list(by_name) == ["shop", "http://127.0.0.1:8080/api", "http://127.0.0.1:8080/page", "db", "ipv6 db",
                             "nightly-backup"]
    shop = by_name["shop"]
    assert shop["method"] == "POST" and shop["expect_status"] == [200, "3xx"]
    assert shop["headers"] == {"Authorization": "Bearer ${SHOP_TOKEN}"}  # stored unresolved
    assert (shop["interval"], shop["timeout"], shop["tls_verify"], shop["channels"]) == (30, 5, False,
                                                                                        ["telegram", "console"])
    api = by_name["http://127.0.0.1:8080/api"]  # the default name is the url
    assert (api["interval"], api["json_path"], api["json_equals"], api["method"]) == (0.5, "$.items[0].state",
                                                                                      "up", "GET")
    assert by_name["db"]["target_url"] == "tcp://10.0.0.5:5432"
    assert by_name["ipv6 db"]["target_url"] == "tcp://[::1]:5432"
    push = by_name["nightly-backup"]
    assert (push["period"], push["grace"], push["target_url"]) == (86400, 3600, "push://nightly-backup")
    assert "interval" not in push  # defaults apply only where a kind takes the key
    assert SECRET not in repr(loaded)


def test_the_agent_view_resolves_secrets_and_has_every_key_of_its_kind_the_public_view_does_not():
    shop, api, _, db, *_ = parse_targets(EXAMPLE, ENV, "targets.yaml").targets
    view = agent_view(shop, ENV)
    assert view["headers"] == {"Authorization": f"Bearer {SECRET}"}
    assert set(view) == {"name", "kind", "url", "interval", "timeout", "method", "headers", "body", "expect_status",
                         "body_contains", "body_regex", "json_path", "json_equals", "tls_verify", "ca_file"}
    assert agent_view(api, ENV)["headers"] is None and agent_view(api, ENV)["body_contains"] is None
    assert agent_view(db, ENV) == {"name": "db", "kind": "tcp", "host": "10.0.0.5", "port": 5432, "interval": 30,
                                   "timeout": 5}
    assert SECRET not in repr(public_view(shop))
    assert public_view(shop)["headers"] == {"Authorization": "Bearer ${SHOP_TOKEN}"}


@pytest.mark.parametrize("text, expected", [
    ("targets:\n  - name: a\n    url: ftp://" + SECRET + "/x\n", "targets.yaml:3: targets[0].url: must be an http(s) URL"),
    ("targets:\n  - url: http://a/\n  - url: http://b/\n    interval: " + "-1\n",
     "targets.yaml:4: targets[1].interval: must be more than 0"),
    ("targets:\n  - name: db\n    kind: tcp\n    host: h\n    port: 1\n    url: http://" + SECRET + "/\n",
     "targets.yaml:6: targets[0].url: is a key of http targets, not of tcp targets"),
    ("targets:\n  - url: http://a/\n    period: 60\n",
     "targets.yaml:3: targets[0].period: is a key of push targets, not of http targets"),
    ("targets:\n  - url: http://a/\n    paused: true\n", "targets.yaml:3: targets[0].paused: is not a known key"),
    ("targets:\n  - url: http://a/\n    body_regex: '([" + SECRET + "'\n",
     "targets.yaml:3: targets[0].body_regex: is not a valid regular expression"),
    ("targets:\n  - url: http://a/\n    json_path: " + SECRET + "\n    json_equals: 1\n",
     "targets.yaml:3: targets[0].json_path: must be a simple path from the root such as $.status or "
     "$.items[0].state"),
    ("targets:\n  - url: http://a/\n    json_path: $.a\n",
     "targets.yaml:3: targets[0].json_path: needs json_equals: the value expected there"),
    ("targets:\n  - url: http://a/\n  - name: http://a/\n    url: http://b/\n",
     "targets.yaml:3: targets[1].name: gives the same name as targets[0]; names must be unique"),
    ("targets:\n  - url: http://a/\n    url: http://" + SECRET + "/\n", "targets.yaml:3: targets[0].url: is given twice"),
    ("targets:\n  - kind: tcp\n    host: h\n    port: '" + SECRET + "'\n",
     "targets.yaml:4: targets[0].port: must be a whole number"),
    ("targets:\n  - kind: push\n    name: p\n    period: 60\n", "targets.yaml:2: targets[0].grace: is required"),
    ("targets:\n  - url: http://a/\n    kind: " + SECRET + "\n", "targets.yaml:3: targets[0].kind: must be http, tcp "
     "or push"),
    ("targets:\n  - url: http://a/\n    expect_status: [200, 600]\n",
     'targets.yaml:3: targets[0].expect_status: must be status codes 100-599 or classes "1xx" to "5xx"'),
    ("targets:\n  - url: http://a/\n    channels: [" + SECRET + "]\n",
     "targets.yaml:3: targets[0].channels: names a channel that does not exist; known: console, telegram, email, "
     "webhook, apprise"),
    ("targets:\n  - url: http://a/\n    headers:\n      X-Token: ${NOT_SET}\n",
     "targets.yaml:4: targets[0].headers.X-Token: uses ${NOT_SET}, which is not set in the backend's environment"),
    ("targets:\n  - url: http://a/?token=${SHOP_TOKEN}\n",
     "targets.yaml:2: targets[0].url: may use ${NAME} only under headers: and body: (a URL or name is shown in "
     "alerts and logs)"),
    ("defaults:\n  url: http://a/\ntargets: []\n", "targets.yaml:2: defaults.url: is set per target, not in defaults"),
    ("targets:\n  - url: http://a/\n    escalate:\n      after_minutes: 5\n      channels: [" + SECRET + "]\n",
     "targets.yaml:5: targets[0].escalate.channels: names a channel that does not exist; known: console, telegram, "
     "email, webhook, apprise"),
    ("defaults:\n  escalate: {after_minutes: 0, channels: [email]}\ntargets: []\n",
     "targets.yaml:2: defaults.escalate.after_minutes: must be more than 0"),
    ("targets:\n  - url: http://a/\n    escalate: {after_minutes: 1, channels: []}\n",
     "targets.yaml:3: targets[0].escalate.channels: must not be empty"),
    ("targets:\n  - url: http://a/\n    reminder_minutes: -1\n",
     "targets.yaml:3: targets[0].reminder_minutes: must be at least 0"),
    ("channels:\n  ops: {type: email}\n", "targets.yaml:2: channels.ops.to: is required"),
    ("channels:\n  pager:\n    type: webhook\n    url: ftp://" + SECRET + "/\n    secret: x\n",
     "targets.yaml:4: channels.pager.url: must be an http(s) URL"),
    ("channels:\n  pager: {type: webhook, url: 'http://a/" + SECRET + "'}\n", "targets.yaml:2: channels.pager.secret: "
     "is required"),
    ("channels:\n  chat:\n    type: apprise\n    urls: ['zz://" + SECRET + "']\n", "targets.yaml:4: channels.chat.urls: "
     "entry 1 is not a URL apprise can use (see https://github.com/caronc/apprise/wiki)"),
    ("channels:\n  pager: {type: webhook, url: 'http://a/${NOT_SET}', secret: x}\n",
     "targets.yaml:2: channels.pager.url: uses ${NOT_SET}, which is not set in the backend's environment"),
    ("channels:\n  x: {type: " + SECRET + "}\n", "targets.yaml:2: channels.x.type: must be one of console, email, "
     "webhook, apprise, telegram"),
    ("channels:\n  Ops: {type: console}\n", "targets.yaml:2: channels.Ops: must be a channel name of lowercase letters, "
     "digits, - and _ (at most 32 characters)"),
    ("channels:\n  email: {type: console}\n", "targets.yaml:2: channels.email: is a default channel's name (console, "
     "telegram, email, webhook, apprise); pick another"),
    ("channels:\n  mail: {type: email, to: [" + SECRET + "]}\n", "targets.yaml:2: channels.mail.to: must list email "
     "addresses like ops@example.com"),
    ("channels:\n  pager: {type: console}\ntargets:\n  - url: http://a/\n    channels: [" + SECRET + "]\n",
     "targets.yaml:5: targets[0].channels: names a channel that does not exist; known: console, telegram, email, "
     "webhook, apprise, pager"),
    ("targets:\n  - url: http://a/\n   oops: [" + SECRET + "\n", "targets.yaml:3: is not valid YAML (did not find "
     "expected '-' indicator)"),
    ("defaults: '${SHOP_TOKEN}'\n", "targets.yaml:1: defaults: may use ${NAME} only under headers: and body: (a URL "
     "or name is shown in alerts and logs)"),
    ("defaults:\n  headers: {X: '${SHOP_TOKEN}'}\n  body: '${SHOP_TOKEN}'\n  tags: ['${SHOP_TOKEN}']\n",
     "targets.yaml:4: defaults.tags[0]: may use ${NAME} only under headers: and body: (a URL or name is shown in "
     "alerts and logs)"),
    ("", "targets.yaml: is empty; write `targets: []` for no targets"),
    ("- " + SECRET + "\n", "targets.yaml:1: must be a mapping with `targets:` (and optionally `defaults:` and `channels:`)"),
], ids=lambda value: value[:40] if isinstance(value, str) else None)
def test_a_bad_file_is_one_line_naming_file_line_and_key_never_the_value(text, expected):
    message = refusal(text)
    assert message == expected
    assert SECRET not in message and "\n" not in message


@pytest.mark.parametrize("name", ["API_KEY", "TELEGRAM_BOT_TOKEN", "DATABASE_URL", "SMTP_PASSWORD", "WEBHOOK_SECRET",
                                  "SECRET_KEY", "DASHBOARD_PASSWORD", "METRICS_TOKEN"])
@pytest.mark.parametrize("where", ["headers:\n      X-Token: 'Bearer ${%s}'", "body: '{\"k\": \"${%s}\"}'"])
def test_a_reference_to_a_secret_of_the_backend_is_refused_naming_the_variable(name, where):
    """They are set in the backend's environment, so they would be served to agents and sent to sites."""
    text = "targets:\n  - url: http://a/\n    " + where % name + "\n"
    message = refusal(text, {**ENV, name: SECRET})
    line, key = (4, "headers.X-Token") if where.startswith("headers") else (3, "body")
    assert message == (f"targets.yaml:{line}: targets[0].{key}: uses ${{{name}}}, a secret of the backend itself; "
                       "give the target's secret a variable of its own")
    assert SECRET not in message


def test_a_bad_default_is_named_at_its_own_line_in_defaults():
    assert refusal("defaults:\n  timeout: 0\ntargets:\n  - url: http://a/\n") == (
        "targets.yaml:2: defaults.timeout: must be more than 0")


def test_a_missing_required_file_is_refused_and_a_missing_default_file_is_no_targets(tmp_path):
    absent = tmp_path / "targets.yaml"
    assert read_targets_file(absent, {}, required=False, shown_as="targets.yaml").targets == []
    assert read_targets_file(absent, {}, required=False, shown_as="targets.yaml").fingerprint == ABSENT
    with pytest.raises(TargetsFileError, match=r"^x/targets.yaml: no such file \(set by TARGETS_FILE\)$"):
        read_targets_file(absent, {}, required=True, shown_as="x/targets.yaml")


def test_the_fingerprint_changes_with_the_bytes_only():
    a, b = load("targets: []\n"), load("targets: []\n")
    assert a.fingerprint == b.fingerprint != load("targets: [] # changed\n").fingerprint


def test_the_example_file_loads_and_shows_every_key():
    from pathlib import Path

    from backend.targets_file import COMMON_KEYS, KIND_KEYS

    example = Path(__file__).resolve().parents[1] / "targets.example.yaml"
    env = {"SHOP_TOKEN": "x", "API_PROBE_KEY": "y", "SMTP_HOST": "smtp.example.com"}  # its ops-mail sends by SMTP
    loaded = read_targets_file(example, env, True, "targets.example.yaml")
    assert {t["kind"] for t in loaded.targets} == {"http", "tcp", "push"}
    assert loaded.channels == {"ops-mail": {"type": "email", "to": ["ops@example.com"]}}
    text = example.read_text(encoding="utf-8")
    every_key = set(COMMON_KEYS) | {key for keys in KIND_KEYS.values() for key in keys}
    assert [key for key in sorted(every_key) if f"{key}:" not in text] == []


def test_named_channels_load_with_their_secrets_as_written_and_targets_may_name_them():
    loaded = load("channels:\n  pager: {type: webhook, url: 'http://hooks.example/${SHOP_TOKEN}', secret: '${SHOP_TOKEN}'}\n"
                  "  oncall: {type: telegram, chat_id: -100123}\n"
                  "targets:\n  - {url: 'http://a/', channels: [console, pager]}\n",
                  {**ENV, "TELEGRAM_BOT_TOKEN": "t"})
    assert loaded.channels == {"pager": {"type": "webhook", "url": "http://hooks.example/${SHOP_TOKEN}",
                                         "secret": "${SHOP_TOKEN}"},
                               "oncall": {"type": "telegram", "chat_id": -100123}}
    assert loaded.targets[0]["channels"] == ["console", "pager"]
