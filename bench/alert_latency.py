"""Alert latency: from the threshold-crossing check to the console notification and to a delivered
Telegram message (a local fake Bot API), through the real agent and the backend under gunicorn.

The target site records when each check arrived and what it answered; the crossing check is the
FAILURE_THRESHOLD-th failing check after the site goes down (and the first success after it comes
back, for RECOVERY). The console time is when the block's first line reached the backend's stdout
pipe; the Telegram time is when the fake Bot API stored the sendMessage.

    python -m bench.alert_latency [--quick]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from bench.common import (API_KEY, GUNICORN_BACKEND, Gunicorn, Row, base_env, log, percentile, print_table,
                          start_python, stop, wait_until)
from tests.support.servers import FakeTelegram, LoopbackServer

THRESHOLD = 3
INTERVAL_S = 1.0


class _Site(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        status = self.server.status
        self.server.checks.append((time.time(), status))
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


class _TimedList(list):
    """The fake Bot API's message list, noting when each message was stored."""

    def __init__(self):
        super().__init__()
        self.times: list[float] = []

    def append(self, item):
        self.times.append(time.time())
        super().append(item)


class _ConsoleWatch:
    """Reads the backend's stdout pipe, noting when each alert block's first line arrived."""

    def __init__(self, stream, copy_to: Path):
        self.blocks: list[tuple[float, str]] = []  # (time, "ERROR" | "RECOVERY")
        self._thread = threading.Thread(target=self._read, args=(stream, copy_to), daemon=True)
        self._thread.start()

    def _read(self, stream, copy_to: Path) -> None:
        with open(copy_to, "wb") as copy:
            for line in iter(stream.readline, b""):
                now = time.time()
                copy.write(line)
                if b"] [ALERT] " in line:
                    kind = line.split(b"] [ALERT] ", 1)[1].split(b" ", 1)[0].decode()
                    self.blocks.append((now, kind))


def run(quick: bool = False) -> list[Row]:
    """Flip the site down and up `cycles` times; return the summary rows."""
    cycles = 1 if quick else 5
    site = LoopbackServer(_Site)
    site.status, site.checks = 200, []
    site.start()
    telegram = FakeTelegram().start()
    telegram.messages = _TimedList()
    latencies: dict[tuple[str, str], list[float]] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-alert-") as name:
            tmp = Path(name)
            site_url = site.url
            with Gunicorn(tmp, GUNICORN_BACKEND, "backend", pipe=True, BACKEND_WORKERS="2",
                          FAILURE_THRESHOLD=str(THRESHOLD), TELEGRAM_BOT_TOKEN="123:bench",
                          TELEGRAM_CHAT_ID="42", TELEGRAM_API_BASE_URL=telegram.base_url) as backend:
                console = _ConsoleWatch(backend.proc.stdout, tmp / "backend.out")
                env = base_env(tmp, API_KEY=API_KEY, TARGET_URL=site_url, BACKEND_URL=backend.url,
                               CHECK_INTERVAL_SECONDS=str(INTERVAL_S))
                agent = start_python(["agent/agent.py"], env, tmp / "agent.out")
                try:
                    wait_until(lambda: site.checks, 20, message="the agent's first check")
                    for cycle in range(cycles):
                        for kind, status in (("ERROR", 503), ("RECOVERY", 200)):
                            _one_transition(site, telegram, console, kind, status, latencies)
                    log(f"alert latency: {cycles} outages, {len(telegram.messages)} Telegram messages")
                finally:
                    stop(agent, timeout=15)
    finally:
        telegram.stop()
        site.stop()
    rows = []
    for (kind, channel), values in sorted(latencies.items(), key=lambda item: (item[0][0] != "ERROR", item[0])):
        ms = [v * 1000 for v in values]
        rows.append(Row("alert latency", f"{kind} -> {channel}, median of {len(ms)}", percentile(ms, 50), "ms"))
        is_target = kind == "ERROR" and channel == "console"
        rows.append(Row("alert latency", f"{kind} -> {channel}, worst of {len(ms)}", max(ms), "ms",
                        target="< 1,000 ms" if is_target else "", met=(max(ms) < 1000) if is_target else None))
    return rows


def _one_transition(site, telegram, console, kind: str, status: int, latencies: dict) -> None:
    """Set the site to `status`, wait for the notification on both channels, and record the latencies."""
    flipped_at = time.time()
    checks_before = len(site.checks)
    blocks_before, messages_before = len(console.blocks), len(telegram.messages)
    site.status = status
    wait_until(lambda: len(console.blocks) > blocks_before and len(telegram.messages) > messages_before,
               THRESHOLD * INTERVAL_S + 15, 0.01, f"{kind} on console and Telegram")
    answered = [at for at, s in site.checks[checks_before:] if s == status and at >= flipped_at]
    crossing = answered[THRESHOLD - 1] if kind == "ERROR" else answered[0]
    console_at = next(at for at, k in console.blocks[blocks_before:] if k == kind)
    telegram_at = telegram.messages.times[messages_before]
    latencies.setdefault((kind, "console"), []).append(console_at - crossing)
    latencies.setdefault((kind, "Telegram"), []).append(telegram_at - crossing)
    log(f"  {kind}: console {1000 * (console_at - crossing):.0f} ms, Telegram {1000 * (telegram_at - crossing):.0f} ms")
    time.sleep(INTERVAL_S)  # one more check in the new state, so the next flip starts clean


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    print_table(run(parser.parse_args().quick))
