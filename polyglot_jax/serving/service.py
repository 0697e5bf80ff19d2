"""What every route shares: the served model, request checks, waiting, streaming.

A request is checked in this order: the API key (before a byte of the body is read), the body's
size, then its JSON and fields, parsed on a worker thread so that a large body never holds up
the event loop (``/health`` and the streams of other clients). A request waits for its
:class:`~polyglot_jax.serving.jobs.Job` while watching its connection: a client that
disconnects has its job cancelled (dropped from the queue, or its rows stopped at the next
decode step). A streamed job sends server-sent events as tokens arrive.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import fastapi

from polyglot_jax.runtime import decoding
from polyglot_jax.runtime.chat_model import ChatModel
from polyglot_jax.serving import text
from polyglot_jax.serving.engine import Engine
from polyglot_jax.serving.jobs import InvalidJobError, Job, JobCancelledError, Row
from polyglot_jax.serving.protocol import RequestError

DISCONNECT_POLL_S = 0.25
MAX_BODY_BYTES = 16 * 2**20

T = TypeVar("T")


@dataclasses.dataclass
class Served:
    """What the server answers with.

    Attributes:
      engine: batches requests onto the model (whose vocabulary and chat template the routes
        use).
      name: the model name clients pass (``model``) and ``/v1/models`` lists.
      max_length: the context length (prompt + new tokens).
      default_max_tokens: new tokens of a chat answer that names no ``max_tokens``.
      api_key: when set, every ``/v1`` request must send ``Authorization: Bearer <key>``.
      max_body_bytes: larger request bodies are refused (413).
    """

    engine: Engine
    name: str
    max_length: int
    default_max_tokens: int = 256
    api_key: str | None = None
    max_body_bytes: int = MAX_BODY_BYTES

    @property
    def model(self) -> ChatModel:
        """The served model."""
        return self.engine.model

    @property
    def vocabulary(self) -> Any:
        """The served model's vocabulary."""
        return self.engine.model.vocabulary

    def authorize(self, request: fastapi.Request) -> None:
        """Refuses (401) a request without the API key, when the server has one."""
        if self.api_key:
            sent = request.headers.get("authorization", "")
            if not secrets.compare_digest(sent.encode(), f"Bearer {self.api_key}".encode()):
                raise RequestError("invalid or missing API key", status=401)

    def check_model(self, model: str | None) -> None:
        """Refuses (404) a request for another model than this one."""
        if model is not None and model != self.name:
            raise RequestError(
                f"model {model!r} does not exist; this server serves {self.name!r}",
                status=404,
                param="model",
            )

    def token_budget(
        self, prompt_length: int, asked: int | None, default: int | None = None
    ) -> int:
        """New tokens for a prompt.

        Args:
          prompt_length: the prompt's tokens.
          asked: the client's ``max_tokens`` (None: it sent none).
          default: what an absent ``max_tokens`` means (None: what the context leaves, up to
            ``default_max_tokens``).
        """
        room = self.max_length - prompt_length
        tokens = asked if asked is not None else default
        if tokens is None:
            tokens = min(self.default_max_tokens, room)
        if tokens <= room and room >= 1:
            return tokens
        if asked is not None:
            sent = f"max_tokens is {asked} ({prompt_length + asked} tokens in all)"
        elif default is not None:
            sent = f"no max_tokens was sent (default {default})"
        else:
            sent = "no max_tokens was sent, and no token is left for an answer"
        raise RequestError(
            f"this model's maximum context length is {self.max_length} tokens; the prompt has "
            f"{prompt_length} tokens and {sent}",
            param="max_tokens" if asked is not None else "messages",
        )


async def read_body(served: Served, request: fastapi.Request) -> bytes:
    """The request's body, refused (413) past ``served.max_body_bytes``, never read whole."""
    limit = served.max_body_bytes
    too_large = RequestError(
        f"the request body is over the server's limit of {limit} bytes (--max_body_bytes)",
        status=413,
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def decode_json(raw: bytes) -> Any:
    """The JSON value of a body; a malformed or too deeply nested one is a 400."""
    try:
        return json.loads(raw)
    except RecursionError:
        raise RequestError("the request body is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as e:  # JSONDecodeError, or an over-long integer
        raise RequestError(f"the request body is not valid JSON: {e}") from None


async def prepare(served: Served, request: fastapi.Request, parse: Callable[[Any], T]) -> T:
    """``parse(json)`` of the request's body, off the event loop, after the API key check.

    ``parse`` validates and tokenizes; it runs on a worker thread, as does the JSON decoding.
    """
    served.authorize(request)
    raw = await read_body(served, request)
    return await asyncio.to_thread(lambda: parse(decode_json(raw)))


def seeds(seed: int | None, rows: int) -> list[int]:
    base = secrets.randbits(31) if seed is None else seed
    return [decoding.sample_seed(base, "", j) for j in range(rows)]


def submit(served: Served, job: Job) -> asyncio.Future:
    try:
        return asyncio.wrap_future(served.engine.submit(job))
    except InvalidJobError as e:
        raise RequestError(str(e), param=e.param) from None


async def result(served: Served, job: Job, request: fastapi.Request) -> Any:
    """The job's result; cancelled when the client disconnects while it waits."""
    future = submit(served, job)
    while True:
        done, _ = await asyncio.wait({future}, timeout=DISCONNECT_POLL_S)
        if done:
            return future.result()
        if await request.is_disconnected():
            _abandon(served, job, future)
            raise JobCancelledError()


def _abandon(served: Served, job: Job, future: asyncio.Future) -> None:
    """Cancels ``job`` if it still runs; nobody will read its result (nor its error)."""
    if not job.future.done():
        served.engine.cancel(job)
    future.add_done_callback(lambda f: f.cancelled() or f.exception())


def sse(data: dict | str) -> str:
    return f"data: {data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)}\n\n"


def usage(prompt_tokens: int, rows: list[Row]) -> dict[str, int]:
    completion = sum(len(r.tokens) for r in rows)
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": prompt_tokens + completion,
    }


def stream(
    served: Served,
    job: Job,
    chunk: Any,
    prompt_tokens: int,
    include_usage: bool,
) -> AsyncIterator[str]:
    """Queues ``job`` and returns its server-sent events: ``chunk(index, delta, reason)``.

    The job is submitted before the response starts, so a full queue is still answered 429.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    job.on_token = lambda i, t: loop.call_soon_threadsafe(queue.put_nowait, (i, t))
    future = submit(served, job)  # before the first byte: a full queue is still a 429
    job.future.add_done_callback(lambda _: loop.call_soon_threadsafe(queue.put_nowait, None))
    stops = job.sampling.stop_strings
    streams = [text.TextStream(served.vocabulary, stops) for _ in job.prompts]

    async def events() -> AsyncIterator[str]:
        try:
            for i in range(len(job.prompts)):
                yield sse(chunk(i, "", None, first=True))
            while (item := await queue.get()) is not None:
                delta = streams[item[0]].push(item[1])
                if delta:
                    yield sse(chunk(item[0], delta, None))
            rows = await future
            for i, row in enumerate(rows):
                final = text.answer_text(served.vocabulary, row.tokens, stops)
                yield sse(chunk(i, streams[i].finish(final), row.finish_reason))
            if include_usage:
                yield sse(
                    {**chunk(0, "", None), "choices": [], "usage": usage(prompt_tokens, rows)}
                )
            yield sse("[DONE]")
        finally:
            _abandon(served, job, future)

    return events()
