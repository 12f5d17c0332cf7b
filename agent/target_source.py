"""The backend's target list for an agent without TARGET_URL (SPEC §8): asked for, cached on disk, refreshed."""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from agent.allow_list import AllowList, target_host
from agent.checks.spec import CheckSpec, spec_from_target
from agent.http_session import describe_error
from common.logs import plural

log = logging.getLogger(__name__)

PATH = "/agent/targets"
FETCH_TIMEOUT = (5.0, 30.0)  # connect, read: a list of 10,000 targets takes a moment to serve
FIRST_RETRY_SECONDS = 1.0
MAX_RETRY_SECONDS = 30.0  # the backoff's bound: an agent started before its backend finds it soon after


class TargetListError(Exception):
    """The backend's answer (or the cache) could not be used; the message is one line, without a secret."""


@dataclass(frozen=True)
class TargetList:
    """The specs to check, and how long to wait before asking again."""

    refresh_seconds: float
    specs: tuple[CheckSpec, ...]
    refused: tuple[str, ...] = ()  # the names of targets AGENT_ALLOW keeps the agent from checking


def parse_answer(answer: Any, source: str, allow: AllowList | None = None) -> TargetList:
    """A TargetList from `GET /agent/targets`'s JSON; a bad entry is skipped with one ERROR line naming it.

    A target whose host `allow` (AGENT_ALLOW) does not match is left out and named in `refused`.
    """
    if not isinstance(answer, dict) or not isinstance(answer.get("targets"), list):
        raise TargetListError(f"{source}: not a target list (an object with a targets array)")
    refresh = answer.get("refresh_seconds")
    if isinstance(refresh, bool) or not isinstance(refresh, (int, float)) or not math.isfinite(refresh) \
            or refresh <= 0:
        raise TargetListError(f"{source}: refresh_seconds must be a number of seconds greater than 0")
    specs: dict[str, CheckSpec] = {}
    refused: list[str] = []
    for position, entry in enumerate(answer["targets"]):
        if not isinstance(entry, dict):
            log.error("%s: target #%d skipped: not an object", source, position + 1)
            continue
        try:
            spec = spec_from_target(entry)
        except ValueError as problem:  # names the target and the key, never the value
            log.error("%s: skipped: %s", source, problem)
            continue
        if spec.name in specs:
            log.error("%s: skipped: target %r: name is used twice", source, spec.name)
            continue
        if allow is not None and not allow.allows(target_host(spec.kind, spec.url, spec.host)):
            refused.append(spec.name)
            continue
        specs[spec.name] = spec
    return TargetList(float(refresh), tuple(specs.values()), tuple(refused))


def fetch_answer(session: requests.Session, backend_url: str, api_key: str, agent_name: str) -> Any:
    """The JSON of `GET /agent/targets`, asked as `agent_name`; TargetListError when unreachable, not 2xx, not JSON."""
    url = backend_url + PATH
    # UTF-8 bytes: a str header must be latin-1, and AGENT_NAME may be any printable text (GET /agents lists it).
    headers = {"X-API-Key": api_key, "X-Agent-Name": agent_name.encode("utf-8")}
    try:
        with session.get(url, headers=headers, timeout=FETCH_TIMEOUT) as response:
            if not 200 <= response.status_code < 300:
                raise TargetListError(f"GET {url} answered {response.status_code}")
            try:
                return response.json()
            except ValueError:
                raise TargetListError(f"GET {url} answered with invalid JSON") from None
    except requests.RequestException as exc:
        raise TargetListError(f"GET {url} failed: {describe_error(exc, url)}") from None


def write_cache(path: Path, answer: Any) -> None:
    """Replace the cache with `answer` atomically, readable by its owner only (it holds resolved secrets)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)  # created 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(answer, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    os.chmod(path, 0o600)  # an older cache, or a copy made by hand, may have been wider


def read_cache(path: Path) -> Any | None:
    """The cached answer, or None when there is none; TargetListError when it cannot be read."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise TargetListError(f"cached target list {path}: unreadable ({type(exc).__name__})") from None


