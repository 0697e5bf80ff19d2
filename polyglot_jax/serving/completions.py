"""``/v1/completions``: text or token-id prompts, with ``echo`` and ``logprobs``.

lm-evaluation-harness's ``local-completions`` scores a continuation by sending context and
continuation as token ids with ``echo=true``, ``max_tokens=1`` and ``logprobs=1``, then summing
``token_logprobs[ctxlen:-1]`` and checking each against ``max(top_logprobs[i].values())``. The
log-probabilities come from :meth:`LanguageModel.top_scores`, the same forward pass as the
project's own scorer, so they agree with ``polyglot-jax eval``. A text prompt starts with the
tokenizer's BOS (as every prompt in training and ``infer``); the BOS is never echoed and gives the
first echoed token its context (a prompt of token ids is taken as it is: its first token has no
log-probability).
"""

from __future__ import annotations

import dataclasses
import functools
import time
import uuid
from typing import Any

import fastapi
from fastapi import responses

from polyglot_jax.data import templates
from polyglot_jax.serving import protocol, service, text
from polyglot_jax.serving.jobs import Job, Row
from polyglot_jax.serving.protocol import RequestError


@dataclasses.dataclass
class _Prompt:
    ids: list[int]  # what the model reads: [BOS] + the prompt's tokens
    shown: int  # ids[shown:] are echoed (the BOS is not)
    text: str  # the prompt as echoed


def _prompts(served: service.Served, body: protocol.CompletionBody) -> list[_Prompt]:
    out, vocab_size = [], served.vocabulary.vocab_size
    start = templates.start_ids(served.vocabulary)
    for prompt in body.prompts():
        if isinstance(prompt, str):
            out.append(_Prompt([*start, *served.vocabulary.encode(prompt)], len(start), prompt))
            continue
        bad = [t for t in prompt if not 0 <= t < vocab_size]
        if bad:
            raise RequestError(
                f"prompt: token id {bad[0]} is outside the vocabulary (0..{vocab_size - 1})",
                param="prompt",
            )
        out.append(_Prompt(list(prompt), 0, served.vocabulary.decode(list(prompt))))
    return out


def _parse(served: service.Served, data: Any) -> tuple[protocol.CompletionBody, list[_Prompt]]:
    """The body and its prompts, each checked to fit the context with its ``max_tokens``."""
    body = protocol.parse(protocol.CompletionBody, data)
    served.check_model(body.model)
    if body.stream and (body.echo or body.logprobs is not None):
        raise RequestError("stream with echo or logprobs is not supported", param="stream")
    prompts = _prompts(served, body)
    sent = body.max_tokens if "max_tokens" in body.model_fields_set else None
    for prompt in prompts:
        served.token_budget(len(prompt.ids), sent, default=body.max_tokens)
    return body, prompts


def _logprobs(
    served: service.Served, prompt: _Prompt, row: Row, scores: tuple, echo: bool, k: int
) -> dict[str, Any]:
    """The OpenAI ``logprobs`` object of one choice from ``(picked, top_ids, top_logp)``."""
    picked, top_ids, top_logp = scores  # [n - 1], [n - 1, k], [n - 1, k] over ids + row
    sequence = [*prompt.ids, *row.tokens]
    first = prompt.shown if echo else len(prompt.ids)
    shown = sequence[first:]
    pieces = text.token_pieces(served.vocabulary, shown, sequence[:first])
    decode = served.vocabulary.decode
    token_logprobs, top, offsets, offset = [], [], [], 0
    for position, piece in zip(range(first, len(sequence)), pieces, strict=True):
        if position == 0:  # nothing before the first token
            token_logprobs.append(None)
            top.append(None)
        else:
            token_logprobs.append(float(picked[position - 1]))
            alternatives = zip(top_ids[position - 1][:k], top_logp[position - 1][:k], strict=True)
            top.append({decode([int(t)]): float(lp) for t, lp in alternatives})
        offsets.append(offset)
        offset += len(piece)
    return {
        "tokens": pieces,
        "token_logprobs": token_logprobs,
        "top_logprobs": top,
        "text_offset": offsets,
    }


def router(served: service.Served) -> fastapi.APIRouter:
    """The completions route of ``served``."""
    routes = fastapi.APIRouter()

    @routes.post("/v1/completions")
    async def completions(request: fastapi.Request) -> Any:
        body, prompts = await service.prepare(served, request, functools.partial(_parse, served))
        sampling = dataclasses.replace(body.sampling(), stop_strings=body.stop_strings())
        choices = [prompt for prompt in prompts for _ in range(body.n)]
        job = Job(
            [p.ids for p in choices],
            [body.max_tokens] * len(choices),
            sampling,
            service.seeds(body.seed, len(choices)),
        )
        head = {"id": f"cmpl-{uuid.uuid4().hex}", "created": int(time.time()), "model": served.name}
        prompt_tokens = sum(len(p.ids) for p in prompts)
        if body.stream:

            def chunk(i: int, delta: str, reason: str | None, first: bool = False) -> dict:
                choice = {"index": i, "text": delta, "logprobs": None, "finish_reason": reason}
                return {**head, "object": "text_completion", "choices": [choice]}

            events = service.stream(served, job, chunk, prompt_tokens, body.include_usage)
            return responses.StreamingResponse(events, media_type="text/event-stream")
        if body.max_tokens:
            rows = await service.result(served, job, request)
        else:
            rows = [Row(finish_reason="length") for _ in choices]
        scores: list = [None] * len(rows)
        if body.logprobs is not None:
            sequences = [[*p.ids, *row.tokens] for p, row in zip(choices, rows, strict=True)]
            score = Job(sequences, kind="score", top_logprobs=max(1, body.logprobs))
            scores = await service.result(served, score, request)
        out = []
        for i, (prompt, row, score) in enumerate(zip(choices, rows, scores, strict=True)):
            answer = text.answer_text(served.vocabulary, row.tokens, sampling.stop_strings)
            logprobs = None
            if score is not None:
                logprobs = _logprobs(served, prompt, row, score, body.echo, body.logprobs)
            out.append(
                {
                    "index": i,
                    "text": (prompt.text if body.echo else "") + answer,
                    "logprobs": logprobs,
                    "finish_reason": row.finish_reason,
                }
            )
        usage = service.usage(prompt_tokens, rows)
        return {**head, "object": "text_completion", "choices": out, "usage": usage}

    return routes
