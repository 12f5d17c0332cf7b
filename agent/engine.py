"""The check engine: every check in flight on one libcurl multi handle, driven by one event-loop thread.

The loop waits in the OS's selector (epoll) on the sockets libcurl asks it to watch
(`M_SOCKETFUNCTION`), on libcurl's next timeout (`M_TIMERFUNCTION`), and on a wake-up pipe that
`submit` writes to; it then calls `socket_action` for what is ready, collects finished transfers and
hands each result to `on_result`. socket_action rather than perform + select: perform walks every
transfer on each call and CurlMulti.select() is bound to FD_SETSIZE (1024) and cannot wait on the
wake-up pipe, so a loop built on them either spins or sleeps through new work. The engine keeps no
list of targets: whoever schedules submits specs, so a new list takes effect with the next slot.
"""

from __future__ import annotations

import logging
import os
import resource
import selectors
import threading
import time
from collections import deque
from datetime import datetime, timezone
from typing import Callable, Iterable, Mapping

import pycurl

from agent.checks.result import CheckResult
from agent.checks.spec import CheckSpec
from agent.checks import http, tcp
from agent.checks.conditions import clip
from agent.checks.http import CurlContext
from agent.checks.tls import CaBundles, default_ca_bundle
from agent.checks.transfer import Transfer

log = logging.getLogger(__name__)

DEFAULT_MAX_IN_FLIGHT = 500
_KINDS = {"http": (http.prepare, http.finish), "tcp": (tcp.prepare, tcp.finish)}
_EVENTS = {pycurl.POLL_IN: selectors.EVENT_READ, pycurl.POLL_OUT: selectors.EVENT_WRITE,
           pycurl.POLL_INOUT: selectors.EVENT_READ | selectors.EVENT_WRITE}
FDS_PER_CHECK = 3  # its socket, and the threaded resolver's socket pair while it looks the name up


def curl_context(environ: Mapping[str, str], extra_options: Mapping | None = None) -> CurlContext:
    """The shared settings of every check: the CA bundle and proxies of `environ` (read once, SPEC §7)."""
    return CurlContext(CaBundles(default_ca_bundle(environ)), proxies_from(environ), dict(extra_options or {}))


def proxies_from(environ: Mapping[str, str]) -> dict[str, str]:
    """`{"http": ..., "https": ..., "no": ...}` from *_proxy variables, lower case winning, as requests reads them."""
    proxies: dict[str, str] = {}
    for lower_case in (False, True):
        for name, value in environ.items():
            if value and name[-6:].lower() == "_proxy" and name.islower() == lower_case:
                proxies[name[:-6].lower()] = value
        if not lower_case and "REQUEST_METHOD" in environ:
            proxies.pop("http", None)  # under CGI, HTTP_PROXY is a request header (httpoxy)
    return proxies


