"""Backend fixtures, chained as flaskr does: backend_env -> settings -> app -> client -> api.

A test module imports the whole chain by name, because pytest finds fixtures in the module:

    from tests.backend_fixtures import backend_env, settings, console, app, client, api, db  # noqa: F401

Every app gets its own SQLite file under tmp_path and a ConsoleNotifier that writes to an
io.StringIO (`console`) and to tmp_path/server.log, so notification output can be checked.
`with_env(FAILURE_THRESHOLD="1")` changes the environment of one test.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from backend.config import load_settings
from backend.database import make_engine
from backend.factory import create_app
from backend.migrate import upgrade
from backend.notifiers import ConsoleNotifier
from tests.support.databases import Row, database_url, query
from tests.support.procs import no_targets_file

__all__ = ["API_KEY", "Api", "Db", "event", "with_env",
           "backend_env", "settings", "console", "app", "client", "api", "db", "engine", "targets_yaml"]

API_KEY = "test-key-0123456789abcdef"
URL = "https://t.example/"


def event(target_url: str = URL, ok: bool = True, status: int | None = None, **fields) -> dict:
    """A valid POST /events item: a success (200) by default, a failure (503) with ok=False."""
    if status is None and "status_code" not in fields:
        status = 200 if ok else 503
    body = {"target_url": target_url, "timestamp": "2025-01-08T15:30:45Z", "is_success": ok,
            "status_code": status, "response_time_ms": 120, "error_message": None if ok else "HTTP 503"}
    body.update(fields)
    return body


def with_env(**overrides: str):
    """Run one test with extra backend environment keys, e.g. @with_env(FAILURE_THRESHOLD="1")."""
    label = ",".join(f"{k}={v}" for k, v in overrides.items())
    return pytest.mark.parametrize("backend_env", [overrides], indirect=True, ids=[label])


class Api:
    """The test client with the X-API-Key header filled in (pass key=None to leave it out)."""

    def __init__(self, client, key: str | None = API_KEY):
        self.client = client
        self.key = key

    def _headers(self, headers: dict | None) -> dict:
        merged = {"X-API-Key": self.key} if self.key is not None else {}
        merged.update(headers or {})
        return merged

    def get(self, path: str, headers: dict | None = None, **kwargs):
        return self.client.get(path, headers=self._headers(headers), **kwargs)

    def post(self, path: str, headers: dict | None = None, **kwargs):
        return self.client.post(path, headers=self._headers(headers), **kwargs)

    def patch(self, path: str, headers: dict | None = None, **kwargs):
        return self.client.patch(path, headers=self._headers(headers), **kwargs)

    def request(self, method: str, path: str, headers: dict | None = None, **kwargs):
        return self.client.open(path, method=method, headers=self._headers(headers), **kwargs)

    def send(self, *items: dict):
        """POST one event (one item) or a batch (several), expecting 201; return the JSON answer."""
        body = items[0] if len(items) == 1 else list(items)
        response = self.post("/events", json=body)
        assert response.status_code == 201, response.get_json()
        return response.get_json()


class Db:
    """Reads the app's database directly (sqlite3 or psycopg), as a user would with sqlite3 or psql."""

    def __init__(self, url: str | Path):
        self.url = url if isinstance(url, str) else f"sqlite:///{url}"

    def rows(self, sql: str, params: tuple = ()) -> list[Row]:
        return query(self.url, sql, params)

    def count(self, table: str) -> int:
        return self.rows(f"SELECT COUNT(*) AS n FROM {table}")[0]["n"]


@pytest.fixture
def backend_env(request, tmp_path) -> dict[str, str]:
    """The environment load_settings reads; @with_env(...) adds or replaces keys."""
    env = {
        "API_KEY": API_KEY,
        "DATABASE_URL": database_url(tmp_path),
        "BACKEND_LOG_FILE": str(tmp_path / "server.log"),
        "FAILURE_THRESHOLD": "3",
        "NOTIFY_BACKOFF_SECONDS": "0.01",
        "TARGETS_FILE": str(no_targets_file(tmp_path)),  # never the developer's own file
    }
    env.update(getattr(request, "param", {}))
    return env


@pytest.fixture
def settings(backend_env):
    return load_settings(backend_env)


@pytest.fixture
def console() -> io.StringIO:
    """What the console channel printed."""
    return io.StringIO()


@pytest.fixture
def app(settings, console):
    app = create_app(settings, notifiers=[ConsoleNotifier(settings.log_file, stream=console)])
    app.config.update(TESTING=True)
    yield app
    app.extensions["outage"].close()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def api(client) -> Api:
    return Api(client)


@pytest.fixture
def db(settings) -> Db:
    return Db(settings.database_url)


@pytest.fixture
def engine(tmp_path):
    """An engine on the test's own migrated database, for tests that need no app; disposed afterwards."""
    engine = make_engine(database_url(tmp_path))
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def targets_yaml(request, tmp_path) -> Path:
    """The app's targets file: the test module's TARGETS, written before the app loads it (ask for it first)."""
    path = tmp_path / "targets.yaml"
    path.write_text(request.module.TARGETS, encoding="utf-8")
    return path
