"""The shared log helpers (common/logs.py): one UTC line format for agent and backend, and counted nouns."""

from __future__ import annotations

import logging

import pytest

from common.logs import plural, utc_formatter


@pytest.mark.parametrize("count, noun, nouns, expected", [
    (0, "target", None, "0 targets"),
    (1, "target", None, "1 target"),
    (2, "check", None, "2 checks"),
    (1, "process", "processes", "1 process"),
    (3, "process", "processes", "3 processes"),
])
def test_plural_counts_a_noun(count, noun, nouns, expected):
    assert plural(count, noun, nouns) == expected


def test_the_format_is_one_utc_line_per_record():
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "send attempt %d/4", (2,), None)
    record.created = 1736350245.5  # 2025-01-08 15:30:45.5 UTC
    assert utc_formatter().format(record) == "[2025-01-08 15:30:45] [WARNING] send attempt 2/4"