class CheckEngine:
    """Runs submitted checks concurrently on one thread; each result goes to `on_result` on that thread."""

    def __init__(self, on_result: Callable[[CheckResult], None], context: CurlContext,
                 max_in_flight: int = DEFAULT_MAX_IN_FLIGHT):
        self.max_in_flight = max_in_flight
        self._on_result = on_result
        self._context = context
        self._multi = pycurl.CurlMulti()
        self._multi.setopt(pycurl.M_SOCKETFUNCTION, self._on_socket)
        self._multi.setopt(pycurl.M_TIMERFUNCTION, self._on_timer)
        self._selector = selectors.DefaultSelector()
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)
        self._selector.register(self._wake_read, selectors.EVENT_READ)
        self._watched: dict[int, int] = {}          # fd -> selector events, as libcurl asked
        self._timer_at: float | None = None         # monotonic time of libcurl's next timeout
        self._transfers: dict[pycurl.Curl, Transfer] = {}
        self._running_names: set[str] = set()
        self._spare: list[pycurl.Curl] = []
        # Shared with submitting threads, under _lock: specs waiting, and specs taken but not finished.
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._pending: deque[CheckSpec] = deque()
        self._unfinished = 0
        self._is_wake_pending = False
        self._is_stopping = False
        self._is_closed = False
        self._thread: threading.Thread | None = None
        _allow_open_files(max_in_flight * FDS_PER_CHECK + 100)

    def start(self) -> "CheckEngine":
        """Start the event-loop thread."""
        self._thread = threading.Thread(target=self._run, name="check-engine", daemon=True)
        self._thread.start()
        return self

    def submit(self, specs: Iterable[CheckSpec]) -> None:
        """Check each of `specs` as soon as there is room (any thread); ignored once the engine stops."""
        with self._lock:
            if self._is_stopping:
                return
            before = len(self._pending)
            self._pending.extend(specs)
            self._unfinished += len(self._pending) - before
            if not self._is_wake_pending:
                self._is_wake_pending = True
                self._wake()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every submitted check has delivered its result; False when `timeout` ran out first."""
        with self._idle:
            return self._idle.wait_for(lambda: self._unfinished == 0, timeout)

    def close(self, timeout: float) -> bool:
        """Start no more checks, let those in flight end (by their own deadline), stop; False if still busy."""
        with self._lock:
            if self._is_closed:
                return True
            self._is_stopping = True
            self._unfinished -= len(self._pending)
            self._pending.clear()
            if self._unfinished == 0:
                self._idle.notify_all()
            self._wake()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                return False
        self._is_closed = True
        for handle in list(self._transfers):
            self._multi.remove_handle(handle)
            handle.close()
        for handle in self._spare:
            handle.close()
        self._multi.close()
        self._selector.close()
        os.close(self._wake_read)
        os.close(self._wake_write)
        self._context.ca_bundles.close()
        return True

    def _wake(self) -> None:
        try:
            os.write(self._wake_write, b"\0")
        except BlockingIOError:
            pass  # the pipe is full of wake-ups already: the loop will wake

    # --- the event-loop thread ----------------------------------------------------------------

    def _run(self) -> None:
        while True:
            try:
                if self._turn():
                    return
            except Exception:  # the loop boundary: one surprise must not end every check
                log.exception("check engine: unexpected error, carrying on")
                time.sleep(0.05)

    def _turn(self) -> bool:
        """One turn of the loop; True when the engine is stopping and nothing is left in flight."""
        timer_at = self._timer_at
        timeout = None if timer_at is None else max(0.0, timer_at - time.monotonic())
        for key, mask in self._selector.select(timeout):
            if key.fd == self._wake_read:
                try:
                    os.read(self._wake_read, 4096)
                except BlockingIOError:
                    pass
                continue
            flags = ((pycurl.CSELECT_IN if mask & selectors.EVENT_READ else 0)
                     | (pycurl.CSELECT_OUT if mask & selectors.EVENT_WRITE else 0))
            self._multi.socket_action(key.fd, flags)
        if self._timer_at is not None and time.monotonic() >= self._timer_at:
            self._timer_at = None
            self._multi.socket_action(pycurl.SOCKET_TIMEOUT, 0)
        self._collect()
        return self._start_pending()

    def _start_pending(self) -> bool:
        with self._lock:
            self._is_wake_pending = False
            if self._is_stopping and not self._transfers:
                return True
            room = self.max_in_flight - len(self._transfers)
            batch = [self._pending.popleft() for _ in range(min(room, len(self._pending)))]
        for spec in batch:
            self._start(spec)
        return False

    def _start(self, spec: CheckSpec) -> None:
        if spec.name in self._running_names:
            log.warning("check %s skipped: its previous check is still in progress", spec.target_url)
            self._finished_one()
            return
        timestamp = datetime.now(timezone.utc)
        handle: pycurl.Curl | None = None
        transfer: Transfer | None = None
        try:
            handle = self._spare.pop() if self._spare else pycurl.Curl()
            transfer = Transfer(spec, handle)
            prepare, _ = _KINDS[spec.kind]
            prepare(handle, transfer, self._context)
            for option, value in self._context.extra_options.items():
                handle.setopt(option, value)
            self._multi.add_handle(handle)  # libcurl sets a 0 ms timer: the next turn starts it
        except Exception as exc:  # whatever it is, this spec gets a failed result and the batch goes on
            if handle is not None:
                self._recycle(handle, spec)
            if transfer is not None:
                self._release(transfer)
            self._deliver(CheckResult(spec.target_url, timestamp, False, None, None, _start_problem(spec, exc),
                                      target=spec.event_target))
            return
        self._transfers[handle] = transfer
        self._running_names.add(spec.name)

    def _collect(self) -> None:
        while True:
            queued, done, failed = self._multi.info_read()
            for handle in done:
                self._finish(handle, 0, "")
            for handle, code, message in failed:
                self._finish(handle, code, message)
            if not queued:
                return

    def _finish(self, handle: pycurl.Curl, code: int, message: str) -> None:
        transfer = self._transfers.pop(handle)
        self._multi.remove_handle(handle)
        spec = transfer.spec
        self._running_names.discard(spec.name)
        try:
            result = _KINDS[spec.kind][1](transfer, code, message)
        except Exception:
            log.exception("check %s: its result could not be read", spec.target_url)
            result = CheckResult(spec.target_url, transfer.timestamp, False, None, None,
                                 clip(f"Request failed: libcurl error {code}"), target=spec.event_target)
        self._recycle(handle, spec)
        self._release(transfer)
        self._deliver(result)

    def _deliver(self, result: CheckResult) -> None:
        try:
            self._on_result(result)
        except Exception:  # the receiver's problem must not stop the engine
            log.exception("check %s: handing over its result failed", result.target_url)
        self._finished_one()

    def _finished_one(self) -> None:
        with self._lock:
            self._unfinished -= 1
            if self._unfinished == 0:
                self._idle.notify_all()

    def _release(self, transfer: Transfer) -> None:
        if transfer.cainfo is not None:
            self._context.ca_bundles.release(transfer.cainfo)

    def _recycle(self, handle: pycurl.Curl, spec: CheckSpec) -> None:
        # A tcp check's connection belongs to its handle (CONNECT_ONLY): closing the handle closes it.
        if spec.kind == "tcp" or len(self._spare) >= self.max_in_flight:
            handle.close()
        else:
            handle.reset()
            self._spare.append(handle)

    def _on_socket(self, what: int, fd: int, multi, socketp) -> None:
        """libcurl's socket callback: watch `fd` for what it asks, or stop watching it."""
        events = _EVENTS.get(what)
        known = self._watched.get(fd)
        if events is None:  # POLL_REMOVE
            if known is not None:
                del self._watched[fd]
                self._selector.unregister(fd)
        elif known is None:
            self._watched[fd] = events
            self._selector.register(fd, events)
        elif known != events:
            self._watched[fd] = events
            self._selector.modify(fd, events)

    def _on_timer(self, timeout_ms: int) -> None:
        """libcurl's timer callback: call socket_action(SOCKET_TIMEOUT) in `timeout_ms` (-1: never)."""
        self._timer_at = None if timeout_ms < 0 else time.monotonic() + timeout_ms / 1000


def _start_problem(spec: CheckSpec, exc: Exception) -> str:
    """The error message of a check that could not be started: a setting libcurl refused, or a bug."""
    if isinstance(exc, pycurl.error) and len(exc.args) == 2:
        return clip(f"Request failed: {exc.args[1]}")
    if isinstance(exc, (KeyError, ValueError, TypeError)):  # a setting libcurl cannot take
        return clip(f"Request failed: {exc}")
    log.error("check %s could not be started", spec.target_url, exc_info=exc)
    return f"Request failed: the check could not be started ({type(exc).__name__})"


def _allow_open_files(count: int) -> None:
    """Raise the soft limit on open files towards `count` (within the hard limit): each check holds a socket."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < count:
        wanted = count if hard == resource.RLIM_INFINITY else min(count, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (ValueError, OSError):
            pass
