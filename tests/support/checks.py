"""Run the agent's check engine in a test: one engine per test, one check at a time, or several at once."""

from __future__ import annotations

import os
from typing import Any, Mapping

import pytest

from agent.checks.result import CheckResult
from agent.checks.spec import CheckSpec, spec_for_url
from agent.engine import CheckEngine, curl_context


class Checker:
    """A started CheckEngine whose `check()` runs one spec (or TARGET_URL-style URL) and returns its result."""

    def __init__(self, environ: Mapping[str, str] | None = None, extra_options: Mapping[int, Any] | None = None):
        self.results: list[CheckResult] = []
        self.context = curl_context(os.environ if environ is None else environ, extra_options)
        self.engine = CheckEngine(self.results.append, self.context).start()

    def check(self, spec: CheckSpec | str, timeout_seconds: float = 5.0) -> CheckResult:
        if isinstance(spec, str):
            spec = spec_for_url(spec, 30.0, timeout_seconds)
        return self.check_all([spec])[0]

    def check_all(self, specs: list[CheckSpec]) -> list[CheckResult]:
        """Check `specs` concurrently; their results in completion order."""
        before = len(self.results)
        self.engine.submit(specs)
        assert self.engine.wait_idle(max(s.timeout_seconds for s in specs) + 10), "the engine never went idle"
        return self.results[before:]

    def close(self) -> None:
        assert self.engine.close(10)


@pytest.fixture
def checker():
    """A Checker on the process environment, closed afterwards."""
    c = Checker()
    yield c
    c.close()
