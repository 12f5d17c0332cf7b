"""A webhook receiver to copy (standard library only): verifies each POST's signature and refuses replays.

Run: WEBHOOK_SECRET=<the backend's secret> python3 webhook_receiver_example.py   (listens on 127.0.0.1:8000)
"""
import hashlib, hmac, json, os, time
from http.server import BaseHTTPRequestHandler, HTTPServer

MAX_AGE_SECONDS = 300  # an older (or a replayed) request is refused


def verified(secret: bytes, timestamp: str, signature: str, body: bytes) -> bool:
    """True when X-Signature-256 is the secret's HMAC-SHA256 of "<timestamp>.<body>" and the timestamp is recent."""
    if not (timestamp.isascii() and timestamp.isdigit()) or abs(time.time() - int(timestamp)) > MAX_AGE_SECONDS:
        return False
    expected = "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), signature.encode(errors="replace"))


class Receiver(BaseHTTPRequestHandler):
    secret = os.environ.get("WEBHOOK_SECRET", "").encode()

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if not verified(self.secret, self.headers.get("X-Webhook-Timestamp", ""),
                        self.headers.get("X-Signature-256", ""), body):
            self.send_response(401)
        else:
            self.notice(json.loads(body))
            self.send_response(204)
        self.end_headers()

    def notice(self, notice: dict) -> None:
        # Delivery is at least once: to act exactly once, remember (alert id, notice_type) and skip repeats.
        alert = notice["alert"]
        print(notice["notice_type"], alert["id"], alert["target"], alert["status"], alert["message"], flush=True)


if __name__ == "__main__":
    if not Receiver.secret:
        raise SystemExit("set WEBHOOK_SECRET to the backend's secret")
    HTTPServer(("127.0.0.1", 8000), Receiver).serve_forever()
