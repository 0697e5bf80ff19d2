"""The OpenAI request bodies the server accepts, validated into plain settings.

``/v1/chat/completions`` and ``/v1/completions`` bodies are parsed with pydantic; a field that is
malformed, out of range or not supported is a :class:`RequestError` naming the field, answered
as HTTP 400 in the OpenAI error format. Unknown fields are ignored, as OpenAI-compatible servers
do, except those that would change the answer and that this server cannot honour
(``presence_penalty``, ``logit_bias``, chat ``logprobs``, ``best_of``): they are refused.

Beside the OpenAI fields, ``top_k`` and ``repetition_penalty`` are accepted (vLLM's extensions).
Every number is checked against its range here, before it reaches the engine: one client's
out-of-range value (an integer past int64, ``NaN``) is that client's 400, never a failed batch.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import pydantic
from pydantic import Field

from polyglot_jax.runtime import decoding

MAX_STOP_STRINGS = 4  # as OpenAI
MAX_LOGPROBS = 20
MAX_N = 16
MAX_TOKENS = 2**31 - 1  # any count the engine's int32 arrays can hold
MAX_TOP_K = 2**31 - 1  # larger than any vocabulary: keeps every token, as 0 does
MAX_REPETITION_PENALTY = 10.0
INT64 = 2**63  # seeds are int64, as OpenAI's


class RequestError(Exception):
    """A request the server refuses; ``status`` is the HTTP status, the message one line."""

    def __init__(self, message: str, status: int = 400, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.param = status, param

    def body(self) -> dict[str, Any]:
        """The OpenAI error object."""
        kinds = {
            400: "invalid_request_error",
            401: "authentication_error",
            404: "not_found_error",
            408: "invalid_request_error",
            413: "invalid_request_error",
        }
        return {
            "error": {
                "message": str(self),
                "type": kinds.get(self.status, "server_error" if self.status >= 500 else "error"),
                "param": self.param,
                "code": self.status,
            }
        }


class _Body(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore", allow_inf_nan=False)

    model: str | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] = 1.0
    top_p: Annotated[float, Field(gt=0, le=1)] = 1.0
    top_k: Annotated[int, Field(ge=-1, le=MAX_TOP_K)] = 0  # -1 (vLLM) and 0: every token
    n: Annotated[int, Field(ge=1, le=MAX_N)] = 1
    stop: str | list[str] | None = None
    seed: Annotated[int, Field(ge=-INT64, lt=INT64)] | None = None
    frequency_penalty: Annotated[float, Field(ge=-2, le=2)] = 0.0
    presence_penalty: Annotated[float, Field(ge=-2, le=2)] = 0.0
    repetition_penalty: Annotated[float, Field(gt=0, le=MAX_REPETITION_PENALTY)] = 1.0
    logit_bias: dict[str, float] | None = None
    stream: bool = False
    stream_options: dict[str, Any] | None = None

    def stop_strings(self) -> tuple[str, ...]:
        stops = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        if len(stops) > MAX_STOP_STRINGS or not all(stops):
            raise RequestError(
                f"stop: at most {MAX_STOP_STRINGS} non-empty strings, got {stops!r}", param="stop"
            )
        return tuple(stops)

    def sampling(self) -> decoding.Sampling:
        """The decoding settings (stop strings are applied by the engine)."""
        if self.presence_penalty:
            raise RequestError(
                "presence_penalty is not supported (use frequency_penalty)",
                param="presence_penalty",
            )
        if self.logit_bias:
            raise RequestError("logit_bias is not supported", param="logit_bias")
        return decoding.Sampling(
            temperature=self.temperature,
            top_k=max(self.top_k, 0),
            top_p=self.top_p,
            repetition_penalty=self.repetition_penalty,
            frequency_penalty=self.frequency_penalty,
        )

    @property
    def include_usage(self) -> bool:
        return bool((self.stream_options or {}).get("include_usage"))


class Message(pydantic.BaseModel):
    """One chat message; ``content`` may be a string or a list of text parts."""

    model_config = pydantic.ConfigDict(extra="ignore")

    role: Literal["system", "user", "assistant"]
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            kinds = {part.get("type") for part in self.content}
            if kinds - {"text"}:
                raise RequestError(
                    f"messages: only text content parts are supported, got {sorted(kinds)}",
                    param="messages",
                )
            return "".join(str(part.get("text", "")) for part in self.content)
        return self.content or ""


class ChatBody(_Body):
    """A ``/v1/chat/completions`` body."""

    messages: Annotated[list[Message], Field(min_length=1)]
    max_tokens: Annotated[int, Field(ge=1, le=MAX_TOKENS)] | None = None
    max_completion_tokens: Annotated[int, Field(ge=1, le=MAX_TOKENS)] | None = None
    logprobs: bool | None = None

    def conversation(self) -> list[dict[str, str]]:
        if self.logprobs:
            raise RequestError("logprobs is not supported for chat completions", param="logprobs")
        if self.messages[-1].role == "assistant":
            raise RequestError(
                "messages: the last message must be the user's (or a system message)",
                param="messages",
            )
        return [{"role": m.role, "content": m.text()} for m in self.messages]

    @property
    def token_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


class CompletionBody(_Body):
    """A ``/v1/completions`` body; ``prompt`` is text, token ids, or a list of either."""

    prompt: str | list[str] | list[int] | list[list[int]]
    max_tokens: Annotated[int, Field(ge=0, le=MAX_TOKENS)] = 16
    echo: bool = False
    logprobs: Annotated[int, Field(ge=0, le=MAX_LOGPROBS)] | None = None
    best_of: Annotated[int, Field(ge=1, le=MAX_N)] | None = None

    def prompts(self) -> list[str | list[int]]:
        """Each prompt as text or as token ids."""
        if self.best_of not in (None, 1, self.n):
            raise RequestError("best_of is not supported", param="best_of")
        prompt = self.prompt
        if isinstance(prompt, str) or (prompt and isinstance(prompt[0], int)):
            prompt = [prompt]  # type: ignore[list-item]
        if not prompt or any(len(p) == 0 for p in prompt):
            raise RequestError("prompt: every prompt needs at least one character or token")
        return list(prompt)  # type: ignore[arg-type]


def parse(kind: type[_Body], data: Any) -> Any:
    """``data`` (decoded JSON) validated as ``kind``; a malformed body is a RequestError."""
    if not isinstance(data, dict):
        raise RequestError("the request body must be a JSON object")
    try:
        return kind.model_validate(data)
    except pydantic.ValidationError as e:
        error = e.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "body"
        raise RequestError(f"{where}: {error['msg']}", param=where) from None
