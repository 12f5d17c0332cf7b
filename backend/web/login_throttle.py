"""Failed dashboard logins slowed per client address (SPEC §12): a growing wait, kept in the process."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

FREE_FAILURES = 3          # a typo or two costs nothing
MAX_WAIT_SECONDS = 300.0
FORGET_AFTER_SECONDS = 3600.0  # an address quiet this long starts again from nothing
MAX_ADDRESSES = 10000      # bounds the memory a flood of addresses can take; the oldest go first


def wait_seconds(failures: int) -> float:
    """How long an address must wait after `failures` failed logins in a row: 0, 0, 0, 1, 2, 4, … up to 300."""
    if failures < FREE_FAILURES:
        return 0.0
    return min(2.0 ** (failures - FREE_FAILURES), MAX_WAIT_SECONDS)


class LoginThrottle:
    """Failed logins per client address; one address's failures never slow another's (no global lockout)."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self._failures: OrderedDict[str, tuple[int, float]] = OrderedDict()  # address -> (count, last failure)
        self._lock = threading.Lock()

    def retry_after(self, address: str) -> float:
        """Seconds before `address` may try again; 0 when it may now."""
        with self._lock:
            count, last = self._failures.get(address, (0, 0.0))
            if count and self.clock() - last > FORGET_AFTER_SECONDS:
                del self._failures[address]
                return 0.0
            return max(0.0, last + wait_seconds(count) - self.clock())

    def failed(self, address: str) -> None:
        """Count one failed login from `address`."""
        with self._lock:
            count, _ = self._failures.pop(address, (0, 0.0))
            self._failures[address] = (count + 1, self.clock())
            while len(self._failures) > MAX_ADDRESSES:
                self._failures.popitem(last=False)

    def succeeded(self, address: str) -> None:
        """A right password clears the address's count."""
        with self._lock:
            self._failures.pop(address, None)
