"""Request bodies, validated by pydantic into plain values, with one-sentence errors (SPEC §4)."""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from functools import cached_property, lru_cache
from typing import Annotated, Any
from urllib.parse import urlsplit
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError, field_validator

from backend.config import Settings
from backend.errors import CLOCK_SKEW, INVALID_EVENT, INVALID_REQUEST, UNKNOWN_FIELD, ApiError
from backend.rules import AlertStatus
from backend.time_text import check_time_text

MAX_BATCH = 1000
MAX_URL_LENGTH = 2048
MAX_ERROR_MESSAGE_LENGTH = 2000
MAX_RESPONSE_TIME_MS = 2**31 - 1  # fits an INTEGER column in every database
MAX_TARGET_NAME_LENGTH = MAX_URL_LENGTH + 16  # a target's default name is its URL, or tcp://host:port
MAX_AGENT_NAME_LENGTH = 255  # a host name at most
MAX_PHASE_MS = 86_400_000.0  # a phase time of a day or more is no measurement
# A UUID already in the form str(UUID(...)) gives, checked without building one (a fifth of validating a batch).
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
PhaseMs = Annotated[float, Field(strict=True, ge=0, le=MAX_PHASE_MS, allow_inf_nan=False)]


# A pure function of its arguments, asked again for every check of the same targets: urlsplit was
# a sixth of a batch's CPU (cProfile, batches of 500). At most 8,192 answers (16 MB of the longest URLs).
@lru_cache(maxsize=8192)
def is_valid_url(value: str, schemes: tuple[str, ...]) -> bool:
    """Whether `value` is a printable URL of one of `schemes` with a host (tcp: host:port and nothing more)."""
    try:
        parts = urlsplit(value)
        port = parts.port if parts.scheme == "tcp" else None
    except ValueError:  # an unclosed IPv6 bracket; for tcp, a port that is not a number or out of range
        return False
    # isprintable() is False for every control and separator character but the plain space.
    if (len(value) > MAX_URL_LENGTH or parts.scheme not in schemes or not parts.hostname
            or " " in value or not value.isprintable()):
        return False
    if parts.scheme == "tcp":
        return bool(port) and not (parts.path or parts.query or parts.fragment or "@" in parts.netloc)
    return True


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
    # Which file target this checks (its name), and which agent checked it (AGENT_NAME) (SPEC §8).
    target: Annotated[StrictStr, Field(min_length=1, max_length=MAX_TARGET_NAME_LENGTH)] | None = None
    agent: Annotated[StrictStr, Field(min_length=1, max_length=MAX_AGENT_NAME_LENGTH)] | None = None
    # What the agent measured of a file target's check, when known (SPEC §9): ms from the request's start.
    dns_ms: PhaseMs | None = None
    connect_ms: PhaseMs | None = None
    tls_ms: PhaseMs | None = None
    first_byte_ms: PhaseMs | None = None
    cert_expires_at: StrictStr | None = None  # the server certificate's notAfter, ISO 8601 with a zone

    # Each worked out once per event (ingest.prepare asks for both before the write lock).
    @cached_property
    def checked_at(self) -> datetime:
        """When the check ran, as an aware UTC datetime."""
        return datetime.fromisoformat(self.timestamp)

    @cached_property
    def check_time(self) -> str:
        """When the check ran, in the stored form (events.checked_at)."""
        return check_time_text(self.checked_at)

    @property
    def has_measurements(self) -> bool:
        """Whether the agent sent any phase time or the certificate's expiry."""
        return (self.dns_ms is not None or self.connect_ms is not None or self.tls_ms is not None
                or self.first_byte_ms is not None or self.cert_expires_at is not None)

    @property
    def cert_expiry(self) -> datetime | None:
        """The certificate's expiry as an aware UTC datetime, when sent."""
        return datetime.fromisoformat(self.cert_expires_at) if self.cert_expires_at is not None else None

    @field_validator("event_uid")
    @classmethod
    def _uuid(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if _CANONICAL_UUID.fullmatch(value):  # what agents send: already the one stored form
            return value
        try:
            return str(UUID(value))  # canonical lower-case form, so case never makes a second copy
        except ValueError:
            raise ValueError("must be a UUID such as 0ce69366-1524-46a0-8f8f-8d3b38ad61fa") from None

    @field_validator("target_url")
    @classmethod
    def _target_url(cls, value: str) -> str:
        if not is_valid_url(value, schemes=("http", "https", "tcp")):
            raise ValueError("must be an http:// or https:// URL, or tcp://host:port")
        return value

    @field_validator("error_message", "target", "agent")
    @classmethod
    def _no_nul(cls, value: str | None) -> str | None:
        # No database text type can hold U+0000 (PostgreSQL refuses it outright).
        if value is not None and "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value

    @field_validator("timestamp", "cert_expires_at")
    @classmethod
    def _iso_8601(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise ValueError("must be an ISO 8601 date-time such as 2025-01-08T15:30:45Z") from None
        if moment.tzinfo is None:  # guessing UTC would file a check hours off in any other zone
            raise ValueError("must include a time zone, such as 2025-01-08T15:30:45Z or +09:00")
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
    "float_type": "must be a number or null",
    "finite_number": "must be a finite number or null",
    "greater_than_equal": "is too small",
    "less_than_equal": "is too large",
}


def parse_events(body: Any, now: datetime | None = None,
                 max_skew_seconds: float = Settings.max_clock_skew_seconds) -> list[EventIn]:
    """Validate a POST /events body whole; the first refused event is a 400 whose details.code says why (SPEC §4)."""
    # `now` is the backend's clock: no timestamp may lead it by more than max_skew_seconds.
    now = now or datetime.now(timezone.utc)
    is_batch = isinstance(body, list)
    if not is_batch and not isinstance(body, dict):
        raise _request_error("The body must be an event object or an array of them.")
    items = body if is_batch else [body]
    if not items:
        raise _request_error("The batch is empty; send at least one event.")
    if len(items) > MAX_BATCH:
        raise _request_error(f"A batch holds at most {MAX_BATCH} events; this one has {len(items)}.")
    parsed = []
    for index, item in enumerate(items):
        try:
            parsed.append(_parse_event(item, now, max_skew_seconds))
        except _Refusal as refusal:
            raise refusal.as_api_error(index if is_batch else None) from None
    return parsed


def _request_error(message: str) -> ApiError:
    return ApiError(400, message, details={"code": INVALID_REQUEST})


class _Refusal(Exception):
    """Why one event is refused: a details.code, the field (relative to the event) and the problem."""

    def __init__(self, code: str, field: str, problem: str, **extra: Any):
        super().__init__(problem)
        self.code, self.field, self.problem, self.extra = code, field, problem, extra

    def as_api_error(self, index: int | None) -> ApiError:
        """The 400 for this event, its field named as events[i].field when it came in a batch."""
        field = self.field if index is None else f"events[{index}]" + (f".{self.field}" if self.field else "")
        details = {"code": self.code, "field": field, "problem": self.problem, **self.extra}
        if index is not None:
            details["index"] = index
        return ApiError(400, f"{field} {self.problem}.", details=details)


def _parse_event(item: Any, now: datetime, max_skew_seconds: float) -> EventIn:
    """One event, or _Refusal: an unknown field first, then any invalid value, then a clock ahead."""
    if not isinstance(item, dict):
        raise _Refusal(INVALID_EVENT, "", "must be an event object")
    try:
        event = EventIn.model_validate(item)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        # A newer agent's extra field must not get the event dropped, whatever else is wrong with it.
        unknown = [e for e in errors if e["type"] == "extra_forbidden"]
        field, problem = _describe(unknown[0] if unknown else errors[0])
        raise _Refusal(UNKNOWN_FIELD if unknown else INVALID_EVENT, field, problem) from None
    skew = (event.checked_at - now).total_seconds()
    if skew > max_skew_seconds:
        ahead = math.ceil(skew)
        raise _Refusal(CLOCK_SKEW, "timestamp", f"is {ahead} seconds ahead of the backend's clock, more than "
                       f"MAX_CLOCK_SKEW_SECONDS ({max_skew_seconds:g}) allows", skew_seconds=ahead)
    return event


def _describe(error: dict) -> tuple[str, str]:
    """A pydantic complaint as (field name, problem in words)."""
    field = ".".join(str(part) for part in error["loc"] if not isinstance(part, int)
                     and part not in ("constrained-int", "int", "float", "str", "bool"))
    kind = error["type"]
    if kind == "missing":
        problem = _MISSING
    elif kind == "extra_forbidden":
        problem = "is not a known field"
    elif kind == "value_error":
        problem = str(error["ctx"]["error"])
    elif kind in ("greater_than_equal", "less_than_equal"):
        bound = error["ctx"].get("ge", error["ctx"].get("le"))
        bound = int(bound) if float(bound).is_integer() else bound  # 0, not 0.0, for a float field
        problem = f"must be {'at least' if kind == 'greater_than_equal' else 'at most'} {bound}"
    elif kind == "string_too_long":
        problem = f"must be at most {error['ctx']['max_length']} characters"
    else:
        problem = _TYPE_PROBLEMS.get(kind, error["msg"].lower())
    return field, problem


class StatusChange(BaseModel):
    """A PATCH /alerts/<id> body."""

    model_config = ConfigDict(extra="forbid")

    status: StrictStr
    by: StrictStr = "api"  # who acted (SPEC §10): the CLI says "cli"; the dashboard calls the service itself


CHANGED_BY_API = ("api", "cli")  # what a PATCH may say it is; telegram:@user and dashboard are set by the backend


def parse_status_change(body: Any) -> tuple[AlertStatus, str]:
    """Validate a PATCH body: {"status": "ACK"} or {"status": "RESOLVED"} (SPEC §4), with "by" api or cli (§10)."""
    if not isinstance(body, dict):
        raise ApiError(400, "The body must be a JSON object such as {\"status\": \"ACK\"}.")
    try:
        change = StatusChange.model_validate(body)
    except ValidationError as exc:
        field, problem = _describe(exc.errors(include_url=False, include_input=False)[0])
        raise ApiError(400, f"{field} {problem}.", details={"field": field, "problem": problem}) from None
    if change.status not in (AlertStatus.ACK.value, AlertStatus.RESOLVED.value):
        raise ApiError(400, "status must be ACK or RESOLVED.", details={"field": "status"})
    if change.by not in CHANGED_BY_API:
        raise ApiError(400, "by must be api or cli.", details={"field": "by"})
    return AlertStatus(change.status), change.by


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


DEFAULT_PAGE_LIMIT = 50
MAX_PAGE_LIMIT = 500
MAX_PAGE_OFFSET = 2**63 - 1  # the largest number any database column here can hold


def parse_page(args) -> tuple[int, int]:
    """?limit= (default 50, at most 500) and ?offset= of a list route, or a 400 naming the bad one (SPEC §4)."""
    limit = parse_query_int(args.get("limit"), "limit", DEFAULT_PAGE_LIMIT, 1, MAX_PAGE_LIMIT)
    offset = parse_query_int(args.get("offset"), "offset", 0, 0, MAX_PAGE_OFFSET)
    return limit, offset


def parse_agent_header(raw: str | None) -> str | None:
    """The X-Agent-Name header (UTF-8) checked as an event's `agent` is, None when absent, or a 400 naming it."""
    if raw is None:
        return None
    try:
        name = raw.encode("latin-1").decode("utf-8")  # WSGI hands header bytes over as latin-1
    except UnicodeError:
        name = None
    if not name or len(name) > MAX_AGENT_NAME_LENGTH or "\x00" in name:
        raise ApiError(400, f"The X-Agent-Name header must be UTF-8 text of 1 to {MAX_AGENT_NAME_LENGTH} "
                            "characters.", details={"code": INVALID_REQUEST, "field": "X-Agent-Name"})
    return name


def parse_target_name(raw: str) -> str:
    """A target name from a request path, or a 400 for text no target's name can be (PostgreSQL refuses a NUL)."""
    if len(raw) > MAX_TARGET_NAME_LENGTH or "\x00" in raw:
        raise ApiError(400, f"The target name must be at most {MAX_TARGET_NAME_LENGTH} characters, with no NUL.",
                       details={"code": INVALID_REQUEST, "field": "name"})
    return raw


def parse_target_filter(raw: str | None, name: str = "target_url") -> str | None:
    """The ?target_url= (or ?target=) filter of GET /alerts, or a 400 for text no stored one can contain."""
    if raw is None or raw == "":
        return None
    if name == "target_url" and (len(raw) > MAX_URL_LENGTH or "\x00" in raw):
        raise ApiError(400, "target_url must be a URL of at most 2048 characters.", details={"field": "target_url"})
    if len(raw) > MAX_TARGET_NAME_LENGTH or "\x00" in raw:
        raise ApiError(400, f"target must be a target name of at most {MAX_TARGET_NAME_LENGTH} characters.",
                       details={"field": "target"})
    return raw


def parse_status_filter(raw: str | None) -> str | None:
    """The ?status= filter of GET /alerts, or a 400."""
    if raw is None or raw == "":
        return None
    if raw not in {s.value for s in AlertStatus}:
        raise ApiError(400, "status must be OPEN, ACK or RESOLVED.", details={"field": "status"})
    return raw
