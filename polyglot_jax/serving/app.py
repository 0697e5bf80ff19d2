"""The OpenAI-compatible HTTP server: routes, error answers, and a uvicorn run that drains.

Errors use the OpenAI error object: 400 for a malformed body, an unsupported setting or a prompt
over the context length, 401 without the API key, 404 for another model's name, 413 for a body
over ``max_body_bytes``, 429 with ``Retry-After`` when the queue is full. A request that does
not arrive whole within ``request_timeout`` seconds is answered 408 and its connection closed
(:mod:`connections`). On SIGTERM or SIGINT the server stops accepting
connections, answers every request in flight, then returns.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
from typing import Any

import fastapi
import uvicorn
from fastapi import responses
from starlette.requests import ClientDisconnect

from polyglot_jax.serving import chat, completions, connections, service
from polyglot_jax.serving.jobs import JobCancelledError, OverloadedError
from polyglot_jax.serving.protocol import RequestError

log = logging.getLogger(__name__)

CLIENT_CLOSED = 499  # nobody reads the answer of a request whose client went away
# Idle keep-alive connections stay open longer than clients keep them (httpx, and so the openai
# client, drops them after 5 s): a client never sends on a connection the server is closing.
KEEP_ALIVE_S = 65
REQUEST_TIMEOUT_S = 60.0


def create_app(served: service.Served) -> fastapi.FastAPI:
    """The FastAPI application answering for ``served``."""
    app = fastapi.FastAPI(title="polyglot_jax", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(RequestError)
    async def refused(request: fastapi.Request, e: RequestError) -> responses.JSONResponse:
        return responses.JSONResponse(e.body(), status_code=e.status)

    @app.exception_handler(OverloadedError)
    async def overloaded(request: fastapi.Request, e: OverloadedError) -> responses.JSONResponse:
        return responses.JSONResponse(
            RequestError(str(e), status=429).body(),
            status_code=429,
            headers={"Retry-After": str(e.retry_after)},
        )

    @app.exception_handler(JobCancelledError)
    async def cancelled(request: fastapi.Request, e: JobCancelledError) -> responses.Response:
        return responses.Response(status_code=CLIENT_CLOSED)

    @app.exception_handler(ClientDisconnect)
    async def left(request: fastapi.Request, e: ClientDisconnect) -> responses.Response:
        client = f"{request.client.host}:{request.client.port}" if request.client else "a client"
        log.info("%s closed its connection before its request arrived whole", client)
        return responses.Response(status_code=CLIENT_CLOSED)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "queued": served.engine.queued, **served.engine.stats}

    app.include_router(chat.router(served))
    app.include_router(completions.router(served))
    return app


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: any free port).

    It listens at once, so clients that connect before the server runs wait in its backlog.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise OSError(e.errno, f"cannot listen on {host}:{port}: {e.strerror}") from None
    sock.listen(2048)
    return sock


def config(served: service.Served, request_timeout_s: float, **options: Any) -> uvicorn.Config:
    """The uvicorn settings: keep-alive, the request deadline, quiet logs."""
    return uvicorn.Config(
        create_app(served),
        http=connections.protocol(request_timeout_s),
        log_level="warning",
        timeout_keep_alive=KEEP_ALIVE_S,
        lifespan="off",
        **options,
    )


def serve(
    served: service.Served,
    sock: socket.socket,
    drain_timeout_s: float = 60.0,
    request_timeout_s: float = REQUEST_TIMEOUT_S,
) -> uvicorn.Server:
    """Serves on ``sock`` until SIGTERM/SIGINT (main thread) or ``server.should_exit``.

    Requests in flight are answered before it returns (up to ``drain_timeout_s``); then the
    engine finishes and stops. A request must arrive whole within ``request_timeout_s``.
    """
    server = uvicorn.Server(
        config(served, request_timeout_s, timeout_graceful_shutdown=drain_timeout_s)
    )
    # uvicorn re-raises the signal it drained for once it is done; with these handlers in
    # place that ends here, and the engine still finishes before the process exits (status 0).
    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, _drained) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.run(sockets=[sock])
    finally:
        served.engine.close(timeout=drain_timeout_s)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return server


def _drained(sig: int, frame: object) -> None:
    log.info("stopped by %s after answering the requests in flight", signal.Signals(sig).name)


class ServerThread:
    """The server on a background thread (notebooks, benchmarks, tests); no signal handling.

    Example::

      with ServerThread(served) as server:
          client = openai.OpenAI(base_url=server.url, api_key="none")
    """

    def __init__(
        self,
        served: service.Served,
        host: str = "127.0.0.1",
        port: int = 0,
        request_timeout_s: float = REQUEST_TIMEOUT_S,
    ) -> None:
        self.served, self.sock = served, bind(host, port)
        host, port = self.sock.getsockname()[:2]
        self.url = f"http://{host}:{port}/v1"
        self.server = uvicorn.Server(config(served, request_timeout_s))
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> ServerThread:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self._thread.join()
        self.served.engine.close()
