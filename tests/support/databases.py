"""The database a test runs on: a SQLite file by default, or a fresh PostgreSQL database.

Set TEST_POSTGRES_URL (an admin URL of a throwaway cluster, e.g. the one scripts/pg_cluster.sh
starts) and every test gets its own new database there instead of a SQLite file: the same suite
runs against both. `query()` reads rows back the way a user would with sqlite3 or psql.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from pathlib import Path

from sqlalchemy.engine import make_url

TEST_POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "").strip()
IS_POSTGRES = bool(TEST_POSTGRES_URL)

# Test modules that never read or write the backend's database (the agent's, the pure rules'...):
# `make test-postgres` runs them only once, on the SQLite pass. tests/conftest.py sets `in_use` to
# False while one of them runs, and then any query of the database fails the test, so a module
# cannot be listed here by mistake.
DATABASE_FREE_MODULES = frozenset({
    "test_agent_check_conditions", "test_agent_check_kinds", "test_agent_checker", "test_agent_config",
    "test_agent_hostile", "test_agent_process",
    "test_agent_schedule", "test_agent_sender", "test_agent_spool", "test_backend_config",
    "test_bench_smoke", "test_dashboard_config", "test_dashboard_login_throttle", "test_deadline_rules",
    "test_deploy_files", "test_histogram", "test_messages", "test_rules", "test_targets_file",
    "test_rules_silences",
})


class _Use:
    in_use = True  # False while a test of DATABASE_FREE_MODULES runs


use = _Use()

_urls: dict[Path, str] = {}


def database_url(tmp_path: Path) -> str:
    """The test's database URL: the same one for every call with the same tmp_path."""
    if tmp_path not in _urls:
        # A database-free test still gets a (never created) SQLite path, for the env it builds.
        on_postgres = IS_POSTGRES and use.in_use
        _urls[tmp_path] = _new_postgres_database() if on_postgres else f"sqlite:///{tmp_path / 'notifications.db'}"
    return _urls[tmp_path]


def require_database(what: str) -> None:
    """Fail a test listed in DATABASE_FREE_MODULES that uses the database after all."""
    if not use.in_use:
        raise AssertionError(f"{what}: this test module is listed in DATABASE_FREE_MODULES "
                             "(tests/support/databases.py) but uses the database; remove it from that list")


def _new_postgres_database() -> str:
    import psycopg

    name = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(_conninfo(TEST_POSTGRES_URL), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return make_url(TEST_POSTGRES_URL).set(database=name).render_as_string(hide_password=False)


def _conninfo(url: str) -> str:
    parsed = make_url(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


class Row(tuple):
    """A result row readable both as a tuple and by column name, like sqlite3.Row."""

    def __new__(cls, keys: list[str], values):
        row = super().__new__(cls, values)
        row._keys = keys
        return row

    def __getitem__(self, key):
        if isinstance(key, str):
            return super().__getitem__(self._keys.index(key))
        return super().__getitem__(key)

    def keys(self) -> list[str]:
        return list(self._keys)


def query(url: str, sql: str, params: tuple = ()) -> list[Row]:
    """Run one read query (with `?` placeholders) against the test database."""
    require_database("query()")
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///"), timeout=10) as conn:
            cursor = conn.execute(sql, params)
            keys = [c[0] for c in cursor.description or ()]
            return [Row(keys, r) for r in cursor.fetchall()]
    import psycopg

    with psycopg.connect(_conninfo(url), autocommit=True) as conn:
        cursor = conn.execute(sql.replace("?", "%s"), params)
        keys = [c.name for c in cursor.description or ()]
        return [Row(keys, r) for r in cursor.fetchall()]
