"""AGENT_ALLOW (SPEC §8): host globs and IP networks limit what a pulled target list may make the agent check."""

from __future__ import annotations

import pytest

from agent.allow_list import parse_allow_list, target_host


@pytest.mark.parametrize("host, allowed", [
    ("shop.example.com", True),
    ("SHOP.Example.COM.", True),        # case and a trailing dot do not matter
    ("example.com", False),             # *.example.com wants a subdomain
    ("evil-example.com", False),
    ("status.internal", True),
    ("10.1.2.3", True),
    ("11.0.0.1", False),
    ("192.0.2.7", True),
    ("192.0.2.8", False),
    ("2001:db8::1", True),
    ("169.254.169.254", False),         # the cloud metadata address, unless listed
    ("db.lan", False),                  # a name is never resolved to compare with a network
])
def test_hosts_match_a_glob_or_a_network(host, allowed):
    allow = parse_allow_list("*.example.com, status.internal 10.0.0.0/8,192.0.2.7  2001:db8::/32")
    assert allow.allows(host) is allowed


@pytest.mark.parametrize("raw, words", [
    ("http://shop.example.com", "neither a host name glob"),
    ("shop.example.com:8080", "neither a host name glob"),
    ("10.0.0.0/33", "neither a host name glob"),
    (" , ", "at least one"),
])
def test_a_bad_entry_is_one_sentence_naming_it(raw, words):
    with pytest.raises(ValueError) as caught:
        parse_allow_list(raw)
    assert words in str(caught.value)


def test_the_host_of_a_check_is_the_urls_or_the_tcp_host():
    assert target_host("http", "https://[2001:db8::1]:8443/x", None) == "2001:db8::1"
    assert target_host("http", "http://user:pw@Shop.Example.com/", None) == "shop.example.com"
    assert target_host("tcp", None, "10.0.0.5") == "10.0.0.5"
