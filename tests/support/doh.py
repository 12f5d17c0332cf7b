"""A DNS-over-HTTPS resolver on 127.0.0.1 that answers every question NXDOMAIN: a DNS failure with no real DNS.

libcurl's threaded resolver asks the system's DNS servers; with CURLOPT_DOH_URL set it asks this
server instead, and nothing else, even when the answer is a failure. libcurl only speaks DoH over
https: the server's certificate is made by the test and trusted through CURLOPT_CAINFO.
"""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler

import pycurl

from tests.support.servers import LoopbackServer
from tests.support.tls import Issued, serve_tls


def nxdomain_answer(query: bytes) -> bytes:
    """The DNS message answering `query`'s first question with "no such name" (RCODE 3)."""
    end = 12
    while query[end] != 0:  # the question's name: length-prefixed labels up to a zero byte
        end += 1 + query[end]
    question = query[12:end + 5]  # the name's zero byte, QTYPE, QCLASS
    flags = bytes([0x80 | (query[2] & 0x79), 0x80 | 3])  # QR, the query's opcode and RD; RA, NXDOMAIN
    return query[:2] + flags + b"\x00\x01\x00\x00\x00\x00\x00\x00" + question


class _Resolver(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        query = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.questions += 1  # type: ignore[attr-defined]
        answer = nxdomain_answer(query)
        self.send_response(200)
        self.send_header("Content-Type", "application/dns-message")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


class NxdomainResolver(LoopbackServer):
    """Point libcurl at it with `curl_options`; it counts the questions it was asked."""

    def __init__(self, issued: Issued):
        super().__init__(_Resolver)
        serve_tls(self, issued)
        self.questions = 0
        self.curl_options = {pycurl.DOH_URL: self.url + "dns-query", pycurl.CAINFO: str(issued.cert)}
