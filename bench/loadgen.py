"""Bounded Python load generator, used when wrk is absent: `python -m bench.loadgen spec.json`.

Spec: url, duration_s, connections, method, headers, templates (taken in turn; @UID@ -> a fresh UUID),
and mix, run (when mix is [events per request, targets], bench/event_mix.py's bodies, connection i
being agent i + 1).
Each connection is a thread with one keep-alive connection; prints one JSON line of results.
"""

import http.client
import json
import sys
import threading
import time
import uuid
from urllib.parse import urlsplit

from bench.event_mix import Agent


def _percentile(values, p):
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[max(1, min(len(ordered), int(-(-p * len(ordered) // 100)))) - 1]


def main(spec_path: str) -> int:
    spec = json.load(open(spec_path))
    parts = urlsplit(spec["url"])
    if parts.hostname != "127.0.0.1":
        raise SystemExit("loadgen only drives 127.0.0.1")
    path = parts.path or "/"
    deadline = time.monotonic() + float(spec["duration_s"])
    latencies: list[float] = []
    counts = {"non2xx": 0, "errors": 0}
    lock = threading.Lock()

    def worker(agent: Agent | None):
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        mine, non2xx, errors = [], 0, 0
        while time.monotonic() < deadline:
            body = agent.body() if agent else spec["templates"][len(mine) % len(spec["templates"])]
            while "@UID@" in body:
                body = body.replace("@UID@", str(uuid.uuid4()), 1)
            started = time.perf_counter()
            try:
                conn.request(spec["method"], path, body=body.encode() if body else None, headers=spec["headers"])
                response = conn.getresponse()
                response.read()
                mine.append(time.perf_counter() - started)
                non2xx += response.status >= 400
            except (OSError, http.client.HTTPException):
                errors += 1
                conn.close()
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        conn.close()
        with lock:
            latencies.extend(mine)
            counts["non2xx"] += non2xx
            counts["errors"] += errors

    started = time.monotonic()
    mix = spec.get("mix")
    threads = [threading.Thread(target=worker, args=(Agent(spec["run"], i + 1, *mix) if mix else None,))
               for i in range(int(spec["connections"]))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(float(spec["duration_s"]) + 30)
    elapsed = time.monotonic() - started
    print(json.dumps({"requests": len(latencies), "rps": len(latencies) / elapsed,
                      "p50_ms": _percentile(latencies, 50) * 1000, "p99_ms": _percentile(latencies, 99) * 1000,
                      **counts}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
