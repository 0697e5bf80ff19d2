"""Judge backends: an OpenAI-compatible chat-completions client and a local polyglot_jax model.

Both answer ``iter_complete(conversations)``, yielding ``(index, Completion)`` as answers
arrive, and ``complete_many(conversations) -> [Completion]``: every conversation ends with text
or with the reason it failed, never with an exception. The HTTP backend uses the official
``openai`` client against any server that speaks the protocol, with a concurrency limit and the
timeout and retries of a :class:`http_client.RetryPolicy` (429, 5xx, timeouts, dropped
connections and malformed bodies are asked again with exponential backoff; other client errors,
400, 401, 403, 404, ..., are final at once). The API key is read from an environment variable
and never stored or logged, and so is anything secret in the base URL
(``https://user:secret@host/v1``, ``?key=...``; see :mod:`backend_spec`): the backend's name and
its error messages carry no URL credentials, and the HTTP client's per-request log lines are
silenced.

:func:`from_spec` makes a backend of a ``--judge`` value; :func:`parse_spec` and
:func:`redact_spec` are :mod:`backend_spec`'s, the one parser of every spec.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol

import openai

from polyglot_jax.clients import usage as usage_lib
from polyglot_jax.clients.backend_spec import BackendSpec, Endpoint, parse_spec
from polyglot_jax.clients.backend_spec import redact_spec as redact_spec
from polyglot_jax.clients.http_client import (
    AttemptError,
    Completion,
    RetryPolicy,
    check_concurrency,
    iter_concurrent,
    quiet_url_loggers,
)

Messages = list[dict[str, str]]


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
      base_url: server URL (``https://api.openai.com/v1`` or a local server), as written or as
        a parsed :class:`Endpoint`; None: the client's default (OpenAI).
      api_key_env: environment variable holding the key (``"none"`` is sent if it is unset, for
        servers that need no key).
      concurrency: requests in flight at once.
      timeout: seconds per request (the :class:`RetryPolicy`'s).
      max_retries: extra attempts after a retryable failure (the policy's).
      backoff: first retry delay in seconds; doubles each attempt, with jitter (the policy's).
      temperature: sampling temperature (0 for judging).
      seed: sampling seed sent with each request.
      max_tokens: answer length limit.

    Raises:
      ConfigError: a setting out of range or a malformed base URL.
    """

    def __init__(
        self,
        model: str,
        base_url: str | Endpoint | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 16,
        timeout: float = 60.0,
        max_retries: int = 5,
        backoff: float = 1.0,
        temperature: float = 0.0,
        seed: int = 0,
        max_tokens: int = 1024,
    ) -> None:
        self.model, self.concurrency = model, check_concurrency(concurrency)
        self.retry = RetryPolicy(max_retries=max_retries, backoff=backoff, timeout=timeout)
        self.temperature, self.seed, self.max_tokens = temperature, seed, max_tokens
        self.name = f"openai:{model}@T{temperature:g}/seed{seed}"
        if isinstance(base_url, str):
            base_url = Endpoint.parse(base_url, "--judge")
        self.endpoint = base_url
        self.server = base_url.shown if base_url else "(default OpenAI server)"
        quiet_url_loggers()
        self._client = openai.OpenAI(
            base_url=base_url.url if base_url else None,
            api_key=os.environ.get(api_key_env) or "none",
            timeout=self.retry.timeout,
            max_retries=0,  # the RetryPolicy's retries only, so every attempt is counted
            default_query=dict(base_url.query) if base_url and base_url.query else None,
        )

    def _ask(self, messages: Messages) -> tuple[str, usage_lib.Usage | None]:
        """One attempt: the answer's text and the tokens the server reports for it.

        Raises:
          AttemptError: the server or the connection failed, or the body is not a chat completion.
        """
        try:
            response = self._client.chat.completions.create(
                model=self.model,
                messages=messages,
                temperature=self.temperature,
                seed=self.seed,
                max_tokens=self.max_tokens,
            )
        except openai.APIStatusError as e:
            raise AttemptError(f"HTTP {e.status_code}", status=e.status_code) from None
        except openai.APITimeoutError:
            raise AttemptError("timeout") from None
        except openai.APIConnectionError:  # the client wraps every transport error so
            raise AttemptError("connection error") from None
        except (openai.APIResponseValidationError, ValueError):
            raise AttemptError("malformed response (not a chat completion)") from None
        except openai.OpenAIError as e:  # anything else of the client's: asking again won't help
            text = " ".join(str(e).split())[:200]
            if self.endpoint:
                text = self.endpoint.scrub(text)
            raise AttemptError(f"{type(e).__name__}: {text}", transient=False) from None
        choices = getattr(response, "choices", None)
        if not choices:
            raise AttemptError("malformed response (no choices)")
        text = getattr(getattr(choices[0], "message", None), "content", None)
        if not isinstance(text, str):
            raise AttemptError("malformed response (no message content)")
        return text, usage_lib.from_response(self.model, response)

    def complete(self, messages: Messages) -> Completion:
        """One conversation, retried on transient failures; with the answer's token usage."""
        answered: list[usage_lib.Usage | None] = [None]

        def attempt() -> str:
            text, answered[0] = self._ask(messages)
            return text

        completion = self.retry.call(attempt, "chat")
        used = answered[0] if completion.text is not None else None
        return usage_lib.UsageCompletion(**dataclasses.asdict(completion), usage=used)

    def iter_complete(self, conversations: Sequence[Messages]) -> Iterator[tuple[int, Completion]]:
        """All conversations in flight ``concurrency`` at a time, yielded as each finishes."""
        return iter_concurrent(self.complete, conversations, self.concurrency)

    def complete_many(self, conversations: Sequence[Messages]) -> list[Completion]:
        return collect(self.iter_complete(conversations), len(conversations))


