"""Where the agent's CPU goes per check: py-spy's collapsed stacks of a run, grouped by what the code does.

Each sample is put in the group of the first frame, from the innermost out, that a rule knows: a
line of the agent that calls into pycurl is libcurl's work (libcurl runs inside that call, the GIL
released, so py-spy sees it there); logging is the per-check log line; the result's own code
is result building; spool.py is the spool (SQLite); sender.py and requests are sending; engine.py,
the libcurl callbacks and the selector are the engine's Python overhead; the schedule is scheduling.

    python -m bench.agent_profile STACKS.txt   (from `python -m bench.agent_load --profile STACKS.txt`)
"""

from __future__ import annotations

import os
import re
import sys
from collections import Counter
from functools import lru_cache
from pathlib import Path

from bench.common import ROOT, log
from common.proc_stat import STIME, UTIME, stat_fields

GROUPS = ("libcurl (transfers, setopt, getinfo)", "engine overhead (Python loop, callbacks)",
          "result building", "log line", "spool (SQLite writes)", "sending (POST /events)", "scheduling",
          "target list (GET /agent/targets)", "other")
LIBCURL, ENGINE, RESULT, LOG_LINE, SPOOL, SENDING, SCHEDULING, TARGET_LIST, OTHER = GROUPS
# (file name ending, group), the first match from the innermost frame out wins.
_FILES = (("logging/__init__.py", LOG_LINE), ("logging/handlers.py", LOG_LINE), ("concurrent_log_handler", LOG_LINE),
          ("agent/log_setup.py", LOG_LINE), ("agent/spool.py", SPOOL), ("agent/sender.py", SENDING),
          ("agent/http_session.py", SENDING), ("requests/", SENDING), ("urllib3/", SENDING),
          ("agent/target_source.py", TARGET_LIST), ("agent/checks/result.py", RESULT),
          ("agent/checks/conditions.py", RESULT), ("agent/checks/tls.py", RESULT), ("agent/checks/spec.py", RESULT),
          ("agent/checks/transfer.py", ENGINE), ("agent/engine.py", ENGINE), ("selectors.py", ENGINE),
          ("agent/monotonic_schedule.py", SCHEDULING), ("schedule/__init__.py", SCHEDULING))
# agent/checks/http.py: prepare() sets a transfer up (engine), finish() reads and judges it (result).
_HTTP_FUNCTIONS = {"finish": RESULT, "judge": RESULT, "phase_times": RESULT}
_CURL_CALL = re.compile(r"\b(setopt|getinfo|socket_action|info_read|add_handle|remove_handle|reset|Curl)\(|"
                        r"handle\.close\(")
# Innermost frames that wait rather than work: py-spy's --nonblocking sampling cannot always tell a
# thread blocked on a lock, in epoll or on a socket from a running one. Such samples are left out.
_WAITS = ("Condition.wait ", "Event.wait ", "EpollSelector.select ", "SocketIO.readinto ", "Thread.join ")
_THREAD = re.compile(r"^thread \((\d+)\)(?::\s*([^;]*))?")
_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*):(?P<line>\d+)\)$")


@lru_cache(maxsize=None)
def _source_line(file: str, line: int) -> str:
    path = ROOT / file
    try:
        return path.read_text(encoding="utf-8").splitlines()[line - 1].split("#", 1)[0]  # code, not a comment
    except (OSError, IndexError, UnicodeDecodeError):
        return ""


def group_of(frames: list[str]) -> str | None:
    """The group of one sample's stack (outermost frame first); None when it was waiting, not working."""
    if frames and frames[-1].startswith(_WAITS):
        return None
    for depth, frame in enumerate(reversed(frames)):
        match = _FRAME.match(frame)
        if match is None:
            continue
        file, function = match["file"], match["function"]
        if file.startswith("agent/") and _CURL_CALL.search(_source_line(file, int(match["line"]))):
            return LIBCURL if depth == 0 else ENGINE  # deeper: a Python callback libcurl called
        if file.endswith("agent/checks/http.py"):
            return _HTTP_FUNCTIONS.get(function, ENGINE)
        for ending, group in _FILES:
            if ending in file:
                return group
    return OTHER


def summarize(stacks: Path, thread_cpu: dict[int, float] | None = None) -> dict[str, float]:
    """Each group's share (0..1) of the agent's CPU, from py-spy's raw output (`thread (tid): name;frame;... count`).

    py-spy samples a thread whenever it is not idle, a thread waiting in fsync included; so with
    `thread_cpu` (CPU seconds per thread id, from /proc) each thread's samples share out that
    thread's CPU. Without it, each group's share of the working samples.
    """
    counts: dict[int, Counter] = {}
    names: dict[int, str] = {}
    waiting = 0
    for line in stacks.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not (stack and count.isdigit()):
            continue
        thread = _THREAD.match(stack)
        if thread:
            names[int(thread[1])] = thread[2]
        frames = [f for f in stack.split(";") if not f.startswith("thread (")]
        group = group_of(frames)
        if group is None:
            waiting += int(count)
        else:
            counts.setdefault(int(thread[1]) if thread else 0, Counter())[group] += int(count)
    samples = sum(sum(c.values()) for c in counts.values())
    log(f"  profile: {samples} samples working, {waiting} waiting (left out)")
    weights = {tid: sum(c.values()) for tid, c in counts.items()} if thread_cpu is None else dict(thread_cpu)
    total = sum(weights.values())
    if total:
        log("  agent CPU by thread: " + ", ".join(f"{names.get(tid) or tid} {weight / total:.0%}" for tid, weight in
                                                   sorted(weights.items(), key=lambda item: -item[1]) if weight))
    shares: Counter[str] = Counter()
    for tid, weight in weights.items():
        in_thread = counts.get(tid) or Counter({OTHER: 1})  # CPU, but not one working sample
        for group, n in in_thread.items():
            shares[group] += weight / total * n / sum(in_thread.values()) if total else 0
    return {group: shares[group] for group in GROUPS if shares[group]}


def thread_cpu_seconds(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) of each live thread of `pid`, by thread id, from /proc."""
    tick, result = os.sysconf("SC_CLK_TCK"), {}
    for task in os.scandir(f"/proc/{pid}/task"):
        try:
            fields = stat_fields(f"{pid}/task/{task.name}")
        except OSError:  # it ended meanwhile
            continue
        result[int(task.name)] = (int(fields[UTIME]) + int(fields[STIME])) / tick
    return result


if __name__ == "__main__":
    for name, share in sorted(summarize(Path(sys.argv[1])).items(), key=lambda item: -item[1]):
        print(f"{share:6.1%}  {name}")