class TargetSource:
    """Asks the backend for the list at start and then every refresh_seconds, keeping the last good one on disk.

    `first_list()` runs on the caller's thread; `run()` (a thread of its own) refreshes, so a slow
    backend never delays a check, and the schedule's thread picks new lists up with `take()`.
    """

    def __init__(self, session: requests.Session, backend_url: str, api_key: str, agent_name: str,
                 cache_path: Path, stop: threading.Event, allow: AllowList | None = None):
        self.session = session
        self.backend_url = backend_url
        self.api_key = api_key
        self.agent_name = agent_name
        self.cache_path = cache_path
        self.stop = stop
        self.allow = allow
        self._refused_said: tuple[str, ...] = ()  # the refused names last logged: said again only when they change
        self._lock = threading.Lock()
        self._latest: TargetList | None = None
        self._next_wait = FIRST_RETRY_SECONDS
        self._retry_wait = FIRST_RETRY_SECONDS
        self._is_failing = False

    def first_list(self) -> TargetList | None:
        """The backend's list, else the cached one, else None (and one line saying the agent keeps asking)."""
        try:
            targets = self._fetch()
        except TargetListError as problem:
            self._failed()
            cached = self._cached()
            if cached is None:
                log.error("no targets yet: %s and there is no cached list at %s; asking again with backoff "
                          "(up to every %gs) until the backend answers", problem, self.cache_path,
                          MAX_RETRY_SECONDS)
                return None
            log.warning("targets: %s; checking the cached list from %s (%s) until the backend answers",
                        problem, self.cache_path, plural(len(cached.specs), "target"))
            return cached
        log.info("targets: %s from the backend, asking again every %gs", plural(len(targets.specs), "target"),
                 targets.refresh_seconds)
        return targets

    def run(self) -> None:
        """Refresh until stopped: after refresh_seconds on success, with bounded backoff after a failure."""
        while not self.stop.wait(self._next_wait):
            try:
                targets = self._fetch()
            except TargetListError as problem:
                if not self._is_failing:
                    log.warning("targets: %s; keeping the current list, asking again with backoff", problem)
                self._failed()
                continue
            if self._is_failing:
                log.info("targets: the backend answered (%s)", plural(len(targets.specs), "target"))
            self._is_failing = False
            with self._lock:
                self._latest = targets

    def take(self) -> TargetList | None:
        """The newest list fetched since the last call, or None."""
        with self._lock:
            latest, self._latest = self._latest, None
        return latest

    def _fetch(self) -> TargetList:
        answer = fetch_answer(self.session, self.backend_url, self.api_key, self.agent_name)
        targets = self._allowed(parse_answer(answer, "GET " + PATH, self.allow))
        try:
            write_cache(self.cache_path, answer)
        except OSError as exc:
            log.error("targets: cannot write the cache %s: %s", self.cache_path, exc.strerror or exc)
        self._next_wait = targets.refresh_seconds
        self._retry_wait = FIRST_RETRY_SECONDS
        return targets

    def _failed(self) -> None:
        self._is_failing = True
        self._next_wait = self._retry_wait
        self._retry_wait = min(self._retry_wait * 2, MAX_RETRY_SECONDS)

    def _cached(self) -> TargetList | None:
        try:
            answer = read_cache(self.cache_path)
            if answer is None:
                return None
            return self._allowed(parse_answer(answer, f"cached list {self.cache_path}", self.allow))
        except TargetListError as problem:
            log.error("targets: %s", problem)
            return None

    def _allowed(self, targets: TargetList) -> TargetList:
        """Say which targets AGENT_ALLOW refuses, once per change of that set (a list comes every refresh)."""
        if targets.refused != self._refused_said:
            if targets.refused:
                shown = ", ".join(repr(name) for name in targets.refused[:10])
                more = f" and {len(targets.refused) - 10} more" if len(targets.refused) > 10 else ""
                log.error("targets: %s not checked, the host is not allowed by AGENT_ALLOW: %s%s",
                          plural(len(targets.refused), "target"), shown, more)
            else:
                log.info("targets: AGENT_ALLOW refuses no target any more")
            self._refused_said = targets.refused
        return targets
