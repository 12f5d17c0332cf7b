"""What to check and how to judge it: one target of the backend's list, or one TARGET_URL (SPEC §9)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from common.expect_status import parse_expect_status

KINDS = ("http", "tcp")


@dataclass(frozen=True)
class CheckSpec:
    """One target's check settings, as `GET /agent/targets` serves them (null keys take the defaults)."""

    name: str
    kind: str = "http"                      # "http" or "tcp"
    url: str | None = None                  # http
    host: str | None = None                 # tcp
    port: int | None = None                 # tcp
    interval_seconds: float = 30.0
    timeout_seconds: float = 5.0
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    body: str | None = None
    expect_status: tuple[int | str, ...] | None = None  # None: any status < 400 (SPEC §5)
    body_contains: str | None = None
    body_regex: str | None = None
    json_path: str | None = None
    json_equals: Any = None                 # with json_path; None: the path only has to exist
    tls_verify: bool = True
    ca_file: str | None = None
    event_target: str | None = None         # the events' `target`: a file target's name; None for a TARGET_URL

    @property
    def target_url(self) -> str:
        """The event's `target_url`: the URL, or `tcp://host:port` for a tcp target."""
        if self.kind == "tcp":
            host = f"[{self.host}]" if self.host and ":" in self.host else self.host
            return f"tcp://{host}:{self.port}"
        return self.url or ""

    @property
    def needs_body(self) -> bool:
        """Whether a condition reads the body (only then is it downloaded, SPEC §9)."""
        return bool(self.body_contains is not None or self.body_regex is not None or self.json_path is not None)


def spec_for_url(url: str, interval_seconds: float, timeout_seconds: float) -> CheckSpec:
    """A TARGET_URL entry as a spec with the defaults: its events look exactly as before §8."""
    return CheckSpec(name=url, kind="http", url=url, interval_seconds=interval_seconds,
                     timeout_seconds=timeout_seconds)


def spec_from_target(entry: Mapping[str, Any]) -> CheckSpec:
    """A CheckSpec from one entry of `GET /agent/targets`; ValueError names the bad key, never its value."""
    name = _text(entry, "name", required=True)
    kind = entry.get("kind") or "http"
    if kind not in KINDS:
        raise ValueError(f"target {name!r}: kind must be one of {', '.join(KINDS)}")
    common = {"name": name, "kind": kind, "event_target": name,
              "interval_seconds": _seconds(entry, name, "interval", 30.0),
              "timeout_seconds": _seconds(entry, name, "timeout", 5.0)}
    if kind == "tcp":
        port = entry.get("port")
        if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
            raise ValueError(f"target {name!r}: port must be a whole number from 1 to 65535")
        return CheckSpec(host=_text(entry, "host", required=True, name=name), port=port, **common)
    url = _text(entry, "url", required=True, name=name)
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"target {name!r}: url must start with http:// or https://")
    headers = entry.get("headers") or {}
    if not isinstance(headers, Mapping) or not all(isinstance(k, str) and isinstance(v, str)
                                                   for k, v in headers.items()):
        raise ValueError(f"target {name!r}: headers must map names to strings")
    return CheckSpec(
        url=url, method=(_text(entry, "method", name=name) or "GET").upper(),
        headers=tuple(headers.items()), body=_text(entry, "body", name=name),
        expect_status=_expect_status(entry.get("expect_status"), name),
        body_contains=_text(entry, "body_contains", name=name),
        body_regex=_text(entry, "body_regex", name=name),
        json_path=_text(entry, "json_path", name=name), json_equals=entry.get("json_equals"),
        tls_verify=entry.get("tls_verify") is not False, ca_file=_text(entry, "ca_file", name=name),
        **common)


def _text(entry: Mapping[str, Any], key: str, *, required: bool = False, name: str | None = None) -> str | None:
    value = entry.get(key)
    where = f"target {name!r}: " if name is not None else "target: "
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value):
        raise ValueError(f"{where}{key} must be {'a non-empty' if required else 'a'} string")
    return value


def _seconds(entry: Mapping[str, Any], name: str, key: str, default: float) -> float:
    value = entry.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"target {name!r}: {key} must be a number of seconds greater than 0")
    return float(value)


def _expect_status(value: Any, name: str) -> tuple[int | str, ...] | None:
    try:
        return parse_expect_status(value)
    except ValueError as problem:
        raise ValueError(f"target {name!r}: expect_status {problem}") from None
