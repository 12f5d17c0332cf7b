"""A local nginx with keep-alive off, every path answered "ok", as a child process in a temporary prefix.

No root needed: the config, pid file, error log and temp dirs live in the given directory (`-p`),
`daemon off;` keeps it our child, the access log is off, and `stub_status` (on /__nginx_status)
counts the requests it served. Stop it with `stop()` (by PID), or use it as a context manager.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import requests

from bench.common import ChildProcess, answers, free_port, start_command

STATUS_PATH = "/__nginx_status"
_CONFIG = """daemon off;
worker_processes 1;
worker_rlimit_nofile 16384;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    keepalive_timeout 0;
    client_body_temp_path {tmp}/nginx-body;
    proxy_temp_path {tmp}/nginx-proxy;
    fastcgi_temp_path {tmp}/nginx-fastcgi;
    uwsgi_temp_path {tmp}/nginx-uwsgi;
    scgi_temp_path {tmp}/nginx-scgi;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location = {status} {{ stub_status; }}
        location / {{ return 200 "ok\\n"; }}
    }}
}}
"""
_REQUESTS = re.compile(rb"\n\s*\d+\s+\d+\s+(\d+)\s*\n")  # stub_status: "accepts handled requests"


def find() -> str | None:
    """The nginx binary (Debian puts it in /usr/sbin, which a user's PATH may lack), or None."""
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).is_file()), None)


class Nginx(ChildProcess):
    """nginx serving 200 "ok" on every path of 127.0.0.1:<free port>, keep-alive off; a context manager."""

    name = "nginx"

    def __init__(self, binary: str, tmp: Path):
        self.binary, self.tmp = binary, Path(tmp)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._status_calls = 0
        self._before = 0  # requests served before the benchmark's (the start-up's health checks)

    def start(self) -> subprocess.Popen:
        config = self.tmp / "nginx.conf"
        config.write_text(_CONFIG.format(tmp=self.tmp, port=self.port, status=STATUS_PATH), encoding="utf-8")
        # -e: the error log before the config is read, which would otherwise be /var/log/nginx's.
        return start_command([self.binary, "-p", str(self.tmp), "-c", str(config), "-e", str(self.tmp / "nginx-error.log")],
                             self.tmp / "nginx.out")

    def is_ready(self) -> bool:
        return answers(f"{self.url}/health")

    def __enter__(self) -> "Nginx":
        try:
            super().__enter__()
        except RuntimeError as exc:
            log_tail = (self.tmp / "nginx-error.log").read_text(errors="replace")[-500:]
            raise RuntimeError(f"{exc}: {log_tail}") from None
        try:
            self._before = self.served()
        except BaseException:
            self.__exit__()
            raise
        return self

    def served(self) -> int:
        """Requests nginx answered since it started, but for its start-up check and these status requests."""
        self._status_calls += 1
        body = requests.get(f"{self.url}{STATUS_PATH}", timeout=5).content
        match = _REQUESTS.search(body)
        if match is None:
            raise RuntimeError(f"nginx's stub_status answer has no request count: {body[:200]!r}")
        return int(match.group(1)) - self._status_calls - self._before
