"""The dashboard's settings (SPEC §12): DASHBOARD_PASSWORD hashed at start, SECRET_KEY, DASHBOARD_HTTPS."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from werkzeug.security import generate_password_hash

from common.config import ConfigError
from common.config import boolean as _bool
from common.config import text as _text

MIN_SECRET_KEY_LENGTH = 32  # make_env.py writes 43 characters; a short key lets cookies be forged


@dataclass(frozen=True)
class DashboardSettings:
    password_hash: str = field(repr=False)  # werkzeug's scrypt hash: the password itself is kept nowhere
    secret_key: str = field(repr=False)      # signs the session cookie; the same in every worker
    https: bool = False                      # the session cookie is Secure (sent over HTTPS only)


def load_dashboard_settings(environ: Mapping[str, str]) -> DashboardSettings | None:
    """DashboardSettings when DASHBOARD_PASSWORD is set, None (the dashboard is off) when not; else ConfigError."""
    password = environ.get("DASHBOARD_PASSWORD") or ""  # not stripped: spaces may be part of a password
    https = _bool(environ, "DASHBOARD_HTTPS", False)
    if not password.strip():
        return None
    secret_key = _text(environ, "SECRET_KEY")
    if not secret_key:
        raise ConfigError("SECRET_KEY", "is required when DASHBOARD_PASSWORD is set (make run writes one into "
                                        ".env; or: python3 -c 'import secrets; print(secrets.token_urlsafe(32))')")
    if len(secret_key) < MIN_SECRET_KEY_LENGTH:
        raise ConfigError("SECRET_KEY", f"must be at least {MIN_SECRET_KEY_LENGTH} characters long")
    return DashboardSettings(generate_password_hash(password), secret_key, https)
