"""A flapping target for the soak: an HTTP proxy in front of a FHIR server that is up for
UP seconds, then answers 503 for DOWN seconds, over and over.

Usage: python3 flap.py PORT UPSTREAM_BASE UP_SECS DOWN_SECS
"""

import http.client
import http.server
import json
import sys
import time
import urllib.parse

PORT, UPSTREAM, UP, DOWN = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
STARTED = time.monotonic()
target = urllib.parse.urlsplit(UPSTREAM)
OUTCOME = json.dumps({
    "resourceType": "OperationOutcome",
    "issue": [{"severity": "error", "code": "transient", "diagnostics": "down (soak)"}],
}).encode()
KEPT = ("content-type", "accept", "if-match", "if-none-exist", "authorization", "traceparent")


def down() -> bool:
    return (time.monotonic() - STARTED) % (UP + DOWN) >= UP


class Flap(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def handle_one(self):
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else None
        if down():
            self.answer(503, {"content-type": "application/fhir+json"}, OUTCOME)
            return
        path = target.path.rstrip("/") + self.path.removeprefix("/fhir")
        headers = {k: v for k, v in self.headers.items() if k.lower() in KEPT}
        connection = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
        try:
            connection.request(self.command, path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
            kept = {k: v for k, v in response.getheaders() if k.lower() in ("content-type", "etag", "location")}
            self.answer(response.status, kept, data)
        except OSError as e:
            self.answer(502, {"content-type": "text/plain"}, str(e).encode())
        finally:
            connection.close()

    def answer(self, status, headers, data):
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = handle_one


http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Flap).serve_forever()
