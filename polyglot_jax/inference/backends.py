"""Judge backends: an OpenAI-compatible chat-completions client and a local polyglot_jax model.

Both answer ``iter_complete(conversations)``, yielding ``(index, Completion)`` as answers
arrive, and ``complete_many(conversations) -> [Completion]``: every conversation ends with text
or with the reason it failed, never with an exception. The HTTP backend uses the official
``openai`` client against any server that speaks the protocol, with a concurrency limit, a
timeout, and retries with exponential backoff on 429, 5xx, timeouts, dropped connections and
malformed bodies. The API key is read from an environment variable and never stored or logged.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import os
import random
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol

import openai

from polyglot_jax.errors import ConfigError

log = logging.getLogger(__name__)

Messages = list[dict[str, str]]


@dataclasses.dataclass(frozen=True)
class Completion:
    """A backend's answer: ``text``, or ``error`` when every attempt failed."""

    text: str | None
    error: str | None = None
    attempts: int = 1


class Backend(Protocol):
    """What a judge needs from a model."""

    name: str

    def iter_complete(self, conversations: Sequence[Messages]) -> Iterator[tuple[int, Completion]]:
        """``(index, completion)`` for every conversation, in the order they finish."""
        ...

    def complete_many(self, conversations: Sequence[Messages]) -> list[Completion]: ...


def collect(pairs: Iterable[tuple[int, Completion]], count: int) -> list[Completion]:
    """``iter_complete``'s pairs back in conversation order."""
    out: list[Completion | None] = [None] * count
    for index, completion in pairs:
        out[index] = completion
    return out  # type: ignore[return-value]  (every index arrives exactly once)


class OpenAIBackend:
    """Chat completions over HTTP with bounded concurrency and retries.

    Args:
      model: model name sent to the server.
      base_url: server URL (``https://api.openai.com/v1`` or a local server).
      api_key_env: environment variable holding the key (``"none"`` is sent if it is unset, for
        servers that need no key).
      concurrency: requests in flight at once.
      timeout: seconds per request.
      max_retries: extra attempts after a retryable failure.
      backoff: first retry delay in seconds; doubles each attempt (with jitter), capped at 30 s.
      temperature: sampling temperature (0 for judging).
      seed: sampling seed sent with each request.
      max_tokens: answer length limit.
    """

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 16,
        timeout: float = 60.0,
        max_retries: int = 5,
        backoff: float = 1.0,
        temperature: float = 0.0,
        seed: int = 0,
        max_tokens: int = 1024,
    ) -> None:
        self.model, self.concurrency = model, concurrency
        self.max_retries, self.backoff = max_retries, backoff
        self.temperature, self.seed, self.max_tokens = temperature, seed, max_tokens
        self.name = f"openai:{model}@T{temperature:g}/seed{seed}"
        self._client = openai.OpenAI(
            base_url=base_url,
            api_key=os.environ.get(api_key_env) or "none",
            timeout=timeout,
            max_retries=0,  # retries are ours, so every failure is counted and reported
        )

    def _retryable(self, error: Exception) -> bool:
        if isinstance(error, openai.APIStatusError):
            return error.status_code == 429 or error.status_code >= 500
        return isinstance(
            error, openai.APIConnectionError | openai.APIResponseValidationError | ValueError
        )

    def complete(self, messages: Messages) -> Completion:
        """One conversation, retried on transient failures."""
        error: Exception | None = None
        for attempt in range(1, self.max_retries + 2):
            try:
                response = self._client.chat.completions.create(
                    model=self.model,
                    messages=messages,
                    temperature=self.temperature,
                    seed=self.seed,
                    max_tokens=self.max_tokens,
                )
                text = response.choices[0].message.content
                if not isinstance(text, str):
                    raise ValueError("response has no message content")
                return Completion(text=text, attempts=attempt)
            except Exception as e:  # the client raises many types; each is classified
                error = e
                if not self._retryable(e) or attempt > self.max_retries:
                    break
                delay = min(30.0, self.backoff * 2 ** (attempt - 1)) * (0.5 + random.random())
                log.debug(
                    "judge request failed (%s), retry %d in %.2fs", _describe(e), attempt, delay
                )
                time.sleep(delay)
        return Completion(text=None, error=_describe(error), attempts=attempt)

    def iter_complete(self, conversations: Sequence[Messages]) -> Iterator[tuple[int, Completion]]:
        """All conversations in flight ``concurrency`` at a time, yielded as each finishes."""
        with concurrent.futures.ThreadPoolExecutor(self.concurrency) as pool:
            futures = {pool.submit(self.complete, c): i for i, c in enumerate(conversations)}
            for future in concurrent.futures.as_completed(futures):
                yield futures[future], future.result()

    def complete_many(self, conversations: Sequence[Messages]) -> list[Completion]:
        return collect(self.iter_complete(conversations), len(conversations))


def _describe(error: Exception | None) -> str:
    if isinstance(error, openai.APIStatusError):
        return f"HTTP {error.status_code}"
    if isinstance(error, openai.APITimeoutError):
        return "timeout"
    if isinstance(error, openai.APIConnectionError):
        return "connection error"
    return f"{type(error).__name__}: {str(error)[:200]}"


class LocalBackend:
    """A polyglot_jax run as the judge, through the batched decoding loop.

    Args:
      checkpoint_path: run directory or ``checkpoint_<step>``.
      vocabulary: the run's vocabulary (a SeqIO vocabulary).
      max_new_tokens: answer length limit.
      batch_size: conversations per generation batch.
    """

    def __init__(
        self,
        checkpoint_path: str,
        vocabulary: object,
        max_new_tokens: int = 128,
        batch_size: int = 16,
    ) -> None:
        from polyglot_jax.inference import generate
        from polyglot_jax.training import runs

        self._infer = generate
        self.model, self.params = runs.load_model(checkpoint_path)
        self.template = runs.chat_template(checkpoint_path)
        self.vocabulary, self.max_new_tokens, self.batch_size = (
            vocabulary,
            max_new_tokens,
            batch_size,
        )
        self.name = f"local:{checkpoint_path}"

    def iter_complete(self, conversations: Sequence[Messages]) -> Iterator[tuple[int, Completion]]:
        """Batch by batch, in order."""
        for start in range(0, len(conversations), self.batch_size):
            chunk = self.complete_many(conversations[start : start + self.batch_size])
            yield from enumerate(chunk, start=start)

    def complete_many(self, conversations: Sequence[Messages]) -> list[Completion]:
        from polyglot_jax.inference import decoding

        out = []
        for start in range(0, len(conversations), self.batch_size):
            chunk = conversations[start : start + self.batch_size]
            prompts = [self._infer.encode_prompt(self.vocabulary, c, self.template) for c in chunk]
            result = decoding.generate(
                self.model, self.params, prompts, self.max_new_tokens, self.vocabulary.eos_id
            )
            out += [Completion(text=self.vocabulary.decode(t)) for t in result.tokens]
        return out


def from_spec(spec: str, **kwargs: object) -> Backend:
    """``openai:MODEL[@BASE_URL]`` or ``local:CHECKPOINT_PATH`` (with ``vocabulary=``)."""
    kind, _, rest = spec.partition(":")
    if kind == "openai" and rest:
        model, _, base_url = rest.partition("@")
        return OpenAIBackend(model, base_url or None, **kwargs)
    if kind == "local" and rest:
        return LocalBackend(rest, **kwargs)
    raise ConfigError(f"judge {spec!r}: expected openai:MODEL[@BASE_URL] or local:CHECKPOINT_PATH")
