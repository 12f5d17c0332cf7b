"""AGENT_ALLOW (SPEC §8): which hosts an agent agrees to check when its targets come from the backend.

An agent checks what the backend serves it, so whoever controls the backend (or its targets file)
controls where the agent connects. AGENT_ALLOW narrows that down on the agent's own machine:
a comma- or space-separated list of host globs (`*.example.com`, `shop.example.com`) and IP
addresses or networks (`10.0.0.0/8`, `192.0.2.7`, `2001:db8::/32`). A target is checked only
when its host, as written in the target, matches one entry. Names are matched by the globs
only: a name is never resolved to compare it with a network (that would let DNS decide).
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

_GLOB = re.compile(r"[a-z0-9*?_.\[\]-]+")

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class AllowList:
    """Host globs (lower case) and IP networks; a host is allowed when it matches any of them."""

    globs: tuple[str, ...]
    networks: tuple[IpNetwork, ...]

    def allows(self, host: str) -> bool:
        """Whether `host` (a name or an IP address, without brackets) matches an entry."""
        host = host.lower().rstrip(".")
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            address = None
        if address is not None and any(address in network for network in self.networks):
            return True
        return any(fnmatch.fnmatchcase(host, glob) for glob in self.globs)


def parse_allow_list(raw: str) -> AllowList:
    """AGENT_ALLOW's value as an AllowList; ValueError says, in one sentence, which entry is wrong."""
    globs, networks = [], []
    for entry in raw.replace(",", " ").split():
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
            continue
        except ValueError:
            pass
        glob = entry.lower().rstrip(".")
        if "/" in entry or "://" in entry or not _GLOB.fullmatch(glob):
            raise ValueError(f"entry {entry!r} is neither a host name glob (such as *.example.com) nor an IP "
                             "address or network (such as 10.0.0.0/8)")
        globs.append(glob)
    if not globs and not networks:
        raise ValueError("must list at least one host glob or IP network, or be left unset to allow every host")
    return AllowList(tuple(globs), tuple(networks))


def target_host(kind: str, url: str | None, host: str | None) -> str:
    """The host a check connects to first: the URL's host for http, `host` for tcp."""
    if kind == "tcp":
        return host or ""
    return urlsplit(url or "").hostname or ""
