"""``/v1/chat/completions`` and ``/v1/models``.

A conversation is rendered with the run's chat template and tokenized by the served
``ChatModel``, exactly as ``infer`` renders its prompts, so a greedy answer here equals
``infer``'s for the same prompt.
"""

from __future__ import annotations

import dataclasses
import functools
import time
import uuid
from typing import Any

import fastapi
from fastapi import responses

from polyglot_jax.errors import UserError
from polyglot_jax.serving import protocol, service, text
from polyglot_jax.serving.jobs import Job
from polyglot_jax.serving.protocol import RequestError


def _parse(served: service.Served, data: Any) -> tuple[protocol.ChatBody, list[int], int]:
    """The body, the rendered prompt's tokens and the answer's token budget."""
    body = protocol.parse(protocol.ChatBody, data)
    served.check_model(body.model)
    try:
        prompt = served.model.encode(body.conversation())
    except UserError as e:
        raise RequestError(f"messages: {e}", param="messages") from None
    return body, prompt, served.token_budget(len(prompt), body.token_limit)


def router(served: service.Served) -> fastapi.APIRouter:
    """The chat and model-list routes of ``served``."""
    routes = fastapi.APIRouter()

    @routes.get("/v1/models")
    async def models(request: fastapi.Request) -> dict[str, Any]:
        served.authorize(request)
        card = {"id": served.name, "object": "model", "created": 0, "owned_by": "polyglot_jax"}
        return {"object": "list", "data": [{**card, "max_model_len": served.max_length}]}

    @routes.post("/v1/chat/completions")
    async def chat(request: fastapi.Request) -> Any:
        body, prompt, budget = await service.prepare(
            served, request, functools.partial(_parse, served)
        )
        sampling = dataclasses.replace(body.sampling(), stop_strings=body.stop_strings())
        seeds = service.seeds(body.seed, body.n)
        job = Job([prompt] * body.n, [budget] * body.n, sampling, seeds)
        head = {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "created": int(time.time()),
            "model": served.name,
        }

        if body.stream:

            def chunk(i: int, delta: str, reason: str | None, first: bool = False) -> dict:
                content = {"role": "assistant", "content": ""} if first else {"content": delta}
                choice = {"index": i, "delta": content, "finish_reason": reason}
                return {**head, "object": "chat.completion.chunk", "choices": [choice]}

            events = service.stream(served, job, chunk, len(prompt), body.include_usage)
            return responses.StreamingResponse(events, media_type="text/event-stream")
        rows = await service.result(served, job, request)
        choices = []
        for i, row in enumerate(rows):
            answer = text.answer_text(served.vocabulary, row.tokens, sampling.stop_strings)
            message = {"role": "assistant", "content": answer}
            choices.append(
                {
                    "index": i,
                    "message": message,
                    "finish_reason": row.finish_reason,
                    "logprobs": None,
                }
            )
        usage = service.usage(len(prompt), rows)
        return {**head, "object": "chat.completion", "choices": choices, "usage": usage}

    return routes
