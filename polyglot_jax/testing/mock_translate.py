"""A local Google Cloud Translation v2 server that "translates" by rule and injects faults.

It answers ``POST /language/translate/v2`` (JSON or form body with ``q``, ``source``,
``target``, ``format``; the key in ``X-Goog-Api-Key`` or ``?key=``) on 127.0.0.1 with
``{"data": {"translations": [{"translatedText": ...}]}}``, each text "translated" by
:func:`mock_server.fake_translation`, and misbehaves when a text contains one of
:mod:`mock_server`'s fault words (``FAULT429``, ``FAULT500``, ``FAULTSLOW``, ``FAULTDROP``,
``FAULTJUNK``, ``FAULTALWAYS``, ``FAULT401``, ``FAULTEMPTY``, ``FAULTHANG``,
``FAULTWRONGLANG``, ``FAULTLOSETOKENS``, ...). With ``api_key`` set, another key gets the
API's answer to a bad key (HTTP 400, "API key not valid"). With ``gate``, every request waits
for that event before it is answered (after it is counted).
"""

from __future__ import annotations

import collections
import hashlib
import http.server
import json
import threading
import time
import urllib.parse
from typing import Any

from polyglot_jax.testing.mock_server import STATUS, LocalServer, fake_translation, fault_for

PATH = "/language/translate/v2"


class MockTranslateServer(LocalServer):
    """Serves in a background thread; use as a context manager.

    Args:
      latency: seconds each answer takes (for throughput measurements).
      slow_seconds: how long a ``FAULTSLOW`` or ``FAULTHANG`` attempt hangs.
      gate: when given, requests are answered only once it is set.
      api_key: the only key accepted (None: any key).

    Attributes:
      requests: requests received.
      texts: the ``q`` of every request, in arrival order.
      keys: every key received (to check what a client sent).
      raw_requests: every request line and body, as received.
    """

    def __init__(
        self,
        latency: float = 0.0,
        slow_seconds: float = 5.0,
        gate: threading.Event | None = None,
        api_key: str | None = None,
    ) -> None:
        self.latency, self.slow_seconds, self.gate, self.api_key = (
            latency,
            slow_seconds,
            gate,
            api_key,
        )
        self.requests = 0
        self.texts: list[str] = []
        self.keys: set[str] = set()
        self.raw_requests: list[str] = []
        self._attempts: collections.Counter = collections.Counter()
        self._lock = threading.Lock()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                url = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(url.query))
                if "json" in self.headers.get("Content-Type", ""):
                    body = json.loads(raw or b"{}")
                else:
                    body = dict(urllib.parse.parse_qsl(raw.decode()))
                q = body.get("q", "")
                text = q[0] if isinstance(q, list) and q else q if isinstance(q, str) else ""
                key = self.headers.get("X-Goog-Api-Key") or query.get("key", "")
                with server._lock:
                    server.requests += 1
                    server.texts.append(text)
                    server.keys.add(key)
                    server.raw_requests.append(f"{self.path}\n{raw.decode(errors='replace')}")
                    server._attempts[hashlib.sha256(raw).hexdigest()] += 1
                    attempt = server._attempts[hashlib.sha256(raw).hexdigest()]
                if url.path != PATH:
                    self._send(404, _error(404, "Not Found"))
                    return
                if server.api_key is not None and key != server.api_key:
                    self._send(400, _error(400, "API key not valid. Please pass a valid API key."))
                    return
                fault = fault_for(text, attempt)
                if server.gate is not None:
                    server.gate.wait()
                time.sleep(server.latency)
                if fault == "FAULTDROP":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if fault == "FAULTSLOW":
                    time.sleep(server.slow_seconds)
                if fault == "FAULT429" or fault in STATUS:
                    status = STATUS.get(fault, 429)
                    self._send(status, _error(status, "fault"))
                    return
                if fault == "FAULTJUNK":
                    self._send(200, b"<html>bad gateway</html>")
                    return
                translations = [
                    {"translatedText": fake_translation(text, body.get("target", ""), fault)}
                ]
                data = {"translations": [] if fault == "FAULTEMPTY" else translations}
                self._send(200, json.dumps({"data": data}).encode())

            def _send(self, status: int, payload: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._serve(Handler)

    @property
    def base_url(self) -> str:
        return self.address


def _error(code: int, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message, "errors": []}}).encode()
