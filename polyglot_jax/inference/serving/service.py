"""What every route shares: the served model, request checks, waiting, streaming.

A request waits for its :class:`~polyglot_jax.inference.serving.jobs.Job` while watching its
connection: a client that disconnects has its job cancelled (dropped from the queue, or its rows
stopped at the next decode step). A streamed job sends server-sent events as tokens arrive.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import secrets
from collections.abc import AsyncIterator
from typing import Any

import fastapi

from polyglot_jax.inference import generate
from polyglot_jax.inference.serving import text
from polyglot_jax.inference.serving.engine import Engine
from polyglot_jax.inference.serving.jobs import Job, JobCancelledError, Row
from polyglot_jax.inference.serving.protocol import RequestError

DISCONNECT_POLL_S = 0.25


@dataclasses.dataclass
class Served:
    """What the server answers with.

    Attributes:
      engine: batches requests onto the model.
      vocabulary: the model's vocabulary.
      template: the chat template the run was trained with (None: the default).
      name: the model name clients pass (``model``) and ``/v1/models`` lists.
      max_length: the context length (prompt + new tokens).
      default_max_tokens: new tokens of a chat answer that names no ``max_tokens``.
      api_key: when set, every ``/v1`` request must send ``Authorization: Bearer <key>``.
    """

    engine: Engine
    vocabulary: Any
    template: str | None
    name: str
    max_length: int
    default_max_tokens: int = 256
    api_key: str | None = None

    def check(self, request: fastapi.Request, model: str | None) -> None:
        if self.api_key:
            sent = request.headers.get("authorization", "")
            if not secrets.compare_digest(sent.encode(), f"Bearer {self.api_key}".encode()):
                raise RequestError("invalid or missing API key", status=401)
        if model is not None and model != self.name:
            raise RequestError(
                f"model {model!r} does not exist; this server serves {self.name!r}",
                status=404,
                param="model",
            )

    def token_budget(self, prompt_length: int, asked: int | None) -> int:
        """New tokens for a prompt: ``asked``, or what the context leaves up to the default."""
        room = self.max_length - prompt_length
        if asked is None:
            asked = min(self.default_max_tokens, room)
        if asked > room or room < 1:
            raise RequestError(
                f"this model's maximum context length is {self.max_length} tokens; the prompt "
                f"has {prompt_length} tokens and max_tokens is {asked}",
                param="max_tokens",
            )
        return asked


async def read_json(request: fastapi.Request) -> Any:
    try:
        return json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RequestError(f"the request body is not valid JSON: {e}") from None


def seeds(seed: int | None, rows: int) -> list[int]:
    base = secrets.randbits(31) if seed is None else seed
    return [generate.sample_seed(base, "", j) for j in range(rows)]


def submit(served: Served, job: Job) -> asyncio.Future:
    try:
        return asyncio.wrap_future(served.engine.submit(job))
    except ValueError as e:
        raise RequestError(f"n x prompts: {e}", param="n") from None


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
