"""A local chat-completions server that judges by simple rules and injects faults on request.

For tests and benchmarks of the judge stage: it speaks the OpenAI ``/v1/chat/completions``
protocol on 127.0.0.1, answers each judge prompt deterministically (the longer response wins a
pairwise comparison; scales grow with response length), and misbehaves when the judged text
contains a fault word:

=================  =============================================================
``FAULT429``       HTTP 429 on the first two attempts, then an answer
``FAULT500``       HTTP 500 on the first attempt
``FAULTSLOW``      the first attempt takes longer than any sensible client timeout
``FAULTDROP``      the first attempt's connection is closed without a response
``FAULTJUNK``      the first attempt answers 200 with a body that is not JSON
``FAULTALWAYS``    HTTP 500 on every attempt
``FAULT400``       HTTP 400 on every attempt (also ``FAULT401``, ``FAULT403``, ``FAULT404``)
``FAULTJUNKEVER``  200 with a body that is not JSON on every attempt
``FAULTEMPTY``     200 with an empty ``choices`` list on every attempt
``FAULTHANG``      every attempt takes longer than any sensible client timeout
``UNPARSEABLE``    a well-formed answer whose text follows no judge format
``POSITIONBIAS``   pairwise: always prefers the first response shown
``QUOTEJUDGE``     the judge quotes the response (as shown to it) before its verdict
=================  =============================================================

With ``gate``, every request waits for that event before it is answered (after it is counted),
so a test can hold requests in flight for as long as it needs.
"""

from __future__ import annotations

import collections
import hashlib
import http.server
import json
import re
import sys
import threading
import time
from typing import Any

FIRST_ATTEMPTS = {"FAULT429": 2, "FAULT500": 1, "FAULTSLOW": 1, "FAULTDROP": 1, "FAULTJUNK": 1}
EVERY_ATTEMPT = {
    "FAULTALWAYS": "FAULT500",
    "FAULT400": "FAULT400",
    "FAULT401": "FAULT401",
    "FAULT403": "FAULT403",
    "FAULT404": "FAULT404",
    "FAULTJUNKEVER": "FAULTJUNK",
    "FAULTEMPTY": "FAULTEMPTY",
    "FAULTHANG": "FAULTSLOW",
}
STATUS = {"FAULT400": 400, "FAULT401": 401, "FAULT403": 403, "FAULT404": 404, "FAULT500": 500}


def _between(text: str, tag: str) -> str:
    match = re.search(rf"<{tag}_[0-9a-f]+>\n(.*?)\n</{tag}_[0-9a-f]+>", text, re.DOTALL)
    return match.group(1) if match else ""


def judge_answer(prompt: str) -> str:
    """The rule-based judge's output for one of our judge prompts."""
    if "UNPARSEABLE" in prompt:
        return "I would rather not say."
    if "QUOTEJUDGE" in prompt:
        quoted = _between(prompt, "response")
        return f"The response says: {quoted}\n" + judge_answer(
            prompt.replace("QUOTEJUDGE", "quotejudge")
        )
    if "Verdict: [[A]]" in prompt:
        if "POSITIONBIAS" in prompt:
            return "The first one.\nVerdict: [[A]]"
        a, b = _between(prompt, "response_a"), _between(prompt, "response_b")
        verdict = "A" if len(a) > len(b) else "B" if len(b) > len(a) else "C"
        return (
            f"The {'first' if verdict == 'A' else 'second'} one is longer.\nVerdict: [[{verdict}]]"
        )
    response = _between(prompt, "response")
    level = len(response) // 10
    if "Rating: [[n]]" in prompt:
        return f"Length-based.\nRating: [[{min(10, 1 + level)}]]"
    if '"logical_coherence"' in prompt:
        value = min(3, 1 + level // 2)
        return json.dumps(
            dict.fromkeys(
                [
                    "language",
                    "fluency",
                    "helpfulness",
                    "accuracy",
                    "logical_coherence",
                    "harmlessness",
                ],
                value,
            )
        )
    return json.dumps({"reasoning": "length-based", "score": min(6, 1 + level)})


class MockChatServer:
    """Serves in a background thread; use as a context manager.

    Args:
      latency: seconds each answer takes (for throughput measurements).
      slow_seconds: how long a ``FAULTSLOW`` or ``FAULTHANG`` attempt hangs.
      gate: when given, requests are answered only once it is set.
    """

    def __init__(
        self,
        latency: float = 0.0,
        slow_seconds: float = 5.0,
        gate: threading.Event | None = None,
    ) -> None:
        self.latency, self.slow_seconds, self.gate = latency, slow_seconds, gate
        self.requests = 0
        self.authorization: set[str] = set()
        self.paths: set[str] = set()  # request paths with their query strings
        self._attempts: collections.Counter = collections.Counter()
        self._lock = threading.Lock()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out at once, no 40 ms stall

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                prompt = body["messages"][-1]["content"]
                with server._lock:
                    server.requests += 1
                    server.authorization.add(self.headers.get("Authorization", ""))
                    server.paths.add(self.path)
                    key = hashlib.sha256(prompt.encode()).hexdigest()
                    server._attempts[key] += 1
                    attempt = server._attempts[key]
                fault = next(
                    (f for f in FIRST_ATTEMPTS if f in prompt and attempt <= FIRST_ATTEMPTS[f]),
                    None,
                )
                fault = next((v for k, v in EVERY_ATTEMPT.items() if k in prompt), fault)
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
                    self._send(STATUS.get(fault, 429), b'{"error": {"message": "x"}}')
                    return
                if fault == "FAULTJUNK":
                    self._send(200, b"<html>bad gateway</html>")
                    return
                choices = [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": judge_answer(prompt)},
                    }
                ]
                answer = {
                    "id": "mock",
                    "object": "chat.completion",
                    "created": 0,
                    "model": body["model"],
                    "choices": [] if fault == "FAULTEMPTY" else choices,
                    "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
                }
                self._send(200, json.dumps(answer).encode())

            def _send(self, status: int, payload: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                if status == 429:
                    self.send_header("Retry-After", "0")
                self.end_headers()
                self.wfile.write(payload)

        class Server(http.server.ThreadingHTTPServer):
            request_queue_size = 128  # socketserver's 5 drops concurrent connects (1 s retries)

            def handle_error(self, request: Any, client_address: Any) -> None:
                # A client that timed out and hung up (the FAULTSLOW case) is expected here.
                if not isinstance(sys.exc_info()[1], ConnectionError):
                    super().handle_error(request, client_address)

        self._httpd = Server(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> MockChatServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
