"""The ceiling for ingest: a bare Flask endpoint that parses the same JSON as POST /events and returns 201."""

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.post("/events")
def events():
    body = request.get_json()
    count = len(body) if isinstance(body, list) else 1
    return jsonify({"received": count}), 201


@app.get("/health")
def health():
    return jsonify({"status": "ok"})
