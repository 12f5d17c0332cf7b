"""A target's `expect_status` (SPEC §8), parsed one way for the backend's file check and the agent."""

from __future__ import annotations

from typing import Any

STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")


def parse_expect_status(value: Any) -> tuple[int | str, ...] | None:
    """Status codes and lower-case classes from one item or a list; None when unset; ValueError says what is wrong."""
    if value is None:
        return None
    items = value if isinstance(value, list) else [value]
    if not items:
        raise ValueError("must list at least one status, such as [200, \"3xx\"]")
    parsed: list[int | str] = []
    for item in items:
        if isinstance(item, int) and not isinstance(item, bool) and 100 <= item <= 599:
            parsed.append(item)
        elif isinstance(item, str) and item.lower() in STATUS_CLASSES:
            parsed.append(item.lower())
        else:
            raise ValueError("must be status codes 100-599 or classes \"1xx\" to \"5xx\"")
    return tuple(parsed)
