"""GET /docs (SPEC §12): Swagger UI over /openapi.json, every file served by the backend itself, no API key."""

import re

from tests.backend_fixtures import app, backend_env, client, console, settings  # noqa: F401


def test_docs_page_loads_its_files_from_the_backend_alone(client):
    page = client.get("/docs")
    assert page.status_code == 200 and page.content_type.startswith("text/html")
    html = page.get_data(as_text=True)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)  # no CDN, no other host
    assert "http://" not in html and "https://" not in html
    assert '"/openapi.json"' in html and "validatorUrl: null" in html  # the spec never goes to an online validator
    files = re.findall(r"""(?:src|href)="([^"]+)""", html)
    assert any(f.endswith("swagger-ui-bundle.js") for f in files) and any(f.endswith(".css") for f in files)
    for path in files:
        answer = client.get(path)
        assert answer.status_code == 200 and len(answer.data) > 0, path
    assert "SwaggerUIBundle" in client.get(next(f for f in files if f.endswith(".js"))).get_data(as_text=True)


def test_docs_and_metrics_are_in_the_openapi_document_and_public(client):
    document = client.get("/openapi.json").get_json()
    assert document["paths"]["/docs"]["get"]["security"] == []
    assert {"metricsToken": []} in document["paths"]["/metrics"]["get"]["security"]
    assert client.get("/metrics").status_code == 200  # no API key, no token set
