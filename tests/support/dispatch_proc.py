"""A dispatcher process whose channel lease is always granted: `python -m tests.support.dispatch_proc DB_URL OUT`.

It works the TELEGRAM outbox of DB_URL with a slow channel that appends one line per message it
sends ("<delivery alert id> <notice type> <pid>") to OUT, until SIGTERM. With the lease forced
open, only the per-row claim keeps two such processes from sending one row twice.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

from backend import store
from backend.database import make_engine
from backend.dispatch import Dispatcher
from backend.messages import Notice
from backend.notifiers.base import Notifier


class SlowFileChannel(Notifier):
    """Takes 50 ms per message, so two dispatchers racing for one row overlap."""

    channel = "TELEGRAM"

    def __init__(self, path: str):
        self.path = path

    def send(self, notice: Notice) -> str | None:
        time.sleep(0.05)
        with open(self.path, "a", encoding="utf-8") as out:
            out.write(f"{notice.alert_id} {notice.notice_type.value} {os.getpid()}\n")
        return None


def main(database_url: str, out_path: str) -> int:
    store.acquire_lease = lambda *args, **kwargs: True  # the lease check forced open
    engine = make_engine(database_url)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    dispatcher = Dispatcher(engine, [SlowFileChannel(out_path)], poll_seconds=0.01)
    print("dispatching", flush=True)
    stopping.wait(60)  # bounded: the test stops it long before
    dispatcher.close()
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
