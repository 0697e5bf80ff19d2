"""A deadline on receiving each request, which uvicorn does not set.

uvicorn closes a connection that stays idle after a response (``timeout_keep_alive``), but not
one that sends part of a request (some headers, or part of a body) and then waits, nor one
that connects and sends nothing: each such connection is held open for ever. The protocol here
is uvicorn's h11 protocol with a read deadline: a request (headers and body) must arrive whole
within ``request_timeout`` seconds of its first byte (or of the connection, for the first
request), or the server answers 408 when it can and closes the connection. Time spent decoding
the answer does not count: the deadline ends when the last byte of the request arrives.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)

_RECEIVING = (h11.IDLE, h11.SEND_BODY)  # the client's states while a request is incomplete


class DeadlineH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, closing connections whose request does not arrive in time."""

    request_timeout: float = 60.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._deadline is None and self.conn.their_state is h11.IDLE:
            self._arm()  # the first byte of the next request on a kept-alive connection
        super().data_received(data)
        if self.conn.their_state not in _RECEIVING:
            self._disarm()  # the request arrived whole

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.request_timeout, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing() or self.conn.their_state not in _RECEIVING:
            return
        cycle = self.cycle
        idle = self.conn.their_state is h11.IDLE and not self.conn.trailing_data[0]
        if cycle is not None and cycle.response_started:
            pass  # an answer is under way: it cannot become a 408
        elif idle and (cycle is None or cycle.response_complete):
            pass  # nothing sent at all: just close, as for an idle keep-alive connection
        else:
            message = f"the request did not arrive within {self.request_timeout:g} s"
            log.info("closing %s: %s", _peer(self.client), message)
            body = message.encode()
            self.transport.write(
                b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
                b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
            )
        self.transport.close()  # a route still reading the body sees its client gone


def _peer(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "a client"


def protocol(request_timeout: float) -> type[H11Protocol]:
    """The HTTP protocol class for ``uvicorn.Config(http=...)`` with this read deadline."""
    return type("DeadlineH11Protocol", (DeadlineH11Protocol,), {"request_timeout": request_timeout})
