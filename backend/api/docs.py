"""GET /docs: Swagger UI over GET /openapi.json (SPEC §12), its files served from the pinned flask-swagger-ui package."""

from importlib.resources import files

from flask import Blueprint, render_template

# The package ships Swagger UI's dist files; we serve them ourselves, with our own page.
SWAGGER_UI_DIST = str(files("flask_swagger_ui") / "dist")

bp = Blueprint("docs", __name__, template_folder="templates", static_folder=SWAGGER_UI_DIST,
               static_url_path="/docs/assets")


@bp.get("/docs")
def docs():
    """The API's page; every script and stylesheet comes from this backend, none from a CDN."""
    return render_template("swagger_ui.html")
