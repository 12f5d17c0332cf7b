"""The check results the ingest benchmark posts: per connection, one agent's targets, some of them flapping.

Each load connection plays one agent with its own `targets` targets and one request in flight, so
its checks reach the backend in check-time order, as a real agent's do. Its k-th event is target
k % targets in round k // targets: a batch of `targets` events is one round over every target, and
one event per request walks the targets in turn. Every FLAP_EVERY-th target flaps (DOWN failing
checks, then PERIOD - DOWN answering ones, phase-shifted per target), so with FAILURE_THRESHOLD=3
its alert opens and resolves every PERIOD rounds; every other target answers, but for a lone
timeout now and then (never two in a row). Times are the current UTC time, with a "Z", never
going back within an agent.

The same mix is written twice, here (bench/loadgen.py and the raw-SQLite ceiling) and in Lua for
wrk (LUA below); tests/test_bench_smoke.py checks that both give the same outcomes.
"""

from __future__ import annotations

import json
import time

FLAP_EVERY = 10
DOWN, PERIOD = 4, 8
STRAY = 97  # (7 x round + target) % 97 == 0: a lone timeout

UP, DOWN_503, TIMEOUT = 0, 1, 2


def outcome(target: int, round_: int) -> int:
    """UP, DOWN_503 or TIMEOUT for `target`'s check in round `round_`."""
    if target % FLAP_EVERY == 0:
        return DOWN_503 if (round_ + target // FLAP_EVERY) % PERIOD < DOWN else UP
    return TIMEOUT if (round_ * 7 + target) % STRAY == 0 else UP


def target_url(run: int, agent: int, target: int) -> str:
    return f"https://r{run}-a{agent}.example.com/t/{target}"


def event_uid(run: int, agent: int, k: int) -> str:
    return f"{run * 256 + agent:08x}-0000-4000-8000-{k:012x}"


def utc_stamp(unix_ms: int) -> str:
    """An ISO 8601 UTC time with milliseconds and a Z, as the agent sends it."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(unix_ms // 1000)) + f".{unix_ms % 1000:03d}Z"


def event(run: int, agent: int, targets: int, k: int, stamp: str) -> dict:
    """The agent's k-th check result, as POST /events takes it."""
    target, round_ = k % targets, k // targets
    result = outcome(target, round_)
    return {"target_url": target_url(run, agent, target), "timestamp": stamp, "is_success": result == UP,
            "status_code": {UP: 200, DOWN_503: 503, TIMEOUT: None}[result],
            "response_time_ms": None if result == TIMEOUT else 40 + k % 50,
            "error_message": {UP: None, DOWN_503: "HTTP 503", TIMEOUT: "Request timed out after 5000ms"}[result],
            "event_uid": event_uid(run, agent, k)}


class Agent:
    """One connection's request bodies, in order; `batch` events per request (1: a bare object)."""

    def __init__(self, run: int, agent: int, batch: int, targets: int):
        self.run, self.agent, self.batch, self.targets = run, agent, batch, targets
        self.n = 0
        self.last_ms = 0

    def body(self) -> str:
        # Times never go back, so no check of this agent counts as late; and never run ahead of
        # the clock by a second or more (wrk's Lua clock has whole seconds: it counts milliseconds on).
        now_ms = int(time.time() * 1000)
        self.last_ms = min(max(now_ms, self.last_ms + 1), now_ms // 1000 * 1000 + 999)
        stamp = utc_stamp(self.last_ms)
        first = self.n * self.batch
        self.n += 1
        events = [event(self.run, self.agent, self.targets, k, stamp) for k in range(first, first + self.batch)]
        return json.dumps(events[0] if self.batch == 1 else events)


# wrk's Lua: the same mix. `setup` numbers the threads (one connection each) as agents 1, 2, ...
LUA = """
local RUN, BATCH, TARGETS = %(run)d, %(batch)d, %(targets)d
local FLAP_EVERY, DOWN, PERIOD, STRAY = %(flap_every)d, %(down)d, %(period)d, %(stray)d
local n, last_ms = 0, 0
local function outcome(target, round)
  if target %% FLAP_EVERY == 0 then
    if (round + math.floor(target / FLAP_EVERY)) %% PERIOD < DOWN then return 1 end
    return 0
  end
  if (round * 7 + target) %% STRAY == 0 then return 2 end
  return 0
end
local function event(k, stamp)
  local target, round = k %% TARGETS, math.floor(k / TARGETS)
  local result = outcome(target, round)
  local status, ms, err = "200", tostring(40 + k %% 50), "null"
  if result == 1 then status, err = "503", '"HTTP 503"' end
  if result == 2 then status, ms, err = "null", "null", '"Request timed out after 5000ms"' end
  return string.format('{"target_url": "https://r%%d-a%%d.example.com/t/%%d", "timestamp": "%%s", "is_success": %%s, '
    .. '"status_code": %%s, "response_time_ms": %%s, "error_message": %%s, "event_uid": "%%08x-0000-4000-8000-%%012x"}',
    RUN, tid, target, stamp, result == 0 and "true" or "false", status, ms, err, RUN * 256 + tid, k)
end
local function make_body()
  local now_ms = os.time() * 1000
  last_ms = math.min(math.max(now_ms, last_ms + 1), now_ms + 999)
  local stamp = os.date("!%%Y-%%m-%%dT%%H:%%M:%%S", math.floor(last_ms / 1000))
    .. string.format(".%%03dZ", last_ms %% 1000)
  local first = n * BATCH
  n = n + 1
  if BATCH == 1 then return event(first, stamp) end
  local parts = {}
  for k = first, first + BATCH - 1 do parts[#parts + 1] = event(k, stamp) end
  return "[" .. table.concat(parts, ", ") .. "]"
end
"""


def lua(run: int, batch: int, targets: int) -> str:
    """The Lua `make_body()` for wrk, with this run's parameters."""
    return LUA % {"run": run, "batch": batch, "targets": targets, "flap_every": FLAP_EVERY, "down": DOWN,
                  "period": PERIOD, "stray": STRAY}
