"""X-API-Key on every route but /health, GET /health, and JSON for Flask's own errors (SPEC §4)."""

from __future__ import annotations

import pytest

from backend.database import make_engine
from tests.backend_fixtures import (API_KEY, Api, api, app, backend_env, client, console, db, event,  # noqa: F401
                                    settings)

ROUTES = [
    ("POST", "/events"),
    ("GET", "/alerts"),
    ("GET", "/alerts/1"),
    ("PATCH", "/alerts/1"),
]


@pytest.mark.parametrize("key", [None, "", "wrong-key", API_KEY + "x", API_KEY[:-1]],
                         ids=["missing", "empty", "wrong", "longer", "shorter"])
@pytest.mark.parametrize("method, path", ROUTES)
def test_every_route_but_health_needs_the_right_api_key(client, db, key, method, path):
    body = event(ok=False) if path == "/events" else {"status": "ACK"}
    response = Api(client, key).request(method, path, json=body)
    assert response.status_code == 401
    assert "X-API-Key" in response.get_json()["error"]
    assert db.count("events") == 0


def test_the_api_key_is_never_echoed_in_an_error(client):
    response = Api(client, API_KEY[:-1]).get("/alerts")
    assert API_KEY[:-1] not in response.get_data(as_text=True)


def test_health_answers_200_without_a_key(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_health_answers_200_with_a_wrong_key_too(client):
    assert Api(client, "wrong").get("/health").status_code == 200


def test_health_answers_503_when_the_database_is_unreachable(app, client):
    """Point the app at a database server that is not there (nothing listens on port 9)."""
    ctx = app.extensions["outage"]
    real_engine = ctx.engine
    ctx.engine = make_engine("postgresql+psycopg://nobody@127.0.0.1:9/none")
    try:
        response = client.get("/health")
    finally:
        ctx.engine.dispose()
        ctx.engine = real_engine
    assert response.status_code == 503
    assert response.get_json()["status"] != "ok"
    assert response.get_json()["error"]
    assert response.get_json()["details"] == {}  # the shape of every error body


def test_an_unknown_route_is_a_404_in_json(api):
    response = api.get("/nothing-here")
    assert response.status_code == 404
    assert response.is_json and response.get_json()["error"]


@pytest.mark.parametrize("method, path", [("GET", "/events"), ("PUT", "/events"), ("DELETE", "/alerts/1"),
                                          ("POST", "/alerts"), ("POST", "/health")])
def test_a_wrong_method_is_a_405_in_json(api, method, path):
    response = api.request(method, path)
    assert response.status_code == 405
    assert response.is_json and response.get_json()["error"]
