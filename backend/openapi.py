"""The OpenAPI 3 document of the HTTP API (SPEC §4), served at GET /openapi.json.

Request schemas come from the pydantic models that validate requests, with the formats their
validators enforce written in, so the document and the validation cannot drift apart.
"""

from __future__ import annotations

from functools import cache

from backend.errors import CLOCK_SKEW, INVALID_EVENT, INVALID_REQUEST, INVALID_TARGETS_FILE, UNKNOWN_FIELD
from backend.validation import MAX_BATCH, EventIn

_FORMATS = {"target_url": "uri", "timestamp": "date-time", "event_uid": "uuid", "cert_expires_at": "date-time"}


def _event_schema() -> dict:
    schema = EventIn.model_json_schema()
    for name, fmt in _FORMATS.items():
        prop = schema["properties"][name]
        for variant in prop.get("anyOf", [prop]):
            if variant.get("type") == "string":
                variant["format"] = fmt
    schema["properties"]["target_url"]["pattern"] = "^(https?|tcp)://"
    return schema


def _json(schema: dict) -> dict:
    return {"content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict:
    return {"description": description, **_json({"$ref": "#/components/schemas/Error"})}


ERRORS = {"400": _error("Malformed JSON or an invalid field, named in the sentence."),
          "401": _error("The X-API-Key header is missing or wrong."),
          "413": _error("The body is too large."),
          "415": _error("The body is not JSON.")}

ERROR = {
    "type": "object", "required": ["error", "details"],
    "properties": {
        "error": {"type": "string"},
        "details": {"type": "object", "properties": {
            "code": {"type": "string", "enum": [INVALID_REQUEST, INVALID_EVENT, UNKNOWN_FIELD, CLOCK_SKEW,
                                                      INVALID_TARGETS_FILE]},
            "field": {"type": "string"}, "index": {"type": "integer", "minimum": 0}}},
    },
}
EVENTS_400 = _error(
    "Nothing was stored. `details.code` says why: `invalid_request` (malformed JSON, not an event or an array "
    "of them, an empty or too large batch), `invalid_event` (this event can never be stored), `unknown_field` "
    "(a field this backend does not know, sent by a newer agent) or `clock_skew` (a timestamp more than "
    "MAX_CLOCK_SKEW_SECONDS ahead of the backend's clock). For an event, `details.field` names the field; in a "
    "batch, `details.index` is the first refused event.")

CHANNEL_TEST = {
    "type": "object", "required": ["channel", "notice_type", "status", "attempted_at", "log_id"],
    "properties": {"channel": {"type": "string"}, "notice_type": {"type": "string", "enum": ["TEST"]},
                   "status": {"type": "string", "enum": ["SENT", "FAILED"]},
                   "response_code": {"type": ["integer", "null"]}, "message_id": {"type": ["string", "null"]},
                   "error_message": {"type": ["string", "null"]}, "attempted_at": {"type": "string"},
                   "log_id": {"type": "integer"}},
}

ALERT = {
    "type": "object",
    "required": ["id", "event_id", "target_url", "target", "alert_type", "status", "created_at", "resolved_at",
                 "message"],
    "properties": {
        "id": {"type": "integer"}, "event_id": {"type": "integer"}, "target_url": {"type": "string"},
        "target": {"type": "string", "description": "The target's name: the file target's, else its URL (SPEC §8); "
                                                    "at most one OPEN or ACK alert per target."},
        "alert_type": {"type": "string", "enum": ["ERROR", "WARNING", "RECOVERY"]},
        "status": {"type": "string", "enum": ["OPEN", "ACK", "RESOLVED"]},
        "created_at": {"type": "string"}, "acknowledged_at": {"type": ["string", "null"]},
        "resolved_at": {"type": ["string", "null"]}, "resolved_event_id": {"type": ["integer", "null"]},
        "message": {"type": "string"},
        "acknowledged_by": {"type": ["string", "null"],
                            "description": "Who acknowledged it: api, cli, dashboard or telegram:@user (SPEC §10)."},
        "resolved_by": {"type": ["string", "null"],
                        "description": "Who resolved it by hand: api, cli, dashboard or telegram:@user; null when "
                                       "a recovery resolved it (see resolved_event_id)."},
    },
}
RECORDED = {"type": "object", "required": ["event_id", "alert", "duplicate"],
            "properties": {"event_id": {"type": "integer"},
                           "alert": {"anyOf": [{"$ref": "#/components/schemas/Alert"}, {"type": "null"}]},
                           "duplicate": {"type": "boolean"}}}
NULLABLE_ALERT = {"anyOf": [{"$ref": "#/components/schemas/Alert"}, {"type": "null"}]}
# An agent as GET /agents lists it: times in the stored form, UTC.
AGENT = {"type": "object", "required": ["name", "last_seen_at", "last_event_at", "last_pull_at"],
         "properties": {"name": {"type": "string"}, "last_seen_at": {"type": "string"},
                        "last_event_at": {"type": ["string", "null"]}, "last_pull_at": {"type": ["string", "null"]}}}

# A loaded target as GET /targets shows it; its kind's settings (as written, `${NAME}` unresolved) come too.
TARGET = {
    "type": "object",
    "required": ["name", "kind", "tags", "state", "paused", "failures_in_a_row", "last_check", "alert"],
    "properties": {
        "name": {"type": "string"}, "kind": {"type": "string", "enum": ["http", "tcp", "push"]},
        "url": {"type": "string"}, "host": {"type": "string"}, "port": {"type": "integer"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "state": {"type": "string", "enum": ["UP", "DOWN", "WARNING", "PAUSED", "UNKNOWN"]},
        "paused": {"type": "boolean"}, "failures_in_a_row": {"type": "integer", "minimum": 0},
        "last_check": {"type": ["string", "null"]}, "alert": NULLABLE_ALERT,
        "ping_url": {"type": "string", "description": "Push targets only: the URL their job calls (secret)."},
    },
}
AGENT_TARGET = {
    "type": "object", "required": ["name", "kind", "interval", "timeout"],
    "description": "Every key of its kind is present, null when not set (an http target: url, method, headers, "
                   "body, expect_status, body_contains, body_regex, json_path, json_equals, tls_verify, ca_file; "
                   "a tcp target: host, port).",
    "properties": {"name": {"type": "string"}, "kind": {"type": "string", "enum": ["http", "tcp"]},
                   "interval": {"type": "number"}, "timeout": {"type": "number"}},
}
# GET /targets/<name>/stats (SPEC §8): times in the stored form, UTC.
STATS = {
    "type": "object",
    "required": ["target", "window", "from", "to", "checks", "failures", "uptime_percent", "response_time_ms"],
    "properties": {
        "target": {"type": "string"}, "window": {"type": "string", "enum": ["24h", "7d", "30d"]},
        "from": {"type": "string", "description": "The top of the hour that holds `to` minus the window."},
        "to": {"type": "string"},
        "checks": {"type": "integer", "minimum": 0}, "failures": {"type": "integer", "minimum": 0},
        "uptime_percent": {"type": ["number", "null"], "description": "Successful checks / checks, rounded "
                           "down to 0.01 (100 means no failure); null when there was no check."},
        "response_time_ms": {"type": "object", "required": ["mean", "p95"], "properties": {
            "mean": {"type": ["number", "null"]},
            "p95": {"type": ["number", "null"], "description": "From a log-bucket histogram: within 5% of the "
                    "exact nearest-rank p95."}}},
    },
}
PAGING = [{"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500}},
          {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}}]
TOKEN = {"name": "token", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1},
         "description": "The push target's token, from its `ping_url` in GET /targets."}
PING_OK = {"description": "Stored.", **_json({"type": "object", "required": ["ok"],
                                              "properties": {"ok": {"type": "boolean", "const": True}}})}
PING_404 = _error("No push target has this token; nothing was stored.")


def _ping(summary: str, body: str | None = None) -> dict:
    """GET and POST of one ping route: no API key, the push target's token in the path."""
    post = {"summary": summary, "security": [], "parameters": [TOKEN],
            "responses": {"200": PING_OK, "404": PING_404}}
    if body:
        post["requestBody"] = {"required": False, "description": body,
                               "content": {"text/plain": {"schema": {"type": "string"}}}}
    get = {key: value for key, value in post.items() if key != "requestBody"}
    return {"get": get, "post": post}


ALERT_ID = {"name": "alert_id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}
SILENCE_ID = {"name": "silence_id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}
# A silence as the API shows it (SPEC §11): times ISO 8601 in UTC with Z.
SILENCE = {
    "type": "object",
    "required": ["id", "match", "starts_at", "ends_at", "reason", "state", "created_at", "ended_early_at"],
    "properties": {
        "id": {"type": "integer"},
        "match": {"type": "string", "description": "A target name, a shell-style glob over names (`web-*`), or "
                                                   "`tag:<tag>`."},
        "starts_at": {"type": "string", "format": "date-time"}, "ends_at": {"type": "string", "format": "date-time"},
        "reason": {"type": "string"}, "state": {"type": "string", "enum": ["upcoming", "active", "ended"]},
        "created_at": {"type": "string", "format": "date-time"},
        "ended_early_at": {"type": ["string", "null"], "format": "date-time",
                           "description": "When DELETE ended it before its ends_at (which then says the same)."},
    },
}
NEW_SILENCE = {
    "type": "object", "required": ["match", "ends_at"], "additionalProperties": False,
    "properties": {
        "match": {"type": "string", "minLength": 1, "maxLength": 500},
        "starts_at": {"type": ["string", "null"], "format": "date-time",
                      "description": "With a UTC offset (`Z` or `+01:00`); default now."},
        "ends_at": {"type": "string", "format": "date-time",
                    "description": "With a UTC offset; after starts_at and in the future."},
        "reason": {"type": ["string", "null"], "maxLength": 500},
    },
}


@cache  # built once per process: it depends on nothing but the code
def openapi_document() -> dict:
    """The whole document, as a dict ready for jsonify (callers must not change it)."""
    event_body = {"oneOf": [{"$ref": "#/components/schemas/Event"},
                            {"type": "array", "minItems": 1, "maxItems": MAX_BATCH,
                             "items": {"$ref": "#/components/schemas/Event"}}]}
    recorded = {"oneOf": [{"$ref": "#/components/schemas/Recorded"},
                          {"type": "object", "required": ["events"],
                           "properties": {"events": {"type": "array",
                                                     "items": {"$ref": "#/components/schemas/Recorded"}}}}]}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Outage alerting API", "version": "1"},
        "security": [{"apiKey": []}],
        "paths": {
            "/events": {"post": {
                "summary": "Store one check result or a batch of up to 1000 (all or nothing).",
                "requestBody": {"required": True, **_json(event_body)},
                "responses": {"201": {"description": "Stored.", **_json(recorded)},
                              "200": {"description": "Every event was stored before (same event_uid).",
                                      **_json(recorded)}, **ERRORS, "400": EVENTS_400}}},
            "/alerts": {"get": {
                "summary": "Alerts, newest first.",
                "parameters": [
                    {"name": "status", "in": "query", "schema": {"type": "string",
                                                                 "enum": ["OPEN", "ACK", "RESOLVED"]}},
                    {"name": "target_url", "in": "query", "schema": {"type": "string"}},
                    {"name": "target", "in": "query", "schema": {"type": "string"},
                     "description": "The target's name (a file target's name, else its URL)."}, *PAGING],
                "responses": {"200": {"description": "A page of alerts.", **_json({
                    "type": "object", "required": ["alerts"],
                    "properties": {"alerts": {"type": "array", "items": {"$ref": "#/components/schemas/Alert"}},
                                   "limit": {"type": "integer"}, "offset": {"type": "integer"}}})},
                              "400": ERRORS["400"], "401": ERRORS["401"]}}},
            "/alerts/{alert_id}": {
                "get": {"summary": "One alert with its delivery attempts under `notifications`.",
                        "parameters": [ALERT_ID],
                        "responses": {"200": {"description": "The alert.",
                                              **_json({"$ref": "#/components/schemas/Alert"})},
                                      "401": ERRORS["401"], "404": _error("No such alert.")}},
                "patch": {"summary": "Acknowledge or resolve an alert.",
                          "parameters": [ALERT_ID],
                          "requestBody": {"required": True, **_json({
                              "type": "object", "required": ["status"], "additionalProperties": False,
                              "properties": {"status": {"type": "string", "enum": ["ACK", "RESOLVED"]},
                                             "by": {"type": "string", "enum": ["api", "cli"], "default": "api",
                                                    "description": "Who acts, stored as acknowledged_by or "
                                                                   "resolved_by."}}})},
                          "responses": {"200": {"description": "The alert after the change.",
                                                **_json({"$ref": "#/components/schemas/Alert"})},
                                        "404": _error("No such alert."),
                                        "409": _error("The alert is RESOLVED and cannot change."), **ERRORS}}},
            "/targets": {"get": {
                "summary": "The targets of the targets file, in file order, with their state; no secret.",
                "parameters": PAGING,
                "responses": {"200": {"description": "A page of targets.", **_json({
                    "type": "object", "required": ["targets", "limit", "offset", "total"],
                    "properties": {"targets": {"type": "array", "items": {"$ref": "#/components/schemas/Target"}},
                                   "limit": {"type": "integer"}, "offset": {"type": "integer"},
                                   "total": {"type": "integer"}}})},
                              "400": ERRORS["400"], "401": ERRORS["401"]}}},
            "/targets/{name}/stats": {"get": {
                "summary": "A target's checks, failures, uptime and response times over a window, from rollups "
                           "plus the checks stored since the last roll.",
                "parameters": [
                    {"name": "name", "in": "path", "required": True, "schema": {"type": "string"},
                     "description": "The file target's name, or the URL of a target not in the file; "
                                    "percent-encoded, taken whole (it may hold `/`)."},
                    {"name": "window", "in": "query",
                     "schema": {"type": "string", "enum": ["24h", "7d", "30d"], "default": "24h"}}],
                "responses": {"200": {"description": "The stats.", **_json({"$ref": "#/components/schemas/Stats"})},
                              "400": _error("The window is not 24h, 7d or 30d, or the name is longer than 2064 "
                                            "characters or holds a NUL (`details.code` `invalid_request`, "
                                            "`details.field` `window` or `name`)."),
                              "401": ERRORS["401"],
                              "404": _error("No file target has that name and no check was stored under it.")}}},
            "/targets/reload": {"post": {
                "summary": "Re-read the targets file; an invalid one is refused and the running list stays.",
                "responses": {"200": {"description": "Loaded: how many targets, and what changed.", **_json({
                    "type": "object", "required": ["targets", "added", "changed", "removed"],
                    "properties": {k: {"type": "integer", "minimum": 0}
                                   for k in ("targets", "added", "changed", "removed")}})},
                              "400": _error("The file is invalid (`details.code` is `invalid_targets_file`); "
                                            "the sentence names the file, the line and the key."),
                              "401": ERRORS["401"]}}},
            "/targets/{name}": {"patch": {
                "summary": "Pause or resume a target: a paused one is not checked, its deadline not watched, and its "
                           "events are stored without rules (no alert opens); kept across reloads of the file.",
                "parameters": [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"},
                                "description": "The file target's name, percent-encoded."}],
                "requestBody": {"required": True, **_json({
                    "type": "object", "required": ["paused"], "additionalProperties": False,
                    "properties": {"paused": {"type": "boolean"}}})},
                "responses": {"200": {"description": "The target's name and whether it is paused now.", **_json({
                    "type": "object", "required": ["name", "paused"],
                    "properties": {"name": {"type": "string"}, "paused": {"type": "boolean"}}})},
                              "404": _error("No target of that name in the targets file."), **ERRORS}}},
            "/silences": {
                "post": {"summary": "Silence the targets `match` selects from starts_at until ends_at: alerts open "
                                    "and resolve as usual, their notices are SUPPRESSED rows, and an alert still "
                                    "OPEN when the silence ends is notified then.",
                         "requestBody": {"required": True, **_json(NEW_SILENCE)},
                         "responses": {"201": {"description": "The silence.",
                                               **_json({"$ref": "#/components/schemas/Silence"})},
                                       **ERRORS, "400": _error("A field is missing or invalid, named in "
                                                               "`details.field`; nothing was stored.")}},
                "get": {"summary": "Silences active and upcoming, soonest first; `?all=true` adds the ended ones "
                                   "(then newest first).",
                        "parameters": [{"name": "all", "in": "query",
                                        "schema": {"type": "string", "enum": ["true", "1"]}}, *PAGING],
                        "responses": {"200": {"description": "A page of silences.", **_json({
                            "type": "object", "required": ["silences", "limit", "offset"],
                            "properties": {"silences": {"type": "array",
                                                        "items": {"$ref": "#/components/schemas/Silence"}},
                                           "limit": {"type": "integer"}, "offset": {"type": "integer"}}})},
                                      "400": ERRORS["400"], "401": ERRORS["401"]}}},
            "/silences/{silence_id}": {"delete": {
                "summary": "End a silence now; its row stays, for the notification log rows that name it. A silence "
                           "already over is answered as it is.",
                "parameters": [SILENCE_ID],
                "responses": {"200": {"description": "The silence, ended.",
                                      **_json({"$ref": "#/components/schemas/Silence"})},
                              "401": ERRORS["401"], "404": _error("No such silence.")}}},
            "/agent/targets": {"get": {
                "summary": "What agents check: http and tcp targets with their secrets resolved.",
                "parameters": [{"name": "X-Agent-Name", "in": "header", "schema": {"type": "string"},
                                "description": "The agent's name (UTF-8), recorded for GET /agents."}],
                "responses": {"200": {"description": "The list, and how often to ask for it again.", **_json({
                    "type": "object", "required": ["refresh_seconds", "targets"],
                    "properties": {"refresh_seconds": {"type": "number"},
                                   "targets": {"type": "array",
                                               "items": {"$ref": "#/components/schemas/AgentTarget"}}}})},
                              "400": _error("The X-Agent-Name header is invalid."), "401": ERRORS["401"]}}},
            "/agents": {"get": {
                "summary": "Agents by name with when each was last heard from, the most recent first.",
                "parameters": PAGING,
                "responses": {"200": {"description": "A page of agents.", **_json({
                    "type": "object", "required": ["agents", "limit", "offset"],
                    "properties": {"agents": {"type": "array", "items": {"$ref": "#/components/schemas/Agent"}},
                                   "limit": {"type": "integer"}, "offset": {"type": "integer"}}})},
                              "400": ERRORS["400"], "401": ERRORS["401"]}}},
            "/channels": {"get": {
                "summary": "The channels that are on: the defaults, then the targets file's named ones, secrets "
                           "shown as `<redacted>`.",
                "responses": {"200": {"description": "Each channel's name, type and non-secret keys.", **_json({
                    "type": "object", "required": ["channels"],
                    "properties": {"channels": {"type": "array", "items": {
                        "type": "object", "required": ["name", "type"],
                        "properties": {"name": {"type": "string"}, "type": {"type": "string"}}}}}})},
                              "401": ERRORS["401"]}}},
            "/channels/{name}/test": {"post": {
                "summary": "Send a test notice through one channel now (one attempt, no retries), logged in "
                           "notification_logs with notice_type TEST and no alert.",
                "parameters": [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"201": {"description": "Sent.", **_json(CHANNEL_TEST)},
                              "200": {"description": "The attempt failed; `error_message` says why.",
                                      **_json(CHANNEL_TEST)},
                              "401": ERRORS["401"],
                              "404": _error("No channel has that name; `details.channels` lists those that do.")}}},
            "/ping/{token}": _ping("A push target's job ran: store a successful event (resolves its ERROR)."),
            "/ping/{token}/fail": _ping("A push target's job failed: store a failed event, which opens an ERROR "
                                        "at once.", "The error message (optional): printable text, cut at 500 "
                                        "characters."),
            "/metrics": {"get": {
                "summary": "Prometheus metrics: events, ingest latency, alerts, notification attempts, the outbox; "
                           "every gunicorn worker's counts added up. Needs METRICS_TOKEN as a bearer token when "
                           "it is set; never the API key.",
                "security": [{}, {"metricsToken": []}],
                "responses": {"200": {"description": "The Prometheus text format (OpenMetrics when asked for).",
                                      "content": {"text/plain": {"schema": {"type": "string"}},
                                                  "application/openmetrics-text": {"schema": {"type": "string"}}}},
                              "401": _error("METRICS_TOKEN is set and the bearer token is missing or wrong.")}}},
            "/docs": {"get": {"summary": "This document in Swagger UI, its files served by the backend itself.",
                              "security": [],
                              "responses": {"200": {"description": "The page.",
                                                    "content": {"text/html": {"schema": {"type": "string"}}}}}}},
            "/health": {"get": {"summary": "Whether the database answers.", "security": [],
                                "responses": {"200": {"description": "ok"},
                                              "503": _error("The database does not answer.")}}},
        },
        "components": {
            "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                                "metricsToken": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Event": _event_schema(), "Alert": ALERT, "Recorded": RECORDED,
                "Error": ERROR, "Target": TARGET, "AgentTarget": AGENT_TARGET, "Agent": AGENT,
                "Stats": STATS, "Silence": SILENCE,
            },
        },
    }
