"""Event uids that follow the clock (UUID version 7, RFC 9562), so the backend's uid index grows at one end.

A random uid (version 4) lands anywhere in the backend's unique index on event_uid: a batch of 500
changed some 500 pages of it, which every commit writes out, and inserting batches of 500 with
sqlite3 ran at half the rate of uids that grow with time (bench/ingest.py's profile). A version 7
uid starts with the Unix time in milliseconds; the rest (74 bits) is random, so uids made in the
same millisecond, by one agent or many, stay unique. Python 3.14's uuid.uuid7 is used where it exists.
"""

from __future__ import annotations

import os
import time
import uuid

_VERSION_7 = 0x7 << 76
_VARIANT_RFC = 0b10 << 62
_STDLIB_UUID7 = getattr(uuid, "uuid7", None)  # Python 3.14 and later


def new_event_uid() -> str:
    """A fresh UUID version 7 in the canonical text form."""
    if _STDLIB_UUID7 is not None:
        return str(_STDLIB_UUID7())
    unix_ms = time.time_ns() // 1_000_000
    random = int.from_bytes(os.urandom(10), "big")  # 80 bits: 12 for rand_a, 62 for rand_b (6 spare)
    rand_a, rand_b = random >> 68, random & ((1 << 62) - 1)
    return str(uuid.UUID(int=(unix_ms & ((1 << 48) - 1)) << 80 | _VERSION_7 | rand_a << 64 | _VARIANT_RFC | rand_b))
