"""TLS for the checks: which CA bundle libcurl trusts, a target's extra CA, and the certificate's expiry."""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Mapping

import certifi

# Where distributions keep the system's bundle (Debian/Ubuntu, Fedora/RHEL, Alpine/macOS, SUSE).
SYSTEM_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt",
                  "/etc/ssl/cert.pem", "/etc/ssl/ca-bundle.pem")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def default_ca_bundle(environ: Mapping[str, str], exists: Callable[[str], bool] = os.path.isfile) -> str:
    """The CA bundle every check trusts: CURL_CA_BUNDLE / REQUESTS_CA_BUNDLE, else the system's, else certifi's.

    Set explicitly because the pycurl wheel's libcurl was built with a default path that may not
    exist here (then every real https check would fail while local tests pass); the system's bundle
    comes first because it holds the CAs an administrator added.
    """
    for key in ("CURL_CA_BUNDLE", "REQUESTS_CA_BUNDLE"):
        if environ.get(key):
            return environ[key]
    return next((path for path in SYSTEM_BUNDLES if exists(path)), certifi.where())


class CaBundles:
    """CAINFO for a target: the default bundle, or the default bundle plus the target's `ca_file`.

    libcurl takes one CAINFO file, so "trust this CA too" is a combined file, written once per
    distinct ca_file (and again when it changes on disk) into a private temporary folder. CAPATH
    was the other way; it needs OpenSSL's subject-hash file names (`openssl rehash`) and turns
    libcurl's CA-store cache off for every transfer that sets it. A combined file a change
    superseded is deleted once no check uses it: libcurl reads it only at the TLS handshake.
    """

    def __init__(self, default_bundle: str):
        self.default_bundle = default_bundle
        self._current: dict[str, tuple[tuple, str]] = {}  # ca_file -> (its stat, its combined file)
        self._users: Counter[str] = Counter()  # combined file -> checks that hold it (cainfo, not yet release)
        self._superseded: set[str] = set()
        self._folder: tempfile.TemporaryDirectory | None = None
        self._lock = threading.Lock()

    def cainfo(self, ca_file: str | None) -> str:
        """The CAINFO path for a target with this `ca_file`, held until `release`; ValueError when it cannot be read."""
        if ca_file is None:
            return self.default_bundle
        with self._lock:
            try:
                stat = os.stat(ca_file)
                key = (stat.st_mtime_ns, stat.st_size)
                current = self._current.get(ca_file)
                if current is None or current[0] != key:
                    path = self._write(ca_file)
                    self._superseded.discard(path)  # changed back to content seen before
                    if current is not None and current[1] != path:
                        self._superseded.add(current[1])
                        self._delete_if_unused(current[1])
                    current = self._current[ca_file] = (key, path)
            except OSError as exc:
                raise ValueError(f"ca_file {ca_file} cannot be read: {exc.strerror or exc}") from None
            self._users[current[1]] += 1
            return current[1]

    def release(self, path: str) -> None:
        """A check is done with `path` (a `cainfo` answer); a superseded combined file goes with its last user."""
        with self._lock:
            if self._users[path] > 0:
                self._users[path] -= 1
            self._delete_if_unused(path)

    def close(self) -> None:
        """Remove the combined bundles."""
        with self._lock:
            self._current.clear()
            self._users.clear()
            self._superseded.clear()
            if self._folder is not None:
                self._folder.cleanup()
                self._folder = None

    def _delete_if_unused(self, path: str) -> None:
        if self._users[path] <= 0:
            del self._users[path]
            if path in self._superseded:
                self._superseded.discard(path)
                Path(path).unlink(missing_ok=True)

    def _write(self, ca_file: str) -> str:
        if self._folder is None:
            self._folder = tempfile.TemporaryDirectory(prefix="agent-ca-")
        extra = Path(ca_file).read_bytes()
        name = hashlib.sha256(ca_file.encode() + extra).hexdigest()[:16] + ".pem"
        path = Path(self._folder.name) / name
        # Written aside, then renamed: a check that still reads this same name sees a whole file.
        partial = path.with_suffix(".tmp")
        partial.write_bytes(Path(self.default_bundle).read_bytes() + b"\n" + extra + b"\n")
        os.replace(partial, path)
        return str(path)


def expiry_from_certinfo(certinfo: list) -> datetime | None:
    """The server certificate's notAfter from libcurl's CERTINFO (its "Expire date"), aware UTC."""
    if not certinfo:
        return None
    for key, value in certinfo[0]:  # the chain starts with the server's own certificate
        if key == "Expire date":
            return parse_cert_date(value)
    return None


def parse_cert_date(text: str) -> datetime | None:
    """OpenSSL's `Dec  4 14:47:28 2026 GMT` (or ISO `2026-12-04 14:47:28 GMT`) as aware UTC; None if neither."""
    parts = text.split()
    try:
        if len(parts) == 5 and parts[0] in _MONTHS:
            hour, minute, second = (int(n) for n in parts[2].split(":"))
            return datetime(int(parts[3]), _MONTHS.index(parts[0]) + 1, int(parts[1]), hour, minute, second,
                            tzinfo=timezone.utc)
        return datetime.fromisoformat(" ".join(parts[:2])).replace(tzinfo=timezone.utc)
    except (ValueError, IndexError):
        return None
