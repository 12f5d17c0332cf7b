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

from bench.common import answers, free_port, stop, wait_until

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


class Nginx:
    """nginx serving 200 "ok" on every path of 127.0.0.1:<free port>, keep-alive off; a context manager."""

    def __init__(self, binary: str, tmp: Path):
        self.binary, self.tmp = binary, Path(tmp)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self._status_calls = 0
        self._before = 0  # requests served before the benchmark's (the start-up's health checks)

    def __enter__(self) -> "Nginx":
        config = self.tmp / "nginx.conf"
        config.write_text(_CONFIG.format(tmp=self.tmp, port=self.port, status=STATUS_PATH), encoding="utf-8")
        with open(self.tmp / "nginx.out", "ab") as out:
            # -e: the error log before the config is read, which would otherwise be /var/log/nginx's.
            self.proc = subprocess.Popen([self.binary, "-p", str(self.tmp), "-c", str(config),
                                          "-e", str(self.tmp / "nginx-error.log")],
                                         stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_until(lambda: self.proc.poll() is not None or answers(f"{self.url}/health"), 15, message="nginx")
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited with {self.proc.returncode}: "
                                   f"{(self.tmp / 'nginx-error.log').read_text(errors='replace')[-500:]}")
            self._before = self.served()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self.proc is not None:
            stop(self.proc, timeout=10)

    def served(self) -> int:
        """Requests nginx answered since it started, but for its start-up check and these status requests."""
        self._status_calls += 1
        body = requests.get(f"{self.url}{STATUS_PATH}", timeout=5).content
        match = _REQUESTS.search(body)
        if match is None:
            raise RuntimeError(f"nginx's stub_status answer has no request count: {body[:200]!r}")
        return int(match.group(1)) - self._status_calls - self._before
