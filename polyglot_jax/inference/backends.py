"""Judge backends: an OpenAI-compatible chat-completions client and a local polyglot_jax model.

Both answer ``iter_complete(conversations)``, yielding ``(index, Completion)`` as answers
arrive, and ``complete_many(conversations) -> [Completion]``: every conversation ends with text
or with the reason it failed, never with an exception. The HTTP backend uses the official
``openai`` client against any server that speaks the protocol, with a concurrency limit, a
timeout, and retries with exponential backoff on 429, 5xx, timeouts, dropped connections and
malformed bodies; other client errors (400, 401, 403, 404, ...) are final at once. The API key
is read from an environment variable and never stored or logged, and so is anything secret in
the base URL (``https://user:secret@host/v1``, ``?key=...``): the backend's name and its error
messages carry no URL credentials, and the HTTP client's per-request log lines are silenced.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import os
import random
import time
import urllib.parse
from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol

import openai

from polyglot_jax.errors import ConfigError

log = logging.getLogger(__name__)

Messages = list[dict[str, str]]

# Loggers of the HTTP stack that write each request URL (with its query) at INFO or DEBUG.
_URL_LOGGERS = ("httpx", "httpcore", "openai")


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
        if concurrency < 1:
            raise ConfigError(f"judge concurrency must be at least 1, got {concurrency}")
        if not timeout > 0:
            raise ConfigError(f"judge timeout must be positive, got {timeout}")
        if max_retries < 0:
            raise ConfigError(f"judge max_retries must be 0 or more, got {max_retries}")
        self.model, self.concurrency = model, concurrency
        self.max_retries, self.backoff = max_retries, backoff
        self.temperature, self.seed, self.max_tokens = temperature, seed, max_tokens
        self.name = f"openai:{model}@T{temperature:g}/seed{seed}"
        url, query, self._secrets = _split_base_url(base_url) if base_url else (None, {}, [])
        self.server = redact_url(url) if url else "(default OpenAI server)"
        for name in _URL_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
        self._client = openai.OpenAI(
            base_url=url,
            api_key=os.environ.get(api_key_env) or "none",
            timeout=timeout,
            max_retries=0,  # retries are ours, so every failure is counted and reported
            default_query=query or None,
        )

    def _retryable(self, error: Exception) -> bool:
        if isinstance(error, openai.APIStatusError):  # 400, 401, 403, 404: asking again won't help
            return error.status_code in (408, 429) or error.status_code >= 500
        return isinstance(
            error, openai.APIConnectionError | openai.APIResponseValidationError | ValueError
        )

    def _describe(self, error: Exception | None) -> str:
        text = _describe(error)
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

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
                choices = getattr(response, "choices", None)
                if not choices:
                    raise _MalformedError("no choices")
                text = getattr(getattr(choices[0], "message", None), "content", None)
                if not isinstance(text, str):
                    raise _MalformedError("no message content")
                return Completion(text=text, attempts=attempt)
            # Errors of the server or the connection (the client wraps transport errors as
            # APIConnectionError) and bodies that do not parse; anything else is a bug.
            except (openai.OpenAIError, ValueError) as e:
                error = e
                if not self._retryable(e) or attempt > self.max_retries:
                    break
                delay = min(30.0, self.backoff * 2 ** (attempt - 1)) * (0.5 + random.random())
                log.debug(
                    "judge request failed (%s), retry %d in %.2fs",
                    self._describe(e),
                    attempt,
                    delay,
                )
                time.sleep(delay)
        return Completion(text=None, error=self._describe(error), attempts=attempt)

    def iter_complete(self, conversations: Sequence[Messages]) -> Iterator[tuple[int, Completion]]:
        """All conversations in flight ``concurrency`` at a time, yielded as each finishes."""
        with concurrent.futures.ThreadPoolExecutor(self.concurrency) as pool:
            futures = {pool.submit(self.complete, c): i for i, c in enumerate(conversations)}
            for future in concurrent.futures.as_completed(futures):
                yield futures[future], future.result()

    def complete_many(self, conversations: Sequence[Messages]) -> list[Completion]:
        return collect(self.iter_complete(conversations), len(conversations))


class _MalformedError(ValueError):
    """A 200 answer without the fields of a chat completion."""


def _describe(error: Exception | None) -> str:
    """A short failure reason; reasons are counted, so they name the kind, not the instance."""
    if isinstance(error, openai.APIStatusError):
        return f"HTTP {error.status_code}"
    if isinstance(error, openai.APITimeoutError):
        return "timeout"
    if isinstance(error, openai.APIConnectionError):
        return "connection error"
    if isinstance(error, _MalformedError):
        return f"malformed response ({error})"
    if isinstance(error, openai.APIResponseValidationError | ValueError):
        return "malformed response (not a chat completion)"
    return f"{type(error).__name__}: {' '.join(str(error).split())[:200]}"


def redact_url(url: str) -> str:
    """``url`` without user info, query or fragment: what may be logged or stored."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        parts, port = None, None
    if parts is None or not parts.netloc:  # too broken to take apart: keep what no secret is in
        scheme, _, rest = url.rpartition("://")
        rest = rest.rpartition("@")[2].partition("?")[0].partition("#")[0]
        return f"{scheme}://{rest}" if scheme else rest
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port else host
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def check_base_url(url: str, flag: str) -> urllib.parse.SplitResult:
    """The parts of ``url`` when it is ``http(s)://HOST[:PORT][/PATH]``.

    Args:
      url: the base URL.
      flag: what set it, for the message (``"judge"``, ``"--backend"``).

    Raises:
      ConfigError: anything else (the message shows no credentials).
    """
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018  (raises on a port that is not a number)
    except ValueError as e:
        raise ConfigError(f"{flag} base URL {redact_url(url)!r}: {e}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"{flag} base URL {redact_url(url)!r}: expected http(s)://HOST[:PORT][/PATH]"
        )
    return parts


