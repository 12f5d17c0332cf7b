"""Schemathesis reads GET /openapi.json and fuzzes every route from it: never a 500, always as documented."""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings as hypothesis_settings
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)
from schemathesis.checks import not_a_server_error

from tests.backend_fixtures import API_KEY, app, backend_env, console, settings  # noqa: F401


@pytest.fixture
def api_schema(app):
    return schemathesis.openapi.from_wsgi("/openapi.json", app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@hypothesis_settings(max_examples=40, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                            HealthCheck.filter_too_much])
def test_every_route_answers_as_documented(case):
    case.call_and_validate(headers={"X-API-Key": API_KEY},
                           checks=[not_a_server_error, status_code_conformance, content_type_conformance,
                                   response_schema_conformance])


def test_the_document_is_public_and_names_every_route(app):
    document = app.test_client().get("/openapi.json").get_json()
    assert set(document["paths"]) == {"/events", "/alerts", "/alerts/{alert_id}", "/health", "/targets",
                                      "/targets/reload", "/targets/{name}/stats", "/agent/targets", "/agents",
                                      "/ping/{token}", "/ping/{token}/fail", "/channels", "/channels/{name}/test",
                                      "/metrics", "/docs", "/silences", "/silences/{silence_id}", "/targets/{name}"}
    assert document["components"]["schemas"]["Event"]["properties"]["event_uid"]
