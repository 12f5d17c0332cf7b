"""An http check's conditions as pure functions of (settings, answer): each returns None or why it failed (SPEC §9)."""

from __future__ import annotations

import functools
import json
import re
from http import HTTPStatus
from typing import Any

MAX_BODY_BYTES = 1 << 20  # a body condition reads at most this much (SPEC §9)
MAX_ERROR_CHARS = 300
_MISSING = object()
_PATH_STEP = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]")


def status_phrase(status: int, reason: str = "") -> str:
    """`HTTP 503 Service Unavailable`: the standard phrase, else the server's own (clipped)."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = clip(reason)
    return f"HTTP {status} {phrase}".rstrip()


def is_expected_status(status: int, expect_status: tuple[int | str, ...] | None) -> bool:
    """Whether `status` passes: any status < 400 when `expect_status` is None, else one it lists."""
    if expect_status is None:
        return status < 400
    return any(status == item if isinstance(item, int) else f"{status // 100}xx" == item
               for item in expect_status)


def status_problem(status: int, reason: str, expect_status: tuple[int | str, ...] | None) -> str | None:
    """Why `status` fails, as today's `HTTP 503 Service Unavailable` (plus what was expected, when set)."""
    if is_expected_status(status, expect_status):
        return None
    text = status_phrase(status, reason)
    if expect_status is None:
        return text  # exactly the pre-§8 message (SPEC §7)
    return f"{text}, expected {' or '.join(str(item) for item in expect_status)}"


def body_contains_problem(body: bytes, needle: str) -> str | None:
    """`body does not contain "ok"` when the (first MiB of the) body lacks `needle`."""
    return None if needle.encode() in body else f"body does not contain {_quote(needle)}"


def body_regex_problem(body: bytes, pattern: str) -> str | None:
    """`body does not match "up|ok"` when the pattern finds nothing in the body (read as UTF-8)."""
    try:
        regex = _compiled(pattern)
    except re.error:
        return f"body_regex {_quote(pattern)} is not a valid regular expression"
    return None if regex.search(body.decode("utf-8", "replace")) else f"body does not match {_quote(pattern)}"


def json_problem(body: bytes, path: str, expected: Any) -> str | None:
    """`$.status is "degraded", expected "up"`; with `expected` None the path only has to exist."""
    try:
        steps = parse_json_path(path)
    except ValueError as exc:
        return str(exc)
    try:
        document = json.loads(body)
    except ValueError:
        return "body is not JSON"
    value = json_value(document, steps)
    if value is _MISSING:
        return f"{path} is missing"
    if expected is None or _same_json(value, expected):
        return None
    return clip(f"{path} is {_json_text(value)}, expected {_json_text(expected)}")


@functools.lru_cache(maxsize=4096)
def parse_json_path(path: str) -> tuple[str | int, ...]:
    """`$.a.b[0].c` as ("a", "b", 0, "c"); ValueError when it is not that simple form."""
    if not path.startswith("$"):
        raise ValueError(f"json_path {_quote(path)} must start with $")
    steps, at = [], 1
    for match in _PATH_STEP.finditer(path, 1):
        if match.start() != at:
            break
        steps.append(match.group(1) if match.group(1) is not None else int(match.group(2)))
        at = match.end()
    if at != len(path):
        raise ValueError(f"json_path {_quote(path)} is not of the form $.a.b[0].c")
    return tuple(steps)


def json_value(document: Any, steps: tuple[str | int, ...]) -> Any:
    """The value at `steps` in a parsed JSON document, or the module's _MISSING marker."""
    for step in steps:
        if isinstance(step, int) and isinstance(document, list) and step < len(document):
            document = document[step]
        elif isinstance(step, str) and isinstance(document, dict) and step in document:
            document = document[step]
        else:
            return _MISSING
    return document


def clip(text: str) -> str:
    """`text` on one line, at most MAX_ERROR_CHARS long."""
    text = " ".join(text.split())
    return text if len(text) <= MAX_ERROR_CHARS else text[:MAX_ERROR_CHARS - 3] + "..."


def _same_json(value: Any, expected: Any) -> bool:
    # 1 equals 1.0 as JSON numbers, but true is not 1: bool is an int to Python, never in JSON.
    if isinstance(value, bool) or isinstance(expected, bool):
        return type(value) is type(expected) and value == expected
    return value == expected


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


@functools.lru_cache(maxsize=4096)
def _compiled(pattern: str) -> re.Pattern:
    return re.compile(pattern)
