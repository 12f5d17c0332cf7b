"""Request bodies, validated by pydantic into plain values, with one-sentence errors (SPEC §4)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any
from urllib.parse import urlsplit
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError, field_validator

from backend.errors import ApiError
from backend.rules import AlertStatus

MAX_BATCH = 1000
MAX_URL_LENGTH = 2048
MAX_ERROR_MESSAGE_LENGTH = 2000
MAX_RESPONSE_TIME_MS = 2**31 - 1  # fits an INTEGER column in every database


class EventIn(BaseModel):
    """One check result as the agent sends it."""

    model_config = ConfigDict(extra="forbid")

    target_url: StrictStr
    timestamp: StrictStr
    is_success: StrictBool
    status_code: Annotated[StrictInt, Field(ge=100, le=599)] | None = None
    response_time_ms: Annotated[StrictInt, Field(ge=0, le=MAX_RESPONSE_TIME_MS)] | None = None
    error_message: Annotated[StrictStr, Field(max_length=MAX_ERROR_MESSAGE_LENGTH)] | None = None
    # The agent's idempotency key: the same uid is stored once, however often it is sent.
    event_uid: StrictStr | None = None

    @property
    def checked_at(self) -> datetime:
        """When the check ran, as an aware UTC datetime."""
        return datetime.fromisoformat(self.timestamp)

    @field_validator("event_uid")
    @classmethod
    def _uuid(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return str(UUID(value))  # canonical lower-case form, so case never makes a second copy
        except ValueError:
            raise ValueError("must be a UUID such as 0ce69366-1524-46a0-8f8f-8d3b38ad61fa") from None

    @field_validator("target_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        try:
            parts = urlsplit(value)
        except ValueError:  # e.g. an unclosed IPv6 bracket
            raise ValueError("must be an http:// or https:// URL") from None
        # isprintable() is False for every control and separator character but the plain space.
        if (len(value) > MAX_URL_LENGTH or parts.scheme not in ("http", "https") or not parts.hostname
                or " " in value or not value.isprintable()):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("error_message")
    @classmethod
    def _no_nul(cls, value: str | None) -> str | None:
        # No database text type can hold U+0000 (PostgreSQL refuses it outright).
        if value is not None and "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value

    @field_validator("timestamp")
    @classmethod
    def _iso_8601(cls, value: str) -> str:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise ValueError("must be an ISO 8601 date-time such as 2025-01-08T15:30:45Z") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)  # no offset given: read it as UTC
        try:
            return moment.astimezone(timezone.utc).isoformat()
        except OverflowError:  # e.g. year 9999 with a negative offset
            raise ValueError("must be a date-time between the years 1 and 9999 in UTC") from None


# The required fields and what each must be, for errors about a missing one.
_MISSING = "is required"
_TYPE_PROBLEMS = {
    "bool_type": "must be true or false",
    "int_type": "must be a whole number or null",
    "string_type": "must be a string",
    "greater_than_equal": "is too small",
    "less_than_equal": "is too large",
}


def parse_events(body: Any) -> list[EventIn]:
    """Validate a POST /events body (one object or an array of up to 1000) as a whole batch."""
    is_batch = isinstance(body, list)
    items = body if is_batch else [body]
    if is_batch and not items:
        raise ApiError(400, "The batch is empty; send at least one event.")
    if len(items) > MAX_BATCH:
        raise ApiError(400, f"A batch holds at most {MAX_BATCH} events; this one has {len(items)}.")
    parsed = []
    for index, item in enumerate(items):
        where = f"events[{index}]." if is_batch else ""
        if not isinstance(item, dict):
            raise ApiError(400, f"{'events[%d]' % index if is_batch else 'The body'} must be a JSON object.")
        try:
            parsed.append(EventIn.model_validate(item))
        except ValidationError as exc:
            raise _as_api_error(exc, where) from None
    return parsed


def _as_api_error(exc: ValidationError, where: str) -> ApiError:
    """Turn pydantic's first complaint into one sentence that names the field."""
    first = exc.errors(include_url=False, include_input=False)[0]
    field = where + ".".join(str(part) for part in first["loc"] if not isinstance(part, int)
                             and part not in ("constrained-int", "int", "str", "bool"))
    kind = first["type"]
    if kind == "missing":
        problem = _MISSING
    elif kind == "extra_forbidden":
        problem = "is not a known field"
    elif kind == "value_error":
        problem = str(first["ctx"]["error"])
    elif kind in ("greater_than_equal", "less_than_equal"):
        bound = first["ctx"].get("ge", first["ctx"].get("le"))
        problem = f"must be {'at least' if kind == 'greater_than_equal' else 'at most'} {bound}"
    elif kind == "string_too_long":
        problem = f"must be at most {first['ctx']['max_length']} characters"
    else:
        problem = _TYPE_PROBLEMS.get(kind, first["msg"].lower())
    return ApiError(400, f"{field} {problem}.", details={"field": field, "problem": problem})


class StatusChange(BaseModel):
    """A PATCH /alerts/<id> body."""

    model_config = ConfigDict(extra="forbid")

    status: StrictStr


def parse_status_change(body: Any) -> AlertStatus:
    """Validate a PATCH body: {"status": "ACK"} or {"status": "RESOLVED"} (SPEC §4)."""
    if not isinstance(body, dict):
        raise ApiError(400, "The body must be a JSON object such as {\"status\": \"ACK\"}.")
    try:
        change = StatusChange.model_validate(body)
    except ValidationError as exc:
        raise _as_api_error(exc, "") from None
    if change.status not in (AlertStatus.ACK.value, AlertStatus.RESOLVED.value):
        raise ApiError(400, "status must be ACK or RESOLVED.", details={"field": "status"})
    return AlertStatus(change.status)


def parse_query_int(raw: str | None, name: str, default: int, low: int, high: int | None = None) -> int:
    """A whole-number query parameter within bounds, or a 400 naming it."""
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"{name} must be a whole number.", details={"field": name}) from None
    if value < low or (high is not None and value > high):
        limit = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ApiError(400, f"{name} must be {limit}.", details={"field": name})
    return value


def parse_target_filter(raw: str | None) -> str | None:
    """The ?target_url= filter of GET /alerts, or a 400 for text no stored URL can contain."""
    if raw is None or raw == "":
        return None
    if len(raw) > MAX_URL_LENGTH or "\x00" in raw:
        raise ApiError(400, "target_url must be a URL of at most 2048 characters.", details={"field": "target_url"})
    return raw


def parse_status_filter(raw: str | None) -> str | None:
    """The ?status= filter of GET /alerts, or a 400."""
    if raw is None or raw == "":
        return None
    if raw not in {s.value for s in AlertStatus}:
        raise ApiError(400, "status must be OPEN, ACK or RESOLVED.", details={"field": "status"})
    return raw