def _split_base_url(url: str) -> tuple[str, dict[str, str], list[str]]:
    """``(url without query or fragment, query parameters, secrets to keep out of messages)``.

    The query becomes the client's default query: appended to every request URL, it would
    otherwise end up between the base path and ``/chat/completions``.
    """
    parts = check_base_url(url, "judge")
    query = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
    secrets = [s for s in (parts.username, parts.password, *query.values()) if s]
    secrets += [urllib.parse.quote(s, safe="") for s in secrets]
    base = urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    return base, query, sorted(set(secrets), key=len, reverse=True)


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
        from polyglot_jax.inference.chat_model import ChatModel
        from polyglot_jax.inference.model import inference_mesh

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


def parse_spec(spec: str) -> tuple[str, str, str | None]:
    """``(kind, model or checkpoint path, base URL or None)`` of a ``--judge`` value.

    Raises:
      ConfigError: neither ``openai:MODEL[@BASE_URL]`` nor ``local:CHECKPOINT_PATH``, an empty
        model name, or a base URL that is not http(s) (the message shows no URL credentials).
    """
    kind, _, rest = spec.partition(":")
    shown = spec.split("@")[0] + ("@..." if "@" in spec else "")
    if kind == "openai" and rest:
        model, _, base_url = rest.partition("@")
        if not model:
            raise ConfigError(f"judge {shown!r}: the model name is empty")
        if base_url:
            _split_base_url(base_url)
        return kind, model, base_url or None
    if kind == "local" and rest:
        return kind, rest, None
    raise ConfigError(f"judge {shown!r}: expected openai:MODEL[@BASE_URL] or local:CHECKPOINT_PATH")


def redact_spec(spec: str) -> str:
    """A ``--judge`` value as it may be shown or stored: no credentials in its base URL
    (``openai:m@http://user:KEY@host/v1`` -> ``openai:m@http://host/v1``)."""
    kind, _, rest = spec.partition(":")
    model, at, base_url = rest.partition("@")
    if kind != "openai" or not at:
        return spec
    return f"{kind}:{model}@{redact_url(base_url)}"


def from_spec(
    spec: str,
    concurrency: int = 16,
    timeout: float = 60.0,
    max_retries: int = 5,
    mixture_or_task_name: str | None = None,
) -> Backend:
    """A backend from ``openai:MODEL[@BASE_URL]`` or ``local:CHECKPOINT_PATH``.

    Args:
      spec: the ``--judge`` value.
      concurrency: requests in flight at once (HTTP judges).
      timeout: seconds per request (HTTP judges).
      max_retries: extra attempts after a retryable failure (HTTP judges).
      mixture_or_task_name: the vocabulary's task or mixture (local judges whose run does not
        record it).

    Raises:
      ConfigError: a malformed spec (see :func:`parse_spec`) or a bad setting.
    """
    kind, target, base_url = parse_spec(spec)
    if kind == "openai":
        return OpenAIBackend(
            target, base_url, concurrency=concurrency, timeout=timeout, max_retries=max_retries
        )
    return LocalBackend(target, mixture_or_task_name)
