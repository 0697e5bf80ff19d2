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
``UNPARSEABLE``    a well-formed answer whose text follows no judge format
``POSITIONBIAS``   pairwise: always prefers the first response shown
=================  =============================================================
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


def _between(text: str, tag: str) -> str:
    match = re.search(rf"<{tag}_[0-9a-f]+>\n(.*?)\n</{tag}_[0-9a-f]+>", text, re.DOTALL)
    return match.group(1) if match else ""


def judge_answer(prompt: str) -> str:
    """The rule-based judge's output for one of our judge prompts."""
    if "UNPARSEABLE" in prompt:
        return "I would rather not say."
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
      slow_seconds: how long a ``FAULTSLOW`` attempt hangs.
    """

    def __init__(self, latency: float = 0.0, slow_seconds: float = 5.0) -> None:
        self.latency, self.slow_seconds = latency, slow_seconds
        self.requests = 0
        self.authorization: set[str] = set()
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
                    key = hashlib.sha256(prompt.encode()).hexdigest()
                    server._attempts[key] += 1
                    attempt = server._attempts[key]
                fault = next(
                    (f for f in FIRST_ATTEMPTS if f in prompt and attempt <= FIRST_ATTEMPTS[f]),
                    None,
                )
                if "FAULTALWAYS" in prompt:
                    fault = "FAULT500"
                time.sleep(server.latency)
                if fault == "FAULTDROP":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if fault == "FAULTSLOW":
                    time.sleep(server.slow_seconds)
                if fault in ("FAULT429", "FAULT500"):
                    self._send(429 if fault == "FAULT429" else 500, b'{"error": {"message": "x"}}')
                    return
                if fault == "FAULTJUNK":
                    self._send(200, b"<html>bad gateway</html>")
                    return
                answer = {
                    "id": "mock",
                    "object": "chat.completion",
                    "created": 0,
                    "model": body["model"],
                    "choices": [
                        {
                            "index": 0,
                            "finish_reason": "stop",
                            "message": {"role": "assistant", "content": judge_answer(prompt)},
                        }
                    ],
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