class LocalBackend:
    """A polyglot_jax run as the judge, through the model interface on a mesh.

    Args:
      checkpoint_path: run directory, ``checkpoint_<step>`` or Hugging Face model folder.
      mixture_or_task_name: task or mixture whose vocabulary the run was trained with, for a
        run that records none (see ``ChatModel``).
      max_new_tokens: answer length limit.
      batch_size: conversations per generation batch.
      mesh_shape: ``(data, fsdp, model)`` sizes of the mesh the model is placed on (-1 fills;
        default: every device on ``fsdp``).
    """

    def __init__(
        self,
        checkpoint_path: str,
        mixture_or_task_name: str | None = None,
        max_new_tokens: int = 128,
        batch_size: int = 16,
        mesh_shape: Sequence[int] = (1, -1, 1),
    ) -> None:
        from polyglot_jax.runtime.chat_model import ChatModel
        from polyglot_jax.runtime.model import inference_mesh

        self.model = ChatModel.load(
            checkpoint_path, inference_mesh(mesh_shape), mixture_or_task_name=mixture_or_task_name
        )
        self.max_new_tokens, self.batch_size = max_new_tokens, batch_size
        self.name = f"local:{checkpoint_path}"

    def iter_complete(self, conversations: Sequence[Messages]) -> Iterator[tuple[int, Completion]]:
        """Batch by batch, in order."""
        for start in range(0, len(conversations), self.batch_size):
            chunk = self.complete_many(conversations[start : start + self.batch_size])
            yield from enumerate(chunk, start=start)

    def complete_many(self, conversations: Sequence[Messages]) -> list[Completion]:
        out = []
        for start in range(0, len(conversations), self.batch_size):
            chunk = conversations[start : start + self.batch_size]
            answers = self.model.respond(chunk, self.max_new_tokens)
            out += [Completion(text=text) for text, _, _ in answers]
        return out


def from_spec(
    spec: str | BackendSpec,
    concurrency: int = 16,
    timeout: float = 60.0,
    max_retries: int = 5,
    mixture_or_task_name: str | None = None,
    seed: int = 0,
    max_tokens: int = 1024,
    max_new_tokens: int = 128,
) -> Backend:
    """A backend from ``openai:MODEL[@BASE_URL]`` or ``local:CHECKPOINT_PATH``.

    Args:
      spec: the ``--judge`` value, or a spec another flag's value parsed to (``openai`` or
        ``local``).
      concurrency: requests in flight at once (HTTP backends).
      timeout: seconds per request (HTTP backends).
      max_retries: extra attempts after a retryable failure (HTTP backends).
      mixture_or_task_name: the vocabulary's task or mixture (local backends whose run does not
        record it).
      seed: sampling seed (HTTP backends).
      max_tokens: answer length limit (HTTP backends).
      max_new_tokens: answer length limit (local backends).

    Raises:
      ConfigError: a malformed spec (see :func:`backend_spec.parse_spec`) or a bad setting.
    """
    if isinstance(spec, str):
        spec = parse_spec(spec)
    if spec.kind == "openai":
        return OpenAIBackend(
            spec.model,
            spec.endpoint,
            concurrency=concurrency,
            timeout=timeout,
            max_retries=max_retries,
            seed=seed,
            max_tokens=max_tokens,
        )
    if spec.kind == "local":
        return LocalBackend(spec.model, mixture_or_task_name, max_new_tokens=max_new_tokens)
    raise ValueError(f"not a chat backend: {spec}")
