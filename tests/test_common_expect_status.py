"""expect_status: the backend's targets file and the agent read it with one parser, so they agree."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agent.checks.spec import spec_from_target
from backend.target_models import TargetSettings


def backend_reads(value):
    try:
        parsed = TargetSettings(expect_status=value).expect_status
    except ValidationError:
        return "refused"
    return tuple(parsed) if parsed is not None else None


def agent_reads(value):
    try:
        return spec_from_target({"name": "shop", "url": "https://shop.example/", "expect_status": value}).expect_status
    except ValueError:
        return "refused"


@pytest.mark.parametrize("value, expected", [
    (None, None),
    (200, (200,)),
    ([200, "3xx"], (200, "3xx")),
    ("3XX", ("3xx",)),             # a class in capitals is the same class
    ([404, "2Xx"], (404, "2xx")),
    ([], "refused"),               # an empty list would let no status pass
    (True, "refused"),
    (99, "refused"),
    (600, "refused"),
    ("6xx", "refused"),
    ("200", "refused"),
    ([200, None], "refused"),
], ids=repr)
def test_the_backend_and_the_agent_read_expect_status_alike(value, expected):
    assert backend_reads(value) == expected
    assert agent_reads(value) == expected


def test_the_agent_names_the_target_and_the_key_not_the_value():
    with pytest.raises(ValueError) as problem:
        spec_from_target({"name": "shop", "url": "https://shop.example/", "expect_status": ["secret-ish"]})
    assert str(problem.value) == 'target \'shop\': expect_status must be status codes 100-599 or classes "1xx" to "5xx"'
