"""Translation backends: an OpenAI-compatible chat model, a local run, Google Cloud Translation v2.

Each answers ``iter_translate(requests, retry)`` with ``(index, Completion)`` pairs as answers
arrive; a request that never got an answer ends with the failure's reason, never with an
exception. Chat backends (``openai:``, ``local:``) send one prompt per backend kind, read from a
versioned file ``prompts/translate_<kind>_v<N>.txt``; the version (file name and content hash)
is part of every cache key. The chat backend reuses :class:`backends.OpenAIBackend` (its client,
concurrency, timeouts and retries); a retry after a failed check asks again with another seed.
The Google backend POSTs ``q``, ``source``, ``target`` and ``format=text`` to
``<base>/language/translate/v2`` with the same concurrency, timeout and retry rules, and the key
(``$GOOGLE_TRANSLATE_API_KEY``) in the ``X-Goog-Api-Key`` header, so it is in no URL, log line or
message.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import logging
import os
import pathlib
import random
import time
from collections.abc import Iterator, Sequence
from typing import Protocol

import httpx

from polyglot_jax import languages
from polyglot_jax.errors import ConfigError
from polyglot_jax.inference import backends
from polyglot_jax.inference.backends import Completion

log = logging.getLogger(__name__)

PROMPTS = pathlib.Path(__file__).parent / "prompts"
PROMPT_FILES = {"openai": "translate_chat_v1", "local": "translate_local_v1"}
GOOGLE_URL = "https://translation.googleapis.com"
GOOGLE_PATH = "/language/translate/v2"
GOOGLE_KEY_ENV = "GOOGLE_TRANSLATE_API_KEY"
SPEC_FORMS = "openai:MODEL[@BASE_URL], google[:MODEL][@BASE_URL] or local:CHECKPOINT_PATH"


@dataclasses.dataclass(frozen=True)
class Request:
    """One masked text to translate from ``source`` into ``target`` (language codes)."""

    text: str
    source: str
    target: str


class Translator(Protocol):
    """What the translate stage needs from a backend; ``kind``, ``model`` and
    ``prompt_version`` identify its translations in the cache."""

    kind: str
    model: str
    prompt_version: str

    def iter_translate(
        self, requests: Sequence[Request], retry: bool = False
    ) -> Iterator[tuple[int, Completion]]: ...


@dataclasses.dataclass(frozen=True)
class Prompt:
    """A versioned prompt file."""

    name: str
    template: str

    @property
    def version(self) -> str:
        digest = hashlib.sha256(self.template.encode("utf-8")).hexdigest()[:8]
        return f"{self.name}:{digest}"

    def render(self, request: Request) -> str:
        source, target = languages.get(request.source), languages.get(request.target)
        nonce = hashlib.sha256(request.text.encode("utf-8")).hexdigest()[:8]
        fields = {
            "source_name": source.name,
            "source_code": source.code,
            "target_name": target.name,
            "target_code": target.code,
            "nonce": nonce,
        }
        out = self.template
        for name, value in fields.items():
            out = out.replace(f"{{{name}}}", value)
        return out.replace("{text}", request.text)  # last: the text may hold braces

    def answer(self, text: str) -> str:
        """The translation in a chat answer (markers the model echoed are dropped)."""
        lines = text.strip().splitlines()
        if lines and lines[0].startswith("<text_") and lines[0].endswith(">"):
            lines = lines[1:]
        if lines and lines[-1].startswith("</text_") and lines[-1].endswith(">"):
            lines = lines[:-1]
        return "\n".join(lines).strip()


def load_prompt(kind: str) -> Prompt:
    """The prompt of a chat backend kind (``openai`` or ``local``)."""
    name = PROMPT_FILES[kind]
    return Prompt(name, (PROMPTS / f"{name}.txt").read_text(encoding="utf-8").strip() + "\n")


class ChatTranslator:
    """Translation by a chat model (``OpenAIBackend`` or ``LocalBackend``).

    Args:
      kind: ``openai`` or ``local`` (picks the prompt file).
      model: the model name or checkpoint, for the cache key.
      backend: answers first attempts.
      retry_backend: answers a second attempt after a failed check (another seed).
    """

    def __init__(
        self,
        kind: str,
        model: str,
        backend: backends.Backend,
        retry_backend: backends.Backend | None = None,
    ) -> None:
        self.kind, self.model, self.backend = kind, model, backend
        self.retry_backend = retry_backend or backend
        self.prompt = load_prompt(kind)
        self.prompt_version = self.prompt.version

    def iter_translate(
        self, requests: Sequence[Request], retry: bool = False
    ) -> Iterator[tuple[int, Completion]]:
        conversations = [[{"role": "user", "content": self.prompt.render(r)}] for r in requests]
        backend = self.retry_backend if retry else self.backend
        for index, completion in backend.iter_complete(conversations):
            if completion.text is not None:
                completion = dataclasses.replace(
                    completion, text=self.prompt.answer(completion.text)
                )
            yield index, completion


class _MalformedError(ValueError):
    """A 200 answer without ``data.translations[0].translatedText``."""


class GoogleTranslator:
    """Google Cloud Translation v2 (basic) over REST.

    Args:
      model: ``nmt`` or ``base``; None sends no model (the API's default).
      base_url: scheme and host (default ``https://translation.googleapis.com``); the API path
        is appended.
      api_key_env: environment variable holding the key.
      concurrency: requests in flight at once.
      timeout: seconds per request.
      max_retries: extra attempts after a retryable failure (429, 5xx, timeouts, dropped
        connections, malformed bodies); other 4xx are final at once.
      backoff: first retry delay in seconds; doubles each attempt (with jitter), capped at 30 s.

    Raises:
      ConfigError: the key's variable is unset or a setting is out of range.
    """

    kind = "google"

    def __init__(
        self,
        model: str | None = None,
        base_url: str | None = None,
        api_key_env: str = GOOGLE_KEY_ENV,
        concurrency: int = 16,
        timeout: float = 60.0,
        max_retries: int = 5,
        backoff: float = 1.0,
    ) -> None:
        key = os.environ.get(api_key_env)
        if not key:
            raise ConfigError(f"--backend google needs an API key in ${api_key_env}")
        self.model = model or "default"
        self._api_model = model
        self.prompt_version = "v2-text"
        self.concurrency, self.max_retries, self.backoff = concurrency, max_retries, backoff
        base_url = base_url or GOOGLE_URL
        backends.check_base_url(base_url, "--backend")
        base = base_url.rstrip("/")
        self.server = backends.redact_url(base)
        for name in ("httpx", "httpcore"):
            logging.getLogger(name).setLevel(logging.WARNING)
        self._client = httpx.Client(
            base_url=base,
            headers={"X-Goog-Api-Key": key},
            timeout=timeout,
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        )

    def translate(self, request: Request) -> Completion:
        """One text, retried on transient failures."""
        body = {"q": request.text, "source": request.source, "target": request.target}
        body["format"] = "text"
        if self._api_model:
            body["model"] = self._api_model
        reason = "no attempt"
        for attempt in range(1, self.max_retries + 2):
            retryable = True
            try:
                response = self._client.post(GOOGLE_PATH, json=body)
                if response.status_code != 200:
                    status = response.status_code
                    retryable = status in (408, 429) or status >= 500
                    raise httpx.HTTPStatusError(
                        f"HTTP {status}", request=response.request, response=response
                    )
                return Completion(text=_translated_text(response), attempts=attempt)
            except httpx.HTTPStatusError as e:
                reason = f"HTTP {e.response.status_code}"
            except httpx.TimeoutException:
                reason = "timeout"
            except httpx.TransportError:
                reason = "connection error"
            except _MalformedError as e:
                reason = f"malformed response ({e})"
            if not retryable or attempt > self.max_retries:
                break
            delay = min(30.0, self.backoff * 2 ** (attempt - 1)) * (0.5 + random.random())
            log.debug("translate request failed (%s), retry %d in %.2fs", reason, attempt, delay)
            time.sleep(delay)
        return Completion(text=None, error=reason, attempts=attempt)

    def iter_translate(
        self, requests: Sequence[Request], retry: bool = False
    ) -> Iterator[tuple[int, Completion]]:
        """All requests in flight ``concurrency`` at a time, yielded as each finishes."""
        with concurrent.futures.ThreadPoolExecutor(self.concurrency) as pool:
            futures = {pool.submit(self.translate, r): i for i, r in enumerate(requests)}
            for future in concurrent.futures.as_completed(futures):
                yield futures[future], future.result()


def _translated_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        raise _MalformedError("not JSON") from None
    try:
        text = body["data"]["translations"][0]["translatedText"]
    except (KeyError, IndexError, TypeError):
        raise _MalformedError("no translatedText") from None
    if not isinstance(text, str):
        raise _MalformedError("no translatedText")
    return text


def parse_spec(spec: str) -> tuple[str, str, str | None]:
    """``(kind, model or checkpoint path, base URL or None)`` of a ``--backend`` value.

    Raises:
      ConfigError: not one of the forms of :data:`SPEC_FORMS`, an empty model name, or a base
        URL that is not http(s) (the message shows no URL credentials).
    """
    kind, sep, rest = spec.partition(":")
    if kind.startswith("google@"):  # google@URL, no model
        kind, sep, rest = "google", ":", spec[len("google") :]
    shown = spec.split("@")[0] + ("@..." if "@" in spec else "")
    if kind == "openai" and rest:
        model, _, base_url = rest.partition("@")
        if not model:
            raise ConfigError(f"--backend {shown!r}: the model name is empty")
        if base_url:
            backends.check_base_url(base_url, "--backend")
        return kind, model, base_url or None
    if kind == "google" and (rest or not sep):
        model, _, base_url = rest.partition("@")
        if model not in ("", "nmt", "base"):
            raise ConfigError(f"--backend {shown!r}: Google models are nmt and base")
        if base_url:
            backends.check_base_url(base_url, "--backend")
        return kind, model, base_url or None
    if kind == "local" and rest:
        return kind, rest, None
    raise ConfigError(f"--backend {shown!r}: expected {SPEC_FORMS}")


def from_spec(
    spec: str,
    concurrency: int = 16,
    timeout: float = 60.0,
    max_retries: int = 5,
    mixture_or_task_name: str | None = None,
) -> Translator:
    """A translator from a ``--backend`` value (see :func:`parse_spec`).

    Raises:
      ConfigError: a malformed spec, a bad setting or a missing Google API key.
    """
    kind, target, base_url = parse_spec(spec)
    if kind == "google":
        return GoogleTranslator(
            target or None, base_url, GOOGLE_KEY_ENV, concurrency, timeout, max_retries
        )
    if kind == "openai":
        first, again = (
            backends.OpenAIBackend(
                target,
                base_url,
                concurrency=concurrency,
                timeout=timeout,
                max_retries=max_retries,
                seed=seed,
                max_tokens=4096,
            )
            for seed in (0, 1)
        )
        return ChatTranslator(kind, target, first, again)
    local = backends.LocalBackend(target, mixture_or_task_name, max_new_tokens=512)
    return ChatTranslator(kind, target, local)
