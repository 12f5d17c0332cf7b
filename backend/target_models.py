"""A target's settings as pydantic models (SPEC §8): each key's type, bounds and one-sentence problem."""

from __future__ import annotations

import ipaddress
import math
import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from backend.validation import MAX_TARGET_NAME_LENGTH, is_valid_url
from common.expect_status import parse_expect_status

# The default channels (SPEC §10), which a target may always name; the file's named channels add to them.
DEFAULT_CHANNELS = ("console", "telegram", "email", "webhook", "apprise")
_JSON_PATH = re.compile(r"\$(\.[A-Za-z_][A-Za-z0-9_-]*|\[[0-9]+\])*")
_METHOD = re.compile(r"[A-Z]{1,20}")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_HOST_NAME = re.compile(r"(?=.{1,253}\.?$)[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
                        r"(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?")

Seconds = Annotated[float, Field(gt=0, le=366 * 86400)]
Count = Annotated[int, Field(ge=1, le=1000)]
Label = Annotated[str, Field(min_length=1, max_length=200)]
Minutes = Annotated[float, Field(gt=0, le=366 * 1440)]


def check_channel_names(value: list[str] | None, info: ValidationInfo) -> list[str] | None:
    """The one check of channel names a target gives (`channels:`, `escalate.channels:`): each known, none twice.

    The file's named channels come in the validation context (`named_channels`).
    """
    named = sorted((info.context or {}).get("named_channels", ()))
    for item in value or []:
        if item not in DEFAULT_CHANNELS and item not in named:
            raise ValueError(f"names a channel that does not exist; known: {', '.join([*DEFAULT_CHANNELS, *named])}")
    if value is not None and len(set(value)) != len(value):
        raise ValueError("names a channel twice")
    return value


class Escalation(BaseModel):
    """`escalate: {after_minutes: 15, channels: [email]}` (SPEC §11): where an alert nobody acknowledged goes."""

    model_config = ConfigDict(extra="forbid", strict=True)

    after_minutes: Minutes
    channels: Annotated[list[str], Field(min_length=1)]

    @field_validator("channels")
    @classmethod
    def _known_channels(cls, value: list[str], info: ValidationInfo) -> list[str]:
        return check_channel_names(value, info)


class TargetSettings(BaseModel):
    """The keys `defaults:` may carry; a target takes these and its identity keys."""

    model_config = ConfigDict(extra="forbid", strict=True)

    interval: Seconds | None = None
    timeout: Seconds | None = None
    failure_threshold: Count | None = None
    success_threshold: Count | None = None
    channels: list[str] | None = None
    tags: list[Label] | None = None
    public: bool | None = None
    method: str | None = None
    headers: dict[str, str] | None = None
    body: str | None = None
    expect_status: Any = None
    body_contains: Annotated[str, Field(min_length=1)] | None = None
    body_regex: str | None = None
    json_path: str | None = None
    json_equals: Any = None
    max_response_time_ms: Annotated[int, Field(ge=1)] | None = None
    tls_expiry_days: Annotated[int, Field(ge=1, le=3650)] | None = None
    ca_file: str | None = None
    tls_verify: bool | None = None
    period: Seconds | None = None
    grace: Annotated[float, Field(ge=0, le=366 * 86400)] | None = None
    reminder_minutes: Annotated[float, Field(ge=0, le=366 * 1440)] | None = None  # 0: no reminders for it
    escalate: Escalation | None = None

    @field_validator("channels")
    @classmethod
    def _known_channels(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        return check_channel_names(value, info)

    @field_validator("escalate")
    @classmethod
    def _plain_escalation(cls, value: Escalation | None) -> dict | None:
        return value.model_dump() if value is not None else None  # stored in the spec as JSON

    @field_validator("method")
    @classmethod
    def _method(cls, value: str | None) -> str | None:
        if value is not None and not _METHOD.fullmatch(value.upper()):
            raise ValueError("must be an HTTP method such as GET, HEAD or POST")
        return value.upper() if value is not None else None

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for name, text in (value or {}).items():
            if not _HEADER_NAME.fullmatch(name):
                raise ValueError("has a header name that is not a valid HTTP header name")
            if "\r" in text or "\n" in text:
                raise ValueError("has a header value with a line break")
        return value

    @field_validator("expect_status")
    @classmethod
    def _expect_status(cls, value) -> list[int | str] | None:
        parsed = parse_expect_status(value)
        return list(parsed) if parsed is not None else None

    @field_validator("body_regex")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except (re.error, RecursionError, OverflowError):
                raise ValueError("is not a valid regular expression") from None
        return value

    @field_validator("json_path")
    @classmethod
    def _json_path(cls, value: str | None) -> str | None:
        if value is not None and not _JSON_PATH.fullmatch(value):
            raise ValueError("must be a simple path from the root such as $.status or $.items[0].state")
        return value

    @field_validator("json_equals")
    @classmethod
    def _json_value(cls, value: Any) -> Any:
        if not _is_json(value):
            raise ValueError("must be a JSON value: text, a number, true, false, null, a list or a mapping "
                             "(put dates in quotes)")
        return value

    @field_validator("ca_file")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise ValueError("must be an absolute path (the agent reads it on its own machine)")
        return value


class TargetEntry(TargetSettings):
    """One entry of `targets:`, defaults merged in; which keys a kind takes is checked before this model."""

    name: Annotated[str, Field(min_length=1, max_length=MAX_TARGET_NAME_LENGTH)] | None = None
    kind: str = "http"
    url: str | None = None
    host: str | None = None
    port: Annotated[int, Field(ge=1, le=65535)] | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not is_valid_url(value, schemes=("http", "https")):
            raise ValueError("must be an http(s) URL")
        return value

    @field_validator("host")
    @classmethod
    def _host(cls, value: str | None) -> str | None:
        if value is not None and not _is_host(value):
            raise ValueError("must be a host name or an IP address, without a scheme or port")
        return value


def _is_host(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return bool(_HOST_NAME.fullmatch(value))


def _is_json(value: Any) -> bool:
    if value is None or isinstance(value, (str, bool, int)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_is_json(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_json(v) for k, v in value.items())
    return False
